import Foundation
import Glibc
import ObjectFormats
import PKI
import TestSupport
import Testing

/// kubernetes.io/tls Secret data as the Secrets Store CSI driver fills it (its secretutil):
/// every CERTIFICATE block in file order, and the key as PKCS#1 or SEC1.
@Suite("kubernetes.io/tls Secret data")
struct KubernetesTLSDataTests {
    /// The file akvfs serves for a certificate's secret: the PKCS#8 key, then the chain.
    static func file(_ chain: ServerChain, key: PrivateKey, lineEnd: String = "\n") throws -> [UInt8] {
        let text =
            try key.pkcs8PEM() + chain.server.pem() + "some text between blocks\n" + chain.intermediate.pem()
            + chain.root.pem()
        return Array(text.replacingOccurrences(of: "\n", with: lineEnd).utf8)
    }

    /// What `openssl pkey -traditional` writes for the same key: OpenSSL's own encoder, run apart.
    static func openSSLTraditional(_ key: PrivateKey) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tls-data-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("in.pem").path
        let output = directory.appendingPathComponent("out.pem").path
        try Data(try key.pkcs8PEM().utf8).write(to: URL(fileURLWithPath: input))
        let command = "/usr/bin/openssl pkey -in '\(input)' -traditional -out '\(output)'"
        #expect(system(command) == 0)
        return try String(contentsOfFile: output, encoding: .utf8)
    }

    @Test("tls.crt: every certificate, in file order, re-encoded; text between blocks and CRLF dropped")
    func certificates() throws {
        let chain = try ServerChain.shared.get()
        for lineEnd in ["\n", "\r\n"] {
            let data = try KubernetesTLSData.certificates(
                from: try Self.file(chain, key: chain.serverKey, lineEnd: lineEnd))
            #expect(
                String(decoding: data, as: UTF8.self) == chain.server.pem() + chain.intermediate.pem()
                    + chain.root.pem())
        }
    }

    @Test("tls.key: an RSA key becomes PKCS#1 'RSA PRIVATE KEY', as openssl pkey -traditional writes it")
    func rsaKey() throws {
        let chain = try ServerChain.shared.get()
        let key = try SharedKeys.rsa2048.get()
        let data = String(
            decoding: try KubernetesTLSData.privateKey(from: try Self.file(chain, key: key)), as: UTF8.self)
        #expect(data.hasPrefix("-----BEGIN RSA PRIVATE KEY-----\n"))
        #expect(data == (try Self.openSSLTraditional(key)))
        #expect(try PrivateKey(pem: data).publicKey == key.publicKey)
    }

    @Test(
        "tls.key: an EC key becomes SEC1 'EC PRIVATE KEY' with its curve and public key, as Go's MarshalECPrivateKey writes it",
        arguments: [256, 384, 521])
    func ecKey(bits: Int) throws {
        let chain = try ServerChain.shared.get()
        let key = try (bits == 256 ? SharedKeys.p256 : bits == 384 ? SharedKeys.p384 : SharedKeys.p521).get()
        let data = String(
            decoding: try KubernetesTLSData.privateKey(from: try Self.file(chain, key: key)), as: UTF8.self)
        #expect(data == (try Self.openSSLTraditional(key)))
        let block = try #require(try PEM.decode(data).first)
        #expect(block.label == "EC PRIVATE KEY")
        // ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING (the order's length),
        //   [0] namedCurve, [1] publicKey }: the fields Go writes, in its order.
        let der = block.der
        let body = der[(der[1] & 0x80 == 0 ? 2 : 2 + Int(der[1] & 0x7F))...]
        #expect(Array(body.prefix(3)) == [0x02, 0x01, 0x01])
        let octets = body.dropFirst(3)
        #expect(octets.first == 0x04 && Int(octets.dropFirst().first!) == (bits + 7) / 8)
        let afterKey = octets.dropFirst(2 + (bits + 7) / 8)
        #expect(afterKey.first == 0xA0)
        let parametersLength = Int(afterKey.dropFirst().first!)
        #expect(afterKey.dropFirst(2 + parametersLength).first == 0xA1)
        #expect(try PrivateKey(pem: data).publicKey == key.publicKey)
    }

    @Test("A key already in PKCS#1 or SEC1 comes out the same; the last key block counts")
    func traditionalInput() throws {
        let chain = try ServerChain.shared.get()
        let rsa = try SharedKeys.rsa2048.get()
        let traditional = try rsa.traditionalPEM()
        let file = Array((try chain.serverKey.pkcs8PEM() + traditional + chain.server.pem()).utf8)
        #expect(String(decoding: try KubernetesTLSData.privateKey(from: file), as: UTF8.self) == traditional)
    }

    @Test("A PKCS#12 file without a password gives its certificate and key")
    func pkcs12() throws {
        let chain = try ServerChain.shared.get()
        let archive = try PKCS12.create(privateKey: chain.serverKey, certificates: [chain.server])
        #expect(
            String(decoding: try KubernetesTLSData.certificates(from: archive), as: UTF8.self) == chain.server.pem())
        #expect(
            String(decoding: try KubernetesTLSData.privateKey(from: archive), as: UTF8.self)
                == (try chain.serverKey.traditionalPEM()))
    }

    @Test("Files that hold no certificate or no usable key are refused with what is missing")
    func refused() throws {
        let chain = try ServerChain.shared.get()
        #expect(throws: KubernetesTLSData.Failure(description: "the file holds no CERTIFICATE block for tls.crt")) {
            try KubernetesTLSData.certificates(from: Array((try chain.serverKey.pkcs8PEM()).utf8))
        }
        #expect(
            throws: KubernetesTLSData.Failure(
                description: "the file holds no private key block for tls.key, only certificates")
        ) {
            try KubernetesTLSData.privateKey(from: Array(chain.server.pem().utf8))
        }
        #expect(throws: KubernetesTLSData.Failure.self) {
            try KubernetesTLSData.privateKey(from: Array("plain password".utf8))
        }
        let garbage = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
        #expect(throws: KubernetesTLSData.Failure.self) { try KubernetesTLSData.privateKey(from: Array(garbage.utf8)) }
    }
}
