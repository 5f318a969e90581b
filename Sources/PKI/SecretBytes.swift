internal import Glibc

/// Secret bytes (a value, a private key, a file's content) in one buffer that is zeroed when its
/// last holder lets go: the cache, a file inode being read, a reply being sent. Immutable once
/// made, so holders share it instead of copying; a class, so "last holder" is a reference count
/// and not a copy-on-write guess.
public final class SecretBytes: @unchecked Sendable, RandomAccessCollection {
    // @unchecked: the buffer is written only in init and freed only in deinit.
    private let storage: UnsafeMutableBufferPointer<UInt8>

    /// Copies `bytes`; the caller wipes its own copy when that matters.
    public init(copying bytes: some Collection<UInt8>) {
        storage = .allocate(capacity: bytes.count)
        _ = storage.initialize(from: bytes)
    }

    /// Copies `bytes` and zeroes the array, which leaves it empty.
    public convenience init(taking bytes: inout [UInt8]) {
        self.init(copying: bytes)
        bytes.wipe()
        bytes.removeAll()
    }

    /// The UTF-8 bytes of `text`. The string itself cannot be zeroed (Swift strings are not
    /// mutable in place), so prefer bytes where the text came from bytes.
    public convenience init(utf8 text: String) {
        self.init(copying: text.utf8)
    }

    deinit {
        zero(UnsafeMutableRawBufferPointer(storage))
        storage.deallocate()
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { storage.count }
    public subscript(position: Int) -> UInt8 { storage[position] }

    /// The bytes, in place, for as long as `body` runs (the caller holds `self` meanwhile).
    public func withUnsafeBufferPointer<Result>(_ body: (UnsafeBufferPointer<UInt8>) throws -> Result) rethrows
        -> Result
    {
        try body(UnsafeBufferPointer(storage))
    }

    public func withContiguousStorageIfAvailable<Result>(_ body: (UnsafeBufferPointer<UInt8>) throws -> Result) rethrows
        -> Result?
    {
        try body(UnsafeBufferPointer(storage))
    }

    public static let empty = SecretBytes(copying: [])
}

extension Array where Element == UInt8 {
    /// Overwrites the bytes with zeros in place: the one way to zero secret bytes held in an array.
    /// Best effort: copies made earlier (a reallocation, or a copy-on-write while the buffer was
    /// shared) are not reached; `SecretBytes` avoids both.
    public mutating func wipe() {
        withUnsafeMutableBytes { zero($0) }
    }
}

extension UnsafeMutableRawBufferPointer {
    /// Zeroes the bytes, for secret bytes another container holds (`Data`'s mutable bytes).
    public func wipe() {
        zero(self)
    }
}

/// Zeroes `bytes` with explicit_bzero: a loop, memset or an initialization to zero of memory that is
/// not read again may be optimized away, explicit_bzero never is.
private func zero(_ bytes: UnsafeMutableRawBufferPointer) {
    guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
    explicit_bzero(base, bytes.count)
}
