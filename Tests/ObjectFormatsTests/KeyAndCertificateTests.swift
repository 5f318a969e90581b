import ObjectFormats
import PKI
import TestSupport
import Testing

@Suite struct KeyTests {
    @Test(arguments: ["RSA", "EC-P-256", "EC-P-384", "EC-P-521"])
    func keyBecomesPublicKeyPEM(kind: String) throws {
        let key: PrivateKey =
            switch kind {
            case "RSA": try SharedKeys.rsa2048.get()
            case "EC-P-256": try SharedKeys.p256.get()
            case "EC-P-384": try SharedKeys.p384.get()
            default: try SharedKeys.p521.get()
            }
        // Key Vault sends the HSM key types too, and a private JWK must still give only the public key.
        var jwks = [try key.publicKey.jwk(), try key.jwk(includePrivate: true)]
        var hsm = try key.publicKey.jwk()
        hsm.kty += "-HSM"
        hsm.kid = "https://test.vault.azure.net/keys/key1/v1"
        jwks.append(hsm)
        for jwk in jwks {
            let object = try ObjectFormatter.key(jwk)
            let pem = text(object.bytes)
            #expect(pem.hasPrefix("-----BEGIN PUBLIC KEY-----\n"))
            #expect(pem.hasSuffix("-----END PUBLIC KEY-----\n"))
            #expect(!pem.contains("PRIVATE"))
            #expect(try PublicKey(pem: pem) == key.publicKey)
            #expect(pem == (try key.publicKey.pem()))
            #expect(object.warnings.isEmpty)
        }
    }

    /// TestGetCurve.
    @Test func secp256k1IsNotSupported() {
        for kty in ["EC", "EC-HSM"] {
            let error = #expect(throws: ObjectFormatError.self) {
                try ObjectFormatter.key(JSONWebKey(kty: kty, crv: "P-256K", x: "AAAA", y: "AAAA"))
            }
            #expect(error?.message == "curve P-256K is not supported")
        }
        let missingCurve = #expect(throws: ObjectFormatError.self) {
            try ObjectFormatter.key(JSONWebKey(kty: "EC", x: "AA", y: "AA"))
        }
        #expect(missingCurve?.message.contains("crv") == true)
    }

    @Test func symmetricAndUnknownKeyTypesAreNotSupported() {
        for kty in ["oct", "oct-HSM", "OKP", "rsa", ""] {
            let error = #expect(throws: ObjectFormatError.self) {
                try ObjectFormatter.key(JSONWebKey(kty: kty, k: "c2VjcmV0"))
            }
            #expect(error?.message == "failed to get key. key type '\(kty)' currently not supported")
            #expect(error?.message.contains("c2VjcmV0") == false)
        }
    }

    @Test func malformedKeysFail() {
        let missingModulus = #expect(throws: ObjectFormatError.self) {
            try ObjectFormatter.key(JSONWebKey(kty: "RSA", e: "AQAB"))
        }
        #expect(missingModulus?.message.hasPrefix("failed to get key. ") == true)
        let badPoint = #expect(throws: ObjectFormatError.self) {
            try ObjectFormatter.key(JSONWebKey(kty: "EC", crv: "P-256", x: "AQ", y: "AQ"))
        }
        #expect(badPoint?.message.hasPrefix("failed to get key. ") == true)
    }
}

@Suite struct CertificateObjectTests {
    /// TestGetCertificate.
    @Test func cerBecomesOneCertificateBlock() {
        let object = ObjectFormatter.certificate(cer: bytes("test"))
        #expect(text(object.bytes) == "-----BEGIN CERTIFICATE-----\ndGVzdA==\n-----END CERTIFICATE-----\n")
        #expect(object.warnings.isEmpty)
    }

    @Test func realCertificateMatchesPKI() throws {
        let chain = try ServerChain.shared.get()
        let object = ObjectFormatter.certificate(cer: chain.server.der)
        #expect(text(object.bytes) == chain.server.pem())
        #expect(try Certificate(pem: text(object.bytes)) == chain.server)
    }
}
