import CFuse
import Glibc
import Synchronization

/// What a process needs to serve a FUSE connection that another process set up: the /dev/fuse
/// descriptor, and the kernel's INIT request, which the adopting session replays to itself
/// (libfuse insists on seeing INIT; the kernel sends it once per connection).
public struct FuseConnection: Sendable {
    public var descriptor: Int32
    public var initRequest: [UInt8]

    public init(descriptor: Int32, initRequest: [UInt8]) {
        self.descriptor = descriptor
        self.initRequest = initRequest
    }

    /// Whether the kernel re-queues requests a dead daemon read but never answered
    /// (FUSE_HAS_RESEND, Linux 6.9), read from the INIT request's flags.
    public var kernelResendsLostRequests: Bool {
        // fuse_in_header (40 bytes), then fuse_init_in: major, minor, max_readahead, flags, flags2.
        guard initRequest.count >= 40 + 20 else { return false }
        let flags2 = initRequest.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 56, as: UInt32.self) }
        return flags2 & FuseProtocol.hasResendFlags2Bit != 0
    }
}

/// Orders attribute replies against entry notifications: a reply reads an inode's link count
/// and writes it under the shared side; before a "this name is gone" notification (the inode
/// already marked replaced), the exclusive side is taken and let go at once. So a reply that saw
/// the inode still linked reaches the kernel before the notification, and every later reply
/// reads the link count as 0 (a 1 arriving late would undo the unlink, and watchers would never
/// hear IN_DELETE_SELF). The notification itself is written without the lock: the kernel makes
/// it wait for lookups in the same directory, whose replies need the shared side.
final class ReplyOrder: @unchecked Sendable {
    // @unchecked: a pthread read-write lock, used only through the two methods below.
    private let lock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)

    init() {
        lock.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    func reply<Result>(_ body: () -> Result) -> Result {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return body()
    }

    /// Returns once every reply being computed or written has reached the kernel.
    func waitForRepliesInFlight() {
        pthread_rwlock_wrlock(lock)
        pthread_rwlock_unlock(lock)
    }
}

/// Constants of the kernel's FUSE protocol (linux/fuse.h) that Debian 12's headers are too old to have.
enum FuseProtocol {
    static let initOpcode: UInt32 = 26
    /// fuse_notify_code FUSE_NOTIFY_RESEND (protocol 7.40, Linux 6.9).
    static let notifyResend: Int32 = 7
    /// FUSE_HAS_RESEND is bit 39 of the INIT flags, so bit 7 of flags2.
    static let hasResendFlags2Bit: UInt32 = 1 << 7
    /// FUSE_PARALLEL_DIROPS, in the INIT flags.
    static let parallelDirops: UInt32 = 1 << 18
    /// Where the INIT flags are: after fuse_in_header (40 bytes) in the request, and in
    /// fuse_init_in and fuse_init_out both after major, minor and max_readahead.
    static let initRequestFlagsOffset = 52
    static let initReplyFlagsOffset = 12
}

/// The session's reads and writes on /dev/fuse (libfuse's custom I/O): reads wait on the
/// device and on a stop event, so serving can end without unmounting (a handoff); the first
/// request, INIT, is kept; an adopted connection's saved INIT is replayed as the first read and
/// the reply to it swallowed, since the kernel had its answer from the process that mounted.
/// Every request read is counted until answered, so a handoff can wait for the last reply.
final class FuseChannel: @unchecked Sendable {
    // @unchecked: the wake pipe is set once; mutable state is behind the mutex and the atomic.
    /// A pipe whose read end a waiting read polls besides /dev/fuse: a byte written wakes it.
    private let wake: (read: Int32, write: Int32)
    private let state: Mutex<State>
    private let unanswered = Atomic<Int>(0)
    let order = ReplyOrder()

    private struct State {
        var initRequest: [UInt8]?
        var replay: [UInt8]?
        var swallowUnique: UInt64?
        /// The INIT request of a fresh mount, until its reply is written: its id and the flags
        /// the kernel offered.
        var initAwaitingReply: (unique: UInt64, offered: UInt32)?
        var onInit: (@Sendable ([UInt8]) -> Void)?
    }

