import EmulatorSupport
import Foundation
import HTTPTypes
import KeyVaultEmulator
import PKI
import Testing

@Suite("Emulator: Entra ID and managed identity")
struct IdentityTests {
    static let appId = "aaaaaaaa-0000-4000-8000-000000000001"
    static let certificateAppId = "aaaaaaaa-0000-4000-8000-000000000002"
    static let workloadAppId = "aaaaaaaa-0000-4000-8000-000000000003"
    static let userAssignedClientId = "bbbbbbbb-0000-4000-8000-000000000001"

    static func seed(certificatePEM: String) -> Seed {
        Seed(
            allowUnknownIdentities: false,
            identities: [
                SeedIdentity(
                    name: "app", type: .servicePrincipal, clientId: appId,
                    objectId: "cccccccc-0000-4000-8000-000000000001", clientSecret: "right-secret"),
                SeedIdentity(
                    name: "cert-app", type: .servicePrincipal, clientId: certificateAppId, certificate: certificatePEM),
                SeedIdentity(
                    name: "workload", type: .servicePrincipal, clientId: workloadAppId,
                    federatedSubjects: ["system:serviceaccount:team-a:reader"]),
                SeedIdentity(
                    name: "node", type: .managedIdentity, objectId: "dddddddd-0000-4000-8000-000000000001",
                    systemAssigned: true),
                SeedIdentity(
                    name: "uami", type: .managedIdentity, clientId: userAssignedClientId,
                    objectId: "dddddddd-0000-4000-8000-000000000002",
                    resourceId:
                        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uami"
                ),
            ]
        )
    }

    static func makeCertificate() throws -> (PrivateKey, Certificate) {
        let key = try PrivateKey.generate(.rsa(bits: 2048))
        let certificate = try CertificateTemplate(
            subject: "CN=cert-app", notBefore: Date(), notAfter: Date().addingTimeInterval(86_400)
        ).selfSigned(with: key)
        return (key, certificate)
    }

    /// A client assertion as azure-identity with MSAL builds it: RS256, padded SHA-1 `x5t`, float times.
    static func assertion(
        key: PrivateKey, certificate: Certificate, clientId: String, audience: String, x5tPadded: Bool = true
    ) throws -> String {
        var thumbprint = Data(certificate.sha1Thumbprint).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
        if !x5tPadded { thumbprint = thumbprint.replacingOccurrences(of: "=", with: "") }
        let header = try JSONSerialization.data(withJSONObject: ["alg": "RS256", "typ": "JWT", "x5t": thumbprint])
        let now = Date().timeIntervalSince1970
        let claims = try JSONSerialization.data(withJSONObject: [
            "aud": audience, "iss": clientId, "sub": clientId, "jti": UUID().uuidString, "iat": now, "exp": now + 600,
        ])
        return try JWS.sign(headerJSON: Array(header), payloadJSON: Array(claims), key: key, algorithm: .rs256)
    }

    @Test("Client secret: the right secret gets a JWT naming the identity; a wrong one is refused")
    func clientSecret() async throws {
        let (_, certificate) = try Self.makeCertificate()
        try await withEmulator(seed: Self.seed(certificatePEM: certificate.pem())) { (harness) async throws in
            let token = try await harness.token(clientId: Self.appId, secret: "right-secret")
            let claims = EmulatorHarness.claims(of: token)
            #expect(claims["appid"] as? String == Self.appId)
            #expect(claims["oid"] as? String == "cccccccc-0000-4000-8000-000000000001")
            #expect(claims["tid"] as? String == harness.endpoints.tenantId)
            #expect(claims["aud"] as? String == harness.endpoints.resource)
            #expect(claims["iss"] as? String == "https://sts.windows.net/\(harness.endpoints.tenantId)/")
            let lifetime = (claims["exp"] as? Int ?? 0) - (claims["iat"] as? Int ?? 0)
            #expect(lifetime >= 3600)

            let wrong = try await harness.tokenRequest([
                "grant_type": "client_credentials", "client_id": Self.appId, "client_secret": "wrong",
                "scope": harness.vaultScope,
            ])
            #expect(wrong.status == 401)
            #expect(wrong.json["error"] as? String == "invalid_client")
            #expect((wrong.json["error_description"] as? String)?.hasPrefix("AADSTS7000215") == true)
            #expect(!(wrong.text.contains("wrong")), "the presented secret is never echoed")

            let right = try await harness.tokenRequest([
                "grant_type": "client_credentials", "client_id": Self.appId, "client_secret": "right-secret",
                "scope": harness.vaultScope,
            ])
            #expect(Set(right.json.keys) == ["token_type", "expires_in", "ext_expires_in", "access_token"])

            let unknown = try await harness.tokenRequest([
                "grant_type": "client_credentials", "client_id": "99999999-0000-4000-8000-000000000000",
                "client_secret": "x", "scope": harness.vaultScope,
            ])
            #expect(unknown.status == 400)
            #expect((unknown.json["error_codes"] as? [Int]) == [700016])
        }
    }

