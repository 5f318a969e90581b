import EmulatorSupport
import Foundation
import HTTPTypes
import KeyVaultEmulator
import PKI
import Testing

@Suite("Emulator: keys and certificates")
struct KeysAndCertificatesTests {
    /// A key-creation request body, as the test arguments (which must be Sendable) carry it.
    struct KeyRequest: Sendable, CustomTestStringConvertible {
        var kty: String
        var size: Int? = nil
        var curve: String? = nil
        var body: [String: Any] {
            var body: [String: Any] = ["kty": kty]
            if let size { body["key_size"] = size }
            if let curve { body["crv"] = curve }
            return body
        }
        var testDescription: String { "\(kty) \(size.map(String.init) ?? curve ?? "")" }
    }

    @Test(
        "Create RSA and EC keys; GET returns the public JWK only",
        arguments: [
            KeyRequest(kty: "RSA", size: 2048), KeyRequest(kty: "RSA", size: 3072), KeyRequest(kty: "RSA", size: 4096),
            KeyRequest(kty: "EC", curve: "P-256"), KeyRequest(kty: "EC", curve: "P-384"),
            KeyRequest(kty: "EC-HSM", curve: "P-521"),
        ])
    func createKey(request: KeyRequest) async throws {
        let body = request.body
        try await withEmulator { (harness) async throws in
            let token = try await harness.token()
            let created = try await harness.keyVault(.post, "keys", "/keys/k1/create", token: token, json: body)
            #expect(created.status == 200, "\(created.text)")
            let fetched = try await harness.keyVault(.get, "keys", "/keys/k1/", token: token)
            let jwk = try #require(fetched.json["key"] as? [String: Any])
            #expect(jwk["kty"] as? String == body["kty"] as? String)
            #expect(jwk["d"] == nil && jwk["p"] == nil && jwk["q"] == nil)
            #expect((jwk["kid"] as? String)?.contains("/keys/k1/") == true)
            let json = try JSONSerialization.data(withJSONObject: jwk)
            let key = try JSONDecoder().decode(JSONWebKey.self, from: json)
            let publicKey = try PublicKey(jwk: key)
            switch publicKey.algorithm {
            case .rsa(let bits): #expect(bits == body["key_size"] as? Int)
            case .ec(let curve): #expect(curve.rawValue == body["crv"] as? String)
            }
            if let n = jwk["n"] as? String { #expect(!n.contains("=") && !n.contains("+") && !n.contains("/")) }
        }
    }

    @Test(
        "Invalid key requests are refused with a reason",
        arguments: [
            KeyRequest(kty: "RSA", size: 1024), KeyRequest(kty: "EC", curve: "P-256K"), KeyRequest(kty: "oct"),
            KeyRequest(kty: "DSA"),
        ])
    func invalidKey(request: KeyRequest) async throws {
        let body = request.body
        try await withEmulator { (harness) async throws in
            let token = try await harness.token()
            let reply = try await harness.keyVault(.post, "keys", "/keys/bad/create", token: token, json: body)
            #expect(reply.status == 400)
            #expect(reply.errorCode == "BadParameter")
        }
    }

    @Test("Import a JWK with private material; list keys and versions")
    func importKey() async throws {
        try await withEmulator { (harness) async throws in
            let token = try await harness.token()
            let key = try PrivateKey.generate(.ec(.p256))
            let jwk = try key.jwk(includePrivate: true)
            let body = try JSONSerialization.jsonObject(with: JSONEncoder().encode(jwk))
            let imported = try await harness.keyVault(.put, "keys", "/keys/imported", token: token, json: ["key": body])
            #expect(imported.status == 200, "\(imported.text)")
            let fetched = try await harness.keyVault(.get, "keys", "/keys/imported", token: token)
            let fetchedKey = try #require(fetched.json["key"] as? [String: Any])
            #expect(fetchedKey["x"] as? String == jwk.x)
            #expect(fetchedKey["d"] == nil)
            let publicOnly = try JSONSerialization.jsonObject(with: JSONEncoder().encode(jwk.publicOnly))
            let refused = try await harness.keyVault(
                .put, "keys", "/keys/nopriv", token: token, json: ["key": publicOnly])
            #expect(refused.status == 400)
            _ = try await harness.keyVault(.post, "keys", "/keys/imported/create", token: token, json: ["kty": "EC"])
            let versions = try await harness.keyVault(.get, "keys", "/keys/imported/versions", token: token)
            #expect((versions.json["value"] as? [Any])?.count == 2)
            let list = try await harness.keyVault(.get, "keys", "/keys", token: token)
            let items = try #require(list.json["value"] as? [[String: Any]])
            #expect(
                items.map { $0["kid"] as? String } == [
                    "https://keys.vault.localhost:\(harness.endpoints.port)/keys/imported"
                ])
        }
    }

