import PKI
import Testing

@Suite("SecretBytes")
struct SecretBytesTests {
    @Test func takingCopiesTheBytesAndZeroesTheSource() {
        var source: [UInt8] = Array("hunter2".utf8)
        let secret = SecretBytes(taking: &source)
        #expect(Array(secret) == Array("hunter2".utf8))
        #expect(source.isEmpty)
        #expect(secret.count == 7)
        #expect(String(decoding: secret, as: UTF8.self) == "hunter2")
    }

    @Test func wipeZeroesInPlace() {
        var bytes: [UInt8] = [1, 2, 3]
        bytes.wipe()
        #expect(bytes == [0, 0, 0])
    }

    @Test func buffersAreSharedNotCopied() {
        let secret = SecretBytes(utf8: "value")
        let shared = secret
        let first = secret.withUnsafeBufferPointer { $0.baseAddress }
        let second = shared.withUnsafeBufferPointer { $0.baseAddress }
        #expect(first == second)
        #expect(SecretBytes.empty.isEmpty)
    }
}
