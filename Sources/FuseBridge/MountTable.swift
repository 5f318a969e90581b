import CFuse  // statvfs comes to Swift through the FUSE headers
import Glibc

/// Entries of /proc/self/mountinfo (mountpoint and filesystem type), with octal escapes decoded.
public enum MountTable {
    public struct Entry: Sendable {
        public var mountpoint: String
        public var filesystemType: String
        public var source: String
        /// "major:minor" of the filesystem: for FUSE, which connection serves it.
        public var device: String
    }

    public static func read() -> [Entry] {
        guard let file = fopen("/proc/self/mountinfo", "r") else { return [] }
        defer { fclose(file) }
        var entries: [Entry] = []
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0, let line {
            let fields = String(cString: line).split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            guard let separator = fields.firstIndex(of: "-"), fields.count > separator + 2, fields.count > 4 else {
                continue
            }
            entries.append(
                Entry(
                    mountpoint: unescape(fields[4]), filesystemType: fields[separator + 1],
                    source: unescape(fields[separator + 2]),
                    device: fields[2]))
        }
        return entries
    }

    /// mountinfo writes space, tab, newline and backslash as \040 etc.
    static func unescape(_ text: String) -> String {
        var bytes: [UInt8] = []
        var input = Array(text.utf8)[...]
        while let byte = input.first {
            if byte == UInt8(ascii: "\\"), input.count >= 4,
                let value = UInt8(String(decoding: input.dropFirst().prefix(3), as: UTF8.self), radix: 8)
            {
                bytes.append(value)
                input = input.dropFirst(4)
            } else {
                bytes.append(byte)
                input = input.dropFirst()
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Whether `path` is a FUSE mount whose daemon is gone ("Transport endpoint is not connected").
    /// statvfs always reaches a FUSE daemon, where stat may be answered from cached attributes.
    public static func isDisconnected(_ path: String) -> Bool {
        var filesystem = statvfs()
        guard statvfs(path, &filesystem) != 0 else { return false }
        return errno == ENOTCONN || errno == ECONNABORTED
    }

    /// The absolute, symlink-free form mountinfo uses.
    public static func canonical(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else {
            return path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
