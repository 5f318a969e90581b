import EmulatorSupport
import Foundation
import HTTPTypes
import KeyVaultEmulator
import Testing

/// What the Azure CLI reads of Azure Resource Manager (conformance/test_azure_cli.py drives the
/// real CLI; these pin the answers and the refusals it does not exercise).
@Suite("Emulator: Azure Resource Manager for the Azure CLI")
struct ResourceManagerTests {
    static let armScope = "https://management.core.windows.net//.default"

    @Test(
        "The endpoints document names the login endpoint, ARM's audience and a Key Vault suffix with the port, with or without a doubled slash"
    )
    func endpointsDocument() async throws {
        try await withEmulator { (harness) async throws in
            let origin = harness.endpoints.authorityHost
            for path in ["/metadata/endpoints", "//metadata/endpoints"] {
                let reply = try await harness.send(.get, "\(origin)\(path)?api-version=2022-09-01")
                #expect(reply.status == 200, "\(reply.text)")
                let authentication = try #require(reply.json["authentication"] as? [String: Any])
                #expect(authentication["loginEndpoint"] as? String == origin)
                #expect(authentication["audiences"] as? [String] == ["https://management.core.windows.net/"])
                #expect(reply.json["resourceManager"] as? String == "\(origin)/")
                #expect(
                    (reply.json["suffixes"] as? [String: Any])?["keyVaultDns"] as? String
                        == "vault.localhost:\(harness.endpoints.port)")
            }
            let old = try await harness.send(.get, "\(origin)/metadata/endpoints?api-version=2019-05-01")
            #expect(old.status == 400)
            #expect(old.errorCode == "InvalidApiVersionParameter" && old.errorMessage?.contains("2022-09-01") == true)
        }
    }

    @Test("Subscriptions and tenants need a token for ARM: none, or a Key Vault token, gets ARM's 401")
    func subscriptions() async throws {
        try await withEmulator { (harness) async throws in
            let origin = harness.endpoints.authorityHost
            let url = "\(origin)/subscriptions?api-version=2022-12-01"
            let anonymous = try await harness.send(.get, url)
            #expect(anonymous.status == 401)
            #expect(anonymous.errorCode == "AuthenticationFailed")
            #expect(anonymous.headers[.wwwAuthenticate]?.hasPrefix("Bearer authorization_uri=") == true)

            let vaultToken = try await harness.token()
            let wrongAudience = try await harness.sendJSON(.get, url, token: vaultToken)
            #expect(wrongAudience.status == 401, "\(wrongAudience.text)")

            let forged = BearerToken(
                value: "eyJhbGciOiJub25lIn0.eyJhdWQiOiJodHRwczovL21hbmFnZW1lbnQuY29yZS53aW5kb3dzLm5ldC8ifQ.")
            #expect(try await harness.sendJSON(.get, url, token: forged).status == 401)

            let armToken = try await harness.token(scope: Self.armScope)
            let listed = try await harness.sendJSON(.get, url, token: armToken)
            #expect(listed.status == 200, "\(listed.text)")
            let subscriptions = try #require(listed.json["value"] as? [[String: Any]])
            #expect(subscriptions.count == 1)
            let subscriptionId = try #require(subscriptions.first?["subscriptionId"] as? String)
            #expect(subscriptions.first?["id"] as? String == "/subscriptions/\(subscriptionId)")
            #expect(subscriptions.first?["tenantId"] as? String == harness.endpoints.tenantId)
            #expect(subscriptions.first?["state"] as? String == "Enabled")

            let tenants = try await harness.sendJSON(.get, "\(origin)/tenants?api-version=2022-12-01", token: armToken)
            #expect(
                (tenants.json["value"] as? [[String: Any]])?.compactMap { $0["tenantId"] as? String } == [
                    harness.endpoints.tenantId
                ])

            let noVersion = try await harness.sendJSON(.get, "\(origin)/subscriptions", token: armToken)
            #expect(noVersion.status == 400 && noVersion.errorCode == "MissingApiVersionParameter")
            let badVersion = try await harness.sendJSON(
                .get, "\(origin)/subscriptions?api-version=latest", token: armToken)
            #expect(badVersion.status == 400 && badVersion.errorCode == "InvalidApiVersionParameter")
            let post = try await harness.sendJSON(.post, url, token: armToken, json: [:])
            #expect(post.status == 405)
        }
    }
}
