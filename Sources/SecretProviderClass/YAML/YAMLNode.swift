/// A YAML node as `objects` needs it: scalars keep their text and style, collections their
/// order, every node the line it starts on (for errors that point into the class).
///
/// akvfs reads YAML with its own parser (YAMLParser.swift) rather than a general YAML library:
/// those pull in Foundation with ICU, which more than doubles the CSI plugin's binary.
public indirect enum YAMLNode: Sendable, Equatable {
    case scalar(YAMLScalar)
    case sequence([YAMLNode], line: Int)
    case mapping([YAMLMappingEntry], line: Int)

    public var line: Int {
        switch self {
        case .scalar(let scalar): scalar.line
        case .sequence(_, let line), .mapping(_, let line): line
        }
    }

    /// `~`, `null` or nothing, unquoted: a field left empty.
    public var isNull: Bool {
        guard case .scalar(let scalar) = self, scalar.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.text)
    }

    /// The node's tag as yaml.v3 names it in its errors: `!!map`, `!!seq`, `!!str`, `!!int`, …
    public var kind: String {
        switch self {
        case .mapping: return "!!map"
        case .sequence: return "!!seq"
        case .scalar(let scalar):
            guard scalar.style == .plain else { return "!!str" }
            if isNull { return "!!null" }
            if ["true", "True", "TRUE", "false", "False", "FALSE"].contains(scalar.text) { return "!!bool" }
            if Int(scalar.text) != nil || scalar.text.hasPrefix("0x") && Int(scalar.text.dropFirst(2), radix: 16) != nil
            {
                return "!!int"
            }
            if Double(scalar.text) != nil || [".inf", "-.inf", ".nan", ".Inf", ".NaN"].contains(scalar.text) {
                return "!!float"
            }
            return "!!str"
        }
    }
}

public struct YAMLScalar: Sendable, Equatable {
    public enum Style: Sendable, Equatable {
        case plain, singleQuoted, doubleQuoted, literal, folded
    }

    public var text: String
    public var style: Style
    public var line: Int

    public init(_ text: String, style: Style, line: Int) {
        self.text = text
        self.style = style
        self.line = line
    }
}

public struct YAMLMappingEntry: Sendable, Equatable {
    public var key: YAMLNode
    public var value: YAMLNode
}

/// Where and why a document is not YAML akvfs reads, in yaml.v3's shape (`yaml: line L, column C: …`).
public struct YAMLError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var column: Int?
    public var problem: String

    public var description: String {
        column.map { "yaml: line \(line), column \($0): \(problem)" } ?? "yaml: line \(line): \(problem)"
    }
}

extension YAMLNode {
    /// A scalar's text; nil for a collection.
    public var scalarText: String? {
        guard case .scalar(let scalar) = self else { return nil }
        return scalar.text
    }
}

extension YAMLScalar {
    /// The whole number yaml.v3 (the Azure provider's YAML library) stores in an integer field for
    /// this text, or nil. As yaml.v3 resolves a plain scalar: `_` are dropped; `0x`, `0o`, `0b` or a
    /// leading `0` choose base 16, 8, 2 or 8, as in Go's strconv.ParseInt(text, 0, 64), so `010` is 8;
    /// a float such as `3.0` or `3e0` is its whole number. A float with a fraction (`3.5`), which
    /// yaml.v3 would silently cut to 3, is nil here.
    public static func integer(_ text: String) -> Int? {
        let plain = Substring(text.filter { $0 != "_" })
        var digits = plain
        var negative = false
        if let sign = digits.first, sign == "+" || sign == "-" {
            negative = sign == "-"
            digits = digits.dropFirst()
        }
        let prefixes: [(String, Int)] = [("0x", 16), ("0o", 8), ("0b", 2)]
        var radix = 10
        if let (prefix, base) = prefixes.first(where: { digits.lowercased().hasPrefix($0.0) }) {
            radix = base
            digits = digits.dropFirst(prefix.count)
        } else if digits.count > 1, digits.first == "0", digits.allSatisfy({ ("0"..."7").contains($0) }) {
            radix = 8
        }
        if !digits.isEmpty, digits.allSatisfy({ $0.isHexDigit && $0.isASCII }),
            let magnitude = Int(digits, radix: radix)
        {
            return negative ? -magnitude : magnitude
        }
        // yaml.v3's float form: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
        let unsigned = plain.first == "+" || plain.first == "-" ? plain.dropFirst() : plain
        let (mantissa, exponent) =
            unsigned.firstIndex(where: { $0 == "e" || $0 == "E" }).map {
                (unsigned[..<$0], Optional(unsigned[unsigned.index(after: $0)...]))
            } ?? (unsigned, nil)
        let parts = mantissa.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let isDigits = { (part: Substring) in part.allSatisfy { $0.isASCII && $0.isNumber } }
        let mantissaIsValid =
            parts.allSatisfy(isDigits) && !(parts.first?.isEmpty ?? true)
            || parts.count == 2 && parts[0].isEmpty && !parts[1].isEmpty && isDigits(parts[1])
        let exponentDigits = exponent.map { $0.first == "+" || $0.first == "-" ? $0.dropFirst() : $0 }
        guard mantissaIsValid, exponentDigits.map({ !$0.isEmpty && isDigits($0) }) ?? true,
            let value = Double(String(plain)), value.rounded(.towardZero) == value, abs(value) < 0x1p62
        else { return nil }
        return Int(value)
    }
}
