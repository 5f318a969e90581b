import Foundation
import PKI
import TestSupport
import Testing

@Suite struct KeyGenerationTests {
    @Test(arguments: [2048, 3072, 4096])
    func generatesRSA(bits: Int) throws {
        let key = try PrivateKey.generate(.rsa(bits: bits))
        #expect(key.algorithm == .rsa(bits: bits))
        #expect(key.publicKey.algorithm == .rsa(bits: bits))
    }

    @Test(arguments: ECCurve.allCases)
    func generatesEC(curve: ECCurve) throws {
        let key = try PrivateKey.generate(.ec(curve))
        #expect(key.algorithm == .ec(curve))
        #expect(key.publicKey.algorithm == .ec(curve))
    }

    @Test(arguments: [1024, 2047, 2050, 16384])
    func rejectsUnsupportedRSASizes(bits: Int) {
        #expect(throws: PKIError.self) { try PrivateKey.generate(.rsa(bits: bits)) }
    }

    @Test func keysAreDistinct() throws {
        #expect(try PrivateKey.generate(.ec(.p256)).publicKey != PrivateKey.generate(.ec(.p256)).publicKey)
    }
}

@Suite struct SignatureTests {
    @Test(arguments: SignatureAlgorithm.allCases)
    func signsAndVerifies(algorithm: SignatureAlgorithm) throws {
        let key = try SharedKeys.key(for: algorithm)
        let message = Array("the quick brown fox".utf8)
        let signature = try key.sign(message, algorithm: algorithm)
        #expect(key.publicKey.verify(signature: signature, message: message, algorithm: algorithm))

        var tamperedMessage = message
        tamperedMessage[0] ^= 1
        #expect(!key.publicKey.verify(signature: signature, message: tamperedMessage, algorithm: algorithm))
        var tamperedSignature = signature
        tamperedSignature[tamperedSignature.count / 2] ^= 1
        #expect(!key.publicKey.verify(signature: tamperedSignature, message: message, algorithm: algorithm))
    }

    @Test(arguments: [(SignatureAlgorithm.es256, 64), (.es384, 96), (.es512, 132)])
    func ecdsaSignaturesAreFixedWidthJOSE(algorithm: SignatureAlgorithm, length: Int) throws {
        let key = try SharedKeys.key(for: algorithm)
        for _ in 0..<8 {  // r or s with leading zero bytes must still pad to full width
            #expect(try key.sign(SecureRandom.bytes(20), algorithm: algorithm).count == length)
        }
    }

    @Test func rsaSignaturesAreDeterministicAndPSSIsNot() throws {
        let key = try SharedKeys.rsa2048.get()
        let message = Array("m".utf8)
        #expect(try key.sign(message, algorithm: .rs256) == key.sign(message, algorithm: .rs256))
        #expect(try key.sign(message, algorithm: .ps256) != key.sign(message, algorithm: .ps256))
        #expect(try key.sign(message, algorithm: .rs256).count == 256)
    }

    @Test func rejectsAlgorithmsThatDoNotFitTheKey() throws {
        let rsa = try SharedKeys.rsa2048.get()
        let p256 = try SharedKeys.p256.get()
        #expect(throws: PKIError.self) { try rsa.sign([1], algorithm: .es256) }
        #expect(throws: PKIError.self) { try p256.sign([1], algorithm: .rs256) }
        #expect(throws: PKIError.self) { try p256.sign([1], algorithm: .es384) }

        let rsaSignature = try rsa.sign([1], algorithm: .rs256)
        #expect(!rsa.publicKey.verify(signature: rsaSignature, message: [1], algorithm: .ps256))
        #expect(!p256.publicKey.verify(signature: rsaSignature, message: [1], algorithm: .rs256))
        let ecSignature = try p256.sign([1], algorithm: .es256)
        #expect(!p256.publicKey.verify(signature: ecSignature + [0], message: [1], algorithm: .es256))
        #expect(!p256.publicKey.verify(signature: [], message: [1], algorithm: .es256))
    }

    @Test func otherKeysDoNotVerify() throws {
        let signature = try SharedKeys.rsa2048.get().sign([1, 2, 3], algorithm: .rs256)
        let other = try PrivateKey.generate(.rsa(bits: 2048))
        #expect(!other.publicKey.verify(signature: signature, message: [1, 2, 3], algorithm: .rs256))
    }

