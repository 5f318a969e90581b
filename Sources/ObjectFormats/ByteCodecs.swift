import PKI

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Why text could not be decoded. The reason names positions, never the text itself, because the
/// text is usually a secret value.
struct DecodingFailure: Error {
    let reason: String

    init(_ reason: String) {
        self.reason = reason
    }
}

/// Standard base64 (RFC 4648 section 4) with "=" padding required, decoded the way Go's
/// `base64.StdEncoding` does it: CR and LF are skipped anywhere, anything else outside the
/// alphabet is an error.
enum StrictBase64 {
    private static let invalid: UInt8 = 0xFF
    private static let padding = UInt8(ascii: "=")
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: invalid, count: 256)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        for (value, symbol) in alphabet.enumerated() { table[Int(symbol)] = UInt8(value) }
        return table
    }()

    static func decode(_ text: String.UTF8View) throws(DecodingFailure) -> [UInt8] {
        var output: [UInt8] = []
        // Sized up front so the buffer is never reallocated, which would leave a copy behind.
        output.reserveCapacity(text.count / 4 * 3 + 3)
        do {
            try decode(text, into: &output)
        } catch {
            output.wipe()
            throw error
        }
        return output
    }

    private static func decode(_ text: String.UTF8View, into output: inout [UInt8]) throws(DecodingFailure) {
        var quantum: UInt32 = 0
        var symbolsInQuantum = 0
        var paddingInQuantum = 0
        var ended = false
        for (offset, symbol) in text.enumerated() {
            if symbol == UInt8(ascii: "\r") || symbol == UInt8(ascii: "\n") { continue }
            guard !ended else {
                throw DecodingFailure("there is data after the '=' padding (offset \(offset))")
            }
            if symbol == padding {
                guard symbolsInQuantum >= 2 else {
                    throw DecodingFailure("the '=' at offset \(offset) is not where padding can be")
                }
                paddingInQuantum += 1
                quantum <<= 6
            } else {
                guard paddingInQuantum == 0 else {
                    throw DecodingFailure("there is data after the '=' padding (offset \(offset))")
                }
                let value = values[Int(symbol)]
                guard value != invalid else {
                    throw DecodingFailure("the character at offset \(offset) is not in the standard base64 alphabet")
                }
                quantum = quantum << 6 | UInt32(value)
            }
            symbolsInQuantum += 1
            guard symbolsInQuantum == 4 else { continue }
            output.append(UInt8(truncatingIfNeeded: quantum >> 16))
            if paddingInQuantum < 2 { output.append(UInt8(truncatingIfNeeded: quantum >> 8)) }
            if paddingInQuantum < 1 { output.append(UInt8(truncatingIfNeeded: quantum)) }
            ended = paddingInQuantum > 0
            quantum = 0
            symbolsInQuantum = 0
            paddingInQuantum = 0
        }
        guard symbolsInQuantum == 0 else {
            throw DecodingFailure("the length is not a multiple of 4; standard base64 needs its '=' padding")
        }
    }
}

/// Hex pairs in either case, as Go's `hex.DecodeString` reads them.
enum HexText {
    static func decode(_ text: String.UTF8View) throws(DecodingFailure) -> [UInt8] {
        guard text.count % 2 == 0 else { throw DecodingFailure("the number of hex digits is odd") }
        var output: [UInt8] = []
        output.reserveCapacity(text.count / 2)
        var high: UInt8? = nil
        for (offset, symbol) in text.enumerated() {
            guard let nibble = nibble(symbol) else {
                output.wipe()
                throw DecodingFailure("the character at offset \(offset) is not a hex digit")
            }
            if let highNibble = high {
                output.append(highNibble << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        return output
    }

    private static func nibble(_ symbol: UInt8) -> UInt8? {
        switch symbol {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): symbol - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): symbol - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): symbol - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// PEM blocks written straight into a byte buffer, as Go's `pem.Encode` lays them out (64-column
/// base64 lines, no headers, a newline after the END line). Building bytes rather than a String
/// keeps key material in buffers that can be wiped.
enum PEMWriter {
    static let privateKeyLabel = "PRIVATE KEY"
    static let certificateLabel = "CERTIFICATE"
    static let publicKeyLabel = "PUBLIC KEY"

    private static let lineLength = 64

    /// Bytes `append` adds for `derCount` bytes of DER under `label`.
    static func encodedLength(derCount: Int, label: String) -> Int {
        let base64Count = (derCount + 2) / 3 * 4
        let lineCount = (base64Count + lineLength - 1) / lineLength
        // "-----BEGIN " + label + "-----\n" + body + "-----END " + label + "-----\n"
        return 11 + 6 + 9 + 6 + 2 * label.utf8.count + base64Count + lineCount
    }

    static func encode(_ der: [UInt8], label: String) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(encodedLength(derCount: der.count, label: label))
        append(der, label: label, to: &output)
        return output
    }

    /// Certificates one after the other, in the order given.
    static func encode(certificates ders: [[UInt8]]) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(ders.reduce(0) { $0 + encodedLength(derCount: $1.count, label: certificateLabel) })
        for der in ders { append(der, label: certificateLabel, to: &output) }
        return output
    }

    static func append(_ der: [UInt8], label: String, to output: inout [UInt8]) {
        output.append(contentsOf: "-----BEGIN \(label)-----\n".utf8)
        der.withUnsafeBufferPointer { Base64Writer.append($0, to: &output, lineLength: lineLength) }
        output.append(contentsOf: "-----END \(label)-----\n".utf8)
    }
}

/// Standard base64 with padding (RFC 4648 section 4), written into a byte buffer so that secret
/// bytes never pass through a String, which could not be zeroed.
public enum Base64Writer {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Symbols for `count` bytes, without line breaks.
    public static func encodedCount(_ count: Int) -> Int { (count + 2) / 3 * 4 }

    /// Appends `bytes` in base64; with a `lineLength` (PEM's 64), every line, the last one too,
    /// ends with a newline.
    public static func append(_ bytes: UnsafeBufferPointer<UInt8>, to output: inout [UInt8], lineLength: Int? = nil) {
        var column = 0
        var index = 0
        while index < bytes.count {
            let remaining = bytes.count - index
            var group = UInt32(bytes[index]) << 16
            if remaining > 1 { group |= UInt32(bytes[index + 1]) << 8 }
            if remaining > 2 { group |= UInt32(bytes[index + 2]) }
            // One byte makes two symbols, two make three, three make four; "=" pads to four.
            for position in 0..<4 {
                let isSymbol = position <= min(remaining, 3)
                output.append(isSymbol ? alphabet[Int(group >> UInt32(18 - 6 * position) & 0x3F)] : UInt8(ascii: "="))
                column += 1
                if column == lineLength {
                    output.append(UInt8(ascii: "\n"))
                    column = 0
                }
            }
            index += 3
        }
        if lineLength != nil, column > 0 { output.append(UInt8(ascii: "\n")) }
    }
}
