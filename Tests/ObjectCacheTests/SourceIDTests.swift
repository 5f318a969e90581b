import Foundation
import Testing

@testable import ObjectCache

/// A SourceID shares its strings between copies; two made apart (two storages) from the same
/// strings must still be one source to the cache's tables.
@Suite("SourceID")
struct SourceIDTests {
    @Test func sourcesMadeApartFromTheSameStringsAreOne() {
        let first = SourceID(vault: "https://vault-a.vault.azure.net", identity: "mi:node")
        let second = SourceID(vault: "https://vault-a.vault.azure.net", identity: "mi:node")
        #expect(first == second)
        #expect(first.hashValue == second.hashValue)
        #expect(Set([first, second]).count == 1)
        #expect(first != SourceID(vault: "https://vault-a.vault.azure.net", identity: "mi:other"))
        #expect(first != SourceID(vault: "https://vault-b.vault.azure.net", identity: "mi:node"))
        #expect(first.description == "https://vault-a.vault.azure.net as mi:node")
    }

    @Test func encodesAsItsTwoStrings() throws {
        let source = SourceID(vault: "https://vault-a.vault.azure.net", identity: "wi:tenant:client:subject")
        let json = try JSONEncoder().encode(source)
        let fields = try JSONSerialization.jsonObject(with: json) as? [String: String]
        #expect(fields == ["vault": "https://vault-a.vault.azure.net", "identity": "wi:tenant:client:subject"])
        #expect(try JSONDecoder().decode(SourceID.self, from: json) == source)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(SourceID.self, from: Data(#"{"vault":"v"}"#.utf8))
        }
    }
}