    @Test("Token requests with a bad tenant, scope or grant get AADSTS errors")
    func tokenRequestErrors() async throws {
        try await withEmulator { (harness) async throws in
            let otherTenant = try await harness.send(
                .post, "\(harness.endpoints.authorityHost)/00000000-1111-2222-3333-444444444444/oauth2/v2.0/token",
                headers: [.contentType: "application/x-www-form-urlencoded"],
                body: Array("grant_type=client_credentials&client_id=a&client_secret=b&scope=x/.default".utf8))
            #expect((otherTenant.json["error_codes"] as? [Int]) == [90002])
            let badScope = try await harness.tokenRequest([
                "grant_type": "client_credentials", "client_id": "a", "client_secret": "b",
                "scope": harness.endpoints.resource,
            ])
            #expect(badScope.json["error"] as? String == "invalid_scope")
            let badGrant = try await harness.tokenRequest([
                "grant_type": "password", "client_id": "a", "scope": harness.vaultScope,
            ])
            #expect(badGrant.json["error"] as? String == "unsupported_grant_type")
            let discovery = try await harness.send(
                .get,
                "\(harness.endpoints.authorityHost)/\(harness.endpoints.tenantId)/v2.0/.well-known/openid-configuration"
            )
            #expect(discovery.status == 200)
            #expect(discovery.json["token_endpoint"] as? String == harness.tokenURL)
            #expect(
                Set(discovery.json.keys) == [
                    "issuer", "authorization_endpoint", "token_endpoint", "device_authorization_endpoint", "jwks_uri",
                    "response_types_supported", "subject_types_supported", "id_token_signing_alg_values_supported",
                    "token_endpoint_auth_methods_supported",
                ])
            let keys = try await harness.send(.get, try #require(discovery.json["jwks_uri"] as? String))
            #expect(((keys.json["keys"] as? [[String: Any]])?.first?["kty"] as? String) == "RSA")
        }
    }

    @Test("Certificate assertion: RS256 with x5t, checked against the registered certificate")
    func certificateAssertion() async throws {
        let (key, certificate) = try Self.makeCertificate()
        try await withEmulator(seed: Self.seed(certificatePEM: certificate.pem())) { (harness) async throws in
            for padded in [true, false] {
                let assertion = try Self.assertion(
                    key: key, certificate: certificate, clientId: Self.certificateAppId, audience: harness.tokenURL,
                    x5tPadded: padded)
                let reply = try await harness.tokenRequest([
                    "grant_type": "client_credentials", "client_id": Self.certificateAppId, "scope": harness.vaultScope,
                    "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    "client_assertion": assertion,
                    "client_info": "1", "claims": #"{"access_token": {"xms_cc": {"values": ["CP1"]}}}"#,
                ])
                #expect(reply.status == 200, "\(reply.text)")
                #expect(EmulatorHarness.claims(of: reply.accessToken)["appidacr"] as? String == "2")
            }
            let (otherKey, otherCertificate) = try Self.makeCertificate()
            let forged = try Self.assertion(
                key: otherKey, certificate: otherCertificate, clientId: Self.certificateAppId,
                audience: harness.tokenURL)
            let refused = try await harness.tokenRequest([
                "grant_type": "client_credentials", "client_id": Self.certificateAppId, "scope": harness.vaultScope,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": forged,
            ])
            #expect(refused.status == 401)
            #expect((refused.json["error_codes"] as? [Int]) == [700027])
            let wrongAudience = try Self.assertion(
                key: key, certificate: certificate, clientId: Self.certificateAppId,
                audience: "https://login.microsoftonline.com/x/oauth2/v2.0/token")
            let audienceRefused = try await harness.tokenRequest([
                "grant_type": "client_credentials", "client_id": Self.certificateAppId, "scope": harness.vaultScope,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": wrongAudience,
            ])
            #expect(audienceRefused.status == 400)
        }
    }

