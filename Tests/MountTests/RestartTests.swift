import CLinux
import DescriptorPassing
import Foundation
import Glibc
import HTTPTypes
import Synchronization
import TestSupport
import Testing

/// A vault of 20 secrets for readers to loop over while the daemon changes hands.
enum TwentySecrets {
    static let names = (0..<20).map { String(format: "secret-%02d", $0) }
    static func value(_ name: String) -> String { "value-of-\(name)" }
    static let seed = """
        {"vaults": [{"name": "demo", "secrets": [\(names.map { #"{"name": "\#($0)", "value": "\#(value($0))"}"# }.joined(separator: ", "))]}]}
        """
}

/// Readers on their own threads, each opening and reading every file and listing the directory
/// in a loop, until stopped: what failed, and the longest any one operation took.
final class ReaderLoop: Sendable {
    struct Tally: Sendable {
        var reads = 0
        var failures: [String] = []
        var longest: Duration = .zero
    }

    private final class Shared: Sendable {
        let tally = Mutex(Tally())
        let stopping = Atomic(false)
    }

    private let shared = Shared()
    private let running: [Task<Void, any Error>]

    init(readers: Int, directory: String, names: [String], expected: @escaping @Sendable (String) -> String) {
        let shared = self.shared
        running = (0..<readers).map { _ in
            Task {
                try await onOwnThread {
                    while !shared.stopping.load(ordering: .relaxed) {
                        for name in names {
                            let started = ContinuousClock.now
                            let result = Result { try String(contentsOfFile: "\(directory)/\(name)", encoding: .utf8) }
                            let listed = (try? FileManager.default.contentsOfDirectory(atPath: directory)) != nil
                            let took = ContinuousClock.now - started
                            shared.tally.withLock { tally in
                                tally.reads += 1
                                tally.longest = max(tally.longest, took)
                                switch result {
                                case .success(let text) where text == expected(name) && listed: break
                                case .success(let text):
                                    tally.failures.append("\(name): read \(text.prefix(40)), listed \(listed)")
                                case .failure(let error): tally.failures.append("\(name): \(error)")
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Stops the readers and says what they saw.
    func stop() async throws -> Tally {
        shared.stopping.store(true, ordering: .relaxed)
        for reader in running { try await reader.value }
        return shared.tally.withLock { $0 }
    }
}

/// `akvfs-keeper` in its own process.
final class KeeperProcess: Sendable {
    let process: ChildProcess
    let socketPath: String

    /// `socketPath`: where a keeper that stopped listened, for one that replaces it.
    init(directory: URL, socketPath: String? = nil) async throws {
        let socketPath =
            socketPath ?? directory.appendingPathComponent("keeper-\(UUID().uuidString.prefix(6)).sock").path
        self.socketPath = socketPath
        process = try ChildProcess.spawn(
            builtExecutable("akvfs-keeper"), ["--socket", socketPath],
            stderr: .file(directory.appendingPathComponent("keeper.log").path))
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: socketPath) {
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    func stop() async {
        process.signal(SIGTERM)
        _ = await process.exit()
    }
}

/// The twenty secrets mounted with a keeper, for tests that kill the daemon and restart it as
/// a supervisor would. Used by one test at a time.
final class KeptMount: @unchecked Sendable {
    let emulator: EmulatorProcess
    var keeper: KeeperProcess
    let first: MountedVault
    /// The daemon serving the mount now.
    var current: ChildProcess
    let arguments: [String]

    private init(emulator: EmulatorProcess, keeper: KeeperProcess, first: MountedVault, arguments: [String]) {
        (self.emulator, self.keeper, self.first, self.current, self.arguments) = (
            emulator, keeper, first, first.process, arguments
        )
    }

    static func with(_ body: (KeptMount) async throws -> Void) async throws {
        let emulator = try await EmulatorProcess(seedJSON: TwentySecrets.seed)
        let keeper = try await KeeperProcess(directory: emulator.directory)
        let arguments = ["--ttl", "300", "--keeper", keeper.socketPath]
        let mount = KeptMount(
            emulator: emulator, keeper: keeper,
            first: try await MountedVault(emulator: emulator, extraArguments: arguments), arguments: arguments)
        try await using(mount, release: { await $0.tearDown() }, body)
    }

    /// kill -9, then a new daemon at once, which must take the mount over.
    func killAndRestart(log name: String) async throws {
        current.signal(SIGKILL)
        _ = await current.exit()
        try await startNext(log: name)
    }

    func startNext(log name: String) async throws {
        let log = emulator.directory.appendingPathComponent(name)
        current = try MountedVault.start(
            emulator: emulator, vault: "demo", mountpoint: first.mountpoint, arguments: arguments, environment: [:],
            log: log)
        try await MountedVault.waitForTakeover(current, log: log)
    }

    private func tearDown() async {
        if current.isRunning { current.signal(SIGKILL) }
        await first.cleanUp()
        await keeper.stop()
        await emulator.stop()
    }
}

extension EmulatorProcess {
    /// GETs of the 20 secrets' values so far.
    func secretGets() async throws -> Int {
        try await requestLog().filter {
            ($0["path"] as? String)?.hasPrefix("/secrets/secret-") == true && $0["status"] as? Int == 200
        }.count
    }
}

extension MountedVault {
    /// Waits until the log says the mount was taken over (or the process ended). Generous: a new
    /// debug-built process starting on a loaded 2-core machine once took more than 15 s, and once,
    /// with 26 other tests running, more than 30.
    static func waitForTakeover(_ process: ChildProcess, log: URL) async throws {
        for _ in 0..<1200 {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if text.contains("serving the mount taken over") { return }
            guard process.isRunning else {
                throw TestFailure("akvfs exited (\(process.wait())) before taking over:\n\(text)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        throw TestFailure("akvfs did not take the mount over within 60 s; its log:\n\(text)")
    }
}

/// The node mount outliving its daemon: planned handoffs and restarts after kill -9.
@Suite("Real mounts: handoff and restart", .serialized, .timeLimit(.minutes(5)))
struct RestartTests {
    @Test("A second akvfs takes a mount over while 4 readers loop: no failed read, no Key Vault GET for cached content")
    func plannedHandoff() async throws {
        let emulator = try await EmulatorProcess(seedJSON: TwentySecrets.seed)
        let first = try await MountedVault(emulator: emulator, extraArguments: ["--ttl", "300"])
        var second: ChildProcess?
        defer { second?.signal(SIGTERM) }
        do {
            for name in TwentySecrets.names {
                #expect(try await first.read("secrets/\(name)") == TwentySecrets.value(name))
            }
            let getsBefore = try await emulator.secretGets()
            let readers = ReaderLoop(
                readers: 4, directory: first.path("secrets"), names: TwentySecrets.names, expected: TwentySecrets.value)
            try await Task.sleep(for: .milliseconds(500))

            let log = emulator.directory.appendingPathComponent("second.log")
            let process = try MountedVault.start(
                emulator: emulator, vault: "demo", mountpoint: first.mountpoint, arguments: ["--ttl", "300"],
                environment: [:], log: log)
            second = process
            try await MountedVault.waitForTakeover(process, log: log)
            #expect(await first.process.exit() == 0, "the first daemon exits once the second serves")
            try await Task.sleep(for: .seconds(1))
            let tally = try await readers.stop()

            #expect(tally.failures.isEmpty, "\(tally.failures.prefix(5))")
            #expect(tally.reads > 100)
            #expect(
                try await emulator.secretGets() == getsBefore,
                "cached content came across; the second daemon fetched none of it")
            #expect(TestMounts.isAkvfsMount(first.mountpoint))
            #expect(first.log.contains("handed the mount over"))

            process.signal(SIGTERM)
            #expect(await process.exit() == 0)
            #expect(!TestMounts.isAkvfsMount(first.mountpoint), "the second daemon unmounts as usual")
            second = nil
        } catch {
            await first.cleanUp()
            await emulator.stop()
            throw error
        }
        await first.cleanUp()
        await emulator.stop()
    }

    @Test(
        "Killed with SIGKILL 5 times and restarted, akvfs reclaims the mount from a keeper: 4 readers see no failed read"
    )
    func killAndRestart() async throws {
        try await KeptMount.with { mount in
            let readers = ReaderLoop(
                readers: 4, directory: mount.first.path("secrets"), names: TwentySecrets.names,
                expected: TwentySecrets.value)
            for round in 1...5 {
                try await Task.sleep(for: .milliseconds(1_500))
                try await mount.killAndRestart(log: "restart-\(round).log")
            }
            try await Task.sleep(for: .seconds(1))
            let tally = try await readers.stop()
            #expect(tally.failures.isEmpty, "\(tally.failures.prefix(5))")
            #expect(tally.reads > 100)
            print("longest stall a reader saw over 5 kills: \(tally.longest)")
            mount.current.signal(SIGTERM)
            #expect(await mount.current.exit() == 0)
            #expect(!TestMounts.isAkvfsMount(mount.first.mountpoint))
        }
    }

    @Test("A keeper that restarts is given the mount again within 10 s, so a later kill -9 is still survived")
    func keeperRestarts() async throws {
        try await KeptMount.with { mount in
            #expect(try await mount.first.read("secrets/secret-01") == TwentySecrets.value("secret-01"))
            // The keeper's pod is replaced: what it held is gone.
            await mount.keeper.stop()
            mount.keeper = try await KeeperProcess(
                directory: mount.emulator.directory, socketPath: mount.keeper.socketPath)
            var given = false
            for _ in 0..<300 where !given {
                try await Task.sleep(for: .milliseconds(50))
                given = mount.first.log.contains("keeping it there again")
            }
            #expect(given, "the daemon gave the new keeper its descriptors: \(mount.first.log)")

            try await mount.killAndRestart(log: "after-keeper-restart.log")
            #expect(try await mount.first.read("secrets/secret-02") == TwentySecrets.value("secret-02"))
            mount.current.signal(SIGTERM)
            #expect(await mount.current.exit() == 0)
        }
    }

    @Test("A request the killed daemon was answering is answered after the restart, never left hanging")
    func requestInFlightAtDeath() async throws {
        try await KeptMount.with { mount in
            let emulator = mount.emulator
            // The daemon reads this lookup and asks Key Vault, which hangs.
            try await emulator.injectFault([
                "vault": "demo", "pathPrefix": "/secrets/secret-07", "action": "hang", "hangSeconds": 120,
            ])
            let path = mount.first.path("secrets/secret-07")
            let waiting = Task { try await onOwnThread { try String(contentsOfFile: path, encoding: .utf8) } }
            for _ in 0..<100 {
                if try await emulator.requests(vault: "demo", path: "/secrets/secret-07").contains(where: {
                    $0["fault"] is String
                }) {
                    break
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            mount.current.signal(SIGKILL)
            _ = await mount.current.exit()
            try await emulator.clearFaults()
            try await mount.startNext(log: "after-death.log")
            #expect(try await waiting.value == TwentySecrets.value("secret-07"))
            #expect(
                (try? String(contentsOf: emulator.directory.appendingPathComponent("after-death.log"), encoding: .utf8))?
                    .contains("resend") == true)
            mount.current.signal(SIGTERM)
            _ = await mount.current.exit()
        }
    }

    @Test("A takeover in an incompatible protocol is refused; asked to step aside, the daemon unmounts and exits")
    func incompatibleTakeover() async throws {
        try await withMountedDemo { (_, mount) async throws in
            #expect(try await mount.read("secrets/api-key") == "demo-api-key-8c2f5e")
            let socket = try #require(try LocalSocket.connect(to: try await Self.handoffSocket(of: mount)))
            try socket.send(LocalSocket.Message("TAKEOVER 99 99 99.0.0"))
            let answer = try #require(try socket.receive())
            #expect(answer.text.hasPrefix("REFUSE incompatible"), "\(answer.text)")
            #expect(try await mount.read("secrets/api-key") == "demo-api-key-8c2f5e", "still serving while refusing")
            try socket.send(LocalSocket.Message("STEPASIDE"))
            #expect(try socket.receive()?.text == "OK")
            #expect(await mount.process.exit() == 0)
            #expect(!TestMounts.isAkvfsMount(mount.mountpoint))
        }
    }

    @Test("Refused by an incompatible running daemon, a new akvfs has it step aside and mounts afresh")
    func fallbackToFreshMount() async throws {
        try await withMountedDemo { (emulator, mount) async throws in
            // Stand in for a daemon of another version: its socket refuses; stepping aside stops it.
            let path = try await Self.handoffSocket(of: mount)
            let impostor = try LocalSocket.listen(at: path)
            let old = mount.process
            let serving = Task {
                guard let connection = impostor.accept(), let request = try connection.receive() else { return "" }
                try connection.send(LocalSocket.Message("REFUSE incompatible: a test's older akvfs"))
                guard try connection.receive()?.text == "STEPASIDE" else { return request.text }
                old.signal(SIGTERM)
                _ = await old.exit()
                try connection.send(LocalSocket.Message("OK"))
                return request.text
            }
            let log = emulator.directory.appendingPathComponent("fresh.log")
            let fresh = try MountedVault.start(
                emulator: emulator, vault: "demo", mountpoint: mount.mountpoint, arguments: [], environment: [:],
                log: log)
            defer { fresh.signal(SIGTERM) }
            #expect(try await serving.value.hasPrefix("TAKEOVER 1 "))
            for _ in 0..<100 where !((try? String(contentsOf: log, encoding: .utf8)) ?? "").contains("[akvfs] serving")
            {
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(try await mount.read("secrets/api-key") == "demo-api-key-8c2f5e")
            #expect(((try? String(contentsOf: log, encoding: .utf8)) ?? "").contains("refused the handoff"))
            fresh.signal(SIGTERM)
            _ = await fresh.exit()
        }
    }

    @Test(
        "Only root may take a mount over or use a keeper: other users cannot reach the sockets, nor are they answered")
    func onlyRoot() async throws {
        let emulator = try await EmulatorProcess()
        let keeper = try await KeeperProcess(directory: emulator.directory)
        let mount = try await MountedVault(emulator: emulator, extraArguments: ["--keeper", keeper.socketPath])
        do {
            let handoff = try await Self.handoffSocket(of: mount)
            for path in [handoff, keeper.socketPath] {
                #expect(try await Self.asNobody(connectTo: path) == "denied", "\(path) is root's alone")
                // Even with the socket and its directories opened up, a process that is not root gets no answer.
                var opened: [(String, mode_t)] = []
                var directory = path
                while directory != "/" {
                    let mode =
                        try FileManager.default.attributesOfItem(atPath: directory)[.posixPermissions] as? Int ?? 0o700
                    opened.append((directory, mode_t(mode)))
                    chmod(directory, directory == path ? 0o777 : mode_t(mode) | 0o111)
                    directory = (directory as NSString).deletingLastPathComponent
                }
                let answer = try await Self.asNobody(connectTo: path)
                for (item, mode) in opened { chmod(item, mode) }
                #expect(answer == "unanswered", "\(path)")
            }
            #expect(try await mount.read("secrets/api-key") == "demo-api-key-8c2f5e")
        } catch {
            await mount.cleanUp()
            await keeper.stop()
            await emulator.stop()
            throw error
        }
        await mount.cleanUp()
        await keeper.stop()
        await emulator.stop()
    }

    @Test("Under systemd's descriptor store, SIGTERM leaves the mount for the next start, which reclaims it")
    func systemdDescriptorStore() async throws {
        let emulator = try await EmulatorProcess(seedJSON: TwentySecrets.seed)
        let store = try FakeSystemdStore(directory: emulator.directory)
        let first = try await MountedVault(
            emulator: emulator, extraArguments: ["--ttl", "300", "--systemd-descriptor-store"],
            environment: ["NOTIFY_SOCKET": store.path])
        var next: ChildProcess?
        do {
            #expect(try await first.read("secrets/secret-03") == TwentySecrets.value("secret-03"))
            let kept = try await store.waitForDescriptors(2)
            first.process.signal(SIGTERM)
            #expect(await first.process.exit() == 0)
            #expect(TestMounts.isAkvfsMount(first.mountpoint), "left mounted for the next start")
            let waiting = Task {
                try await onOwnThread { [first] in
                    try String(contentsOfFile: first.path("secrets/secret-04"), encoding: .utf8)
                }
            }

            // systemd starts the unit again, passing what it kept as LISTEN_FDS.
            let log = emulator.directory.appendingPathComponent("next-start.log")
            let command = [
                builtExecutable("akvfs"), "mount", emulator.vaultURL("demo"),
                first.mountpoint, "--ttl", "300", "--systemd-descriptor-store",
            ]
            let process = try ChildProcess.spawn(
                "/bin/sh", ["-c", #"LISTEN_PID=$$ exec "$@""#, "sh"] + command,
                environment: emulator.daemonEnvironment.merging([
                    "NOTIFY_SOCKET": store.path, "LISTEN_FDS": "\(kept.count)",
                    "LISTEN_FDNAMES": kept.map(\.name).joined(separator: ":"),
                ]) { $1 },
                stderr: .file(log.path), inheriting: kept.map(\.descriptor))
            next = process
            try await MountedVault.waitForTakeover(process, log: log)
            #expect(try await waiting.value == TwentySecrets.value("secret-04"))
            #expect(try await first.read("secrets/secret-03") == TwentySecrets.value("secret-03"))
            process.signal(SIGTERM)
            #expect(await process.exit() == 0)
            next = nil
        } catch {
            next?.signal(SIGKILL)
            await first.cleanUp()
            await emulator.stop()
            throw error
        }
        await first.cleanUp()
        await emulator.stop()
    }

    // MARK: Helpers

    /// The mount's handoff socket, which must exist by the time the daemon says it is serving (a
    /// next process started then must find it). The fixture only waits for the kernel's mount,
    /// which comes a moment before, so the "serving" line is waited for first.
    static func handoffSocket(of mount: MountedVault) async throws -> String {
        for _ in 0..<100 where !mount.log.contains("[akvfs] serving") {
            try await Task.sleep(for: .milliseconds(100))
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: "/run/akvfs/handoff")
        let digest = digestPrefix(mount.mountpoint)
        guard let name = names.first(where: { $0.contains(digest) }) else {
            throw TestFailure("no handoff socket for \(mount.mountpoint) once serving, in \(names)")
        }
        return "/run/akvfs/handoff/\(name)"
    }

    /// The first 8 bytes of SHA-256 of the mountpoint, in hex: how akvfs names its socket.
    static func digestPrefix(_ mountpoint: String) -> String {
        let process = try? ChildProcess.spawn(
            "/bin/sh", ["-c", #"printf %s "$0" | sha256sum | cut -c1-16"#, mountpoint], stdout: .pipe)
        return String(decoding: process?.readAll() ?? [], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Connects to a Unix sequenced-packet socket as the user nobody and sends a request:
    /// "denied" when the connection is refused, "unanswered" when it is closed without an answer.
    static func asNobody(connectTo path: String) async throws -> String {
        let script = """
            import socket, sys
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                s.connect(sys.argv[1])
            except PermissionError:
                print("denied"); sys.exit(0)
            s.settimeout(5)
            try:
                s.send(b"LIST")
                data = s.recv(4096)
                print("unanswered" if not data else "answered")
            except (ConnectionResetError, BrokenPipeError, socket.timeout):
                print("unanswered")
            """
        let process = try ChildProcess.spawn(
            "/usr/bin/setpriv",
            ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", script, path], stdout: .pipe)
        let output = try await onOwnThread { process.readAll() }
        _ = await process.exit()
        return String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Stands in for systemd's notify socket and descriptor store: keeps what `FDSTORE=1` sends.
final class FakeSystemdStore: Sendable {
    let path: String
    private let socket: Int32
    private final class Kept: Sendable {
        let descriptors = Mutex<[(name: String, descriptor: Int32)]>([])
    }
    private let kept = Kept()

    init(directory: URL) throws {
        path = directory.appendingPathComponent("notify-\(UUID().uuidString.prefix(6)).sock").path
        socket = try boundDatagramSocket(at: path)
    }

    deinit { close(socket) }

    /// Receives notifications until `count` descriptors were stored (duplicate names replace).
    func waitForDescriptors(_ count: Int) async throws -> [(name: String, descriptor: Int32)] {
        let socket = self.socket
        let kept = self.kept
        return try await onOwnThread {
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            while kept.descriptors.withLock({ $0.count }) < count {
                var bytes = [UInt8](repeating: 0, count: 4096)
                var descriptors = [Int32](repeating: -1, count: 16)
                var received: Int32 = 0
                let length = bytes.withUnsafeMutableBytes { buffer in
                    clinux_receive_with_descriptors(
                        socket, buffer.baseAddress, UInt(buffer.count), &descriptors, 16, &received)
                }
                guard length >= 0 else { throw TestFailure("no FDSTORE message within 10 s") }
                let text = String(decoding: bytes[0..<length], as: UTF8.self)
                guard text.contains("FDSTORE=1"), received == 1,
                    let name = text.split(separator: "\n").first(where: { $0.hasPrefix("FDNAME=") })?.dropFirst(7)
                else { continue }
                kept.descriptors.withLock { kept in
                    kept.removeAll { $0.name == name }
                    kept.append((String(name), descriptors[0]))
                }
            }
            return kept.descriptors.withLock { $0 }
        }
    }
}

/// A datagram socket bound at `path`, as systemd's notify socket is; the caller closes it.
func boundDatagramSocket(at path: String) throws -> Int32 {
    let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
    guard descriptor >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
    }
    guard bound == 0 else {
        close(descriptor)
        throw TestFailure("cannot bind \(path): \(String(cString: strerror(errno)))")
    }
    return descriptor
}
