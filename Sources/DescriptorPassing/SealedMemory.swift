import CLinux
import Glibc

/// Bytes in a sealed memory-only file: handed to another process by descriptor, never written
/// to a disk, and unchangeable once sealed.
public enum SealedMemory {
    /// A sealed memfd holding `bytes`; nil when one cannot be made.
    public static func make(_ bytes: [UInt8], name: String) -> Int32? {
        let descriptor = clinux_memfd(name, Int64(bytes.count))
        guard descriptor >= 0 else { return nil }
        let written = bytes.withUnsafeBytes { buffer -> Bool in
            guard let base = buffer.baseAddress, !buffer.isEmpty else { return true }
            return pwrite(descriptor, base, buffer.count, 0) == buffer.count
        }
        guard written, clinux_seal(descriptor) == 0 else {
            close(descriptor)
            return nil
        }
        return descriptor
    }

    /// What a memfd holds; nil when it cannot be read.
    public static func read(_ descriptor: Int32) -> [UInt8]? {
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_size >= 0, status.st_size < 1 << 32 else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(status.st_size))
        let count = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        guard count == bytes.count else { return nil }
        return bytes
    }
}