    @Test(
        "Workload identity: a federated token from the emulator's issuer is exchanged; wrong subject or audience refused"
    )
    func workloadIdentity() async throws {
        let (_, certificate) = try Self.makeCertificate()
        try await withEmulator(seed: Self.seed(certificatePEM: certificate.pem())) { (harness) async throws in
            func exchange(_ assertion: String) async throws -> EmulatorReply {
                try await harness.tokenRequest([
                    "grant_type": "client_credentials", "client_id": Self.workloadAppId, "scope": harness.vaultScope,
                    "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    "client_assertion": assertion,
                ])
            }
            let good = harness.emulator.serviceAccountToken(subject: "system:serviceaccount:team-a:reader")
            let accepted = try await exchange(good + "\n")
            #expect(accepted.status == 200, "\(accepted.text)")
            let wrongSubject = try await exchange(
                harness.emulator.serviceAccountToken(subject: "system:serviceaccount:team-b:reader"))
            #expect((wrongSubject.json["error_codes"] as? [Int]) == [700213])
            let wrongAudience = try await exchange(
                harness.emulator.serviceAccountToken(
                    subject: "system:serviceaccount:team-a:reader", audience: "api://other"))
            #expect((wrongAudience.json["error_codes"] as? [Int]) == [700212])
            let minted = try await harness.sendJSON(
                .post, "\(harness.endpoints.adminURL)/service-account-tokens", token: nil,
                json: ["subject": "system:serviceaccount:team-a:reader"])
            #expect(minted.status == 201)
            let mintedToken = try #require(minted.json["token"] as? String)
            let exchanged = try await exchange(mintedToken)
            #expect(exchanged.status == 200)
        }
    }

    @Test("IMDS: Metadata header required; system-assigned and user-assigned by client_id, object_id, msi_res_id")
    func imds() async throws {
        let (_, certificate) = try Self.makeCertificate()
        try await withEmulator(seed: Self.seed(certificatePEM: certificate.pem())) { (harness) async throws in
            let base =
                "\(harness.endpoints.imdsEndpoint)/metadata/identity/oauth2/token?api-version=2018-02-01&resource=\(EmulatorHarness.formEncode(harness.endpoints.resource))"
            let metadata: HTTPFields = [HTTPField.Name("Metadata")!: "true"]
            let noHeader = try await harness.send(.get, base)
            #expect(noHeader.status == 400)
            #expect(noHeader.json["error_description"] as? String == "Required metadata header not specified")

            let system = try await harness.send(.get, base, headers: metadata)
            #expect(system.status == 200)
            #expect(
                Set(system.json.keys) == [
                    "access_token", "client_id", "expires_in", "expires_on", "ext_expires_in", "not_before", "resource",
                    "token_type",
                ])
            #expect(
                system.json["expires_in"] is String && system.json["expires_on"] is String
                    && system.json["not_before"] is String)
            #expect(
                EmulatorHarness.claims(of: system.accessToken)["oid"] as? String
                    == "dddddddd-0000-4000-8000-000000000001")

            for selector in [
                "client_id=\(Self.userAssignedClientId)", "object_id=dddddddd-0000-4000-8000-000000000002",
                "msi_res_id=\(EmulatorHarness.formEncode("/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uami"))",
            ] {
                let reply = try await harness.send(.get, base + "&" + selector, headers: metadata)
                #expect(reply.status == 200, "\(selector): \(reply.text)")
                #expect(
                    EmulatorHarness.claims(of: reply.accessToken)["oid"] as? String
                        == "dddddddd-0000-4000-8000-000000000002")
            }
            let unknown = try await harness.send(
                .get, base + "&client_id=00000000-0000-0000-0000-00000000dead", headers: metadata)
            #expect(unknown.status == 400)

            // The token works against the vault.
            let token = try #require(system.accessToken)
            #expect(try await harness.keyVault(.get, "imdsvault", "/secrets", token: token).status == 200)
        }
    }

    @Test("App Service endpoint requires X-IDENTITY-HEADER and answers expires_on as a string")
    func appService() async throws {
        try await withEmulator { (harness) async throws in
            let url =
                "\(harness.endpoints.appServiceEndpoint)?api-version=2019-08-01&resource=\(EmulatorHarness.formEncode(harness.endpoints.resource))"
            #expect(try await harness.send(.get, url).status == 400)
            let reply = try await harness.send(.get, url, headers: [HTTPField.Name("X-IDENTITY-HEADER")!: "anything"])
            #expect(reply.status == 200)
            #expect(reply.json["expires_on"] is String)
        }
    }

    @Test("Requests are logged with the identity, and the log can be reset")
    func requestLog() async throws {
        try await withEmulator { (harness) async throws in
            let token = try await harness.token(clientId: "12121212-0000-4000-8000-000000000000")
            _ = try await harness.keyVault(.get, "logged", "/secrets", token: token)
            _ = try await harness.keyVault(.get, "logged", "/secrets/missing", token: token)
            let entries = await harness.emulator.requests()
            #expect(entries.map(\.endpoint) == [.token, .keyVault, .keyVault])
            #expect(entries.last?.status == 404)
            #expect(entries.last?.vault == "logged")
            #expect(entries.last?.path == "/secrets/missing")
            #expect(entries.last?.identity?.clientId == "12121212-0000-4000-8000-000000000000")
            let overHTTP = try await harness.send(.get, "\(harness.endpoints.adminURL)/requests")
            #expect((overHTTP.json["requests"] as? [Any])?.count == 3)
            #expect(try await harness.send(.delete, "\(harness.endpoints.adminURL)/requests").status == 204)
            #expect(await harness.emulator.requests().isEmpty)
        }
    }
}
