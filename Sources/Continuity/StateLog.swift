import CLinux
import DescriptorPassing
import Glibc
import Synchronization
import VaultFS

/// A daemon's state in a memory-only file (memfd) that outlives the process: a log of records,
/// appended as the state changes, which the next process reads to carry on where this one
/// stopped or died. The file is passed by descriptor (to a keeper, systemd's descriptor store,
/// or a successor) and never reaches a disk.
///
/// Two kinds of content: an append-only stream of records (the inode journal), and keyed
/// values of which the latest counts (the FUSE INIT request, published volumes). Records land
/// in one of two regions; a compaction writes a snapshot into the other region and switches to
/// it in one store, so a reader after a crash always finds one whole region. Only the bytes
/// below the committed length, stored after the bytes themselves, count: a record being
/// written when the process died is not read.
public final class StateLog: InodeJournal, @unchecked Sendable {
    // @unchecked: the mapping is written under `lock` only; the descriptor and sizes are fixed.
    public let descriptor: Int32
    private let base: UnsafeMutableRawPointer
    private let regionCapacity: Int
    private let lock = Mutex(Keyed())

    /// The keyed values held, so a compaction can write them again.
    private struct Keyed {
        var values: [String: [UInt8]] = [:]
        /// A value did not fit: appends stop until a compaction writes everything again.
        var wantsCompaction = false
    }

    static let magic: [UInt8] = Array("AKVFSLG1".utf8)
    /// The layout and record format; a reader refuses any other.
    public static let formatVersion: UInt32 = 1
    static let headerSize = 4096

    private enum Kind: UInt8 {
        case record = 1
        case value = 2
        case removal = 3
    }

    /// A new, empty log; each region may grow to `regionCapacity` bytes (memory is used only as
    /// it is written).
    public init(regionCapacity: Int = 64 << 20) throws(ContinuityError) {
        let descriptor = clinux_memfd("akvfs-state", Int64(Self.headerSize + 2 * regionCapacity))
        guard descriptor >= 0 else {
            throw ContinuityError("cannot create the state log: \(String(cString: strerror(errno)))")
        }
        self.descriptor = descriptor
        self.regionCapacity = regionCapacity
        base = try Self.map(descriptor, size: Self.headerSize + 2 * regionCapacity)
        Self.magic.withUnsafeBytes { base.copyMemory(from: $0.baseAddress!, byteCount: 8) }
        base.storeBytes(of: Self.formatVersion, toByteOffset: 8, as: UInt32.self)
        base.storeBytes(of: UInt64(regionCapacity), toByteOffset: 16, as: UInt64.self)
    }

    /// The log another process wrote, from its descriptor (which this object then owns).
    public init(adopting descriptor: Int32) throws(ContinuityError) {
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_size >= Self.headerSize else {
            close(descriptor)
            throw ContinuityError("the state log handed over is not a state log (too small)")
        }
        let size = Int(status.st_size)
        let mapped: UnsafeMutableRawPointer
        do {
            mapped = try Self.map(descriptor, size: size)
        } catch {
            close(descriptor)
            throw error
        }
        let magic = Array(UnsafeRawBufferPointer(start: mapped, count: 8))
        let version = mapped.load(fromByteOffset: 8, as: UInt32.self)
        let capacity = Int(mapped.load(fromByteOffset: 16, as: UInt64.self))
        guard magic == Self.magic, version == Self.formatVersion, Self.headerSize + 2 * capacity == size else {
            munmap(mapped, size)
            close(descriptor)
            throw ContinuityError(
                "the state log handed over has format \(magic == Self.magic ? "version \(version)" : "unknown"); this akvfs reads version \(Self.formatVersion)"
            )
        }
        self.descriptor = descriptor
        base = mapped
        regionCapacity = capacity
    }

    deinit {
        munmap(base, Self.headerSize + 2 * regionCapacity)
        close(descriptor)
    }

