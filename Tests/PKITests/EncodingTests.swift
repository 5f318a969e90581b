import Foundation
import PKI
import Testing

@Suite struct Base64URLTests {
    @Test func encodesWithoutPaddingInTheURLAlphabet() {
        #expect(Base64URL.encode([]) == "")
        #expect(Base64URL.encode([0xFB]) == "-w")
        #expect(Base64URL.encode([0xFB, 0xFF]) == "-_8")
        #expect(Base64URL.encode([0xFB, 0xFF, 0xBF]) == "-_-_")
        #expect(Base64URL.encode(Array("hello".utf8)) == "aGVsbG8")
    }

    @Test func decodesWithAndWithoutPadding() {
        #expect(Base64URL.decode("aGVsbG8") == Array("hello".utf8))
        #expect(Base64URL.decode("aGVsbG8=") == Array("hello".utf8))
        #expect(Base64URL.decode("-_-_") == [0xFB, 0xFF, 0xBF])
        #expect(Base64URL.decode("") == [])
    }

    @Test(arguments: ["a+b/", "aGVs bG8", "a", "aGVsbG8===", "aG=VsbG8", "aGVsbG8=="])
    func rejectsMalformedInput(_ text: String) {
        #expect(Base64URL.decode(text) == nil)
    }

    @Test func roundTripsEveryLength() {
        for length in 0..<70 {
            let bytes = SecureRandom.bytes(length)
            #expect(Base64URL.decode(Base64URL.encode(bytes)) == bytes)
        }
    }
}

@Suite struct PEMTests {
    @Test func encodesSixtyFourColumnLinesWithATrailingNewline() {
        let der = [UInt8](repeating: 0xAB, count: 60)  // 80 base64 characters
        let text = PEM.encode(der, label: "TEST")
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(text.hasSuffix("-----END TEST-----\n"))
        #expect(lines.first == "-----BEGIN TEST-----")
        #expect(lines[1].count == 64)
        #expect(lines[2].count == 16)
        #expect(lines.count == 5)  // BEGIN, two base64 lines, END, and "" after the final newline
    }

    @Test func decodesEveryBlockInOrderIgnoringSurroundingTextAndCRLF() throws {
        let first = PEM.encode([1, 2, 3], label: "FIRST")
        let second = PEM.encode(Array(0..<200), label: "SECOND THING")
        let text =
            "Bag Attributes\r\n    friendlyName: x\r\n" + first.replacingOccurrences(of: "\n", with: "\r\n")
            + "subject=CN = something\n\n" + second + "trailing text"
        let blocks = try PEM.decode(text)
        #expect(
            blocks == [
                PEM.Block(label: "FIRST", der: [1, 2, 3]), PEM.Block(label: "SECOND THING", der: Array(0..<200)),
            ])
    }

    @Test func rejectsMalformedBase64() {
        #expect(throws: PKIError.self) { try PEM.decode("-----BEGIN X-----\nAB$D\n-----END X-----\n") }
    }

    @Test func rejectsAnUnterminatedBlock() {
        #expect(throws: PKIError.self) { try PEM.decode("-----BEGIN X-----\nAAAA\n") }
        #expect(throws: PKIError.self) { try PEM.decode("-----BEGIN X-----\nAAAA\n-----END Y-----\n") }
        #expect(throws: PKIError.self) {
            try PEM.decode("-----BEGIN X-----\nAAAA\n-----BEGIN Y-----\nAAAA\n-----END Y-----\n")
        }
    }

    @Test func textWithoutBlocksHasNone() throws {
        #expect(try PEM.decode("nothing to see here").isEmpty)
    }
}

@Suite struct DigestAndRandomTests {
    @Test func knownAnswers() {
        #expect(hex(Digest.sha1(Array("abc".utf8))) == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(
            hex(Digest.sha256(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hex(Digest.sha256([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        // RFC 4231 test cases 2 and 1.
        #expect(
            hex(Digest.hmacSHA256(key: Array("Jefe".utf8), Array("what do ya want for nothing?".utf8)))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(
            hex(Digest.hmacSHA256(key: [UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8)))
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        #expect(Digest.hmacSHA256(key: [1], []) != Digest.hmacSHA256(key: [2], []))
    }

    @Test func randomBytesHaveTheRightLengthAndDiffer() {
        #expect(SecureRandom.bytes(0).isEmpty)
        #expect(SecureRandom.bytes(32).count == 32)
        #expect(SecureRandom.bytes(32) != SecureRandom.bytes(32))
    }
}
