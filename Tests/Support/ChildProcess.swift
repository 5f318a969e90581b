import Dispatch
import Foundation
import Glibc
import Synchronization

/// A child process started with posix_spawn and reaped with waitpid on its own pid.
///
/// Tests use this instead of Foundation's Process: Process learns of a child's exit through a
/// SIGCHLD handler that swift-subprocess (linked into the same test binary by AzureIdentity) can
/// take over, after which `waitUntilExit` spins forever.
public final class ChildProcess: Sendable {
    public enum Output: Sendable {
        case null
        case pipe
        case file(String)
    }

    public let pid: pid_t
    /// The read end when stdout was `.pipe`.
    public let standardOutput: Int32?
    /// The exit code (or 128 + signal) and whether the kernel wrote a core dump, once reaped.
    private let ending = Mutex<(code: Int32, dumpedCore: Bool)?>(nil)

    /// `inheriting` descriptors become the child's 3, 4, … (as systemd passes LISTEN_FDS).
    public static func spawn(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
        stdout: Output = .null, stderr: Output = .null, inheriting: [Int32] = []
    ) throws(SpawnError) -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        for (index, descriptor) in inheriting.enumerated() {
            posix_spawn_file_actions_adddup2(&actions, descriptor, Int32(3 + index))
        }
        var pipeRead: Int32?
        var pipeWrite: Int32?
        defer { if let pipeWrite { close(pipeWrite) } }
        for (descriptor, output) in [(Int32(1), stdout), (Int32(2), stderr)] {
            switch output {
            case .null:
                posix_spawn_file_actions_addopen(&actions, descriptor, "/dev/null", O_WRONLY, 0)
            case .file(let path):
                posix_spawn_file_actions_addopen(&actions, descriptor, path, O_WRONLY | O_CREAT | O_APPEND, 0o600)
            case .pipe:
                var ends: [Int32] = [0, 0]
                guard pipe(&ends) == 0 else { throw SpawnError(reason: "pipe: \(String(cString: strerror(errno)))") }
                // Not inherited beyond the dup2 below (pipe2 with O_CLOEXEC is a GNU extension Swift does not see).
                _ = fcntl(ends[0], F_SETFD, FD_CLOEXEC)
                _ = fcntl(ends[1], F_SETFD, FD_CLOEXEC)
                posix_spawn_file_actions_adddup2(&actions, ends[1], descriptor)
                pipeRead = ends[0]
                pipeWrite = ends[1]
            }
        }
        // Nothing else of this process reaches the child: a test's open file on a FUSE mount,
        // inherited by a daemon another test starts meanwhile, would keep its inode alive.
        // (glibc 2.34's posix_spawn_file_actions_addclosefrom_np, which Swift's Glibc does not declare.)
        if let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") {
            typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
            _ = unsafeBitCast(symbol, to: AddCloseFrom.self)(&actions, Int32(3 + inheriting.count))
        }
        let argv: [UnsafeMutablePointer<CChar>?] =
            ([executable] + arguments).map { (text: String) in strdup(text) } + [nil]
        let environmentEntries = (environment ?? [:]).map { "\($0.key)=\($0.value)" }
        let envp: [UnsafeMutablePointer<CChar>?] = environmentEntries.map { (text: String) in strdup(text) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let status =
            environment == nil
            ? posix_spawn(&pid, executable, &actions, nil, argv, environ)
            : posix_spawn(&pid, executable, &actions, nil, argv, envp)
        guard status == 0 else {
            if let pipeRead { close(pipeRead) }
            throw SpawnError(reason: "cannot start \(executable): \(String(cString: strerror(status)))")
        }
        return ChildProcess(pid: pid, standardOutput: pipeRead)
    }

    private init(pid: pid_t, standardOutput: Int32?) {
        self.pid = pid
        self.standardOutput = standardOutput
    }

    deinit {
        if let standardOutput { close(standardOutput) }
    }

    /// Blocks until the child exits; its exit code, or 128 + the signal that ended it.
    @discardableResult
    public func wait() -> Int32 {
        if let known = ending.withLock({ $0 }) { return known.code }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { break }
        }
        return record(status)
    }

    /// Whether the child's end wrote a core dump (WCOREDUMP); false while it runs.
    public var dumpedCore: Bool { ending.withLock { $0?.dumpedCore ?? false } }

    /// `wait()` on a thread of its own, leaving Swift's cooperative pool free.
    public func exit() async -> Int32 {
        (try? await onOwnThread { self.wait() }) ?? wait()
    }

    public var isRunning: Bool {
        if ending.withLock({ $0 }) != nil { return false }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        guard result == pid else { return result == 0 }
        record(status)
        return false
    }

    public func signal(_ number: Int32) {
        if isRunning { kill(pid, number) }
    }

    /// Reads stdout to its end (blocking).
    public func readAll() -> [UInt8] {
        guard let descriptor = standardOutput else { return [] }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += buffer[..<count]
        }
        return bytes
    }

    /// Reads one line of stdout (blocking), without the newline; nil at end of output.
    public func readLine() -> String? {
        guard let descriptor = standardOutput else { return nil }
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            let count = read(descriptor, &byte, 1)
            if count < 0 && errno == EINTR { continue }
            guard count == 1 else { return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self) }
            if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
    }

    @discardableResult
    private func record(_ status: Int32) -> Int32 {
        let code = Self.decode(status)
        let signalled = (status & 0x7f) != 0 && (status & 0x7f) != 0x7f
        ending.withLock { $0 = (code, signalled && (status & 0x80) != 0) }
        return code
    }

    private static func decode(_ status: Int32) -> Int32 {
        (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}

public struct SpawnError: Error, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}

/// What a command run to its end left: its exit status and what it wrote.
public struct CommandOutcome: Sendable {
    public var status: Int32
    public var stdout: [UInt8]
    public var stderr: String
    /// stdout as text.
    public var text: String { String(decoding: stdout, as: UTF8.self) }
    /// stdout, then stderr: all it said, for messages and for looking for a phrase in either.
    public var output: String { text + stderr }
}

extension ChildProcess {
    /// Runs `executable` to its end and collects what it wrote (`environment` nil: this
    /// process's). Output goes to files, not pipes, so a daemon the command leaves running cannot
    /// hold the reader up; the wait is on a thread of its own.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil)
        async throws -> CommandOutcome
    {
        let files = FileManager.default.temporaryDirectory.appendingPathComponent("akvfs-run-\(UUID().uuidString)")
        let (stdoutFile, stderrFile) = (files.path + ".stdout", files.path + ".stderr")
        defer {
            try? FileManager.default.removeItem(atPath: stdoutFile)
            try? FileManager.default.removeItem(atPath: stderrFile)
        }
        let process = try spawn(
            executable, arguments, environment: environment, stdout: .file(stdoutFile), stderr: .file(stderrFile))
        let status = await process.exit()
        return CommandOutcome(
            status: status, stdout: (try? [UInt8](Data(contentsOf: URL(fileURLWithPath: stdoutFile)))) ?? [],
            stderr: (try? String(contentsOfFile: stderrFile, encoding: .utf8)) ?? "")
    }
}