    private static func map(_ descriptor: Int32, size: Int) throws(ContinuityError) -> UnsafeMutableRawPointer {
        let mapped = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, 0)
        guard let mapped, mapped != MAP_FAILED else {
            throw ContinuityError("cannot map the state log: \(String(cString: strerror(errno)))")
        }
        return mapped
    }

    // MARK: Header

    private var active: Int {
        get { Int(base.load(fromByteOffset: 12, as: UInt32.self)) }
        set { base.storeBytes(of: UInt32(newValue), toByteOffset: 12, as: UInt32.self) }
    }

    private func committed(_ region: Int) -> Int {
        Int(base.load(fromByteOffset: 24 + 8 * region, as: UInt64.self))
    }

    private func setCommitted(_ region: Int, _ length: Int) {
        // The bytes first, then the length that makes them count.
        atomicMemoryFence(ordering: .releasing)
        base.storeBytes(of: UInt64(length), toByteOffset: 24 + 8 * region, as: UInt64.self)
    }

    private func regionStart(_ region: Int) -> UnsafeMutableRawPointer {
        base + Self.headerSize + region * regionCapacity
    }

    /// Bytes in use in the active region.
    public var size: Int { lock.withLock { _ in committed(active) } }

    // MARK: Writing

    /// Appends a record to the stream. False when the region is full: the writer then calls
    /// `compact` with a snapshot.
    public func append(_ record: [UInt8]) -> Bool {
        lock.withLock { keyed in !keyed.wantsCompaction && write(.record, record, into: active) }
    }

    /// Sets (or with nil removes) a keyed value; the latest one written counts. False when the
    /// region is full: the value is kept and written by the next `compact`, which the caller
    /// should bring about.
    @discardableResult
    public func set(_ key: String, _ value: [UInt8]?) -> Bool {
        lock.withLock { keyed in
            keyed.values[key] = value
            guard write(value == nil ? .removal : .value, Self.keyedPayload(key, value), into: active) else {
                keyed.wantsCompaction = true
                return false
            }
            return true
        }
    }

    /// Replaces the stream with `records` (a snapshot of what they describe) and writes the keyed
    /// values again, in the other region; then switches to it. When they do not fit, the log is
    /// marked unusable: a later takeover refuses it rather than trust half a state.
    public func compact(_ records: [[UInt8]]) {
        lock.withLock { keyed in
            let target = 1 - active
            setCommitted(target, 0)
            let fits =
                keyed.values.allSatisfy { write(.value, Self.keyedPayload($0.key, $0.value), into: target) }
                && records.allSatisfy { write(.record, $0, into: target) }
            guard fits else {
                base.storeBytes(of: UInt32(1), toByteOffset: 40, as: UInt32.self)
                return
            }
            atomicMemoryFence(ordering: .releasing)
            active = target
            keyed.wantsCompaction = false
            // The old region's memory goes back to the kernel.
            _ = clinux_punch_hole(
                descriptor, Int64(Self.headerSize + (1 - target) * regionCapacity), Int64(regionCapacity))
            setCommitted(1 - target, 0)
        }
    }

    /// A compaction did not fit: what the log holds is not the whole state.
    public var isOverflowed: Bool { base.load(fromByteOffset: 40, as: UInt32.self) != 0 }

    /// Appends one entry ([length][kind][payload]) to `region` and commits it.
    private func write(_ kind: Kind, _ payload: [UInt8], into region: Int) -> Bool {
        let start = committed(region)
        let needed = 5 + payload.count
        guard start + needed <= regionCapacity else { return false }
        let target = regionStart(region) + start
        target.storeBytes(of: UInt32(payload.count), as: UInt32.self)
        target.storeBytes(of: kind.rawValue, toByteOffset: 4, as: UInt8.self)
        payload.withUnsafeBytes { bytes in
            if let source = bytes.baseAddress { (target + 5).copyMemory(from: source, byteCount: payload.count) }
        }
        setCommitted(region, start + needed)
        return true
    }

    private static func keyedPayload(_ key: String, _ value: [UInt8]?) -> [UInt8] {
        var payload: [UInt8] = []
        withUnsafeBytes(of: UInt32(key.utf8.count)) { payload.append(contentsOf: $0) }
        payload.append(contentsOf: key.utf8)
        payload.append(contentsOf: value ?? [])
        return payload
    }

    // MARK: Reading

    /// What the log holds: the stream of records in order, and the keyed values.
    public struct Contents: Sendable {
        public var records: [[UInt8]] = []
        public var values: [String: [UInt8]] = [:]
    }

    /// Reads the active region; the keyed values read are also kept for later compactions.
    public func contents() throws(ContinuityError) -> Contents {
        try lock.withLock { keyed throws(ContinuityError) in
            guard !isOverflowed else {
                throw ContinuityError(
                    "the state log overflowed (more than \(regionCapacity >> 20) MiB of state); it cannot be taken over"
                )
            }
            var contents = Contents()
            let region = active
            let length = committed(region)
            guard region <= 1, length <= regionCapacity else {
                throw ContinuityError("the state log's header is damaged")
            }
            let bytes = UnsafeRawBufferPointer(start: regionStart(region), count: length)
            var offset = 0
            while offset < length {
                guard length - offset >= 5 else { throw ContinuityError("the state log ends inside an entry") }
                let count = Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
                let kind = Kind(rawValue: bytes[offset + 4])
                guard offset + 5 + count <= length, let kind else {
                    throw ContinuityError("the state log has a damaged entry")
                }
                let payload = Array(bytes[(offset + 5)..<(offset + 5 + count)])
                offset += 5 + count
                switch kind {
                case .record:
                    contents.records.append(payload)
                case .value, .removal:
                    guard payload.count >= 4 else { throw ContinuityError("the state log has a damaged value") }
                    let keyLength = Int(payload.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) })
                    guard 4 + keyLength <= payload.count else {
                        throw ContinuityError("the state log has a damaged value")
                    }
                    let key = String(decoding: payload[4..<(4 + keyLength)], as: UTF8.self)
                    contents.values[key] = kind == .value ? Array(payload[(4 + keyLength)...]) : nil
                }
            }
            keyed.values = contents.values
            return contents
        }
    }
}
