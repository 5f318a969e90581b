import PKI

/// A small binary form for state handed from one akvfs process to the next (the inode journal,
/// cached content): little-endian integers, length-prefixed strings and bytes. Secret bytes stay
/// bytes, never Swift strings, so they can be zeroed.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public mutating func byte(_ value: UInt8) { bytes.append(value) }

    public mutating func integer(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func signed(_ value: Int64) { integer(UInt64(bitPattern: value)) }

    public mutating func data(_ value: some Collection<UInt8>) {
        integer(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    public mutating func string(_ value: String) { data(value.utf8) }

    public mutating func strings(_ values: [String]) {
        integer(UInt64(values.count))
        for value in values { string(value) }
    }

    public mutating func bool(_ value: Bool) { byte(value ? 1 : 0) }

    public mutating func optional<Value>(_ value: Value?, _ write: (inout ByteWriter, Value) -> Void) {
        guard let value else { return byte(0) }
        byte(1)
        write(&self, value)
    }

    /// Zeroes what was written (it held secret bytes) and leaves the writer empty.
    public mutating func wipe() {
        bytes.wipe()
        bytes.removeAll()
    }
}

/// Reads what `ByteWriter` wrote; every read checks the bounds, so damaged input fails cleanly.
public struct ByteReader {
    public struct Malformed: Error, Sendable, CustomStringConvertible {
        public var description: String

        public init(description: String) {
            self.description = description
        }
    }

    private let bytes: [UInt8]
    private var offset = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var isAtEnd: Bool { offset == bytes.count }

    public mutating func byte() throws(Malformed) -> UInt8 {
        guard offset < bytes.count else { throw Malformed(description: "the data ends early") }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func integer() throws(Malformed) -> UInt64 {
        guard bytes.count - offset >= 8 else { throw Malformed(description: "the data ends early") }
        defer { offset += 8 }
        return bytes[offset..<offset + 8].reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    public mutating func signed() throws(Malformed) -> Int64 { Int64(bitPattern: try integer()) }

    public mutating func count() throws(Malformed) -> Int {
        let count = try integer()
        guard count <= UInt64(bytes.count - offset) else {
            throw Malformed(description: "a length runs past the end of the data")
        }
        return Int(count)
    }

    public mutating func data() throws(Malformed) -> [UInt8] {
        let count = try count()
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    public mutating func string() throws(Malformed) -> String { String(decoding: try data(), as: UTF8.self) }

    public mutating func strings() throws(Malformed) -> [String] {
        let count = try count()
        var values: [String] = []
        values.reserveCapacity(count)
        for _ in 0..<count { values.append(try string()) }
        return values
    }

    public mutating func bool() throws(Malformed) -> Bool {
        switch try byte() {
        case 0: return false
        case 1: return true
        default: throw Malformed(description: "a flag is neither 0 nor 1")
        }
    }

    public mutating func optional<Value>(_ read: (inout ByteReader) throws(Malformed) -> Value) throws(Malformed)
        -> Value?
    {
        switch try byte() {
        case 0: return nil
        case 1: return try read(&self)
        default: throw Malformed(description: "an optional value is marked neither absent nor present")
        }
    }
}

// MARK: Objects, in the one form every kind of handed-over state uses

extension ByteWriter {
    /// A kind as its index in `ObjectKind.allCases`: one byte.
    public mutating func kind(_ kind: ObjectKind) {
        byte(UInt8(ObjectKind.allCases.firstIndex(of: kind)!))
    }

    public mutating func reference(_ reference: ObjectReference) {
        kind(reference.kind)
        string(reference.name)
        optional(reference.version) { $0.string($1) }
    }

    /// The vault and identity; a reader gives them back through `source(interning:)`.
    public mutating func source(_ source: SourceID) {
        string(source.vault)
        string(source.identity)
    }
}

extension ByteReader {
    public mutating func kind() throws(Malformed) -> ObjectKind {
        let index = Int(try byte())
        guard index < ObjectKind.allCases.count else { throw Malformed(description: "an unknown object kind") }
        return ObjectKind.allCases[index]
    }

    public mutating func reference() throws(Malformed) -> ObjectReference {
        ObjectReference(
            kind: try kind(), name: try string(),
            version: try optional { reader throws(Malformed) in try reader.string() })
    }

    /// A source, shared with the equal one already in `sources` (so the entries of one source
    /// carry one `SourceID`, as when they were fetched), or added to it.
    public mutating func source(interning sources: inout Set<SourceID>) throws(Malformed) -> SourceID {
        sources.insert(SourceID(vault: try string(), identity: try string())).memberAfterInsert
    }
}
