import ObjectCache
import ObjectFormats

/// Where the inode table writes down, before the kernel can learn of it, every inode the kernel
/// holds a reference to, so that another process can take the FUSE connection over, after a
/// handoff or a crash, and answer for every inode the kernel knows (`InodeTable.restore`).
public protocol InodeJournal: AnyObject, Sendable {
    /// Appends one record. False when the journal is full: the table then writes a snapshot.
    func append(_ record: [UInt8]) -> Bool
    /// Replaces everything written so far with `records`, a snapshot of the table.
    func compact(_ records: [[UInt8]])
}

/// Why a journal could not be read back: it was written by another version, or is damaged.
public struct JournalError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// The records of the inode journal, in a compact binary form: a lookup (the most frequent
/// change) is 17 bytes, so writing them costs next to nothing on the lookup path.
enum InodeRecord: Equatable {
    /// An inode the kernel now holds, with everything needed to answer for it.
    case node(inode: UInt64, node: InodeTable.Node, shown: Bool)
    case remembered(inode: UInt64)
    case forgot(inode: UInt64, count: UInt64)
    /// Its name no longer shows it (the kernel has been told).
    case detached(inode: UInt64)
    /// The kernel is being told that no name shows it.
    case replaced(inode: UInt64)
    /// A version fixed for an inode the kernel already held.
    case pinned(inode: UInt64, file: InodeTable.FileVersion)
    case removed(inode: UInt64)
    /// Inode numbers up to this one may have been shown (in directory listings): never reuse them.
    case reserved(upTo: UInt64)

    private enum Tag: UInt8 {
        case node = 1
        case remembered, forgot, detached, replaced, pinned, removed, reserved
    }

    var encoded: [UInt8] {
        var writer = ByteWriter()
        writer.byte(tag.rawValue)
        switch self {
        case .node(let inode, let node, let shown):
            writer.integer(inode)
            writer.integer(node.lookups)
            writer.byte((shown ? 1 : 0) | (node.replaced ? 2 : 0))
            writer.key(node.key)
            writer.optional(node.object) { writer, object in
                writer.source(object.source)
                writer.reference(object.reference)
            }
            writer.optional(node.file) { $0.file($1) }
        // One inode number each (for `reserved`, the highest that may have been shown).
        case .remembered(let number), .detached(let number), .replaced(let number), .removed(let number),
            .reserved(let number):
            writer.integer(number)
        case .forgot(let inode, let count):
            writer.integer(inode)
            writer.integer(count)
        case .pinned(let inode, let file):
            writer.integer(inode)
            writer.file(file)
        }
        return writer.bytes
    }

    private var tag: Tag {
        switch self {
        case .node: .node
        case .remembered: .remembered
        case .forgot: .forgot
        case .detached: .detached
        case .replaced: .replaced
        case .pinned: .pinned
        case .removed: .removed
        case .reserved: .reserved
        }
    }

    /// `sources` holds the sources of the records read so far; a node's source is shared with
    /// the equal one there.
    init(decoding bytes: [UInt8], sources: inout Set<SourceID>) throws(JournalError) {
        do throws(ByteReader.Malformed) {
            try self.init(reading: bytes, sources: &sources)
        } catch {
            throw JournalError("an inode record is damaged: \(error.description)")
        }
    }

    private init(reading bytes: [UInt8], sources: inout Set<SourceID>) throws(ByteReader.Malformed) {
        var reader = ByteReader(bytes)
        guard let tag = Tag(rawValue: try reader.byte()) else {
            throw ByteReader.Malformed(description: "an unknown kind of record")
        }
        switch tag {
        case .node:
            let inode = try reader.integer()
            let lookups = try reader.integer()
            let flags = try reader.byte()
            let key = try reader.key()
            let object = try reader.optional { reader throws(ByteReader.Malformed) in
                InodeTable.ObjectIdentity(
                    source: try reader.source(interning: &sources), reference: try reader.reference())
            }
            let file = try reader.optional { reader throws(ByteReader.Malformed) in try reader.file() }
            var node = InodeTable.Node(key: key, lookups: lookups, object: object, file: file)
            node.replaced = flags & 2 != 0
            self = .node(inode: inode, node: node, shown: flags & 1 != 0)
        case .remembered: self = .remembered(inode: try reader.integer())
        case .forgot: self = .forgot(inode: try reader.integer(), count: try reader.integer())
        case .detached: self = .detached(inode: try reader.integer())
        case .replaced: self = .replaced(inode: try reader.integer())
        case .pinned: self = .pinned(inode: try reader.integer(), file: try reader.file())
        case .removed: self = .removed(inode: try reader.integer())
        case .reserved: self = .reserved(upTo: try reader.integer())
        }
        guard reader.isAtEnd else { throw ByteReader.Malformed(description: "the record is longer than its fields") }
    }
}

