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
