import Foundation
import PKI
import TestSupport
import Testing

/// root -> intermediate -> leaf, as the emulator's demo chain builds it.
struct DemoChain {
    let rootKey: PrivateKey
    let intermediateKey: PrivateKey
    let leafKey: PrivateKey
    let root: Certificate
    let intermediate: Certificate
    let leaf: Certificate
    let notBefore: Date
    let notAfter: Date

    static let shared = Result { () throws(PKIError) in try DemoChain() }

    init() throws(PKIError) {
        notBefore = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 - 3600).rounded(.down))
        notAfter = notBefore.addingTimeInterval(365 * 86400)
        rootKey = try SharedKeys.p384.get()
        intermediateKey = try SharedKeys.p256.get()
        leafKey = try SharedKeys.rsa2048.get()

        var rootTemplate = CertificateTemplate(
            subject: "CN=Test Root CA, O=akvfs tests, C=US", notBefore: notBefore, notAfter: notAfter)
        rootTemplate.isCertificateAuthority = true
        rootTemplate.pathLengthConstraint = 1
        rootTemplate.keyUsage = [.keyCertSign, .cRLSign]
        root = try rootTemplate.selfSigned(with: rootKey)

        var intermediateTemplate = CertificateTemplate(
            subject: "CN=Test Intermediate CA, O=akvfs tests", notBefore: notBefore, notAfter: notAfter)
        intermediateTemplate.isCertificateAuthority = true
        intermediateTemplate.pathLengthConstraint = 0
        intermediateTemplate.keyUsage = [.keyCertSign, .cRLSign, .digitalSignature]
        intermediate = try intermediateTemplate.issue(for: intermediateKey.publicKey, issuer: root, issuerKey: rootKey)

        var leafTemplate = CertificateTemplate(subject: "CN=localhost", notBefore: notBefore, notAfter: notAfter)
        leafTemplate.subjectAlternativeNames = [
            .dns("localhost"), .dns("*.vault.localhost"), .ipAddress("127.0.0.1"), .ipAddress("::1"),
            .email("admin@example.com"), .uri("https://vault.localhost/"),
        ]
        leafTemplate.keyUsage = [.digitalSignature, .keyEncipherment]
        leafTemplate.extendedKeyUsage = ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]
        leaf = try leafTemplate.issue(for: leafKey.publicKey, issuer: intermediate, issuerKey: intermediateKey)
    }
}

@Suite struct CertificateChainTests {
    @Test func namesAndValidity() throws {
        let chain = try DemoChain.shared.get()
        #expect(chain.root.subject == "CN=Test Root CA,O=akvfs tests,C=US")
        #expect(chain.root.issuer == chain.root.subject)
        #expect(chain.intermediate.subject == "CN=Test Intermediate CA,O=akvfs tests")
        #expect(chain.intermediate.issuer == chain.root.subject)
        #expect(chain.leaf.subject == "CN=localhost")
        #expect(chain.leaf.issuer == chain.intermediate.subject)
        for certificate in [chain.root, chain.intermediate, chain.leaf] {
            #expect(certificate.notBefore == chain.notBefore)
            #expect(certificate.notAfter == chain.notAfter)
            #expect(certificate.serialNumberHex.count == 32)
            #expect(certificate.serialNumberHex.allSatisfy { $0.isHexDigit && !$0.isLowercase })
        }
        #expect(Set([chain.root, chain.intermediate, chain.leaf].map(\.serialNumberHex)).count == 3)
    }

    @Test func keyIdentifiersLinkTheChain() throws {
        let chain = try DemoChain.shared.get()
        let rootID = try #require(chain.root.subjectKeyIdentifier)
        let intermediateID = try #require(chain.intermediate.subjectKeyIdentifier)
        let leafID = try #require(chain.leaf.subjectKeyIdentifier)
        #expect(rootID.count == 20)
        #expect(Set([rootID, intermediateID, leafID]).count == 3)
        #expect(chain.root.authorityKeyIdentifier == rootID)
        #expect(chain.intermediate.authorityKeyIdentifier == rootID)
        #expect(chain.leaf.authorityKeyIdentifier == intermediateID)
    }

    @Test func issuedByChecksSignatures() throws {
        let chain = try DemoChain.shared.get()
        #expect(chain.root.isIssued(by: chain.root))
        #expect(chain.intermediate.isIssued(by: chain.root))
        #expect(chain.leaf.isIssued(by: chain.intermediate))
        #expect(!chain.leaf.isIssued(by: chain.root))
        #expect(!chain.intermediate.isIssued(by: chain.leaf))
        #expect(!chain.root.isIssued(by: chain.intermediate))
    }

