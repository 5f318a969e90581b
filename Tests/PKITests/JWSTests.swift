import Foundation
import PKI
import TestSupport
import Testing

@Suite struct JWSTests {
    @Test(arguments: SignatureAlgorithm.allCases)
    func signParseVerify(algorithm: SignatureAlgorithm) throws {
        let key = try SharedKeys.key(for: algorithm)
        let header = Array(#"{"alg":"\#(algorithm.rawValue)","typ":"JWT"}"#.utf8)
        let payload = Array(#"{"aud":"https://vault.azure.net","exp":1900000000}"#.utf8)
        let token = try JWS.sign(headerJSON: header, payloadJSON: payload, key: key, algorithm: algorithm)
        #expect(token.split(separator: ".").count == 3)
        #expect(!token.contains("="))

        let jws = try JWS(compact: token)
        #expect(jws.headerJSON == header)
        #expect(jws.payloadJSON == payload)
        #expect(jws.signingInput == Array(token.split(separator: ".").prefix(2).joined(separator: ".").utf8))
        #expect(jws.verify(with: key.publicKey, algorithm: algorithm))

        // A verifier that only has the published JWK (as a JWKS consumer does) agrees.
        #expect(try jws.verify(with: PublicKey(jwk: key.publicKey.jwk()), algorithm: algorithm))
    }

    @Test func rejectsTamperingAndTheWrongKeyOrAlgorithm() throws {
        let key = try SharedKeys.rsa2048.get()
        let token = try JWS.sign(
            headerJSON: Array(#"{"alg":"RS256"}"#.utf8), payloadJSON: Array(#"{"sub":"a"}"#.utf8),
            key: key, algorithm: .rs256)
        let parts = token.split(separator: ".").map(String.init)
        let forgedPayload = Base64URL.encode(Array(#"{"sub":"b"}"#.utf8))
        let forged = try JWS(compact: [parts[0], forgedPayload, parts[2]].joined(separator: "."))
        #expect(!forged.verify(with: key.publicKey, algorithm: .rs256))
        let jws = try JWS(compact: token)
        #expect(!jws.verify(with: key.publicKey, algorithm: .ps256))
        #expect(try !jws.verify(with: PrivateKey.generate(.rsa(bits: 2048)).publicKey, algorithm: .rs256))
        #expect(try !jws.verify(with: SharedKeys.p256.get().publicKey, algorithm: .es256))
    }

    @Test(arguments: ["", "a.b", "a.b.c.d", "e30.e30", "e30.e30.!!", "###.e30.", ".e30."])
    func rejectsMalformedCompactForms(_ text: String) {
        #expect(throws: PKIError.self) { try JWS(compact: text) }
    }

    @Test func acceptsAnEmptySignatureButNeverVerifiesIt() throws {
        let jws = try JWS(compact: "eyJhbGciOiJub25lIn0.e30.")
        #expect(jws.signature.isEmpty)
        #expect(try !jws.verify(with: SharedKeys.rsa2048.get().publicKey, algorithm: .rs256))
    }

    /// The akvfs client's certificate credential: an RS256 client assertion whose x5t header is
    /// the base64url SHA-1 thumbprint of the certificate, checked against openssl's fingerprint.
    @Test func clientAssertionWithX5T() throws {
        let chain = try DemoChain.shared.get()
        let directory = try OpenSSLTool.WorkDirectory()
        try directory.write("leaf.pem", chain.leaf.pem())
        let fingerprint = try OpenSSLTool.run(
            ["x509", "-in", "leaf.pem", "-noout", "-fingerprint", "-sha1"], in: directory)
        let opensslHex = String(fingerprint.split(separator: "=").last ?? "")
            .trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: ":", with: "").lowercased()

        let x5t = Base64URL.encode(chain.leaf.sha1Thumbprint)
        let header = Array(#"{"alg":"RS256","typ":"JWT","x5t":"\#(x5t)"}"#.utf8)
        let token = try JWS.sign(
            headerJSON: header, payloadJSON: Array(#"{"iss":"app"}"#.utf8), key: chain.leafKey, algorithm: .rs256)
        let jws = try JWS(compact: token)
        let decodedHeader = try #require(
            try JSONSerialization.jsonObject(with: Data(jws.headerJSON)) as? [String: String])
        let thumbprint = try #require(decodedHeader["x5t"].flatMap(Base64URL.decode))
        #expect(hex(thumbprint) == opensslHex)
        #expect(jws.verify(with: chain.leaf.publicKey, algorithm: .rs256))
    }
}
