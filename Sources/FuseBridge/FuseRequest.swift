import CFuse
import Glibc
import Logging
import Synchronization
import VaultFS

/// One kernel request awaiting its reply. libfuse lets any thread reply, once; this object makes
/// "once" hold: later replies are ignored, and a request dropped without a reply is answered EIO
/// (with a log line) instead of hanging the process that made it.
final class FuseRequest: @unchecked Sendable {
    // @unchecked: the fuse_req_t handle is only touched by the one reply that wins `claim()`.
    private let request: fuse_req_t
    private let operation: StaticString
    private let channel: FuseChannel
    private let replied = Atomic<Bool>(false)
    private static let logger = Logger(label: "akvfs.fuse")

    init(_ request: fuse_req_t, _ operation: StaticString, channel: FuseChannel) {
        self.request = request
        self.operation = operation
        self.channel = channel
        channel.requestRead()
    }

    deinit {
        if claim() {
            Self.logger.error("no reply was sent for a \(operation) request; answering EIO")
            fuse_reply_err(request, EIO)
            answered()
        }
    }

    /// Whether this reply is the first; the channel counts the request answered once its
    /// reply has been written (a handoff waits for that).
    private func claim() -> Bool {
        replied.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
    }

    private func answered() { channel.requestAnswered() }

    /// Success without data (release, releasedir).
    func succeed() {
        guard claim() else { return }
        defer { answered() }
        fuse_reply_err(request, 0)
    }

    func fail(_ error: Errno) {
        guard claim() else { return }
        defer { answered() }
        fuse_reply_err(request, error.code)
    }

    func entry(_ reply: EntryReply) {
        guard claim() else { return }
        defer { answered() }
        var parameters = fuse_entry_param()
        parameters.ino = fuse_ino_t(reply.attributes.inode)
        parameters.generation = 1
        parameters.attr = StatBuffer.make(reply.attributes)
        parameters.attr_timeout = reply.attributeTimeout
        parameters.entry_timeout = reply.entryTimeout
        fuse_reply_entry(request, &parameters)
    }

    /// "No such name", remembered by the kernel for `timeout` seconds (an entry with inode 0).
    func negativeEntry(timeout: Double) {
        guard claim() else { return }
        defer { answered() }
        var parameters = fuse_entry_param()
        parameters.ino = 0
        parameters.entry_timeout = timeout
        fuse_reply_entry(request, &parameters)
    }

    func attributes(_ attributes: FileAttributes, timeout: Double) {
        guard claim() else { return }
        defer { answered() }
        var buffer = StatBuffer.make(attributes)
        fuse_reply_attr(request, &buffer, timeout)
    }

    func bytes(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { self.bytes($0) }
    }

    /// fuse_reply_buf copies the bytes into the kernel's reply before it returns.
    func bytes(_ buffer: UnsafeBufferPointer<UInt8>) {
        guard claim() else { return }
        defer { answered() }
        _ = fuse_reply_buf(
            request, UnsafeRawPointer(buffer.baseAddress)?.assumingMemoryBound(to: CChar.self), buffer.count)
    }

    /// getxattr and listxattr answer alike: a buffer size of 0 asks only how long the value is,
    /// and a value longer than the caller's buffer is ERANGE.
    func extendedAttribute(_ value: [UInt8], bufferSize: Int) {
        guard bufferSize == 0 else {
            return value.count > bufferSize ? fail(.range) : bytes(value)
        }
        guard claim() else { return }
        defer { answered() }
        fuse_reply_xattr(request, value.count)
    }

    func open(handle: UInt64, info: fuse_file_info) {
        guard claim() else { return }
        defer { answered() }
        var info = info
        info.fh = handle
        fuse_reply_open(request, &info)
    }

    func statistics(_ statistics: FileSystemStatistics) {
        guard claim() else { return }
        defer { answered() }
        var buffer = statvfs()
        buffer.f_bsize = UInt(statistics.blockSize)
        buffer.f_frsize = UInt(statistics.blockSize)
        buffer.f_files = fsfilcnt_t(statistics.files)
        buffer.f_namemax = UInt(statistics.nameMaximum)
        fuse_reply_statfs(request, &buffer)
    }

    func none() {
        guard claim() else { return }
        defer { answered() }
        fuse_reply_none(request)
    }

    /// The directory entries starting at `offset`, packed into at most `size` bytes.
    func directory(_ entries: [DirectoryEntry], offset: Int, size: Int) {
        guard claim() else { return }
        defer { answered() }
        var buffer = [CChar](repeating: 0, count: size)
        var used = 0
        var index = max(0, offset)
        while index < entries.count {
            let entry = entries[index]
            var attributes = stat()
            attributes.st_ino = UInt(entry.inode)
            attributes.st_mode = entry.type == .directory ? S_IFDIR : S_IFREG
            let needed = buffer.withUnsafeMutableBufferPointer { pointer in
                fuse_add_direntry(
                    request, pointer.baseAddress! + used, size - used, entry.name, &attributes, off_t(index + 1))
            }
            guard used + needed <= size else { break }
            used += needed
            index += 1
        }
        buffer.withUnsafeBufferPointer { pointer in
            _ = fuse_reply_buf(request, pointer.baseAddress, used)
        }
    }
}

/// `struct stat` from the filesystem's attributes.
enum StatBuffer {
    static func make(_ attributes: FileAttributes) -> stat {
        var buffer = stat()
        buffer.st_ino = UInt(attributes.inode)
        buffer.st_mode = (attributes.type == .directory ? S_IFDIR : S_IFREG) | mode_t(attributes.permissions)
        buffer.st_nlink = UInt(attributes.linkCount)
        buffer.st_uid = attributes.uid
        buffer.st_gid = attributes.gid
        buffer.st_size = off_t(attributes.size)
        buffer.st_blksize = 4096
        buffer.st_blocks = blkcnt_t((attributes.size + 511) / 512)
        let modified = timespec(tv_sec: Int(attributes.modified), tv_nsec: 0)
        buffer.st_mtim = modified
        buffer.st_ctim = modified
        buffer.st_atim = modified
        return buffer
    }
}
