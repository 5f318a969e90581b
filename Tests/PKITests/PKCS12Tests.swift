import Foundation
import TestSupport
import Testing

@testable import PKI

@Suite struct PKCS12Tests {
    @Test func createThenParseKeepsKeyAndCertificateOrder() throws {
        let chain = try DemoChain.shared.get()
        let certificates = [chain.leaf, chain.intermediate, chain.root]
        let pfx = try PKCS12.create(privateKey: chain.leafKey, certificates: certificates)
        let contents = try PKCS12.parse(pfx)
        #expect(contents.privateKeys.count == 1)
        #expect(contents.privateKeys.first?.publicKey == chain.leafKey.publicKey)
        #expect(contents.certificates == certificates)

        // The key's certificate need not come first; the order given is the order stored.
        let reordered = [chain.root, chain.leaf, chain.intermediate]
        let reorderedContents = try PKCS12.parse(PKCS12.create(privateKey: chain.leafKey, certificates: reordered))
        #expect(reorderedContents.certificates == reordered)
    }

    @Test func passwordsProtectTheFile() throws {
        let chain = try DemoChain.shared.get()
        let pfx = try PKCS12.create(privateKey: chain.leafKey, certificates: [chain.leaf], password: "pässwörd 1")
        #expect(try PKCS12.parse(pfx, password: "pässwörd 1").privateKeys.first?.publicKey == chain.leafKey.publicKey)
        let wrong = #expect(throws: PKIError.self) { try PKCS12.parse(pfx, password: "wrong") }
        #expect(wrong?.reason.contains("password") == true)
        let blank = #expect(throws: PKIError.self) { try PKCS12.parse(pfx) }
        #expect(blank?.reason.contains("password") == true)
    }

    @Test func keyOnlyAndCertificatesOnly() throws {
        let chain = try DemoChain.shared.get()
        let keyOnly = try PKCS12.parse(PKCS12.create(privateKey: chain.leafKey, certificates: []))
        #expect(keyOnly.privateKeys.map(\.publicKey) == [chain.leafKey.publicKey])
        #expect(keyOnly.certificates.isEmpty)
        let certificatesOnly = try PKCS12.parse(
            PKCS12.create(privateKey: nil, certificates: [chain.root, chain.intermediate]))
        #expect(certificatesOnly.privateKeys.isEmpty)
        #expect(certificatesOnly.certificates == [chain.root, chain.intermediate])
        #expect(throws: PKIError.self) { try PKCS12.create(privateKey: nil, certificates: []) }
    }

    @Test func rejectsAKeyThatMatchesNoCertificate() throws {
        let chain = try DemoChain.shared.get()
        #expect(throws: PKIError.self) { try PKCS12.create(privateKey: chain.rootKey, certificates: [chain.leaf]) }
    }

    @Test func rejectsGarbage() {
        #expect(throws: PKIError.self) { try PKCS12.parse([]) }
        #expect(throws: PKIError.self) { try PKCS12.parse([0x30, 0x03, 0x02, 0x01, 0x03]) }
    }

    @Test func blankPasswordOpensFilesMadeWithoutAnyPassword() throws {
        let chain = try DemoChain.shared.get()
        let pfx = try PKCS12.create(
            privateKey: chain.leafKey, certificates: [chain.leaf], passwordOrNone: nil, friendlyName: nil)
        let contents = try PKCS12.parse(pfx)
        #expect(contents.privateKeys.first?.publicKey == chain.leafKey.publicKey)
        #expect(contents.certificates == [chain.leaf])
    }

    /// `openssl pkcs12` without -legacy must open what we write, and see the legacy-compatible
    /// algorithms (what Go's golang.org/x/crypto/pkcs12 can read), the shared localKeyID and the name.
    @Test func opensslReadsOurFileWithoutLegacyProvider() throws {
        let chain = try DemoChain.shared.get()
        let directory = try OpenSSLTool.WorkDirectory()
        try directory.write(
            "out.pfx",
            PKCS12.create(
                privateKey: chain.leafKey, certificates: [chain.leaf, chain.intermediate, chain.root],
                friendlyName: "my-cert"))
        let info = try OpenSSLTool.run(
            ["pkcs12", "-in", "out.pfx", "-info", "-nokeys", "-passin", "pass:", "-noout"], in: directory)
        #expect(info.contains("MAC: sha1, Iteration 2048"))
        #expect(info.contains("PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048"))
        #expect(info.contains("Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048"))

        let dump = try OpenSSLTool.run(["pkcs12", "-in", "out.pfx", "-passin", "pass:", "-nodes"], in: directory)
        let localKeyID = chain.leaf.sha1Thumbprint.map { String(format: "%02X", $0) }.joined(separator: " ")
        #expect(dump.components(separatedBy: "localKeyID: \(localKeyID)").count == 3)  // key bag and leaf bag
        #expect(dump.components(separatedBy: "friendlyName: my-cert").count == 3)
        #expect(try PrivateKey(pem: dump).publicKey == chain.leafKey.publicKey)
        #expect(try Certificate.all(fromPEM: dump) == [chain.leaf, chain.intermediate, chain.root])
    }

    @Test func opensslReadsOurPasswordProtectedFile() throws {
        let chain = try DemoChain.shared.get()
        let directory = try OpenSSLTool.WorkDirectory()
        try directory.write(
            "out.pfx", PKCS12.create(privateKey: chain.leafKey, certificates: [chain.leaf], password: "s3cret"))
        let dump = try OpenSSLTool.run(["pkcs12", "-in", "out.pfx", "-passin", "pass:s3cret", "-nodes"], in: directory)
        #expect(try PrivateKey(pem: dump).publicKey == chain.leafKey.publicKey)
        #expect(throws: TestFailure.self) {
            try OpenSSLTool.run(["pkcs12", "-in", "out.pfx", "-passin", "pass:wrong", "-nodes"], in: directory)
        }
    }

    /// Files `openssl pkcs12 -export` writes: modern defaults (PBES2/AES-256, SHA-256 MAC) with and
    /// without a password, legacy RC2-40, and unencrypted without a MAC.
    @Test(arguments: [
        (["-passout", "pass:s3cret"], "s3cret"),
        (["-passout", "pass:"], ""),
        (["-legacy", "-passout", "pass:s3cret"], "s3cret"),
        (["-keypbe", "NONE", "-certpbe", "NONE", "-nomac", "-passout", "pass:"], ""),
    ])
    func parsesFilesOpenSSLWrites(exportArguments: [String], password: String) throws {
        let chain = try DemoChain.shared.get()
        let directory = try OpenSSLTool.WorkDirectory()
        try directory.write("key.pem", chain.leafKey.pkcs8PEM())
        try directory.write("leaf.pem", chain.leaf.pem())
        try directory.write("chain.pem", chain.intermediate.pem() + chain.root.pem())
        try OpenSSLTool.run(
            ["pkcs12", "-export", "-inkey", "key.pem", "-in", "leaf.pem", "-certfile", "chain.pem", "-out", "in.pfx"]
                + exportArguments, in: directory)
        let pfx = try directory.readBytes("in.pfx")
        let contents = try PKCS12.parse(pfx, password: password)
        #expect(contents.privateKeys.map(\.publicKey) == [chain.leafKey.publicKey])
        #expect(Set(contents.certificates) == [chain.leaf, chain.intermediate, chain.root])
        #expect(contents.certificates.first == chain.leaf)
        if !password.isEmpty {
            #expect(throws: PKIError.self) { try PKCS12.parse(pfx, password: "wrong") }
            #expect(throws: PKIError.self) { try PKCS12.parse(pfx) }
        }
    }
}
