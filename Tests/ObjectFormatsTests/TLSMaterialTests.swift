import ObjectFormats
import PKI
import Testing

@Suite struct TLSMaterialTests {
    func expectConsistent(_ material: TLSMaterial, key: PrivateKey, leaf: Certificate, chain: [Certificate]) throws {
        #expect(text(material.privateKeyPEM) == (try key.pkcs8PEM()))
        #expect(text(material.leafPEM) == leaf.pem())
        #expect(text(material.chainPEM) == chain.map { $0.pem() }.joined())
        #expect(material.fullChainPEM == material.leafPEM + material.chainPEM)
        let readKey = try PrivateKey(pem: text(material.privateKeyPEM))
        #expect(readKey.publicKey == (try Certificate(pem: text(material.leafPEM))).publicKey)
    }

    @Test func fromPKCS12InAnyOrder() throws {
        let chain = try ServerChain.shared.get()
        for order in permutations([chain.server, chain.intermediate, chain.root]) {
            let pfx = try PKCS12.create(privateKey: chain.serverKey, certificates: order)
            let material = try ObjectFormatter.tlsMaterial(value: base64(pfx), contentType: ContentTypes.pkcs12)
            try expectConsistent(
                material, key: chain.serverKey, leaf: chain.server, chain: [chain.intermediate, chain.root])
            #expect(material.warnings.isEmpty)
        }
    }

    /// The VM extension's layout: leaf, intermediates, root, then the key.
    @Test func fromPEMWithTheKeyLast() throws {
        let chain = try ServerChain.shared.get()
        let value = chain.server.pem() + chain.intermediate.pem() + chain.root.pem() + (try chain.serverKey.pkcs8PEM())
        let material = try ObjectFormatter.tlsMaterial(value: value, contentType: ContentTypes.pem)
        try expectConsistent(
            material, key: chain.serverKey, leaf: chain.server, chain: [chain.intermediate, chain.root])
        #expect(material.warnings.isEmpty)

        // Blocks in a jumble, CRLF line ends and text between blocks are all fine.
        let jumbled =
            ("subject=CN=root\n" + chain.root.pem() + (try chain.serverKey.pkcs8PEM()) + chain.server.pem()
            + chain.intermediate.pem()).replacingNewlines(with: "\r\n")
        let fromJumble = try ObjectFormatter.tlsMaterial(value: jumbled, contentType: ContentTypes.pem)
        try expectConsistent(
            fromJumble, key: chain.serverKey, leaf: chain.server, chain: [chain.intermediate, chain.root])
    }

    @Test func pkcs1AndSEC1KeysComeOutAsPKCS8() throws {
        let cases = [
            (LegacyKeyFixture.rsaCertificate + "\n" + LegacyKeyFixture.rsaKeyPKCS1, "RSA PRIVATE KEY"),
            (LegacyKeyFixture.ecCertificate + "\n" + LegacyKeyFixture.ecKeySEC1, "EC PRIVATE KEY"),
        ]
        for (value, legacyLabel) in cases {
            #expect(value.contains("-----BEGIN \(legacyLabel)-----"))
            let material = try ObjectFormatter.tlsMaterial(value: value, contentType: ContentTypes.pem)
            let keyPEM = text(material.privateKeyPEM)
            #expect(keyPEM.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
            let key = try PrivateKey(pem: value)
            #expect(keyPEM == (try key.pkcs8PEM()))
            let leaf = try Certificate(pem: value)
            #expect(try PrivateKey(pem: keyPEM).publicKey == leaf.publicKey)
            #expect(material.chainPEM.isEmpty)
            #expect(material.fullChainPEM == material.leafPEM)
        }
    }

