import CFuse
import Dispatch
import Glibc
import Logging
import Synchronization
import VaultFS

/// A mounted filesystem: the libfuse session, the thread reading kernel requests, and the
/// notifier that tells the kernel when content changed. Create it to mount, or to adopt a
/// connection another process mounted; `run()` serves until the filesystem is unmounted (by
/// `unmount()`, a signal handler calling it, or `umount`) or `stopServing()` hands it on.
public final class FuseMount: Sendable {
    public let mountpoint: String
    private let session: Session
    private let dispatcher: FuseDispatcher
    /// Adopted connections were mounted by another process: libfuse does not know the mountpoint.
    private let adopted: Bool
    private let stopping = Atomic(false)
    private let looping = Atomic(false)
    private let notifications = DispatchQueue(label: "akvfs.fuse.notify")
    private let logger = Logger(label: "akvfs.fuse")

    /// How `run()` ended.
    public enum Ending: Sendable, Equatable {
        /// The filesystem was unmounted.
        case unmounted
        /// `stopServing()` ended it; the connection stays up for another process to serve.
        case stopped
    }

    /// Owns the C session and the argv it was built from; freed in deinit.
    private final class Session: @unchecked Sendable {
        // @unchecked: the pointer is used by the loop thread, the notifier queue and unmount;
        // libfuse allows these concurrently, and `live` guards use after destroy.
        let pointer: OpaquePointer
        let arguments: [UnsafeMutablePointer<CChar>?]
        let live = Mutex(true)

        init(pointer: OpaquePointer, arguments: [UnsafeMutablePointer<CChar>?]) {
            self.pointer = pointer
            self.arguments = arguments
        }

        deinit {
            fuse_session_destroy(pointer)
            arguments.forEach { free($0) }
        }
    }

    /// Mounts the filesystem at `mountpoint`.
    public convenience init(filesystem: VaultFileSystem, mountpoint: String, options: MountOptions) throws(FuseError) {
        try MountpointCheck.prepare(mountpoint)
        try self.init(filesystem: filesystem, mountpoint: mountpoint, options: options, adopting: nil)
        logger.info("mounted", metadata: ["mountpoint": "\(mountpoint)", "options": "\(options.optionString)"])
    }

    /// Serves a connection another process mounted at `mountpoint` (a handoff or a restart
    /// after a crash). The descriptor is this object's from now on.
    public convenience init(filesystem: VaultFileSystem, adopting connection: FuseConnection, mountpoint: String)
        throws(FuseError)
    {
        try self.init(filesystem: filesystem, mountpoint: mountpoint, options: MountOptions(), adopting: connection)
        logger.info("took over the mount", metadata: ["mountpoint": "\(mountpoint)"])
    }

    private init(
        filesystem: VaultFileSystem, mountpoint: String, options: MountOptions, adopting connection: FuseConnection?
    ) throws(FuseError) {
        self.mountpoint = mountpoint
        adopted = connection != nil
        let channel = try FuseChannel(adopting: connection?.initRequest)
        dispatcher = FuseDispatcher(filesystem: filesystem, channel: channel)

        var arguments: [UnsafeMutablePointer<CChar>?] = [strdup("akvfs"), strdup("-o"), strdup(options.optionString)]
        var ops = FuseOperations.table()
        let userData = Unmanaged.passUnretained(dispatcher).toOpaque()
        let created: OpaquePointer? = arguments.withUnsafeMutableBufferPointer { argv in
            var fuseArguments = cfuse_args_init(Int32(argv.count), argv.baseAddress)
            return cfuse_session_new(&fuseArguments, &ops, userData)
        }
        guard let pointer = created else {
            arguments.forEach { free($0) }
            if let connection { close(connection.descriptor) }
            throw FuseError("libfuse refused the session options '\(options.optionString)'")
        }
        session = Session(pointer: pointer, arguments: arguments)
        let descriptor: Int32
        if let connection {
            descriptor = connection.descriptor
        } else {
            guard fuse_session_mount(pointer, mountpoint) == 0 else {
                throw FuseError(
                    "cannot mount at \(mountpoint): the kernel refused (see the libfuse message above). Mounting needs root or fusermount3, /dev/fuse, and an existing empty directory."
                )
            }
            descriptor = fuse_session_fd(pointer)
        }
        var io = FuseOperations.customIO()
        guard fuse_session_custom_io(pointer, &io, descriptor) == 0 else {
            throw FuseError("libfuse refused the session's own reads and writes on /dev/fuse")
        }
    }

