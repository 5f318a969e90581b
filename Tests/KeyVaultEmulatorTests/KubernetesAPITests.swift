import EmulatorSupport
import Foundation
import HTTPTypes
import KeyVaultEmulator
import PKI
import Testing

/// The emulated Kubernetes API's service-account issuer discovery, as the CSI plugin reads it to
/// verify pods' tokens, and the tokens the admin API mints for it.
@Suite("Emulator: Kubernetes service-account issuer")
struct KubernetesAPITests {
    static let subject = "system:serviceaccount:team-a:reader"

    static func parts(of token: String) throws -> (header: [String: Any], claims: [String: Any], jws: JWS) {
        let jws = try JWS(compact: token)
        let header = try #require(try JSONSerialization.jsonObject(with: Data(jws.headerJSON)) as? [String: Any])
        let claims = try #require(try JSONSerialization.jsonObject(with: Data(jws.payloadJSON)) as? [String: Any])
        return (header, claims, jws)
    }

    @Test(
        "Discovery and JWKS as the API server serves them, behind a service-account token; tokens verify with the cluster's key, not Entra's"
    )
    func discovery() async throws {
        try await withEmulator { (harness) async throws in
            let origin = harness.endpoints.authorityHost
            let plugin = BearerToken(
                value: harness.emulator.serviceAccountToken(
                    subject: "system:serviceaccount:kube-system:akvfs-csi", audience: "https://kubernetes.default.svc"))
            for path in ["/.well-known/openid-configuration", "/openid/v1/jwks"] {
                let anonymous = try await harness.send(.get, origin + path)
                #expect(anonymous.status == 401 && anonymous.json["kind"] as? String == "Status", "\(path)")
                let posted = try await harness.sendJSON(.post, origin + path, token: plugin, json: [:])
                #expect(posted.status == 405, "\(path)")
            }

            let configuration = try await harness.sendJSON(
                .get, "\(origin)/.well-known/openid-configuration", token: plugin)
            #expect(configuration.status == 200)
            #expect(configuration.headers[.contentType] == "application/json")
            #expect(configuration.json["issuer"] as? String == harness.endpoints.serviceAccountIssuer)
            #expect(configuration.json["jwks_uri"] as? String == "\(origin)/openid/v1/jwks")
            #expect(configuration.json["response_types_supported"] as? [String] == ["id_token"])
            #expect(configuration.json["subject_types_supported"] as? [String] == ["public"])
            #expect(configuration.json["id_token_signing_alg_values_supported"] as? [String] == ["RS256"])

            let keys = try await harness.sendJSON(.get, "\(origin)/openid/v1/jwks", token: plugin)
            #expect(keys.status == 200)
            #expect(keys.headers[.contentType] == "application/jwk-set+json")
            let published = try #require(keys.json["keys"] as? [[String: Any]])
            #expect(published.count == 1)
            let key = try #require(published.first)
            #expect(
                key["use"] as? String == "sig" && key["alg"] as? String == "RS256" && key["kty"] as? String == "RSA")
            #expect(key["d"] == nil && key["p"] == nil, "no private members")
            let publicKey = try PublicKey(jwk: JSONWebKey(kty: "RSA", n: key["n"] as? String, e: key["e"] as? String))
            // kube-apiserver's key id: base64url of the SHA-256 of the public key's DER.
            #expect(key["kid"] as? String == Base64URL.encode(Digest.sha256(try publicKey.spkiDER())))

            let token = try Self.parts(of: harness.emulator.serviceAccountToken(subject: Self.subject))
            #expect(token.header["kid"] as? String == key["kid"] as? String)
            #expect(token.header["alg"] as? String == "RS256")
            #expect(token.jws.verify(with: publicKey, algorithm: .rs256))

            let entra = try await harness.send(.get, "\(origin)/\(harness.endpoints.tenantId)/discovery/v2.0/keys")
            let entraKeys = try #require(entra.json["keys"] as? [[String: Any]])
            #expect(!entraKeys.contains { $0["n"] as? String == key["n"] as? String }, "a cluster's key is not Entra's")
        }
    }

    @Test("Minted tokens carry kubernetes.io claims; issuedAt, issuer and pod make the tokens tests need")
    func mintedTokens() async throws {
        try await withEmulator { (harness) async throws in
            let now = Int(Date().timeIntervalSince1970)
            let minted = try await harness.sendJSON(
                .post, "\(harness.endpoints.adminURL)/service-account-tokens", token: nil,
                json: ["subject": Self.subject, "pod": ["name": "web-0", "uid": "uid-0"]])
            #expect(minted.status == 201, "\(minted.text)")
            let bound = try Self.parts(of: try #require(minted.json["token"] as? String)).claims
            #expect(bound["iss"] as? String == harness.endpoints.serviceAccountIssuer)
            #expect(bound["aud"] as? [String] == ["api://AzureADTokenExchange"])
            #expect(bound["jti"] is String)
            let kubernetes = try #require(bound["kubernetes.io"] as? [String: Any])
            #expect(kubernetes["namespace"] as? String == "team-a")
            #expect((kubernetes["serviceaccount"] as? [String: Any])?["name"] as? String == "reader")
            #expect((kubernetes["pod"] as? [String: Any])?["name"] as? String == "web-0")
            #expect((kubernetes["pod"] as? [String: Any])?["uid"] as? String == "uid-0")

            let expired = try await harness.sendJSON(
                .post, "\(harness.endpoints.adminURL)/service-account-tokens", token: nil,
                json: ["subject": Self.subject, "issuedAt": now - 7200, "lifetimeSeconds": 3600])
            let expiredClaims = try Self.parts(of: try #require(expired.json["token"] as? String)).claims
            #expect((expiredClaims["exp"] as? Int).map { $0 < now } == true)

            let foreign = try await harness.sendJSON(
                .post, "\(harness.endpoints.adminURL)/service-account-tokens", token: nil,
                json: ["subject": Self.subject, "issuer": "https://oidc.elsewhere.example"])
            let foreignToken = try #require(foreign.json["token"] as? String)
            #expect(try Self.parts(of: foreignToken).claims["iss"] as? String == "https://oidc.elsewhere.example")

            // Neither token opens the Kubernetes API, and Entra ID refuses the other issuer's.
            for token in [try #require(expired.json["token"] as? String), foreignToken] {
                let refused = try await harness.sendJSON(
                    .get, "\(harness.endpoints.authorityHost)/openid/v1/jwks", token: BearerToken(value: token))
                #expect(refused.status == 401)
            }
            let exchange = try await harness.tokenRequest([
                "grant_type": "client_credentials", "client_id": "aaaaaaaa-0000-4000-8000-000000000009",
                "scope": harness.vaultScope,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": foreignToken,
            ])
            #expect((exchange.json["error_codes"] as? [Int]) == [700211], "\(exchange.text)")

            let bad = try await harness.sendJSON(
                .post, "\(harness.endpoints.adminURL)/service-account-tokens", token: nil,
                json: ["subject": Self.subject, "pod": ["name": "web-0"]])
            #expect(bad.status == 400)
        }
    }

    @Test(
        "Secrets: create, get, update with resourceVersion conflicts, delete with preconditions, as the API server answers"
    )
    func secrets() async throws {
        try await withEmulator { (harness) async throws in
            let origin = harness.endpoints.authorityHost + "/api/v1/namespaces/team-a/secrets"
            let token = BearerToken(
                value: harness.emulator.serviceAccountToken(
                    subject: "system:serviceaccount:kube-system:akvfs-csi", audience: "https://kubernetes.default.svc"))
            #expect(try await harness.send(.get, origin + "/db").status == 401)
            #expect(
                try await harness.sendJSON(.get, origin + "/db", token: token).json["reason"] as? String == "NotFound")

            let secret: [String: Any] = [
                "apiVersion": "v1", "kind": "Secret", "metadata": ["name": "db", "labels": ["app": "web"]],
                "type": "Opaque", "data": ["password": "c2VjcmV0"], "stringData": ["user": "admin"],
            ]
            let created = try await harness.sendJSON(.post, origin, token: token, json: secret)
            #expect(created.status == 201)
            let metadata = try #require(created.json["metadata"] as? [String: Any])
            #expect(
                metadata["namespace"] as? String == "team-a" && metadata["uid"] is String
                    && metadata["creationTimestamp"] is String)
            #expect(
                created.json["data"] as? [String: String] == ["password": "c2VjcmV0", "user": "YWRtaW4="],
                "stringData is folded into data")
            let version = try #require(metadata["resourceVersion"] as? String)
            #expect(
                try await harness.sendJSON(.post, origin, token: token, json: secret).json["reason"] as? String
                    == "AlreadyExists")

            var update = created.json
            update["data"] = ["password": "bmV3"]
            let updated = try await harness.sendJSON(.put, origin + "/db", token: token, json: update)
            #expect(updated.status == 200)
            #expect((updated.json["metadata"] as? [String: Any])?["resourceVersion"] as? String != version)
            #expect((updated.json["metadata"] as? [String: Any])?["uid"] as? String == metadata["uid"] as? String)
            let stale = try await harness.sendJSON(.put, origin + "/db", token: token, json: update)
            #expect(
                stale.status == 409 && stale.json["reason"] as? String == "Conflict",
                "the resourceVersion read before is out of date")
            var retyped = updated.json
            retyped["type"] = "kubernetes.io/tls"
            #expect(
                try await harness.sendJSON(.put, origin + "/db", token: token, json: retyped).status == 422,
                "a type is immutable")

            let tls: [String: Any] = [
                "metadata": ["name": "web-tls"], "type": "kubernetes.io/tls", "data": ["tls.crt": "eA=="],
            ]
            let invalid = try await harness.sendJSON(.post, origin, token: token, json: tls)
            #expect(
                invalid.status == 422
                    && (invalid.json["message"] as? String)?.contains("data[tls.key]: Required value") == true)
            let badName = try await harness.sendJSON(
                .post, origin, token: token, json: ["metadata": ["name": "Bad_Name"], "data": [:]])
            #expect(badName.status == 422)

            let current = try #require((updated.json["metadata"] as? [String: Any])?["resourceVersion"] as? String)
            let precondition = try await harness.sendJSON(
                .delete, origin + "/db", token: token, json: ["preconditions": ["resourceVersion": version]])
            #expect(precondition.status == 409, "deleting a version that is no longer current")
            let deleted = try await harness.sendJSON(
                .delete, origin + "/db", token: token, json: ["preconditions": ["resourceVersion": current]])
            #expect(deleted.status == 200 && deleted.json["status"] as? String == "Success")
            #expect(try await harness.sendJSON(.get, origin + "/db", token: token).status == 404)
        }
    }
}