    @Test func extensionsReadBack() throws {
        let chain = try DemoChain.shared.get()
        #expect(chain.root.isCertificateAuthority)
        #expect(chain.intermediate.isCertificateAuthority)
        #expect(!chain.leaf.isCertificateAuthority)
        #expect(
            chain.leaf.subjectAlternativeNames == [
                .dns("localhost"), .dns("*.vault.localhost"), .ipAddress("127.0.0.1"), .ipAddress("::1"),
                .email("admin@example.com"), .uri("https://vault.localhost/"),
            ])
        #expect(chain.root.subjectAlternativeNames.isEmpty)
    }

    @Test func publicKeysMatchTheirPrivateKeys() throws {
        let chain = try DemoChain.shared.get()
        #expect(chain.root.publicKey == chain.rootKey.publicKey)
        #expect(chain.leaf.publicKey == chain.leafKey.publicKey)
        #expect(chain.leaf.publicKey != chain.rootKey.publicKey)
        #expect(chain.leaf.publicKey.algorithm == .rsa(bits: 2048))
        #expect(chain.root.publicKey.algorithm == .ec(.p384))
    }

    @Test func opensslVerifiesTheChainAndSeesTheExtensions() throws {
        let chain = try DemoChain.shared.get()
        let directory = try OpenSSLTool.WorkDirectory()
        try directory.write("root.pem", chain.root.pem())
        try directory.write("intermediate.pem", chain.intermediate.pem())
        try directory.write("leaf.pem", chain.leaf.pem())
        let verified = try OpenSSLTool.run(
            ["verify", "-CAfile", "root.pem", "-untrusted", "intermediate.pem", "-purpose", "sslserver", "leaf.pem"],
            in: directory)
        #expect(verified.contains("leaf.pem: OK"))

        let leafText = try OpenSSLTool.run(["x509", "-in", "leaf.pem", "-noout", "-text"], in: directory)
        #expect(leafText.contains("Signature Algorithm: ecdsa-with-SHA256"))
        #expect(
            leafText.contains("DNS:localhost, DNS:*.vault.localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1"))
        #expect(leafText.contains("TLS Web Server Authentication, TLS Web Client Authentication"))
        #expect(leafText.contains("Digital Signature, Key Encipherment"))
        #expect(leafText.contains("CA:FALSE"))
        #expect(leafText.contains("Version: 3 (0x2)"))
        let rootText = try OpenSSLTool.run(["x509", "-in", "root.pem", "-noout", "-text"], in: directory)
        #expect(rootText.contains("CA:TRUE, pathlen:1"))
        #expect(rootText.contains("Certificate Sign, CRL Sign"))
        #expect(rootText.contains("Subject: C = US, O = akvfs tests, CN = Test Root CA"))
    }

    @Test func keyUsagesAreRead() throws {
        let chain = try DemoChain.shared.get()
        #expect(chain.leaf.keyUsage == [.digitalSignature, .keyEncipherment])
        #expect(chain.leaf.extendedKeyUsage == ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"])
        #expect(chain.root.keyUsage == [.keyCertSign, .cRLSign])
        #expect(chain.root.extendedKeyUsage == [])
    }

    @Test func aSigningRequestCarriesTheSubjectKeyAndRequestedExtensionsAndOpenSSLVerifiesIt() throws {
        let chain = try DemoChain.shared.get()
        let request = try chain.leaf.signingRequest(signedWith: chain.leafKey)
        let directory = try OpenSSLTool.WorkDirectory()
        try directory.write("request.der", request)
        let text = try OpenSSLTool.run(
            ["req", "-inform", "DER", "-in", "request.der", "-noout", "-verify", "-text"], in: directory)
        #expect(text.contains("Certificate request self-signature verify OK") || text.contains("verify OK"), "\(text)")
        #expect(text.contains("Requested Extensions"))
        #expect(text.contains("DNS:localhost, DNS:*.vault.localhost"))
        #expect(text.contains("TLS Web Server Authentication, TLS Web Client Authentication"))
        #expect(text.contains("Digital Signature, Key Encipherment"))
        #expect(
            !text.contains("Authority Key Identifier") && !text.contains("CA:FALSE"),
            "a request asks only for what a requester names")
        let subject = try OpenSSLTool.run(
            ["req", "-inform", "DER", "-in", "request.der", "-noout", "-subject"], in: directory)
        try directory.write("leaf.pem", chain.leaf.pem())
        let certificateSubject = try OpenSSLTool.run(["x509", "-in", "leaf.pem", "-noout", "-subject"], in: directory)
        #expect(subject == certificateSubject)
        #expect(throws: PKIError.self) { try chain.leaf.signingRequest(signedWith: chain.rootKey) }
    }

    @Test func issuingRequiresTheIssuersOwnKey() throws {
        let chain = try DemoChain.shared.get()
        let template = CertificateTemplate(subject: "CN=x", notBefore: chain.notBefore, notAfter: chain.notAfter)
        #expect(throws: PKIError.self) {
            try template.issue(for: chain.leafKey.publicKey, issuer: chain.root, issuerKey: chain.intermediateKey)
        }
    }
}