    @Test("A certificate created with the default policy has a PKCS#12 backing secret whose key matches")
    func createCertificate() async throws {
        try await withEmulator { (harness) async throws in
            let token = try await harness.token()
            let policy: [String: Any] = [
                "issuer": ["name": "Self"],
                "x509_props": ["subject": "CN=DefaultPolicy", "validity_months": 12],
                "key_props": ["kty": "RSA", "key_size": 2048, "exportable": true, "reuse_key": false],
                "secret_props": ["contentType": "application/x-pkcs12"],
            ]
            let operation = try await harness.keyVault(
                .post, "certs", "/certificates/web/create", token: token, json: ["policy": policy])
            #expect(operation.status == 202, "\(operation.text)")
            #expect(operation.json["status"] as? String == "inProgress")
            #expect((operation.json["status_details"] as? String)?.hasPrefix("Pending certificate created.") == true)
            let pending = try await harness.keyVault(.get, "certs", "/certificates/web/pending", token: token)
            #expect(pending.json["status"] as? String == "completed")
            #expect(pending.json["csr"] as? String == operation.json["csr"] as? String)

            let certificate = try await harness.keyVault(.get, "certs", "/certificates/web", token: token)
            let cer = try certificate.base64("cer")
            let leaf = try Certificate(der: cer)
            #expect(leaf.subject == "CN=DefaultPolicy")
            // The operation's request is the one this certificate answers: it carries the same key.
            let request = try pending.base64("csr")
            #expect(request.first == 0x30, "a DER SEQUENCE")
            let spki = try leaf.publicKey.spkiDER()
            #expect(
                request.indices.contains { request[$0...].starts(with: spki) },
                "the certificate's public key is in the request")
            #expect(certificate.json["x5t"] as? String == Base64URL.encode(leaf.sha1Thumbprint))
            // The policy as the service answers it: the usages the certificate got, its own attributes.
            let returnedPolicy = try #require(certificate.json["policy"] as? [String: Any])
            let x509 = returnedPolicy["x509_props"] as? [String: Any]
            #expect(x509?["ekus"] as? [String] == ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"])
            #expect(x509?["key_usage"] as? [String] == ["digitalSignature", "keyEncipherment"])
            let policyAttributes = returnedPolicy["attributes"] as? [String: Any]
            #expect(
                policyAttributes?["enabled"] as? Bool == true && policyAttributes?["created"] is Int
                    && policyAttributes?["updated"] is Int)
            let actions = returnedPolicy["lifetime_actions"] as? [[String: Any]]
            #expect((actions?.first?["action"] as? [String: Any])?["action_type"] as? String == "AutoRenew")
            let sid = try #require(certificate.json["sid"] as? String)
            let kid = try #require(certificate.json["kid"] as? String)

            let secret = try await harness.sendJSON(.get, sid + "?api-version=7.6", token: token)
            #expect(secret.json["managed"] as? Bool == true)
            #expect(secret.json["kid"] as? String == kid)
            #expect(secret.json["contentType"] as? String == "application/x-pkcs12")
            let pfx = try secret.base64("value")
            let contents = try PKCS12.parse(pfx, password: "")
            #expect(contents.certificates.count == 1)
            #expect(contents.certificates.first == leaf)
            #expect(contents.privateKeys.first?.publicKey == leaf.publicKey)

            let key = try await harness.sendJSON(.get, kid + "?api-version=7.6", token: token)
            #expect(key.json["managed"] as? Bool == true)

            // nbf and exp are the certificate's validity, on the certificate, its key and its
            // secret, in get and list answers alike.
            let validity = [Int(leaf.notBefore.timeIntervalSince1970), Int(leaf.notAfter.timeIntervalSince1970)]
            let listed = try await harness.keyVault(.get, "certs", "/certificates", token: token)
            let listedWeb = (listed.json["value"] as? [[String: Any]])?.first {
                ($0["id"] as? String)?.hasSuffix("/certificates/web") == true
            }
            for (what, attributes) in [
                ("certificate", certificate.json["attributes"]), ("secret", secret.json["attributes"]),
                ("key", key.json["attributes"]),
                ("listed certificate", listedWeb?["attributes"]),
            ] {
                let values = attributes as? [String: Any]
                #expect([values?["nbf"] as? Int ?? 0, values?["exp"] as? Int ?? 0] == validity, "\(what)")
            }