    /// The /dev/fuse descriptor (this object's; pass a duplicate).
    public var descriptor: Int32 { fuse_session_fd(session.pointer) }

    /// The connection, for another process to adopt: the descriptor stays this object's (pass a
    /// duplicate); nil until the kernel's INIT has arrived.
    public var connection: FuseConnection? {
        dispatcher.channel.initRequest.map {
            FuseConnection(descriptor: fuse_session_fd(session.pointer), initRequest: $0)
        }
    }

    /// Called once with the kernel's INIT request when a fresh mount receives it.
    public func onInit(_ handler: @escaping @Sendable ([UInt8]) -> Void) {
        dispatcher.channel.onInit(handler)
    }

    /// Serves requests on a dedicated thread until the filesystem is unmounted or `stopServing()`
    /// is called. Content changes reported by the filesystem are passed on to the kernel meanwhile.
    @discardableResult
    public func run() async throws(FuseError) -> Ending {
        let notifier = startNotifier()
        defer { notifier.cancel() }
        let session = self.session
        // The loop blocks in poll(2) on /dev/fuse, so it gets its own thread, never one of
        // Swift's cooperative pool.
        looping.store(true, ordering: .releasing)
        let status = await DedicatedThread.run { fuse_session_loop(session.pointer) }
        looping.store(false, ordering: .releasing)
        if stopping.load(ordering: .acquiring) {
            logger.info(
                "stopped serving; the mount stays up for the next process", metadata: ["mountpoint": "\(mountpoint)"])
            return .stopped
        }
        session.live.withLock { $0 = false }
        if status < 0 {
            // The loop failed while still mounted; otherwise the mount is already gone.
            unmount()
            throw FuseError("the FUSE session at \(mountpoint) failed: \(String(cString: strerror(-status)))")
        }
        logger.info("unmounted", metadata: ["mountpoint": "\(mountpoint)"])
        return .unmounted
    }

    /// Stops reading requests and waits until every request read has been answered (at most
    /// `limit`), leaving the mount up: the next process to serve the connection gets requests
    /// from a clean cut. True when nothing is left unanswered. `run()` returns `.stopped`.
    public func stopServing(within limit: Duration) async -> Bool {
        stopping.store(true, ordering: .releasing)
        fuse_session_exit(session.pointer)
        dispatcher.channel.wakeReader()
        let deadline = ContinuousClock.now + limit
        while dispatcher.channel.unansweredRequests > 0 || looping.load(ordering: .acquiring),
            ContinuousClock.now < deadline
        {
            try? await Task.sleep(for: .milliseconds(2))
        }
        return dispatcher.channel.unansweredRequests == 0
    }

    /// Serves again after `stopServing()` (a handoff that failed); call `run()` next.
    public func resumeServing() {
        fuse_session_reset(session.pointer)
        dispatcher.channel.drainWake()
        stopping.store(false, ordering: .releasing)
    }

    /// Asks the kernel to send again the requests a dead daemon read but never answered (Linux
    /// 6.9 and later; earlier kernels keep those callers waiting). True when it was asked.
    public func resendLostRequests() -> Bool {
        guard let connection, connection.kernelResendsLostRequests else { return false }
        // A notification is a fuse_out_header alone: len, error (the notify code), unique 0.
        var header = [UInt8](repeating: 0, count: 16)
        header.withUnsafeMutableBytes { bytes in
            bytes.storeBytes(of: UInt32(16), toByteOffset: 0, as: UInt32.self)
            bytes.storeBytes(of: FuseProtocol.notifyResend, toByteOffset: 4, as: Int32.self)
        }
        return write(connection.descriptor, header, 16) == 16
    }

    /// Asks the kernel to detach the mount; `run()` then returns. Safe from any thread and repeatable.
    public func unmount() {
        fuse_session_exit(session.pointer)
        // Detached before the loop is woken, since the loop ending marks the session gone.
        if session.live.withLock({ $0 }) {
            // umount2 as root; libfuse's fusermount3 path otherwise. Both are lazy (MNT_DETACH),
            // so processes with files open do not keep the daemon from exiting. libfuse knows only
            // the mountpoints it mounted itself.
            if adopted {
                try? MountpointCheck.detach(mountpoint)
            } else {
                fuse_session_unmount(session.pointer)
            }
        }
        dispatcher.channel.wakeReader()
    }

