import CLinux
import Glibc

/// Somewhere outside the daemon that keeps descriptors while the daemon restarts, so the FUSE
/// connection and the state log outlive a crash: systemd's file-descriptor store, or an
/// `akvfs-keeper`. Both let go of a descriptor once it reports an error or hang-up (a FUSE
/// connection that was unmounted).
public protocol DescriptorStore: Sendable {
    /// Keeps a duplicate of `descriptor` under `name`, replacing one of that name.
    func store(_ descriptor: Int32, as name: String) throws(ContinuityError)
    func remove(_ name: String)
    /// What is kept, by name; the descriptors are this process's to close.
    func retrieve() throws(ContinuityError) -> [String: Int32]
    /// `retrieve` tells what the store keeps now, not only what it passed at start.
    var canList: Bool { get }
}

// MARK: systemd

/// sd_notify(3): state changes, and descriptors for the unit's store (`FDSTORE=1`, which needs
/// `FileDescriptorStoreMax=` in the unit). Stored descriptors come back to the next start of
/// the unit as LISTEN_FDS, named by LISTEN_FDNAMES.
public enum SystemdNotifier {
    /// Sends `state` (and `descriptors`) to $NOTIFY_SOCKET; false when there is none or it failed.
    @discardableResult
    public static func notify(_ state: String, descriptors: [Int32] = []) -> Bool {
        guard let path = getenv("NOTIFY_SOCKET").map({ String(cString: $0) }), !path.isEmpty else { return false }
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        // An abstract socket: systemd writes its leading NUL as '@'.
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, length) }
        }
        guard connected == 0 else { return false }
        let message = Array(state.utf8)
        let sent = message.withUnsafeBytes {
            clinux_send_with_descriptors(
                descriptor, $0.baseAddress, UInt($0.count), descriptors, Int32(descriptors.count))
        }
        return sent == message.count
    }

    public static var isActive: Bool { getenv("NOTIFY_SOCKET") != nil }
}

/// systemd's store for this unit: what `FDSTORE=1` sent survives restarts of the unit (and its
/// crashes, while a restart is pending); it is dropped when the unit stops for good.
public final class SystemdDescriptorStore: DescriptorStore {
    /// The descriptors systemd passed at this start, read once from the environment.
    private let passed: [String: Int32]

    public init() {
        passed = Self.takePassedDescriptors()
    }

    public var canList: Bool { false }

    public func store(_ descriptor: Int32, as name: String) throws(ContinuityError) {
        guard SystemdNotifier.notify("FDSTORE=1\nFDNAME=\(name)", descriptors: [descriptor]) else {
            throw ContinuityError(
                "systemd did not take the descriptor \(name) (is NOTIFY_SOCKET set, and FileDescriptorStoreMax in the unit?)"
            )
        }
    }

    public func remove(_ name: String) {
        SystemdNotifier.notify("FDSTOREREMOVE=1\nFDNAME=\(name)")
    }

    public func retrieve() throws(ContinuityError) -> [String: Int32] { passed }

    /// LISTEN_FDS descriptors start at 3; they are ours only when LISTEN_PID names this
    /// process. The variables are removed so child processes do not take them for theirs.
    private static func takePassedDescriptors() -> [String: Int32] {
        defer {
            for variable in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] { unsetenv(variable) }
        }
        guard let pid = getenv("LISTEN_PID").flatMap({ Int32(String(cString: $0)) }), pid == getpid(),
            let count = getenv("LISTEN_FDS").flatMap({ Int(String(cString: $0)) }), count > 0, count < 1024
        else { return [:] }
        let names =
            getenv("LISTEN_FDNAMES").map {
                String(cString: $0).split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            } ?? []
        var passed: [String: Int32] = [:]
        for index in 0..<count {
            let descriptor = Int32(3 + index)
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
            let name = index < names.count ? names[index] : "unknown"
            if let duplicate = passed[name] { close(duplicate) }
            passed[name] = descriptor
        }
        return passed
    }
}

// MARK: akvfs-keeper

/// An `akvfs-keeper` listening on a socket (see `Keeper`).
public final class KeeperDescriptorStore: DescriptorStore {
    public let socketPath: String

    public init(socketPath: String) {
        self.socketPath = socketPath
    }

    public var canList: Bool { true }

    public func store(_ descriptor: Int32, as name: String) throws(ContinuityError) {
        let answer = try request(LocalSocket.Message("STORE \(name)", descriptors: [descriptor]))
        guard answer.text == "OK" else {
            throw ContinuityError("the keeper at \(socketPath) did not keep \(name): \(answer.text)")
        }
    }

    public func remove(_ name: String) {
        _ = try? request(LocalSocket.Message("REMOVE \(name)"))
    }

    public func retrieve() throws(ContinuityError) -> [String: Int32] {
        let answer = try request(LocalSocket.Message("LIST"))
        let lines = answer.text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let names = Array(lines.dropFirst())
        guard lines.first == "KEPT", names.count == answer.descriptors.count else {
            answer.descriptors.forEach { close($0) }
            throw ContinuityError(
                "the keeper at \(socketPath) answered LIST with \(lines.first ?? "nothing") and \(names.count) names for \(answer.descriptors.count) descriptors; is it an akvfs-keeper of this version?"
            )
        }
        return Dictionary(zip(names, answer.descriptors)) { first, second in
            close(second)
            return first
        }
    }

    private func request(_ message: LocalSocket.Message) throws(ContinuityError) -> LocalSocket.Message {
        guard let socket = try LocalSocket.connect(to: socketPath) else {
            throw ContinuityError("no keeper listens at \(socketPath): start akvfs-keeper --socket \(socketPath)")
        }
        socket.setTimeout(seconds: 10)
        try socket.send(message)
        guard let answer = try socket.receive() else {
            throw ContinuityError("the keeper at \(socketPath) closed the connection")
        }
        return answer
    }
}
