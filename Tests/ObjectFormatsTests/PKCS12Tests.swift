import ObjectFormats
import PKI
import TestSupport
import Testing

/// Certificate-backed secrets stored as PKCS#12 (TestDecodePKCS12 and friends).
@Suite struct PKCS12Tests {
    func pemSecret(_ pfx: [UInt8]) throws(ObjectFormatError) -> FormattedObject {
        try ObjectFormatter.secret(value: base64(pfx), contentType: ContentTypes.pkcs12, certificateBacked: true)
    }

    @Test func rsaKeyAndOneCertificate() throws {
        let key = try SharedKeys.rsa2048.get()
        let certificate = try ServerChain.template("CN=rsa.example", ca: false).selfSigned(with: key)
        let object = try pemSecret(PKCS12.create(privateKey: key, certificates: [certificate]))
        #expect(text(object.bytes) == (try key.pkcs8PEM()) + certificate.pem())
        #expect(object.warnings.isEmpty)
    }

    @Test func ecChainInEveryOrderComesOutKeyThenLeafToRoot() throws {
        let chain = try ServerChain.shared.get()
        let expected =
            (try chain.serverKey.pkcs8PEM()) + chain.server.pem() + chain.intermediate.pem() + chain.root.pem()
        for order in permutations([chain.server, chain.intermediate, chain.root]) {
            let object = try pemSecret(PKCS12.create(privateKey: chain.serverKey, certificates: order))
            #expect(text(object.bytes) == expected)
            #expect(object.warnings.isEmpty)

            let pem = text(object.bytes)
            let blocks = try PEM.decode(pem)
            #expect(blocks.map(\.label) == ["PRIVATE KEY", "CERTIFICATE", "CERTIFICATE", "CERTIFICATE"])
            let key = try PrivateKey(pem: pem)
            let certificates = try Certificate.all(fromPEM: pem)
            #expect(key.publicKey == certificates.first?.publicKey)
            #expect(certificates == [chain.server, chain.intermediate, chain.root])
        }
    }

    @Test func missingIntermediateKeepsThePFXOrderAndWarns() throws {
        let chain = try ServerChain.shared.get()
        for order in [[chain.server, chain.root], [chain.root, chain.server]] {
            let object = try pemSecret(PKCS12.create(privateKey: chain.serverKey, certificates: order))
            #expect(text(object.bytes) == (try chain.serverKey.pkcs8PEM()) + order.map { $0.pem() }.joined())
            #expect(
                object.warnings == [
                    "certificate chain is not complete due to missing intermediate/root certificates in the cert from key vault"
                ])
            #expect(object.warnings == [ObjectFormatter.incompleteChainWarning])
        }
    }

    /// The Azure provider fails such a secret; akvfs keeps the stored order and says why.
    @Test func cyclicChainKeepsThePFXOrderAndWarns() throws {
        let loop = try LoopChain()
        let order = [loop.b, loop.leaf, loop.a]
        let object = try pemSecret(PKCS12.create(privateKey: loop.leafKey, certificates: order))
        #expect(text(object.bytes) == (try loop.leafKey.pkcs8PEM()) + order.map { $0.pem() }.joined())
        #expect(object.warnings.count == 1)
        #expect(object.warnings.first?.contains("constructing chain resulted in cycle") == true)
    }

    @Test func certificatesOnlyAndKeyOnly() throws {
        let chain = try ServerChain.shared.get()
        let certificatesOnly = try pemSecret(
            PKCS12.create(privateKey: nil, certificates: [chain.root, chain.server, chain.intermediate]))
        #expect(text(certificatesOnly.bytes) == chain.server.pem() + chain.intermediate.pem() + chain.root.pem())
        let keyOnly = try pemSecret(PKCS12.create(privateKey: chain.serverKey, certificates: []))
        #expect(text(keyOnly.bytes) == (try chain.serverKey.pkcs8PEM()))
        #expect(keyOnly.warnings.isEmpty)
    }

    @Test func pfxFormatIsTheStoredText() throws {
        let chain = try ServerChain.shared.get()
        let pfx = try PKCS12.create(privateKey: chain.serverKey, certificates: [chain.server, chain.intermediate])
        let stored = base64(pfx)
        for encoding in [nil, ObjectEncoding.utf8] {
            let object = try ObjectFormatter.secret(
                value: stored, contentType: ContentTypes.pkcs12, certificateBacked: true,
                format: .pfx, encoding: encoding)
            #expect(object.bytes == bytes(stored))
        }
        let binary = try ObjectFormatter.secret(
            value: stored, contentType: ContentTypes.pkcs12, certificateBacked: true,
            format: .pfx, encoding: .base64)
        #expect(binary.bytes == pfx)
        #expect(try PKCS12.parse(binary.bytes).certificates == [chain.server, chain.intermediate])
    }

    /// objectEncoding describes the stored text, which PEM conversion reads itself.
    @Test func pemFormatIgnoresTheEncoding() throws {
        let chain = try ServerChain.shared.get()
        let stored = base64(try PKCS12.create(privateKey: chain.serverKey, certificates: [chain.server]))
        let object = try ObjectFormatter.secret(
            value: stored, contentType: ContentTypes.pkcs12, certificateBacked: true,
            format: .pem, encoding: .hex)
        #expect(text(object.bytes) == (try chain.serverKey.pkcs8PEM()) + chain.server.pem())
    }

    @Test func unreadablePFXFails() throws {
        let chain = try ServerChain.shared.get()
        let notBase64 = #expect(throws: ObjectFormatError.self) {
            try ObjectFormatter.secret(value: "not base64!", contentType: ContentTypes.pkcs12, certificateBacked: true)
        }
        #expect(notBase64?.message.hasPrefix("failed to decode the certificate's PKCS#12 value as base64: ") == true)

        let notPFX = #expect(throws: ObjectFormatError.self) {
            try ObjectFormatter.secret(
                value: "QmFzZTY0RW5jb2RlZFN0cmluZw==", contentType: ContentTypes.pkcs12, certificateBacked: true)
        }
        #expect(notPFX?.message.hasPrefix("failed to read the certificate's PKCS#12 value: ") == true)

        let withPassword = try PKCS12.create(
            privateKey: chain.serverKey, certificates: [chain.server], password: "s3cret")
        let passwordError = #expect(throws: ObjectFormatError.self) { try pemSecret(withPassword) }
        #expect(passwordError?.message.contains("password") == true)
        #expect(passwordError?.message.contains("s3cret") == false)
    }
}