@Suite struct CertificateEncodingTests {
    @Test func pemAndDERRoundTrip() throws {
        let chain = try DemoChain.shared.get()
        let pem = chain.leaf.pem()
        #expect(pem.hasPrefix("-----BEGIN CERTIFICATE-----\n") && pem.hasSuffix("-----END CERTIFICATE-----\n"))
        #expect(try Certificate(pem: pem) == chain.leaf)
        #expect(try Certificate(der: chain.leaf.der) == chain.leaf)
        #expect(try Certificate(der: chain.leaf.der).hashValue == chain.leaf.hashValue)
        #expect(chain.leaf != chain.root)
    }

    @Test func allBlocksInOrder() throws {
        let chain = try DemoChain.shared.get()
        let bundle =
            try chain.leafKey.pkcs8PEM() + chain.leaf.pem() + "text between\n" + chain.intermediate.pem()
            + chain.root.pem()
        #expect(try Certificate.all(fromPEM: bundle) == [chain.leaf, chain.intermediate, chain.root])
        #expect(try Certificate(pem: bundle) == chain.leaf)
        #expect(try Certificate.all(fromPEM: "none").isEmpty)
        #expect(throws: PKIError.self) { try Certificate(pem: "none") }
    }

    @Test func rejectsGarbageAndTrailingBytes() throws {
        let chain = try DemoChain.shared.get()
        #expect(throws: PKIError.self) { try Certificate(der: []) }
        #expect(throws: PKIError.self) { try Certificate(der: [0x30, 0x00]) }
        #expect(throws: PKIError.self) { try Certificate(der: chain.leaf.der + [0]) }
    }

    @Test func thumbprintsMatchOpenSSL() throws {
        let chain = try DemoChain.shared.get()
        let directory = try OpenSSLTool.WorkDirectory()
        try directory.write("leaf.pem", chain.leaf.pem())
        let sha1 = try OpenSSLTool.run(["x509", "-in", "leaf.pem", "-noout", "-fingerprint", "-sha1"], in: directory)
        let sha256 = try OpenSSLTool.run(
            ["x509", "-in", "leaf.pem", "-noout", "-fingerprint", "-sha256"], in: directory)
        func fingerprint(_ output: String) -> String {
            String(output.split(separator: "=").last ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
                .replacingOccurrences(of: ":", with: "").lowercased()
        }
        #expect(hex(chain.leaf.sha1Thumbprint) == fingerprint(sha1))
        #expect(hex(chain.leaf.sha256Thumbprint) == fingerprint(sha256))
        // The x5t header is the base64url of the SHA-1 thumbprint.
        #expect(Base64URL.decode(Base64URL.encode(chain.leaf.sha1Thumbprint)).map(hex) == fingerprint(sha1))
    }

    @Test func readsCertificatesOpenSSLMakes() throws {
        let directory = try OpenSSLTool.WorkDirectory()
        try OpenSSLTool.run(
            [
                "req", "-utf8", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521", "-nodes", "-keyout",
                "key.pem",
                "-subj", "/C=DE/O=Acme, Inc./CN=Jürgen", "-days", "10", "-set_serial", "0x00ff01",
                "-addext", "subjectAltName=DNS:a.example,IP:10.1.2.3,IP:2001:db8::1,email:x@y.z", "-out", "cert.pem",
            ], in: directory)
        let certificate = try Certificate(pem: directory.readText("cert.pem"))
        #expect(certificate.subject == "CN=Jürgen,O=Acme\\, Inc.,C=DE")
        #expect(certificate.serialNumberHex == "FF01")
        #expect(
            certificate.subjectAlternativeNames == [
                .dns("a.example"), .ipAddress("10.1.2.3"), .ipAddress("2001:db8::1"), .email("x@y.z"),
            ])
        #expect(certificate.publicKey.algorithm == .ec(.p521))
        #expect(certificate.isIssued(by: certificate))
        #expect(try certificate.publicKey == PrivateKey(pem: directory.readText("key.pem")).publicKey)
        #expect(abs(certificate.notAfter.timeIntervalSince(certificate.notBefore) - 10 * 86400) < 2)
    }
}

@Suite struct CertificateTemplateTests {
    let notBefore = Date(timeIntervalSince1970: 1_700_000_000)
    let notAfter = Date(timeIntervalSince1970: 1_800_000_000)

    func subject(of dn: String) throws -> String {
        try CertificateTemplate(subject: dn, notBefore: notBefore, notAfter: notAfter).selfSigned(
            with: SharedKeys.p256.get()
        ).subject
    }

