import CFuse
import Glibc
import Logging
import Synchronization
import VaultFS

/// Turns kernel requests into filesystem calls. Callbacks copy their arguments, start a task and
/// return at once; the task replies. Nothing here blocks the FUSE loop thread.
final class FuseDispatcher: Sendable {
    let filesystem: VaultFileSystem
    let channel: FuseChannel
    /// Handles start at a random number, so those of a process that served the mount before
    /// (still open in the kernel after a takeover) rarely collide with this process's.
    private let directories = Mutex<(next: UInt64, listings: [UInt64: DirectoryListing])>(
        (UInt64.random(in: 1...(1 << 48)), [:]))

    private struct DirectoryListing {
        var inode: UInt64
        var entries: [DirectoryEntry]
    }
    private let logger = Logger(label: "akvfs.fuse")

    init(filesystem: VaultFileSystem, channel: FuseChannel) {
        self.filesystem = filesystem
        self.channel = channel
    }

    private func run(_ request: FuseRequest, _ work: @escaping @Sendable (FuseRequest) async throws(Errno) -> Void) {
        Task {
            do throws(Errno) {
                try await work(request)
            } catch {
                request.fail(error)
            }
        }
    }

    func lookup(_ request: FuseRequest, parent: UInt64, name: String) {
        let negativeTimeout = filesystem.configuration.negativeTimeout
        Task {
            do throws(Errno) {
                let reply = try await filesystem.lookup(parent: parent, name: name)
                channel.order.reply { request.entry(self.withCurrentLinks(reply)) }
            } catch  where error == .noEntry {
                request.negativeEntry(timeout: negativeTimeout)
            } catch {
                request.fail(error)
            }
        }
    }

    func forget(_ inode: UInt64, count: UInt64) {
        filesystem.forget(inode, count: count)
    }

    func getattr(_ request: FuseRequest, inode: UInt64) {
        let timeout = filesystem.configuration.metadataTimeout
        run(request) { request throws(Errno) in
            let attributes = try await self.filesystem.attributes(inode)
            self.channel.order.reply { request.attributes(self.withCurrentLinks(attributes), timeout: timeout) }
        }
    }

    /// Attributes with the link count as it is now (see `ReplyOrder`).
    private func withCurrentLinks(_ attributes: FileAttributes) -> FileAttributes {
        var attributes = attributes
        if attributes.type == .regular { attributes.linkCount = filesystem.linkCount(of: attributes.inode) }
        return attributes
    }

    private func withCurrentLinks(_ reply: EntryReply) -> EntryReply {
        var reply = reply
        reply.attributes = withCurrentLinks(reply.attributes)
        return reply
    }

    /// A snapshot of the listing per open directory, so successive readdir calls page through
    /// one consistent list.
    func opendir(_ request: FuseRequest, inode: UInt64, info: fuse_file_info) {
        run(request) { request throws(Errno) in
            let entries = try await self.filesystem.listDirectory(inode)
            let handle = self.directories.withLock { state in
                let handle = state.next
                state.next += 1
                state.listings[handle] = DirectoryListing(inode: inode, entries: entries)
                return handle
            }
            request.open(handle: handle, info: info)
        }
    }

    /// A handle this process did not open (the directory was opened before a takeover, by the
    /// process serving the mount then) gets the listing taken now, and keeps it from then on.
    func readdir(_ request: FuseRequest, inode: UInt64, handle: UInt64, size: Int, offset: Int) {
        if let listing = directories.withLock({ $0.listings[handle] }), listing.inode == inode {
            request.directory(listing.entries, offset: offset, size: size)
            return
        }
        run(request) { request throws(Errno) in
            let entries = try await self.filesystem.listDirectory(inode)
            self.directories.withLock { $0.listings[handle] = DirectoryListing(inode: inode, entries: entries) }
            request.directory(entries, offset: offset, size: size)
        }
    }

    func releasedir(_ request: FuseRequest, handle: UInt64) {
        directories.withLock { _ = $0.listings.removeValue(forKey: handle) }
        request.succeed()
    }

    func read(_ request: FuseRequest, inode: UInt64, size: Int, offset: Int) {
        run(request) { request throws(Errno) in
            try await self.filesystem.read(inode, offset: offset, size: size) { request.bytes($0) }
        }
    }

    func getxattr(_ request: FuseRequest, inode: UInt64, name: String, size: Int) {
        run(request) { request throws(Errno) in
            let value = try await self.filesystem.extendedAttribute(inode, name: name)
            request.extendedAttribute(value, bufferSize: size)
        }
    }

    func listxattr(_ request: FuseRequest, inode: UInt64, size: Int) {
        run(request) { request throws(Errno) in
            let names = try await self.filesystem.extendedAttributeNames(inode)
            let packed = names.flatMap { name -> [UInt8] in Array(name.utf8) + [0] }
            request.extendedAttribute(packed, bufferSize: size)
        }
    }

    func statfs(_ request: FuseRequest) {
        request.statistics(filesystem.statistics())
    }
}