    private func startNotifier() -> Task<Void, Never> {
        let session = self.session
        let queue = notifications
        let logger = self.logger
        let filesystem = dispatcher.filesystem
        let order = dispatcher.channel.order
        let invalidations = filesystem.invalidations
        return Task.detached {
            for await invalidation in invalidations {
                // Never from a request handler (the kernel may wait on the request being answered):
                // from our own queue, after the replies.
                queue.async {
                    session.live.withLock { live in
                        guard live else { return }
                        switch invalidation {
                        case .inode(let inode):
                            let result = fuse_lowlevel_notify_inval_inode(session.pointer, fuse_ino_t(inode), 0, 0)
                            // ENOENT: the kernel no longer knows the inode, nothing to drop.
                            if result != 0 && result != -ENOENT {
                                logger.debug("kernel invalidation of inode \(inode) returned \(result)")
                            }
                        case .entry(let parent, let name, let inode):
                            // notify_delete rather than inval_entry: watchers of the old inode
                            // (inotify, fsnotify) then hear that it was deleted.
                            order.waitForRepliesInFlight()
                            let result = fuse_lowlevel_notify_delete(
                                session.pointer, fuse_ino_t(parent), fuse_ino_t(inode), name, name.utf8.count)
                            // ENOENT: the kernel has no such name, or it shows another inode already.
                            if result != 0 && result != -ENOENT {
                                logger.debug("kernel invalidation of \(name) in inode \(parent) returned \(result)")
                            }
                        }
                        filesystem.invalidationDelivered(invalidation)
                    }
                }
            }
        }
    }
}

/// Before mounting: the mountpoint must be an existing directory. A dead mount left by a crashed
/// daemon ("Transport endpoint is not connected") is cleared so the new mount takes its place; a
/// live FUSE mount there is an error (two daemons must not stack).
enum MountpointCheck {
    static func prepare(_ mountpoint: String) throws(FuseError) {
        if MountTable.isDisconnected(mountpoint) {
            try clearDeadMount(mountpoint)
        } else if let existing = MountTable.read().last(where: { $0.mountpoint == MountTable.canonical(mountpoint) }),
            existing.filesystemType.hasPrefix("fuse")
        {
            throw FuseError(
                "\(mountpoint) is already a live FUSE mount; unmount it first (akvfs unmount \(mountpoint)).")
        }
        var status = stat()
        guard stat(mountpoint, &status) == 0 else {
            throw FuseError(
                "mountpoint \(mountpoint): \(String(cString: strerror(errno))). Create it as an empty directory first.")
        }
        guard status.st_mode & S_IFMT == S_IFDIR else {
            throw FuseError("mountpoint \(mountpoint) is not a directory.")
        }
    }

    static func clearDeadMount(_ mountpoint: String) throws(FuseError) {
        Logger(label: "akvfs.fuse").warning(
            "clearing a dead mount at \(mountpoint) (left by a daemon that stopped without unmounting)")
        try detach(mountpoint)
    }

    /// Unmounts lazily: as root with umount2, else through fusermount3.
    static func detach(_ mountpoint: String) throws(FuseError) {
        if geteuid() == 0 {
            if umount2(mountpoint, Int32(MNT_DETACH)) == 0 { return }
            throw FuseError("cannot unmount \(mountpoint): \(String(cString: strerror(errno))).")
        }
        var status: Int32 = 0
        var pid: pid_t = 0
        let arguments: [UnsafeMutablePointer<CChar>?] =
            ["fusermount3", "-u", "-z", mountpoint].map { (text: String) in strdup(text) } + [nil]
        defer { arguments.forEach { free($0) } }
        guard posix_spawnp(&pid, "fusermount3", nil, nil, arguments, environ) == 0, waitpid(pid, &status, 0) == pid,
            status == 0
        else {
            throw FuseError("cannot unmount \(mountpoint); run 'fusermount3 -uz \(mountpoint)'.")
        }
    }
}
