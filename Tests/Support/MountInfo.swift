import Glibc

/// The whole of /proc/self/mountinfo. Foundation's `String(contentsOfFile:)` trusts the file's
/// size, which procfs gives as 0, and makes one read: the kernel then returns a page at most, so
/// on a machine with many mounts the newest ones were missing.
public func mountInfo() -> String {
    guard let file = fopen("/proc/self/mountinfo", "r") else { return "" }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = fread(&chunk, 1, chunk.count, file)
        guard count > 0 else { return String(decoding: bytes, as: UTF8.self) }
        bytes += chunk[..<count]
    }
}
