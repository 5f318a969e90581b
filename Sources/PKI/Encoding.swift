/// Base64 with either alphabet; the one codec behind PEM and Base64URL.
enum Base64 {
    static let standardAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    static let urlAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    private static let invalid: UInt8 = 0xFF
    private static let standardTable = decodingTable(standardAlphabet)
    private static let urlTable = decodingTable(urlAlphabet)

    private static func decodingTable(_ alphabet: [UInt8]) -> [UInt8] {
        var table = [UInt8](repeating: invalid, count: 256)
        for (value, symbol) in alphabet.enumerated() { table[Int(symbol)] = UInt8(value) }
        return table
    }

    static func encode(_ bytes: [UInt8], urlSafe: Bool, padded: Bool) -> String {
        let alphabet = urlSafe ? urlAlphabet : standardAlphabet
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let remaining = bytes.count - index
            let b0 = UInt32(bytes[index])
            let b1 = remaining > 1 ? UInt32(bytes[index + 1]) : 0
            let b2 = remaining > 2 ? UInt32(bytes[index + 2]) : 0
            let group = b0 << 16 | b1 << 8 | b2
            out.append(alphabet[Int(group >> 18 & 0x3F)])
            out.append(alphabet[Int(group >> 12 & 0x3F)])
            if remaining > 1 {
                out.append(alphabet[Int(group >> 6 & 0x3F)])
            } else if padded {
                out.append(UInt8(ascii: "="))
            }
            if remaining > 2 {
                out.append(alphabet[Int(group & 0x3F)])
            } else if padded {
                out.append(UInt8(ascii: "="))
            }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes with or without trailing "=" padding; nil on any character outside the alphabet,
    /// padding anywhere but the end, or a length no encoder produces.
    static func decode<Bytes: Collection<UInt8>>(_ text: Bytes, urlSafe: Bool) -> [UInt8]? {
        let table = urlSafe ? urlTable : standardTable
        var symbols = Array(text)
        var padding = 0
        while symbols.last == UInt8(ascii: "=") {
            symbols.removeLast()
            padding += 1
        }
        guard padding <= 2, padding == 0 || (symbols.count + padding) % 4 == 0, symbols.count % 4 != 1 else {
            return nil
        }
        var out: [UInt8] = []
        out.reserveCapacity(symbols.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for symbol in symbols {
            let value = table[Int(symbol)]
            guard value != invalid else { return nil }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        return out
    }
}

/// Base64url as JOSE uses it (RFC 7515 section 2): URL-safe alphabet, no padding.
public enum Base64URL {
    public static func encode(_ bytes: [UInt8]) -> String {
        Base64.encode(bytes, urlSafe: true, padded: false)
    }

    /// Accepts input with or without "=" padding; nil if it is not base64url.
    public static func decode(_ text: String) -> [UInt8]? {
        Base64.decode(text.utf8, urlSafe: true)
    }
}

/// PEM text (RFC 7468): base64 DER between "-----BEGIN label-----" and "-----END label-----".
public enum PEM {
    public struct Block: Sendable, Equatable {
        public var label: String
        public var der: [UInt8]

        public init(label: String, der: [UInt8]) {
            self.label = label
            self.der = der
        }
    }

    /// 64-column base64 lines and a trailing newline, as OpenSSL writes it.
    public static func encode(_ der: [UInt8], label: String) -> String {
        let base64 = Array(Base64.encode(der, urlSafe: false, padded: true).utf8)
        var text = "-----BEGIN \(label)-----\n"
        var start = 0
        while start < base64.count {
            let end = min(start + 64, base64.count)
            text += String(decoding: base64[start..<end], as: UTF8.self) + "\n"
            start = end
        }
        return text + "-----END \(label)-----\n"
    }

    /// Every block in `text`, in order. Text outside blocks is ignored; CRLF line ends are fine.
    public static func decode(_ text: String) throws(PKIError) -> [Block] {
        try scan(text).map { Block(label: $0.label, der: $0.der) }
    }

    /// A block as found in the text, with the RFC 1421 headers ("Proc-Type: 4,ENCRYPTED") that
    /// OpenSSL's traditional encrypted keys carry.
    struct ScannedBlock {
        var label: String
        var der: [UInt8]
        var headers: [String: String]
        /// The block's lines re-joined with "\n", for handing an encrypted block back to OpenSSL.
        var text: String

        var isLegacyEncrypted: Bool { headers["Proc-Type"]?.contains("ENCRYPTED") ?? false }
    }

    static func scan(_ text: String) throws(PKIError) -> [ScannedBlock] {
        let operation = "decode PEM"
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingSpaces() }
        var blocks: [ScannedBlock] = []
        var index = 0
        while index < lines.count {
            guard let label = lines[index].pemMarkerLabel(kind: "BEGIN") else {
                index += 1
                continue
            }
            let beginLine = lines[index]
            var headerLines: [String] = []
            var bodyLines: [String] = []
            var headers: [String: String] = [:]
            var base64: [UInt8] = []
            var terminated = false
            index += 1
            while index < lines.count {
                let line = lines[index]
                index += 1
                if let endLabel = line.pemMarkerLabel(kind: "END") {
                    bodyLines.append(line)
                    guard endLabel == label else {
                        throw PKIError(
                            operation: operation,
                            reason: "block '\(label)' ends with an END line for '\(endLabel)'")
                    }
                    terminated = true
                    break
                }
                if line.pemMarkerLabel(kind: "BEGIN") != nil {
                    throw PKIError(
                        operation: operation, reason: "block '\(label)' has no END line before the next BEGIN line")
                }
                if base64.isEmpty, let colon = line.firstIndex(of: ":") {
                    headers[String(line[..<colon])] = String(line[line.index(after: colon)...]).trimmingSpaces()
                    headerLines.append(line)
                    continue
                }
                bodyLines.append(line)
                base64.append(contentsOf: line.utf8.filter { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") })
            }
            guard terminated else {
                throw PKIError(operation: operation, reason: "block '\(label)' has no END line")
            }
            guard let der = Base64.decode(base64, urlSafe: false) else {
                throw PKIError(operation: operation, reason: "block '\(label)' contains malformed base64")
            }
            // RFC 1421 wants a blank line between headers and body; the line split above dropped it.
            let textLines = [beginLine] + (headerLines.isEmpty ? [] : headerLines + [""]) + bodyLines
            blocks.append(
                ScannedBlock(
                    label: label, der: der, headers: headers,
                    text: textLines.joined(separator: "\n") + "\n"))
        }
        return blocks
    }
}

extension StringProtocol {
    /// Trims ASCII spaces and tabs (and a stray CR) from both ends.
    func trimmingSpaces() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[first...last])
    }

    /// The label of a "-----BEGIN label-----" or "-----END label-----" line.
    fileprivate func pemMarkerLabel(kind: String) -> String? {
        let prefix = "-----\(kind) "
        guard hasPrefix(prefix), hasSuffix("-----"), count >= prefix.count + 5 else { return nil }
        return String(dropFirst(prefix.count).dropLast(5))
    }
}
