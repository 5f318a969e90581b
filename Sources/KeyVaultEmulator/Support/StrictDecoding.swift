import FoundationEssentials

/// A coding key for reading whatever keys an object actually has.
struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init(intValue: Int) {
        self.stringValue = String(intValue)
        self.intValue = intValue
    }
}

extension Decoder {
    /// The keyed container of an object that may hold only `keys`. Seed files are written by
    /// hand, so a misspelt field must fail loudly instead of being ignored the way JSONDecoder
    /// ignores unknown keys.
    func strictContainer<Keys: CodingKey & CaseIterable>(keyedBy keys: Keys.Type) throws
        -> KeyedDecodingContainer<Keys>
    {
        try rejectUnknownKeys(keys)
        return try container(keyedBy: keys)
    }

    fileprivate func rejectUnknownKeys<Keys: CodingKey & CaseIterable>(_ keys: Keys.Type) throws {
        let container = try self.container(keyedBy: AnyCodingKey.self)
        let allowed = Keys.allCases.map(\.stringValue)
        for key in container.allKeys where !allowed.contains(key.stringValue) {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: codingPath + [key],
                    debugDescription:
                        "unknown field '\(key.stringValue)'; allowed fields: \(allowed.joined(separator: ", "))"
                )
            )
        }
    }
}

/// A type decoded exactly as Decodable synthesizes it, except that unknown fields are refused.
protocol StrictlyDecodable: Decodable {
    associatedtype CodingKeys: CodingKey & CaseIterable
}

/// Decodes `Value` with its synthesized `init(from:)` once the object's keys have been checked.
struct Strict<Value: StrictlyDecodable>: Decodable {
    var value: Value

    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(Value.CodingKeys.self)
        value = try Value(from: decoder)
    }
}

extension DecodingError {
    /// A one-line explanation with a JSON-path-like location, e.g. `vaults[0].secrets[1].value: ...`.
    var readableDescription: String {
        func path(_ codingPath: [any CodingKey]) -> String {
            var result = ""
            for key in codingPath {
                if let index = key.intValue {
                    result += "[\(index)]"
                } else {
                    result += result.isEmpty ? key.stringValue : ".\(key.stringValue)"
                }
            }
            return result.isEmpty ? "top level" : result
        }
        switch self {
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)): expected \(Self.typeName(type)); \(context.debugDescription)"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)): missing \(Self.typeName(type))"
        case .keyNotFound(let key, let context):
            return "\(path(context.codingPath + [key])): required field is missing"
        case .dataCorrupted(let context):
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(self)"
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Int.Type, is Int64.Type: "an integer"
        case is Double.Type: "a number"
        default: "\(type)"
        }
    }
}