    /// `adopting`: the INIT request of a connection this process did not mount.
    init(adopting initRequest: [UInt8]?) throws(FuseError) {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw FuseError("cannot create a pipe: \(String(cString: strerror(errno)))") }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        wake = (ends[0], ends[1])
        var initial = State()
        if let initRequest {
            initial.initRequest = initRequest
            initial.replay = initRequest
            initial.swallowUnique = initRequest.count >= 16 ? Self.unique(of: initRequest) : nil
        }
        state = Mutex(initial)
    }

    deinit {
        close(wake.read)
        close(wake.write)
    }

    /// The kernel's INIT request, once it has been read (or from the adopted connection).
    var initRequest: [UInt8]? { state.withLock { $0.initRequest } }

    /// Called once with the INIT request when it arrives on a fresh mount.
    func onInit(_ handler: @escaping @Sendable ([UInt8]) -> Void) {
        state.withLock { $0.onInit = handler }
    }

    /// Makes a read waiting for a request return, so the session loop can see it should end.
    func wakeReader() {
        var byte: UInt8 = 1
        _ = Glibc.write(wake.write, &byte, 1)
    }

    /// Empties the wake pipe, so reads wait for requests again.
    func drainWake() {
        var bytes = [UInt8](repeating: 0, count: 64)
        let flags = fcntl(wake.read, F_GETFL)
        _ = fcntl(wake.read, F_SETFL, flags | O_NONBLOCK)
        while Glibc.read(wake.read, &bytes, 64) > 0 {}
        _ = fcntl(wake.read, F_SETFL, flags)
    }

    func requestRead() { unanswered.add(1, ordering: .relaxed) }
    func requestAnswered() { unanswered.subtract(1, ordering: .relaxed) }
    var unansweredRequests: Int { unanswered.load(ordering: .relaxed) }

    // MARK: I/O, called by libfuse on the session's loop thread (reads) and any thread (writes)

    func read(_ descriptor: Int32, into buffer: UnsafeMutableRawPointer, capacity: Int) -> Int {
        if let replay = state.withLock({ state in
            defer { state.replay = nil }
            return state.replay
        }) {
            guard replay.count <= capacity else {
                errno = EINVAL
                return -1
            }
            replay.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: replay.count) }
            return replay.count
        }
        var waiting = [
            pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0),
        ]
        while poll(&waiting, 2, -1) < 0 {
            guard errno == EINTR else { return -1 }
        }
        if waiting[1].revents != 0 {
            errno = EINTR
            return -1
        }
        let count = Glibc.read(descriptor, buffer, capacity)
        if count >= 40, Self.opcode(of: buffer) == FuseProtocol.initOpcode {
            let request = Array(UnsafeRawBufferPointer(start: buffer, count: count))
            let offered =
                count >= FuseProtocol.initRequestFlagsOffset + 4
                ? buffer.loadUnaligned(fromByteOffset: FuseProtocol.initRequestFlagsOffset, as: UInt32.self) : 0
            let handler = state.withLock { state -> (@Sendable ([UInt8]) -> Void)? in
                state.initRequest = request
                state.initAwaitingReply = (Self.unique(of: request), offered)
                return state.onInit
            }
            handler?(request)
        }
        return count
    }

    func write(_ descriptor: Int32, _ vectors: UnsafeMutablePointer<iovec>, count: Int32) -> Int {
        let total = (0..<Int(count)).reduce(0) { $0 + vectors[$1].iov_len }
        if count > 0, vectors[0].iov_len >= 16, let base = vectors[0].iov_base {
            let unique = base.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
            let (swallow, initOffered) = state.withLock { state -> (Bool, UInt32?) in
                if let awaiting = state.initAwaitingReply, awaiting.unique == unique {
                    state.initAwaitingReply = nil
                    return (false, awaiting.offered)
                }
                guard let expected = state.swallowUnique, expected == unique else { return (false, nil) }
                state.swallowUnique = nil
                return (true, nil)
            }
            // The kernel had its INIT reply from the process that mounted.
            if swallow { return total }
            if let initOffered { Self.grantParallelDirectoryOperations(vectors, count: count, offered: initOffered) }
        }
        return writev(descriptor, vectors, count)
    }

    /// libfuse 3.14 wants FUSE_CAP_PARALLEL_DIROPS by default but never puts it in its INIT
    /// reply, so the kernel would let one lookup or readdir at a time into each directory: a
    /// first read waiting for Key Vault would hold every other new name and `ls` there behind
    /// it. Lookups here do not depend on each other, so the reply asks for it when offered.
    private static func grantParallelDirectoryOperations(
        _ vectors: UnsafeMutablePointer<iovec>, count: Int32, offered: UInt32
    ) {
        guard offered & FuseProtocol.parallelDirops != 0, count >= 2,
            vectors[1].iov_len >= FuseProtocol.initReplyFlagsOffset + 4, let reply = vectors[1].iov_base
        else { return }
        let flags = reply.loadUnaligned(fromByteOffset: FuseProtocol.initReplyFlagsOffset, as: UInt32.self)
        reply.storeBytes(
            of: flags | FuseProtocol.parallelDirops, toByteOffset: FuseProtocol.initReplyFlagsOffset, as: UInt32.self)
    }

    private static func opcode(of buffer: UnsafeRawPointer) -> UInt32 {
        buffer.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
    }

    private static func unique(of request: [UInt8]) -> UInt64 {
        request.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self) }
    }
}