    @Test func opensslVerifiesOurSignatures() throws {
        let directory = try OpenSSLTool.WorkDirectory()
        let message = Array("signed by PKI".utf8)
        for algorithm in [SignatureAlgorithm.rs256, .ps256] {
            let key = try SharedKeys.key(for: algorithm)
            try directory.write("key.pub", key.publicKey.pem())
            try directory.write("message", message)
            try directory.write("signature", key.sign(message, algorithm: algorithm))
            var arguments = ["dgst", "-sha256", "-verify", "key.pub", "-signature", "signature"]
            if algorithm == .ps256 {
                arguments += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"]
            }
            let output = try OpenSSLTool.run(arguments + ["message"], in: directory)
            #expect(output.contains("Verified OK"), "\(algorithm): \(output)")
        }
    }
}

@Suite struct PrivateKeyEncodingTests {
    @Test(arguments: [SignatureAlgorithm.rs256, .es256, .es384, .es512])
    func pkcs8RoundTrips(algorithm: SignatureAlgorithm) throws {
        let key = try SharedKeys.key(for: algorithm)
        let pem = try key.pkcs8PEM()
        #expect(pem.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
        #expect(pem.hasSuffix("-----END PRIVATE KEY-----\n"))
        let fromPEM = try PrivateKey(pem: pem)
        let fromDER = try PrivateKey(der: key.pkcs8DER())
        #expect(fromPEM.publicKey == key.publicKey)
        #expect(fromDER.publicKey == key.publicKey)
        #expect(fromPEM.algorithm == key.algorithm)
        let signature = try fromPEM.sign([7], algorithm: algorithm)
        #expect(key.publicKey.verify(signature: signature, message: [7], algorithm: algorithm))
    }

    @Test func readsEveryFormatOpenSSLWrites() throws {
        let directory = try OpenSSLTool.WorkDirectory()
        try OpenSSLTool.run(
            ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "pkcs8.pem"], in: directory)
        try OpenSSLTool.run(["rsa", "-in", "pkcs8.pem", "-traditional", "-out", "pkcs1.pem"], in: directory)
        try OpenSSLTool.run(
            ["rsa", "-in", "pkcs8.pem", "-traditional", "-outform", "DER", "-out", "pkcs1.der"], in: directory)
        try OpenSSLTool.run(
            ["pkcs8", "-topk8", "-in", "pkcs8.pem", "-passout", "pass:s3cret pass", "-out", "encrypted.pem"],
            in: directory)
        try OpenSSLTool.run(
            [
                "rsa", "-in", "pkcs8.pem", "-traditional", "-aes128", "-passout", "pass:s3cret pass", "-out",
                "legacy.pem",
            ], in: directory)
        try OpenSSLTool.run(["ecparam", "-name", "secp384r1", "-genkey", "-out", "sec1.pem"], in: directory)
        try OpenSSLTool.run(["ec", "-in", "sec1.pem", "-outform", "DER", "-out", "sec1.der"], in: directory)

        let reference = try PrivateKey(pem: directory.readText("pkcs8.pem"))
        #expect(reference.algorithm == .rsa(bits: 2048))

        let pkcs1PEM = try directory.readText("pkcs1.pem")
        #expect(pkcs1PEM.contains("BEGIN RSA PRIVATE KEY"))
        #expect(try PrivateKey(pem: pkcs1PEM).publicKey == reference.publicKey)
        #expect(try PrivateKey(der: directory.readBytes("pkcs1.der")).publicKey == reference.publicKey)

        let encrypted = try directory.readText("encrypted.pem")
        #expect(encrypted.contains("BEGIN ENCRYPTED PRIVATE KEY"))
        #expect(try PrivateKey(pem: encrypted, password: "s3cret pass").publicKey == reference.publicKey)
        #expect(throws: PKIError.self) { try PrivateKey(pem: encrypted, password: "wrong") }
        #expect(throws: PKIError.self) { try PrivateKey(pem: encrypted, password: "") }
        #expect(throws: PKIError.self) { try PrivateKey(pem: encrypted) }

        let legacy = try directory.readText("legacy.pem")
        #expect(legacy.contains("Proc-Type: 4,ENCRYPTED"))
        #expect(try PrivateKey(pem: legacy, password: "s3cret pass").publicKey == reference.publicKey)
        #expect(throws: PKIError.self) { try PrivateKey(pem: legacy, password: "wrong") }