    @Test func parsesKeyVaultStyleSubjects() throws {
        #expect(try subject(of: "CN=foo, O=Bar Inc, C=US") == "CN=foo,O=Bar Inc,C=US")
        #expect(try subject(of: "  CN = spaced  ,OU=a b ") == "CN=spaced,OU=a b")
        #expect(try subject(of: "CN=Doe\\, John, O=X") == "CN=Doe\\, John,O=X")
        #expect(try subject(of: "CN=\"Quoted, Inc\"") == "CN=Quoted\\, Inc")
        #expect(try subject(of: "CN=hex\\2Cescape") == "CN=hex\\,escape")
        #expect(try subject(of: "CN=hex\\2cescape\\41") == "CN=hex\\,escapeA")
        // Not two hex digits: the backslash just escapes the next character.
        #expect(try subject(of: "CN=not\\2ghex") == "CN=not2ghex")
        #expect(try subject(of: "cn=lower, s=WA, l=Seattle") == "CN=lower,ST=WA,L=Seattle")
        #expect(try subject(of: "E=a@b.c, CN=mail") == "emailAddress=a@b.c,CN=mail")
        #expect(try subject(of: "CN=Zoë") == "CN=Zoë")
        #expect(try subject(of: "2.5.4.3=by oid") == "CN=by oid")
        #expect(try subject(of: "DC=example, DC=com") == "DC=example,DC=com")
    }

    @Test(arguments: [
        "", "foo", "foo, CN=bar", "CN=", "CN=a,,O=b", "CN=a,", "XYZ=1", "=x", "CN=\"open", "CN=\"a\" b", "C=USA",
        "CN=trailing\\",
    ])
    func rejectsBadSubjects(_ dn: String) {
        #expect(throws: PKIError.self) { try subject(of: dn) }
    }

    @Test func badSubjectsSayWhatIsWrong() {
        let missingEquals = #expect(throws: PKIError.self) { try subject(of: "foo, CN=bar") }
        #expect(missingEquals?.reason == "subject 'foo, CN=bar' is not a valid distinguished name: 'foo' has no '='")
        let unknownType = #expect(throws: PKIError.self) { try subject(of: "CN=a, XYZ=b") }
        #expect(unknownType?.reason.contains("unknown attribute type 'XYZ'") == true)
    }

    @Test func rejectsInconsistentTemplates() throws {
        let key = try SharedKeys.p256.get()
        var backwards = CertificateTemplate(subject: "CN=x", notBefore: notAfter, notAfter: notBefore)
        #expect(throws: PKIError.self) { try backwards.selfSigned(with: key) }
        backwards.notBefore = notBefore
        backwards.notAfter = notBefore
        #expect(throws: PKIError.self) { try backwards.selfSigned(with: key) }

        var template = CertificateTemplate(subject: "CN=x", notBefore: notBefore, notAfter: notAfter)
        template.pathLengthConstraint = 0
        #expect(throws: PKIError.self) { try template.selfSigned(with: key) }
        template.pathLengthConstraint = nil
        template.extendedKeyUsage = ["serverAuth"]
        #expect(throws: PKIError.self) { try template.selfSigned(with: key) }
        template.extendedKeyUsage = []
        for bad in [
            SubjectAlternativeName.ipAddress("not-an-ip"), .ipAddress("300.1.1.1"), .dns("bücher.example"), .dns(""),
        ] {
            template.subjectAlternativeNames = [bad]
            #expect(throws: PKIError.self) { try template.selfSigned(with: key) }
        }
    }

    @Test func commasInAlternativeNamesAreNotSeparators() throws {
        var template = CertificateTemplate(subject: "CN=x", notBefore: notBefore, notAfter: notAfter)
        template.subjectAlternativeNames = [.uri("https://h/a,DNS:evil")]
        let certificate = try template.selfSigned(with: SharedKeys.p256.get())
        #expect(certificate.subjectAlternativeNames == [.uri("https://h/a,DNS:evil")])
    }

    @Test func selfSignedLeafDefaults() throws {
        let key = try SharedKeys.rsa2048.get()
        var template = CertificateTemplate(subject: "CN=policy cert", notBefore: notBefore, notAfter: notAfter)
        template.subjectAlternativeNames = [.dns("a.example")]
        let certificate = try template.selfSigned(with: key)
        #expect(!certificate.isCertificateAuthority)
        #expect(certificate.authorityKeyIdentifier == certificate.subjectKeyIdentifier)
        #expect(certificate.isIssued(by: certificate))
        #expect(certificate.publicKey == key.publicKey)
        #expect(certificate.notBefore == notBefore && certificate.notAfter == notAfter)
    }
}