// MARK: Binary form of the table's types

extension ByteWriter {
    mutating func key(_ key: NodeKey) {
        optional(key.view) { $0.string($1) }
        switch key.path {
        case .viewsRoot: byte(0)
        case .viewRoot: byte(1)
        case .collection(let kind):
            byte(2)
            self.kind(kind)
        case .latest(let kind, let name):
            byte(3)
            self.kind(kind)
            string(name)
        case .versionsRoot(let kind):
            byte(4)
            self.kind(kind)
        case .versionList(let kind, let name):
            byte(5)
            self.kind(kind)
            string(name)
        case .version(let kind, let name, let version):
            byte(6)
            self.kind(kind)
            string(name)
            string(version)
        case .tlsRoot: byte(7)
        case .tlsBundle(let name):
            byte(8)
            string(name)
        case .tlsFile(let name, let part):
            byte(9)
            string(name)
            byte(UInt8(TLSPart.allCases.firstIndex(of: part)!))
        case .volumeDirectory(let components):
            byte(10)
            strings(components)
        case .volumeFile(let components):
            byte(11)
            strings(components)
        }
    }

    mutating func file(_ file: InodeTable.FileVersion) {
        string(file.version)
        switch file.rendering {
        case .standard(let format, let encoding):
            byte(0)
            byte(format == .pem ? 0 : 1)
            optional(encoding) { $0.byte(UInt8(ObjectEncoding.allCases.firstIndex(of: $1)!)) }
        case .tls(let part):
            byte(1)
            byte(UInt8(TLSPart.allCases.firstIndex(of: part)!))
        }
        integer(UInt64(file.size))
        signed(file.modified)
        signed(file.created)
    }
}

extension ByteReader {
    mutating func key() throws(Malformed) -> NodeKey {
        let view = try optional { reader throws(Malformed) in try reader.string() }
        let path: NodePath
        switch try byte() {
        case 0: path = .viewsRoot
        case 1: path = .viewRoot
        case 2: path = .collection(try kind())
        case 3: path = .latest(try kind(), try string())
        case 4: path = .versionsRoot(try kind())
        case 5: path = .versionList(try kind(), try string())
        case 6: path = .version(try kind(), try string(), try string())
        case 7: path = .tlsRoot
        case 8: path = .tlsBundle(try string())
        case 9: path = .tlsFile(try string(), try part())
        case 10: path = .volumeDirectory(try strings())
        case 11: path = .volumeFile(try strings())
        default: throw Malformed(description: "an unknown kind of path")
        }
        return NodeKey(view: view, path: path)
    }

    mutating func part() throws(Malformed) -> TLSPart {
        let index = Int(try byte())
        guard index < TLSPart.allCases.count else { throw Malformed(description: "an unknown TLS file") }
        return TLSPart.allCases[index]
    }

    mutating func file() throws(Malformed) -> InodeTable.FileVersion {
        let version = try string()
        let rendering: Rendering
        switch try byte() {
        case 0:
            let format: CertificateFormat = try byte() == 0 ? .pem : .pfx
            let encoding = try optional { reader throws(Malformed) -> ObjectEncoding in
                let index = Int(try reader.byte())
                guard index < ObjectEncoding.allCases.count else { throw Malformed(description: "an unknown encoding") }
                return ObjectEncoding.allCases[index]
            }
            rendering = .standard(format: format, encoding: encoding)
        case 1: rendering = .tls(try part())
        default: throw Malformed(description: "an unknown rendering")
        }
        return InodeTable.FileVersion(
            version: version, rendering: rendering, size: Int(try integer()), modified: try signed(),
            created: try signed())
    }
}