        // ecparam -genkey writes an "EC PARAMETERS" block first; it must be skipped.
        let sec1 = try directory.readText("sec1.pem")
        #expect(sec1.contains("BEGIN EC PARAMETERS") && sec1.contains("BEGIN EC PRIVATE KEY"))
        let ecKey = try PrivateKey(pem: sec1)
        #expect(ecKey.algorithm == .ec(.p384))
        #expect(try PrivateKey(der: directory.readBytes("sec1.der")).publicKey == ecKey.publicKey)
    }

    @Test func opensslReadsOurPKCS8() throws {
        let directory = try OpenSSLTool.WorkDirectory()
        let key = try SharedKeys.p256.get()
        try directory.write("key.pem", key.pkcs8PEM())
        try OpenSSLTool.run(["pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem"], in: directory)
        #expect(try PublicKey(pem: directory.readText("pub.pem")) == key.publicKey)
    }

    @Test func takesTheFirstKeyBlockAmongOthers() throws {
        let key = try SharedKeys.p256.get()
        let other = try SharedKeys.p384.get()
        let text = try PEM.encode([1, 2, 3], label: "SOMETHING ELSE") + key.pkcs8PEM() + other.pkcs8PEM()
        #expect(try PrivateKey(pem: text).publicKey == key.publicKey)
    }

    @Test func rejectsTextWithoutAKeyAndPublicKeysPosingAsPrivate() throws {
        #expect(throws: PKIError.self) { try PrivateKey(pem: "no key here") }
        let publicDER = try SharedKeys.p256.get().publicKey.spkiDER()
        #expect(throws: PKIError.self) { try PrivateKey(der: publicDER) }
        #expect(throws: PKIError.self) { try PrivateKey(pem: PEM.encode(publicDER, label: "PRIVATE KEY")) }
        #expect(throws: PKIError.self) { try PrivateKey(der: [0x30, 0x03, 0x02, 0x01, 0x00]) }
    }
}

@Suite struct PublicKeyEncodingTests {
    @Test(arguments: [SignatureAlgorithm.rs256, .es256, .es384, .es512])
    func pemAndDERRoundTrip(algorithm: SignatureAlgorithm) throws {
        let publicKey = try SharedKeys.key(for: algorithm).publicKey
        let pem = try publicKey.pem()
        #expect(pem.hasPrefix("-----BEGIN PUBLIC KEY-----\n"))
        #expect(pem.hasSuffix("-----END PUBLIC KEY-----\n"))
        #expect(pem.split(separator: "\n").dropFirst().dropLast().dropLast().allSatisfy { $0.count == 64 })
        #expect(try PublicKey(pem: pem) == publicKey)
        #expect(try PublicKey(spkiDER: publicKey.spkiDER()) == publicKey)
        #expect(try PublicKey(pem: pem).hashValue == publicKey.hashValue)
    }

    @Test func readsPKCS1RSAPublicKey() throws {
        let directory = try OpenSSLTool.WorkDirectory()
        let key = try SharedKeys.rsa2048.get()
        try directory.write("key.pem", key.pkcs8PEM())
        try OpenSSLTool.run(["rsa", "-in", "key.pem", "-RSAPublicKey_out", "-out", "pkcs1pub.pem"], in: directory)
        let text = try directory.readText("pkcs1pub.pem")
        #expect(text.contains("BEGIN RSA PUBLIC KEY"))
        #expect(try PublicKey(pem: text) == key.publicKey)
    }

    @Test func rejectsGarbage() {
        #expect(throws: PKIError.self) { try PublicKey(spkiDER: [1, 2, 3]) }
        #expect(throws: PKIError.self) {
            try PublicKey(pem: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
        }
    }
}

@Suite struct JSONWebKeyTests {
    @Test(arguments: [SignatureAlgorithm.rs256, .es256, .es384, .es512])
    func publicJWKRoundTrips(algorithm: SignatureAlgorithm) throws {
        let key = try SharedKeys.key(for: algorithm)
        let jwk = try key.publicKey.jwk()
        #expect(jwk.d == nil && jwk.p == nil)
        #expect(try PublicKey(jwk: jwk) == key.publicKey)
        #expect(try key.jwk(includePrivate: false) == jwk)
    }

    @Test(arguments: [SignatureAlgorithm.rs256, .es256, .es384, .es512])
    func privateJWKRoundTrips(algorithm: SignatureAlgorithm) throws {
        let key = try SharedKeys.key(for: algorithm)
        let jwk = try key.jwk(includePrivate: true)
        #expect(jwk.d != nil)
        #expect(try jwk.publicOnly == key.publicKey.jwk())
        let imported = try PrivateKey(jwk: jwk)
        #expect(imported.publicKey == key.publicKey)
        #expect(try imported.pkcs8DER() == key.pkcs8DER())
        let signature = try imported.sign([9], algorithm: algorithm)
        #expect(key.publicKey.verify(signature: signature, message: [9], algorithm: algorithm))
    }

