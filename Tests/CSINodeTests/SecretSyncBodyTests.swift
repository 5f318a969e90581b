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
        let stored = try #require(StoredSecret(json: body))
        #expect(SecretSync.holds(stored.data, data))
        #expect(!SecretSync.holds(stored.data, ["tls.crt": data["tls.crt"]!]), "a key fewer is a change")
        #expect(
            !SecretSync.holds(stored.data, ["tls.crt": data["tls.crt"]!, "tls.key": SecretBytes(copying: [0, 1, 3])]),
            "a byte changed is a change")
        #expect(!SecretSync.holds([:], data))

        // Data that is base64 already (a release puts back what it read) is written as it is.
        let again = SecretSync.body(stored.object, base64: stored.data).array
        #expect(try JSONDecoder().decode([String: JSONValue].self, from: Data(again)) == decoded)

        let empty = try JSONDecoder().decode(
            [String: JSONValue].self, from: Data(SecretSync.body([:], data: [:]).array))
        #expect(empty == ["data": .object([:])])
    }
}

/// A Secret read from the API server, split so its data stays bytes.
@Suite("Secret sync: a Secret as read")
struct StoredSecretTests {
    @Test("The object is decoded without its data, and the data is each key's base64 text as bytes")
    func split() throws {
        let json = #"""
             { "kind" : "Secret", "data": {"a.txt":"c2VjcmV0","b":"YS9i\/Yw=" , "empty": ""},
              "metadata": {"name": "x", "annotations": {"note": "braces } ] and \"quotes\" in a string"}},
              "stringData": {"never": "sent"}, "type": "Opaque", "immutable": false, "n": -1.5e3 }
            """#
        let stored = try #require(StoredSecret(json: Array(json.utf8)))
        #expect(stored.object["data"] == nil && stored.object["stringData"] == nil)
        #expect(stored.object["kind"] == .string("Secret") && stored.object["type"] == .string("Opaque"))
        #expect(
            stored.object["metadata"]?.object?["annotations"]?.object?["note"]
                == .string(#"braces } ] and "quotes" in a string"#))
        #expect(stored.object["immutable"] == .bool(false))
        #expect(
            stored.data.mapValues { String(decoding: $0, as: UTF8.self) } == [
                "a.txt": "c2VjcmV0", "b": "YS9i/Yw=", "empty": "",
            ])
        let held: [String: SecretBytes] = [
            "a.txt": SecretBytes(copying: Array("secret".utf8)),
            "b": SecretBytes(copying: [0x61, 0x2F, 0x62, 0xFD, 0x8C]),
            "empty": SecretBytes(copying: []),
        ]
        #expect(SecretSync.holds(stored.data, held))

        let noData = try #require(StoredSecret(json: Array(#"{"kind":"Secret","data":null}"#.utf8)))
        #expect(noData.data.isEmpty && noData.object == ["kind": .string("Secret")])
    }

    @Test(
        "An answer that is not an object, whose data is not an object of base64 strings, or that names data or a key twice, is refused"
    )
    func refused() {
        for json in [
            "", "[]", #"{"kind":"Secret""#, #"{"kind":"Secret"} x"#, #"{"kind":}"#, #"{"data":{"a":1}}"#,
            #"{"data":{"a":"b\u0041"}}"#, #"{"data":["a"]}"#, #"{"data":{"a":"b"},}"#, #"{"kind":"Secret","n":tru}"#,
            #"{"data":{"a":"YQ=="},"data":{}}"#, #"{"d\u0061ta":{"a":"YQ=="}}"#, #"{"data":{"a":"YQ==","a":"Yg=="}}"#,
            #"{"data":{"a":"YQ =="}}"#, #"{"data":{"a":"YQ==\n"}}"#,
        ] {
            #expect(StoredSecret(json: Array(json.utf8)) == nil, "\(json)")
        }
    }
}
