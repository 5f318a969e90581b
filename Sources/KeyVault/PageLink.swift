import FoundationEssentials

/// Only a page's link, to request the next page before this one's items are decoded.
/// `package` for akvfs-fuzz, which checks `scan` against a full decode.
package struct PageLink: Decodable {
    package var nextLink: String?

    /// The link to follow: an empty one ends the listing, as an absent one does.
    package var link: String? { nextLink.flatMap { $0.isEmpty ? nil : $0 } }

    /// The link read without decoding the page's items, when `nextLink` is the top-level
    /// object's last member (Key Vault's order) or its first. Both positions are recognised
    /// exactly: the last member is followed only by the closing brace, the first one follows
    /// only the opening brace, so a tag or value elsewhere that spells "nextLink" never matches.
    /// Nil when the page is laid out otherwise; the caller then decodes the whole page, and
    /// every page's decode checks the link read here.
    package static func scan(_ body: [UInt8]) -> PageLink? {
        body.withUnsafeBufferPointer { bytes in
            let reader = TopLevelMembers(bytes)
            if let first = reader.firstMember(named: memberName) { return first }
            return reader.lastMember(named: memberName)
        }
    }

    private static let memberName = Array(#""nextLink""#.utf8)
}

/// Just enough JSON reading to find a member of the top-level object by its position, first or last.
private struct TopLevelMembers {
    let bytes: UnsafeBufferPointer<UInt8>

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    /// `{ "name" : value` at the start of the document.
    func firstMember(named name: [UInt8]) -> PageLink? {
        var index = skipSpace(from: 0)
        guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else { return nil }
        index = skipSpace(from: index + 1)
        guard matches(name, at: index) else { return nil }
        return value(after: index + name.count)?.page
    }

    /// `, "name" : value }` at the end of the document (or `{ "name" : value }`).
    func lastMember(named name: [UInt8]) -> PageLink? {
        var start = bytes.count - name.count
        while start > 0 {
            if bytes[start] == UInt8(ascii: "\""), matches(name, at: start) { break }
            start -= 1
        }
        guard start > 0 else { return nil }
        let before = skipSpaceBackwards(from: start - 1)
        guard before >= 0, bytes[before] == UInt8(ascii: ",") || bytes[before] == UInt8(ascii: "{") else { return nil }
        guard let (page, end) = value(after: start + name.count) else { return nil }
        let close = skipSpace(from: end)
        guard close < bytes.count, bytes[close] == UInt8(ascii: "}"), skipSpace(from: close + 1) == bytes.count else {
            return nil
        }
        return page
    }

    /// `: null` or `: "string"` after a member name: the link and the index just past the value.
    private func value(after nameEnd: Int) -> (page: PageLink, end: Int)? {
        var index = skipSpace(from: nameEnd)
        guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return nil }
        index = skipSpace(from: index + 1)
        if matches(Array("null".utf8), at: index) { return (PageLink(nextLink: nil), index + 4) }
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
        var end = index + 1
        var escaped = false
        while end < bytes.count, bytes[end] != UInt8(ascii: "\"") {
            if bytes[end] == UInt8(ascii: "\\") {
                escaped = true
                end += 1
            }
            end += 1
        }
        guard end < bytes.count else { return nil }
        let text = UnsafeBufferPointer(rebasing: bytes[index...end])
        // Links are plain URLs; an escaped one ("\/", "\u0026") is rare enough for the decoder.
        let link =
            escaped
            ? (try? JSONDecoder().decode(String.self, from: Data(text)))
            : String(decoding: text.dropFirst().dropLast(), as: UTF8.self)
        guard let link else { return nil }
        return (PageLink(nextLink: link), end + 1)
    }

    private func matches(_ expected: [UInt8], at index: Int) -> Bool {
        guard index >= 0, index + expected.count <= bytes.count else { return false }
        for offset in 0..<expected.count where bytes[index + offset] != expected[offset] { return false }
        return true
    }

    private func skipSpace(from index: Int) -> Int {
        var index = index
        while index < bytes.count, Self.isSpace(bytes[index]) { index += 1 }
        return index
    }

    private func skipSpaceBackwards(from index: Int) -> Int {
        var index = index
        while index >= 0, Self.isSpace(bytes[index]) { index -= 1 }
        return index
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }
}