            let pem = try await harness.sendJSON(
                .get, sid + "?api-version=2025-07-01&outContentType=application/x-pem-file", token: token)
            let converted = try #require(pem.json["value"] as? String)
            #expect(converted.hasPrefix("-----BEGIN PRIVATE KEY-----"))
            #expect(try Certificate.all(fromPEM: converted) == [leaf])
        }
    }

    @Test("A PEM certificate's backing secret holds the PKCS#8 key first, then the certificate")
    func pemCertificate() async throws {
        try await withEmulator { (harness) async throws in
            let token = try await harness.token()
            let policy: [String: Any] = [
                "issuer": ["name": "Self"],
                "x509_props": [
                    "subject": "CN=pem.example", "sans": ["dns_names": ["pem.example", "www.pem.example"]],
                ],
                "key_props": ["kty": "EC", "crv": "P-384"],
                "secret_props": ["contentType": "application/x-pem-file"],
            ]
            #expect(
                try await harness.keyVault(
                    .post, "certs", "/certificates/pem/create", token: token, json: ["policy": policy]
                ).status == 202)
            let secret = try await harness.keyVault(.get, "certs", "/secrets/pem", token: token)
            let value = try #require(secret.json["value"] as? String)
            let blocks = try PEM.decode(value)
            #expect(blocks.map(\.label) == ["PRIVATE KEY", "CERTIFICATE"])
            let key = try PrivateKey(der: blocks[0].der)
            let leaf = try Certificate(der: blocks[1].der)
            #expect(key.publicKey == leaf.publicKey)
            #expect(leaf.subjectAlternativeNames == [.dns("pem.example"), .dns("www.pem.example")])
            let policyReply = try await harness.keyVault(.get, "certs", "/certificates/pem/policy", token: token)
            #expect(
                (policyReply.json["secret_props"] as? [String: Any])?["contentType"] as? String
                    == "application/x-pem-file")
        }
    }

    @Test("Import a PFX with a chain and a password; the chain comes back in upload order")
    func importPFX() async throws {
        try await withEmulator { (harness) async throws in
            let token = try await harness.token()
            let now = Date()
            let rootKey = try PrivateKey.generate(.ec(.p256))
            var rootTemplate = CertificateTemplate(
                subject: "CN=Test Root", notBefore: now, notAfter: now.addingTimeInterval(86_400))
            rootTemplate.isCertificateAuthority = true
            rootTemplate.keyUsage = [.keyCertSign]
            let root = try rootTemplate.selfSigned(with: rootKey)
            let leafKey = try PrivateKey.generate(.rsa(bits: 2048))
            let leaf = try CertificateTemplate(
                subject: "CN=imported.example", notBefore: now, notAfter: now.addingTimeInterval(86_400)
            )
            .issue(for: leafKey.publicKey, issuer: root, issuerKey: rootKey)
            let pfx = try PKCS12.create(privateKey: leafKey, certificates: [leaf, root], password: "s3cret")
            let body: [String: Any] = ["value": Data(pfx).base64EncodedString(), "pwd": "s3cret"]
            let imported = try await harness.keyVault(
                .post, "certs", "/certificates/imported/import", token: token, json: body)
            #expect(imported.status == 200, "\(imported.text)")
            // Another issuer's certificate cannot be renewed: the service e-mails the contacts at 80%.
            let importedActions = (imported.json["policy"] as? [String: Any])?["lifetime_actions"] as? [[String: Any]]
            #expect((importedActions?.first?["action"] as? [String: Any])?["action_type"] as? String == "EmailContacts")
            #expect((importedActions?.first?["trigger"] as? [String: Any])?["lifetime_percentage"] as? Int == 80)
            let secret = try await harness.keyVault(.get, "certs", "/secrets/imported", token: token)
            let stored = try PKCS12.parse(try secret.base64("value"), password: "")
            #expect(stored.certificates == [leaf, root])
            #expect(stored.privateKeys.first?.publicKey == leafKey.publicKey)

            let wrongPassword = try await harness.keyVault(
                .post, "certs", "/certificates/imported2/import", token: token,
                json: ["value": Data(pfx).base64EncodedString(), "pwd": "nope"])
            #expect(wrongPassword.status == 400)
            #expect(wrongPassword.errorCode == "BadParameter")

            let versions = try await harness.keyVault(.get, "certs", "/certificates/imported/versions", token: token)
            #expect((versions.json["value"] as? [Any])?.count == 1)

            // PEM, as raw text and as Microsoft's SDKs and the Azure CLI send it: base64 of the file.
            let pemFile = try leafKey.pkcs8PEM() + leaf.pem() + root.pem()
            let policy: [String: Any] = ["secret_props": ["contentType": "application/x-pem-file"]]
            for (name, value) in [("pem-text", pemFile), ("pem-base64", Data(pemFile.utf8).base64EncodedString())] {
                let reply = try await harness.keyVault(
                    .post, "certs", "/certificates/\(name)/import", token: token,
                    json: ["value": value, "policy": policy])
                #expect(reply.status == 200, "\(name): \(reply.text)")
                let stored = try await harness.keyVault(.get, "certs", "/secrets/\(name)", token: token)
                #expect(stored.json["contentType"] as? String == "application/x-pem-file")
                #expect((stored.json["value"] as? String)?.contains("-----BEGIN CERTIFICATE-----") == true, "\(name)")
            }
        }
    }

    @Test("Deleting a certificate soft-deletes its key and secret too")
    func deleteCertificate() async throws {
        try await withEmulator { (harness) async throws in
            let token = try await harness.token()
            _ = try await harness.keyVault(
                .post, "certs", "/certificates/gone/create", token: token,
                json: ["policy": ["x509_props": ["subject": "CN=gone"]]])
            #expect(try await harness.keyVault(.delete, "certs", "/certificates/gone", token: token).status == 200)
            #expect(try await harness.keyVault(.get, "certs", "/secrets/gone", token: token).status == 404)
            #expect(try await harness.keyVault(.get, "certs", "/keys/gone", token: token).status == 404)
            #expect(try await harness.keyVault(.get, "certs", "/deletedcertificates/gone", token: token).status == 200)
            #expect(
                try await harness.keyVault(.delete, "certs", "/deletedcertificates/gone", token: token).status == 204)
            #expect(try await harness.keyVault(.get, "certs", "/deletedsecrets/gone", token: token).status == 404)
        }
    }

    @Test("Only self-signed issuance is supported, with a clear error otherwise")
    func unsupportedIssuer() async throws {
        try await withEmulator { (harness) async throws in
            let token = try await harness.token()
            let reply = try await harness.keyVault(
                .post, "certs", "/certificates/x/create", token: token,
                json: ["policy": ["issuer": ["name": "DigiCert"], "x509_props": ["subject": "CN=x"]]])
            #expect(reply.status == 400)
            #expect(reply.errorMessage?.contains("Self") == true)
        }
    }

    @Test("The demo seed has a PEM certificate whose secret holds leaf, intermediate and root in that order")
    func demoChain() async throws {
        try await withEmulator(seed: .demo) { (harness) async throws in
            let token = try await harness.token()
            let secret = try await harness.keyVault(.get, "demo", "/secrets/api-tls", token: token)
            let value = try #require(secret.json["value"] as? String)
            let blocks = try PEM.decode(value)
            #expect(blocks.map(\.label) == ["PRIVATE KEY", "CERTIFICATE", "CERTIFICATE", "CERTIFICATE"])
            let chain = try Certificate.all(fromPEM: value)
            #expect(chain[0].isIssued(by: chain[1]))
            #expect(chain[1].isIssued(by: chain[2]))
            #expect(chain[2].isIssued(by: chain[2]))
            #expect(chain[0].authorityKeyIdentifier == chain[1].subjectKeyIdentifier)
            #expect(try PrivateKey(der: blocks[0].der).publicKey == chain[0].publicKey)

            let versions = try await harness.keyVault(.get, "demo", "/secrets/database-password/versions", token: token)
            #expect((versions.json["value"] as? [Any])?.count == 2)
            let retired = try await harness.keyVault(.get, "demo", "/secrets/retired-token", token: token)
            #expect(retired.innerErrorCode == "SecretDisabled")
            let keys = try await harness.keyVault(.get, "demo", "/keys", token: token)
            // Two standalone keys plus the two certificates' backing keys.
            #expect((keys.json["value"] as? [Any])?.count == 4)
        }
    }
}
