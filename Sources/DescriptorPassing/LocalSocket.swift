import CLinux
import Glibc

/// A Unix sequenced-packet socket between root processes of this node, carrying messages with
/// descriptors (SCM_RIGHTS). Each end checks that the other runs as root (SO_PEERCRED) before
/// anything is exchanged: only root may hand a mount over or take one back.
public final class LocalSocket: @unchecked Sendable {
    // @unchecked: the descriptor is fixed; each socket is used by one task at a time.
    public let descriptor: Int32

    /// One message: bytes, and descriptors this process owns once received.
    public struct Message: Sendable {
        public var bytes: [UInt8]
        public var descriptors: [Int32]

        public init(_ text: String, descriptors: [Int32] = []) {
            bytes = Array(text.utf8)
            self.descriptors = descriptors
        }

        public init(bytes: [UInt8], descriptors: [Int32]) {
            self.bytes = bytes
            self.descriptors = descriptors
        }

        public var text: String { String(decoding: bytes, as: UTF8.self) }
    }

    static let largestMessage = 1 << 20

    private init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// Connects to the socket at `path`; nil when nothing listens there.
    public static func connect(to path: String) throws(ContinuityError) -> LocalSocket? {
        let socket = try makeSocket()
        let result = withAddress(path) { address, length in Glibc.connect(socket.descriptor, address, length) }
        guard result == 0 else {
            if errno == ENOENT || errno == ECONNREFUSED { return nil }
            throw ContinuityError("cannot connect to \(path): \(String(cString: strerror(errno)))")
        }
        try socket.requireRootPeer()
        return socket
    }

    /// A listening socket at `path`, replacing a stale socket file there; the file is 0600 and
    /// the directories this process creates for it are 0700.
    public static func listen(at path: String) throws(ContinuityError) -> LocalSocket {
        // Directories this creates are 0700: root's alone.
        var directory = ""
        for component in path.split(separator: "/").dropLast() {
            directory += "/\(component)"
            if mkdir(directory, 0o700) != 0, errno != EEXIST {
                throw ContinuityError("cannot create \(directory): \(String(cString: strerror(errno)))")
            }
        }
        let socket = try makeSocket()
        unlink(path)
        let previous = umask(0o177)
        let bound = withAddress(path) { address, length in bind(socket.descriptor, address, length) }
        umask(previous)
        guard bound == 0, Glibc.listen(socket.descriptor, 8) == 0 else {
            throw ContinuityError("cannot listen at \(path): \(String(cString: strerror(errno)))")
        }
        return socket
    }

    /// The next connection from a root process; connections from others are closed unanswered.
    /// Nil when the listening socket was shut down.
    public func accept() -> LocalSocket? {
        while true {
            let connection = Glibc.accept(descriptor, nil, nil)
            if connection < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return nil
            }
            _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
            let socket = LocalSocket(descriptor: connection)
            if (try? socket.requireRootPeer()) != nil { return socket }
        }
    }

    /// Ends `accept()` waits and further connections.
    public func shutDown() {
        Glibc.shutdown(descriptor, Int32(SHUT_RDWR))
    }

    public func send(_ message: Message) throws(ContinuityError) {
        let sent = message.bytes.withUnsafeBytes { bytes in
            clinux_send_with_descriptors(
                descriptor, bytes.baseAddress, UInt(bytes.count), message.descriptors, Int32(message.descriptors.count))
        }
        guard sent == message.bytes.count else {
            throw ContinuityError("cannot send to the other process: \(String(cString: strerror(errno)))")
        }
    }

    /// The next message; nil when the other end closed the connection.
    /// The kernel's limit on descriptors in one message (SCM_MAX_FD).
    public static let mostDescriptors = 253

    public func receive() throws(ContinuityError) -> Message? {
        var bytes = [UInt8](repeating: 0, count: Self.largestMessage)
        var descriptors = [Int32](repeating: -1, count: Self.mostDescriptors)
        var count: Int32 = 0
        let received = bytes.withUnsafeMutableBytes { buffer in
            clinux_receive_with_descriptors(
                descriptor, buffer.baseAddress, UInt(buffer.count), &descriptors, Int32(Self.mostDescriptors), &count)
        }
        guard received >= 0 else {
            throw ContinuityError("cannot receive from the other process: \(String(cString: strerror(errno)))")
        }
        if received == 0, count == 0 { return nil }
        return Message(bytes: Array(bytes[0..<received]), descriptors: Array(descriptors[0..<Int(count)]))
    }

    /// Gives up waiting for the other end after `seconds`.
    public func setTimeout(seconds: Int) {
        var limit = timeval(tv_sec: seconds, tv_usec: 0)
        _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    }

    private func requireRootPeer() throws(ContinuityError) {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
        guard clinux_peer_credentials(descriptor, &pid, &uid, &gid) == 0 else {
            throw ContinuityError(
                "cannot read the credentials of the other process: \(String(cString: strerror(errno)))")
        }
        guard uid == 0 else {
            throw ContinuityError("the other process (pid \(pid)) runs as uid \(uid), not root; refused")
        }
    }

    private static func makeSocket() throws(ContinuityError) -> LocalSocket {
        let descriptor = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else {
            throw ContinuityError("cannot create a socket: \(String(cString: strerror(errno)))")
        }
        return LocalSocket(descriptor: descriptor)
    }

    private static func withAddress<Result>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Result)
        -> Result
    {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8.prefix(107))
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }
}
