import EmulatorSupport
import Foundation
import HTTPTypes
import KeyVaultEmulator
import Testing

@Suite("Emulator: secrets and the data-plane protocol")
struct SecretsTests {
    @Test("A request without a token gets 401 with the challenge Microsoft's SDKs parse")
    func challenge() async throws {
        try await withEmulator { (harness) async throws in
            let reply = try await harness.send(.get, harness.vaultURL("myvault", "/secrets/anything/"))
            #expect(reply.status == 401)
            #expect(reply.errorCode == "Unauthorized")
            #expect(reply.errorMessage?.hasPrefix("AKV10000") == true)
            let port = harness.endpoints.port
            #expect(
                reply.headers[.wwwAuthenticate]
                    == #"Bearer authorization="https://localhost:\#(port)/\#(harness.endpoints.tenantId)", resource="https://vault.localhost:\#(port)""#
            )
        }
    }

    @Test("A token for the wrong resource is refused like on Azure (AKV10022)")
    func wrongAudience() async throws {
        try await withEmulator { (harness) async throws in
            let token = try await harness.token(scope: "https://vault.azure.net/.default")
            let reply = try await harness.keyVault(.get, "myvault", "/secrets/x", token: token)
            #expect(reply.status == 401)
            #expect(reply.errorMessage?.contains("AKV10022") == true)
            #expect(reply.headers[.wwwAuthenticate] != nil)
        }
    }

    @Test("A forged or corrupted token is refused")
    func forgedToken() async throws {
        try await withEmulator { (harness) async throws in
            let token = try await harness.token()
            var parts = token.value.split(separator: ".").map(String.init)
            parts[2] = String(parts[2].reversed())
            let reply = try await harness.keyVault(
                .get, "myvault", "/secrets/x", token: BearerToken(value: parts.joined(separator: ".")))
            #expect(reply.status == 401)
            let garbage = try await harness.keyVault(
                .get, "myvault", "/secrets/x", token: BearerToken(value: "not-a-jwt"))
            #expect(garbage.status == 401)
        }
    }

    @Test("Set, get latest and by version, update, list versions")
    func setAndGet() async throws {
        try await withEmulator { (harness) async throws in
            let token = try await harness.token()
            let first = try await harness.keyVault(
                .put, "myvault", "/secrets/db-password", token: token,
                json: ["value": "one", "contentType": "text/plain", "tags": ["a": "b"]])
            #expect(first.status == 200)
            let firstId = try #require(first.json["id"] as? String)
            #expect(firstId.hasPrefix("https://myvault.vault.localhost:\(harness.endpoints.port)/secrets/db-password/"))
            let firstVersion = String(firstId.split(separator: "/").last!)
            #expect(firstVersion.count == 32)
            _ = try await harness.keyVault(
                .put, "myvault", "/secrets/db-password", token: token, json: ["value": "two"])

            let latest = try await harness.keyVault(.get, "myvault", "/secrets/db-password/", token: token)
            #expect(latest.status == 200)
            #expect(latest.json["value"] as? String == "two")
            let attributes = try #require(latest.json["attributes"] as? [String: Any])
            #expect(attributes["enabled"] as? Bool == true)
            #expect(attributes["created"] is Int)
            #expect(attributes["recoveryLevel"] as? String == "Recoverable+Purgeable")

            let old = try await harness.keyVault(.get, "myvault", "/secrets/DB-PASSWORD/\(firstVersion)", token: token)
            #expect(old.json["value"] as? String == "one")
            #expect((old.json["tags"] as? [String: String]) == ["a": "b"])

            let updated = try await harness.keyVault(
                .patch, "myvault", "/secrets/db-password/\(firstVersion)", token: token,
                json: ["attributes": ["enabled": false]])
            #expect(updated.status == 200)
            #expect(updated.json["value"] == nil)

            let versions = try await harness.keyVault(.get, "myvault", "/secrets/db-password/versions", token: token)
            let items = try #require(versions.json["value"] as? [[String: Any]])
            #expect(items.count == 2)
            #expect(items.allSatisfy { ($0["id"] as? String)?.split(separator: "/").count == 5 })
            #expect(items.allSatisfy { $0["value"] == nil })
        }
    }

    @Test("Disabled secrets answer 403 SecretDisabled; missing ones 404 SecretNotFound")
    func disabledAndMissing() async throws {
        try await withEmulator { (harness) async throws in
            let token = try await harness.token()
            _ = try await harness.keyVault(
                .put, "myvault", "/secrets/off", token: token, json: ["value": "x", "attributes": ["enabled": false]])
            let disabled = try await harness.keyVault(.get, "myvault", "/secrets/off", token: token)
            #expect(disabled.status == 403)
            #expect(disabled.errorCode == "Forbidden")
            #expect(disabled.innerErrorCode == "SecretDisabled")
            let missing = try await harness.keyVault(.get, "myvault", "/secrets/nope", token: token)
            #expect(missing.status == 404)
            #expect(missing.errorCode == "SecretNotFound")
            #expect(missing.errorMessage?.contains("nope") == true)
            let listed = try await harness.keyVault(.get, "myvault", "/secrets", token: token)
            let items = try #require(listed.json["value"] as? [[String: Any]])
            #expect(items.count == 1, "list shows disabled secrets")
        }
    }

    @Test(
        "Listing pages with maxresults, absolute nextLinks on the emulator's own host and port, in Key Vault's member order"
    )
    func paging() async throws {
        try await withEmulator { (harness) async throws in
            let token = try await harness.token()
            for index in 0..<53 {
                _ = try await harness.keyVault(
                    .put, "pages", "/secrets/secret-\(index)", token: token, json: ["value": "v\(index)"])
            }
            var url: String? = harness.vaultURL("pages", "/secrets?maxresults=25")
            var names: [String] = []
            var pages = 0
            while let next = url {
                let reply = try await harness.sendJSON(.get, next, token: token)
                #expect(reply.status == 200)
                // Key Vault writes the items first and the link last, null on the last page.
                #expect(reply.text.hasPrefix(#"{"value":["#))
                #expect(reply.text.hasSuffix(pages == 2 ? #","nextLink":null}"# : #"maxresults=25"}"#))
                let items = try #require(reply.json["value"] as? [[String: Any]])
                #expect(items.count <= 25)
                names += items.compactMap { ($0["id"] as? String)?.split(separator: "/").last.map(String.init) }
                url = reply.json["nextLink"] as? String
                if let link = url {
                    #expect(link.hasPrefix("https://pages.vault.localhost:\(harness.endpoints.port)/secrets?"))
                    #expect(link.contains("$skiptoken="))
                }
                pages += 1
            }
            #expect(pages == 3)
            #expect(names.count == 53)
            #expect(Set(names).count == 53)
            let tooMany = try await harness.keyVault(.get, "pages", "/secrets?maxresults=26", token: token)
            #expect(tooMany.status == 400)
            #expect(tooMany.errorCode == "BadParameter")
        }
    }

    @Test("Empty-first-page mode answers an empty page whose nextLink leads on")
    func emptyFirstPage() async throws {
        let seed = Seed(
            emptyFirstPage: true,
            vaults: [SeedVault(name: "empty-first", secrets: [SeedSecret(name: "only", value: "1")])])
        try await withEmulator(seed: seed) { (harness) async throws in
            let token = try await harness.token()
            let first = try await harness.keyVault(.get, "empty-first", "/secrets", token: token)
            #expect((first.json["value"] as? [Any])?.isEmpty == true)
            let next = try #require(first.json["nextLink"] as? String)
            let second = try await harness.sendJSON(.get, next, token: token)
            #expect((second.json["value"] as? [Any])?.count == 1)
        }
    }

    @Test("Soft delete, deleted get and list, conflict on reuse, recover, purge")
    func softDelete() async throws {
        try await withEmulator { (harness) async throws in
            let token = try await harness.token()
            _ = try await harness.keyVault(.put, "myvault", "/secrets/temp", token: token, json: ["value": "x"])
            let deleted = try await harness.keyVault(.delete, "myvault", "/secrets/temp", token: token)
            #expect(deleted.status == 200)
            #expect((deleted.json["recoveryId"] as? String)?.hasSuffix("/deletedsecrets/temp") == true)
            #expect(deleted.json["scheduledPurgeDate"] is Int)
            #expect(try await harness.keyVault(.get, "myvault", "/secrets/temp", token: token).status == 404)
            #expect(try await harness.keyVault(.get, "myvault", "/deletedsecrets/temp", token: token).status == 200)
            let deletedList = try await harness.keyVault(.get, "myvault", "/deletedsecrets", token: token)
            #expect((deletedList.json["value"] as? [Any])?.count == 1)
            let reuse = try await harness.keyVault(.put, "myvault", "/secrets/temp", token: token, json: ["value": "y"])
            #expect(reuse.status == 409)
            let recovered = try await harness.keyVault(.post, "myvault", "/deletedsecrets/temp/recover", token: token)
            #expect(recovered.status == 200)
            #expect(
                try await harness.keyVault(.get, "myvault", "/secrets/temp", token: token).json["value"] as? String
                    == "x")
            _ = try await harness.keyVault(.delete, "myvault", "/secrets/temp", token: token)
            #expect(try await harness.keyVault(.delete, "myvault", "/deletedsecrets/temp", token: token).status == 204)
            #expect(try await harness.keyVault(.get, "myvault", "/deletedsecrets/temp", token: token).status == 404)
            #expect(
                try await harness.keyVault(.put, "myvault", "/secrets/temp", token: token, json: ["value": "z"]).status
                    == 200)
        }
    }

    @Test(
        "Bad input answers 400 BadParameter with a reason",
        arguments: [
            ("/secrets/bad_name", "name"),
            ("/secrets?maxresults=0", "maxresults"),
            ("/secrets?$skiptoken=garbage", "skiptoken"),
        ])
    func badInput(path: String, mention: String) async throws {
        try await withEmulator { (harness) async throws in
            let token = try await harness.token()
            let reply = try await harness.keyVault(.get, "myvault", path, token: token)
            #expect(reply.status == 400)
            #expect(reply.errorCode == "BadParameter")
            #expect(reply.errorMessage?.contains(mention) == true)
        }
    }

    @Test(
        "api-version: the versions the service knows work; unknown, missing or malformed is 400, unless the seed accepts any"
    )
    func apiVersions() async throws {
        try await withEmulator { (harness) async throws in
            let token = try await harness.token()
            _ = try await harness.keyVault(.put, "myvault", "/secrets/v", token: token, json: ["value": "x"])
            for version in [
                "2016-10-01", "7.0", "7.6", "7.6-preview.1", "2025-07-01", "2026-04-01", "2026-05-01-preview",
            ] {
                let reply = try await harness.sendJSON(
                    .get, harness.vaultURL("myvault", "/secrets/v", apiVersion: version), token: token)
                #expect(reply.status == 200, "api-version \(version)")
            }
            let unknown = try await harness.sendJSON(
                .get, harness.vaultURL("myvault", "/secrets/v", apiVersion: "9.9"), token: token)
            #expect(unknown.status == 400)
            #expect(unknown.errorCode == "BadParameter")
            #expect(
                ((unknown.json["error"] as? [String: Any])?["message"] as? String)
                    == "The specified version (9.9) is not recognized. Consider using the latest supported version (2026-04-01)."
            )
            let missing = try await harness.sendJSON(
                .get, "https://myvault.vault.localhost:\(harness.endpoints.port)/secrets/v", token: token)
            #expect(missing.status == 400)
            let malformed = try await harness.sendJSON(
                .get, harness.vaultURL("myvault", "/secrets/v", apiVersion: "latest"), token: token)
            #expect(malformed.status == 400)
        }
        try await withEmulator(seed: Seed(acceptAnyAPIVersion: true)) { (harness) async throws in
            let token = try await harness.token()
            _ = try await harness.keyVault(.put, "myvault", "/secrets/v", token: token, json: ["value": "x"])
            #expect(
                try await harness.sendJSON(
                    .get, harness.vaultURL("myvault", "/secrets/v", apiVersion: "9.9"), token: token
                ).status == 200)
            #expect(
                try await harness.sendJSON(
                    .get, harness.vaultURL("myvault", "/secrets/v", apiVersion: "latest"), token: token
                ).status == 400)
        }
    }

    @Test("Secret values over 25 KB are refused; the set body must have a value")
    func valueLimits() async throws {
        try await withEmulator { (harness) async throws in
            let token = try await harness.token()
            let big = String(repeating: "x", count: 25 * 1024 + 1)
            #expect(
                try await harness.keyVault(.put, "myvault", "/secrets/big", token: token, json: ["value": big]).status
                    == 400)
            #expect(
                try await harness.keyVault(.put, "myvault", "/secrets/none", token: token, json: ["contentType": "x"])
                    .status == 400)
        }
    }

    @Test("Data-plane answers carry the service's headers and echo the client request id")
    func serviceHeaders() async throws {
        try await withEmulator { (harness) async throws in
            let token = try await harness.token()
            var headers = HTTPFields()
            headers[.authorization] = "Bearer \(token.value)"
            headers[HTTPField.Name("x-ms-client-request-id")!] = "abc-123"
            let reply = try await harness.send(.get, harness.vaultURL("myvault", "/secrets"), headers: headers)
            #expect(reply.headers[HTTPField.Name("x-ms-client-request-id")!] == "abc-123")
            #expect(reply.headers[HTTPField.Name("x-ms-request-id")!] != nil)
            #expect(reply.headers[.contentType] == "application/json; charset=utf-8")
        }
    }
}
