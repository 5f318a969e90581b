import FoundationEssentials
import PKI

/// A Secret as the API server sends it, split so that its data never becomes Swift strings
/// (which cannot be zeroed): the object without `data` is decoded as usual, and `data` is kept
/// as each key's base64 text in byte arrays that `wipe()` zeroes.
public struct StoredSecret: Sendable {
    /// The Secret without `data` (and `stringData`, which the server never sends back).
    public var object: [String: JSONValue]
    /// Each key's value exactly as the Secret holds it: base64 text, as bytes.
    public var data: [String: [UInt8]]

    /// nil when `json` is not a JSON object, or its `data` is not an object of base64 strings
    /// (each key once), or it names `data` twice or in a way this reading would miss.
    public init?(json: [UInt8]) {
        var scanner = JSONScanner(json)
        guard let members = scanner.objectMembers(), scanner.atEnd else { return nil }
        var rest: [UInt8] = [UInt8(ascii: "{")]
        var dataValue: Range<Int>?
        for member in members {
            let key = json[member.key]
            if key.elementsEqual("data".utf8) {
                guard dataValue == nil else { return nil }
                dataValue = member.value
            } else if !key.elementsEqual("stringData".utf8) {
                if rest.count > 1 { rest.append(UInt8(ascii: ",")) }
                // The key with its quotes, then the value, as the server wrote them.
                rest.append(contentsOf: json[(member.key.lowerBound - 1)..<(member.key.upperBound + 1)])
                rest.append(UInt8(ascii: ":"))
                rest.append(contentsOf: json[member.value])
            }
        }
        rest.append(UInt8(ascii: "}"))
        // A key that decodes to "data" but was written otherwise (escaped) would keep data in strings.
        guard let object = try? JSONDecoder().decode([String: JSONValue].self, from: Data(rest)),
            object["data"] == nil
        else { return nil }
        self.object = object
        data = [:]
        guard let dataValue, !json[dataValue].elementsEqual("null".utf8) else { return }
        var values = JSONScanner(json, range: dataValue)
        guard let entries = values.objectMembers(), values.atEnd else { return nil }
        for entry in entries {
            guard json[entry.value.lowerBound] == UInt8(ascii: "\""),
                let name = try? JSONDecoder().decode(
                    String.self, from: Data(json[(entry.key.lowerBound - 1)..<(entry.key.upperBound + 1)])),
                data[name] == nil,
                let value = Self.base64Text(json[(entry.value.lowerBound + 1)..<(entry.value.upperBound - 1)])
            else {
                wipe()
                return nil
            }
            data[name] = value
        }
    }

    /// A base64 string's contents as bytes: only base64's alphabet and padding. The API server
    /// escapes none of them; `\/` (JSON's optional escape of `/`) is undone, anything else refused.
    private static func base64Text(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count)
        var escaped = false
        for byte in text {
            let accepted: Bool
            if escaped {
                escaped = false
                accepted = byte == UInt8(ascii: "/")
            } else if byte == UInt8(ascii: "\\") {
                escaped = true
                continue
            } else {
                accepted = isBase64(byte)
            }
            guard accepted else {
                bytes.wipe()
                return nil
            }
            bytes.append(byte)
        }
        return bytes
    }

    private static func isBase64(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "+"), UInt8(ascii: "/"), UInt8(ascii: "="):
            true
        default: false
        }
    }

    public mutating func wipe() {
        // Over a copy of the keys: iterating `data.keys` itself would share the dictionary's
        // storage, so the first write would copy it and the arrays, and wipe the copies.
        for key in Array(data.keys) { data[key]?.wipe() }
    }
}

/// Finds the members of a JSON object by their byte ranges, without decoding any value; the
/// caller decodes what it needs. Values are only delimited here (strings by their quotes, arrays
/// and objects by their brackets), so whatever is decoded later is still checked by the decoder.
private struct JSONScanner {
    /// A member: its key's contents (inside the quotes) and its whole value.
    struct Member {
        var key: Range<Int>
        var value: Range<Int>
    }

    private let bytes: [UInt8]
    private var index: Int
    private let end: Int

    init(_ bytes: [UInt8], range: Range<Int>? = nil) {
        self.bytes = bytes
        index = range?.lowerBound ?? 0
        end = range?.upperBound ?? bytes.count
    }

    var atEnd: Bool {
        mutating get {
            skipSpace()
            return index == end
        }
    }

    mutating func objectMembers() -> [Member]? {
        skipSpace()
        guard take(UInt8(ascii: "{")) else { return nil }
        var members: [Member] = []
        skipSpace()
        if take(UInt8(ascii: "}")) { return members }
        while true {
            skipSpace()
            guard let key = string() else { return nil }
            skipSpace()
            guard take(UInt8(ascii: ":")) else { return nil }
            skipSpace()
            let start = index
            guard value() else { return nil }
            members.append(Member(key: key, value: start..<index))
            skipSpace()
            if take(UInt8(ascii: ",")) { continue }
            return take(UInt8(ascii: "}")) ? members : nil
        }
    }

    /// Skips a string at `index`; the range of its contents, inside the quotes.
    private mutating func string() -> Range<Int>? {
        guard take(UInt8(ascii: "\"")) else { return nil }
        let start = index
        while index < end {
            switch bytes[index] {
            case UInt8(ascii: "\""):
                index += 1
                return start..<(index - 1)
            case UInt8(ascii: "\\"): index += 2
            default: index += 1
            }
        }
        return nil
    }

    /// Skips one value at `index`.
    private mutating func value() -> Bool {
        guard index < end else { return false }
        switch bytes[index] {
        case UInt8(ascii: "\""):
            return string() != nil
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            while index < end {
                switch bytes[index] {
                case UInt8(ascii: "\""):
                    guard string() != nil else { return false }
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 {
                        index += 1
                        return true
                    }
                default: break
                }
                index += 1
            }
            return false
        default:  // a number, true, false or null
            let start = index
            while index < end, !Self.delimiters.contains(bytes[index]) { index += 1 }
            return index > start
        }
    }

    private static let delimiters: Set<UInt8> = Set(",}] \t\r\n".utf8)

    private mutating func skipSpace() {
        while index < end, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    private mutating func take(_ byte: UInt8) -> Bool {
        guard index < end, bytes[index] == byte else { return false }
        index += 1
        return true
    }
}