    @Test func rsaMembersAreMinimalAndECMembersAreFullWidth() throws {
        let rsa = try SharedKeys.rsa2048.get().jwk(includePrivate: true)
        #expect(rsa.kty == "RSA")
        #expect(rsa.e == "AQAB")
        #expect(Base64URL.decode(rsa.n ?? "")?.count == 256)
        for member in [rsa.d, rsa.p, rsa.q, rsa.dp, rsa.dq, rsa.qi] { #expect(member != nil) }

        for (curve, width) in [(ECCurve.p256, 32), (.p384, 48), (.p521, 66)] {
            let jwk = try PrivateKey.generate(.ec(curve)).jwk(includePrivate: true)
            #expect(jwk.kty == "EC")
            #expect(jwk.crv == curve.rawValue)
            #expect(Base64URL.decode(jwk.x ?? "")?.count == width)
            #expect(Base64URL.decode(jwk.y ?? "")?.count == width)
            #expect(Base64URL.decode(jwk.d ?? "")?.count == width)
            #expect(jwk.x?.contains("=") == false)
        }
    }

    @Test func hsmKeyTypesAreAccepted() throws {
        var rsa = try SharedKeys.rsa2048.get().publicKey.jwk()
        rsa.kty = "RSA-HSM"
        #expect(try PublicKey(jwk: rsa) == SharedKeys.rsa2048.get().publicKey)
        var ec = try SharedKeys.p384.get().publicKey.jwk()
        ec.kty = "EC-HSM"
        #expect(try PublicKey(jwk: ec) == SharedKeys.p384.get().publicKey)
    }

    @Test func publicKeyFromRSAJWKMatchesTheKeysPEM() throws {
        let key = try SharedKeys.rsa2048.get()
        let jwk = try key.jwk(includePrivate: false)
        #expect(try PublicKey(jwk: jwk).pem() == key.publicKey.pem())
    }

    @Test func unsupportedKeysGiveTheExactMessages() throws {
        let secp256k1 = JSONWebKey(kty: "EC", crv: "P-256K", x: "AAAA", y: "AAAA")
        let curveError = #expect(throws: PKIError.self) { try PublicKey(jwk: secp256k1) }
        #expect(curveError?.reason == "curve P-256K is not supported")
        let octError = #expect(throws: PKIError.self) { try PublicKey(jwk: JSONWebKey(kty: "oct", k: "AAAA")) }
        #expect(octError?.reason == "key type 'oct' currently not supported")
        let hsmError = #expect(throws: PKIError.self) { try PrivateKey(jwk: JSONWebKey(kty: "oct-HSM")) }
        #expect(hsmError?.reason == "key type 'oct-HSM' currently not supported")
    }

    @Test func rejectsBrokenJWKs() throws {
        let good = try SharedKeys.p256.get().jwk(includePrivate: true)
        var missingY = good
        missingY.y = nil
        #expect(throws: PKIError.self) { try PublicKey(jwk: missingY) }
        var offCurve = good.publicOnly
        offCurve.y = offCurve.x
        #expect(throws: PKIError.self) { try PublicKey(jwk: offCurve) }
        var notBase64 = good
        notBase64.x = "***"
        #expect(throws: PKIError.self) { try PublicKey(jwk: notBase64) }
        #expect(throws: PKIError.self) { try PrivateKey(jwk: good.publicOnly) }

        var wrongPrivate = good
        wrongPrivate.d = try PrivateKey.generate(.ec(.p256)).jwk(includePrivate: true).d
        #expect(throws: PKIError.self) { try PrivateKey(jwk: wrongPrivate) }

        var rsaWithoutFactors = try SharedKeys.rsa2048.get().jwk(includePrivate: true)
        rsaWithoutFactors.p = nil
        #expect(throws: PKIError.self) { try PrivateKey(jwk: rsaWithoutFactors) }
    }

    @Test func codableUsesKeyVaultMemberNames() throws {
        let jwk = JSONWebKey(kty: "RSA", kid: "https://v/keys/k/1", key_ops: ["sign", "verify"], n: "AQ", e: "AQAB")
        let json = try #require(String(data: JSONEncoder().encode(jwk), encoding: .utf8))
        #expect(json.contains("\"key_ops\""))
        #expect(!json.contains("\"d\""))
        #expect(try JSONDecoder().decode(JSONWebKey.self, from: Data(json.utf8)) == jwk)
        #expect(JSONWebKey(kty: "oct", k: "AAAA").publicOnly.k == nil)
    }
}