    @Test func missingIntermediateStillServesWithAWarning() throws {
        let chain = try ServerChain.shared.get()
        let pfx = try PKCS12.create(privateKey: chain.serverKey, certificates: [chain.root, chain.server])
        let material = try ObjectFormatter.tlsMaterial(value: base64(pfx), contentType: ContentTypes.pkcs12)
        try expectConsistent(material, key: chain.serverKey, leaf: chain.server, chain: [chain.root])
        #expect(material.warnings == [ObjectFormatter.incompleteChainWarning])
    }

    @Test func leafAndIntermediateWithoutRoot() throws {
        let chain = try ServerChain.shared.get()
        let value = chain.intermediate.pem() + chain.server.pem() + (try chain.serverKey.pkcs8PEM())
        let material = try ObjectFormatter.tlsMaterial(value: value, contentType: ContentTypes.pem)
        try expectConsistent(material, key: chain.serverKey, leaf: chain.server, chain: [chain.intermediate])
        #expect(material.warnings.isEmpty)
    }

    @Test func cyclicChainTerminates() throws {
        let loop = try LoopChain()
        let pfx = try PKCS12.create(privateKey: loop.leafKey, certificates: [loop.b, loop.a, loop.leaf])
        let material = try ObjectFormatter.tlsMaterial(value: base64(pfx), contentType: ContentTypes.pkcs12)
        try expectConsistent(material, key: loop.leafKey, leaf: loop.leaf, chain: [loop.a, loop.b])
    }

    @Test func secretWithoutKeyFails() throws {
        let chain = try ServerChain.shared.get()
        let pfx = try PKCS12.create(privateKey: nil, certificates: [chain.server, chain.intermediate])
        let fromPFX = #expect(throws: ObjectFormatError.self) {
            try ObjectFormatter.tlsMaterial(value: base64(pfx), contentType: ContentTypes.pkcs12)
        }
        #expect(fromPFX?.message.contains("no private key") == true)
        let fromPEM = #expect(throws: ObjectFormatError.self) {
            try ObjectFormatter.tlsMaterial(value: chain.server.pem(), contentType: ContentTypes.pem)
        }
        #expect(fromPEM?.message.contains("no private key") == true)
    }

    @Test func otherFailures() throws {
        let chain = try ServerChain.shared.get()
        let keyOnly = #expect(throws: ObjectFormatError.self) {
            try ObjectFormatter.tlsMaterial(value: try chain.serverKey.pkcs8PEM(), contentType: ContentTypes.pem)
        }
        #expect(keyOnly?.message.contains("no certificate") == true)

        let mismatch = #expect(throws: ObjectFormatError.self) {
            try ObjectFormatter.tlsMaterial(
                value: chain.root.pem() + (try chain.serverKey.pkcs8PEM()), contentType: ContentTypes.pem)
        }
        #expect(mismatch?.message.contains("matches its private key") == true)

        let unknown = #expect(throws: ObjectFormatError.self) {
            try ObjectFormatter.tlsMaterial(value: "x", contentType: "text/plain")
        }
        #expect(unknown?.message == "failed to get certificate. unknown content type 'text/plain'")
        let missing = #expect(throws: ObjectFormatError.self) {
            try ObjectFormatter.tlsMaterial(value: "x", contentType: nil)
        }
        #expect(missing?.message.hasPrefix("certificate-backed secret has no content type") == true)

        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n" + chain.server.pem()
        let encryptedError = #expect(throws: ObjectFormatError.self) {
            try ObjectFormatter.tlsMaterial(value: encrypted, contentType: ContentTypes.pem)
        }
        #expect(encryptedError?.message.contains("encrypted private key") == true)

        let garbledKey = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n" + chain.server.pem()
        let garbledError = #expect(throws: ObjectFormatError.self) {
            try ObjectFormatter.tlsMaterial(value: garbledKey, contentType: ContentTypes.pem)
        }
        #expect(garbledError?.message.hasPrefix("failed to read the PRIVATE KEY block") == true)
    }
}

extension String {
    func replacingNewlines(with separator: String) -> String {
        split(separator: "\n", omittingEmptySubsequences: false).joined(separator: separator)
    }
}
