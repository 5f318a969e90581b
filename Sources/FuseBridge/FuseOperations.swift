import CFuse
import Glibc
import VaultFS

/// The libfuse low-level operations table. Each entry is a plain C function: it finds the
/// dispatcher through the session's user data, copies what it needs (pointer arguments die when
/// the callback returns) and hands over.
enum FuseOperations {
    static func table() -> fuse_lowlevel_ops {
        var ops = fuse_lowlevel_ops()
        ops.lookup = { request, parent, name in
            guard let (dispatcher, reply) = accept(request, "lookup"), let name else { return }
            dispatcher.lookup(reply, parent: UInt64(parent), name: String(cString: name))
        }
        ops.forget = { request, inode, count in
            guard let (dispatcher, reply) = accept(request, "forget") else { return }
            dispatcher.forget(UInt64(inode), count: count)
            reply.none()
        }
        ops.forget_multi = { request, count, forgets in
            guard let (dispatcher, reply) = accept(request, "forget") else { return }
            for index in 0..<count {
                if let forget = forgets?[index] { dispatcher.forget(UInt64(forget.ino), count: forget.nlookup) }
            }
            reply.none()
        }
        ops.getattr = { request, inode, _ in
            guard let (dispatcher, reply) = accept(request, "getattr") else { return }
            dispatcher.getattr(reply, inode: UInt64(inode))
        }
        // Files are never opened by us: ENOSYS once makes the kernel stop sending open and
        // release, and keep page-cache contents between opens (FOPEN_KEEP_CACHE), so warm reads
        // cost what they cost on a local filesystem. Changed content is invalidated explicitly.
        ops.open = { request, _, _ in
            guard let (_, reply) = accept(request, "open") else { return }
            reply.fail(Errno(ENOSYS))
        }
        ops.opendir = { request, inode, info in
            guard let (dispatcher, reply) = accept(request, "opendir"), let info else { return }
            dispatcher.opendir(reply, inode: UInt64(inode), info: info.pointee)
        }
        ops.readdir = { request, inode, size, offset, info in
            guard let (dispatcher, reply) = accept(request, "readdir"), let info else { return }
            dispatcher.readdir(reply, inode: inode, handle: info.pointee.fh, size: size, offset: Int(offset))
        }
        ops.releasedir = { request, _, info in
            guard let (dispatcher, reply) = accept(request, "releasedir"), let info else { return }
            dispatcher.releasedir(reply, handle: info.pointee.fh)
        }
        ops.read = { request, inode, size, offset, _ in
            guard let (dispatcher, reply) = accept(request, "read") else { return }
            dispatcher.read(reply, inode: UInt64(inode), size: size, offset: Int(offset))
        }
        ops.statfs = { request, _ in
            guard let (dispatcher, reply) = accept(request, "statfs") else { return }
            dispatcher.statfs(reply)
        }
        ops.getxattr = { request, inode, name, size in
            guard let (dispatcher, reply) = accept(request, "getxattr"), let name else { return }
            dispatcher.getxattr(reply, inode: UInt64(inode), name: String(cString: name), size: size)
        }
        ops.listxattr = { request, inode, size in
            guard let (dispatcher, reply) = accept(request, "listxattr") else { return }
            dispatcher.listxattr(reply, inode: UInt64(inode), size: size)
        }
        // Read-only: every operation that would change something answers EROFS, whatever the
        // mount options say.
        ops.setattr = { request, _, _, _, _ in readOnly(request, "setattr") }
        ops.mknod = { request, _, _, _, _ in readOnly(request, "mknod") }
        ops.mkdir = { request, _, _, _ in readOnly(request, "mkdir") }
        ops.unlink = { request, _, _ in readOnly(request, "unlink") }
        ops.rmdir = { request, _, _ in readOnly(request, "rmdir") }
        ops.symlink = { request, _, _, _ in readOnly(request, "symlink") }
        ops.rename = { request, _, _, _, _, _ in readOnly(request, "rename") }
        ops.link = { request, _, _, _ in readOnly(request, "link") }
        ops.write = { request, _, _, _, _, _ in readOnly(request, "write") }
        ops.create = { request, _, _, _, _ in readOnly(request, "create") }
        ops.setxattr = { request, _, _, _, _, _ in readOnly(request, "setxattr") }
        ops.removexattr = { request, _, _ in readOnly(request, "removexattr") }
        ops.fallocate = { request, _, _, _, _, _ in readOnly(request, "fallocate") }
        return ops
    }

    /// The session's reads and writes on /dev/fuse go through its `FuseChannel` (libfuse passes
    /// the session's user data, the dispatcher, to these as to the operations).
    static func customIO() -> fuse_custom_io {
        var io = fuse_custom_io()
        io.read = { descriptor, buffer, capacity, userData in
            guard let buffer else { return -1 }
            return channel(userData).read(descriptor, into: buffer, capacity: capacity)
        }
        io.writev = { descriptor, vectors, count, userData in
            guard let vectors else { return -1 }
            return channel(userData).write(descriptor, vectors, count: count)
        }
        return io
    }

}

// Free functions, not static members: a C function pointer may not capture anything, not even
// the enclosing type.

/// The dispatcher (the session's user data) and a reply object for `request`.
private func accept(_ request: fuse_req_t?, _ operation: StaticString) -> (FuseDispatcher, FuseRequest)? {
    guard let request, let userData = fuse_req_userdata(request) else { return nil }
    let dispatcher = Unmanaged<FuseDispatcher>.fromOpaque(userData).takeUnretainedValue()
    return (dispatcher, FuseRequest(request, operation, channel: dispatcher.channel))
}

private func channel(_ userData: UnsafeMutableRawPointer?) -> FuseChannel {
    Unmanaged<FuseDispatcher>.fromOpaque(userData!).takeUnretainedValue().channel
}

private func readOnly(_ request: fuse_req_t?, _ operation: StaticString) {
    guard let (_, reply) = accept(request, operation) else { return }
    reply.fail(.readOnly)
}
