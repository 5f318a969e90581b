import FoundationEssentials
import PKI
import Testing

@testable import CSINode

/// The request body of a synced Secret, whose data is written as base64 straight into a buffer
/// that is zeroed, never through strings.
@Suite("Secret sync: the request body")
struct SecretSyncBodyTests {
    @Test("base64 matches Foundation's for every length's padding, and for arbitrary bytes")
    func base64() {
        var generator = SystemRandomNumberGenerator()
        for length in [0, 1, 2, 3, 4, 5, 6, 7, 64, 1000] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let encoded = SecretSync.base64(SecretBytes(copying: bytes))
            #expect(String(decoding: encoded, as: UTF8.self) == Data(bytes).base64EncodedString(), "length \(length)")
        }
    }

    @Test("The body is the object's JSON with the data added, and decodes back to both")
    func body() throws {
        let secret: [String: JSONValue] = [
            "apiVersion": .string("v1"), "kind": .string("Secret"),
            "metadata": .object(["name": .string("tls"), "namespace": .string("team-a")]),
            "data": .object(["stale": .string("c3RhbGU=")]),
        ]
        let data = [
            "tls.crt": SecretBytes(copying: Array("certificate".utf8)), "tls.key": SecretBytes(copying: [0, 1, 2]),
        ]
        let body = SecretSync.body(secret, data: data).array
        let decoded = try JSONDecoder().decode([String: JSONValue].self, from: Data(body))
        #expect(decoded["metadata"] == secret["metadata"] && decoded["kind"] == .string("Secret"))
        #expect(
            decoded["data"]
                == .object([
                    "tls.crt": .string(Data("certificate".utf8).base64EncodedString()), "tls.key": .string("AAEC"),
                ]),
            "the data given, and only it")
        #expect(SecretSync.holds(decoded, data))
        #expect(!SecretSync.holds(decoded, ["tls.crt": data["tls.crt"]!]), "a key fewer is a change")
        #expect(!SecretSync.holds(secret, data))

        let empty = try JSONDecoder().decode(
            [String: JSONValue].self, from: Data(SecretSync.body([:], data: [:]).array))
        #expect(empty == ["data": .object([:])])
    }
}
