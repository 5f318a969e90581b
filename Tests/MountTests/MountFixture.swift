import EmulatorSupport
import Foundation
import HTTPTransport
import HTTPTypes
import KeyVaultEmulator
import TestSupport
import Testing

/// What stat(2) says about a path, all of it the tests look at, in Sendable form.
struct FileStatus: Sendable {
    var mode: UInt32
    var inode: UInt64
    var uid: UInt32
    var gid: UInt32
    var size: Int
    var links: Int
    var blocks: Int
    var blockSize: Int
    var modified: Int
    var changed: Int
    var accessed: Int

    var permissions: Int { Int(mode & 0o7777) }
    var isDirectory: Bool { mode & S_IFMT == S_IFDIR }
}

func status(_ path: String) async throws -> FileStatus {
    try await onOwnThread {
        var buffer = stat()
        guard stat(path, &buffer) == 0 else { throw TestFailure("stat \(path): \(String(cString: strerror(errno)))") }
        return FileStatus(
            mode: buffer.st_mode, inode: UInt64(buffer.st_ino), uid: buffer.st_uid, gid: buffer.st_gid,
            size: Int(buffer.st_size), links: Int(buffer.st_nlink), blocks: Int(buffer.st_blocks),
            blockSize: Int(buffer.st_blksize), modified: buffer.st_mtim.tv_sec, changed: buffer.st_ctim.tv_sec,
            accessed: buffer.st_atim.tv_sec)
    }
}

/// `akvfs-emulator --demo` in its own process, with a client for its admin API and data plane.
final class EmulatorProcess: EmulatorConnection {
    let process: ChildProcess
    /// As the ready line gives them.
    let endpoints: EmulatorEndpoints
    let directory: URL
    let http: CurlHTTPClient

    var port: Int { endpoints.port }
    var tenantId: String { endpoints.tenantId }
    var imdsEndpoint: String { endpoints.imdsEndpoint }
    var caFile: String { directory.appendingPathComponent("ca.pem").path }
    var adminURL: String { endpoints.adminURL }
    func vaultURL(_ name: String) -> String { endpoints.vaultURL(name) }

    /// The environment an akvfs daemon (`mount` or `csi`) needs to reach this emulator: its CA and
    /// its IMDS as the node's managed identity; debug logs for the test's failure messages.
    var daemonEnvironment: [String: String] {
        [
            "PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "AKVFS_CA_FILE": caFile, "AKVFS_IMDS_ENDPOINT": imdsEndpoint,
            "AKVFS_LOG_LEVEL": "debug",
        ]
    }

    init(seedJSON: String? = nil) async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "akvfs-mount-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let caFile = directory.appendingPathComponent("ca.pem").path
        var arguments = ["--port", "0", "--imds-port", "0", "--ca-out", caFile, "--log-level", "error"]
        if let seedJSON {
            let seed = directory.appendingPathComponent("seed.json")
            try Data(seedJSON.utf8).write(to: seed)
            arguments += ["--seed", seed.path]
        } else {
            arguments.append("--demo")
        }
        let process = try ChildProcess.spawn(builtExecutable("akvfs-emulator"), arguments, stdout: .pipe)
        self.process = process
        let line = try await onOwnThread { process.readLine() ?? "" }
        endpoints = try JSONDecoder().decode(EmulatorEndpoints.self, from: Data(line.utf8))
        http = try CurlHTTPClient(trusting: caFile)
    }

    func stop() async {
        http.shutdown()
        process.signal(SIGTERM)
        _ = await process.exit()
        try? FileManager.default.removeItem(at: directory)
    }

    // MARK: Admin API and data plane

    /// Every request the emulator answered so far, oldest first: Key Vault, Entra ID, IMDS and
    /// Kubernetes.
    func requestLog() async throws -> [[String: Any]] {
        try await send(.get, "\(adminURL)/requests").json["requests"] as? [[String: Any]] ?? []
    }

    /// Requests the emulator served for `vault` whose path is exactly `path`.
    func requests(vault: String, path: String, method: String = "GET") async throws -> [[String: Any]] {
        try await requestLog().filter {
            $0["vault"] as? String == vault && $0["path"] as? String == path && $0["method"] as? String == method
        }
    }

    /// Requests the emulator served for `vault`, whatever their path.
    func requests(vault: String) async throws -> [[String: Any]] {
        try await requestLog().filter { $0["vault"] as? String == vault }
    }

    func requestCount() async throws -> Int {
        try await requestLog().count
    }

    func injectFault(_ rule: [String: Any]) async throws {
        _ = try await sendJSON(.post, "\(adminURL)/faults", json: rule)
    }

    func clearFaults() async throws {
        _ = try await send(.delete, "\(adminURL)/faults")
    }

    /// The service's timing in `vault` (docs/emulator.md): `deleteSeconds`, `recoverSeconds`,
    /// `throttleScale`, `emptyMiddlePages`.
    func setTiming(vault: String, _ timing: [String: Any]) async throws {
        let reply = try await sendJSON(.put, "\(adminURL)/vaults/\(vault)/timing", json: timing)
        guard reply.status == 200 else {
            throw TestFailure("setting the timing of \(vault) answered \(reply.status): \(reply.text)")
        }
    }

    /// Sets a new secret version through the data plane, as an open client-secret identity.
    func setSecret(vault: String, name: String, value: String) async throws {
        let status = try await callVault(.put, vault: vault, path: "secrets/\(name)", json: ["value": value])
        guard status == 200 else { throw TestFailure("setting \(name) answered \(status)") }
    }

    /// A data-plane call (`path` relative to the vault, e.g. `secrets/x`), as the open
    /// client-secret identity `setter`; the status it answered.
    func callVault(_ method: HTTPRequest.Method, vault: String, path: String, json: Any? = nil) async throws -> Int {
        let token = try await token(clientId: "setter", secret: "x")
        return try await keyVault(method, vault, "/\(path)", token: token, json: json).status
    }
}

/// `akvfs mount` against an emulator, on a fresh mountpoint.
final class MountedVault: Sendable {
    let process: ChildProcess
    let mountpoint: String
    let logFile: URL

    /// `launcher` runs akvfs (its path and arguments come last), for a different working
    /// directory or limits.
    init(
        emulator: EmulatorProcess, vault: String = "demo",
        extraArguments: [String] = ["--ttl", "2", "--max-stale", "300"],
        environment: [String: String] = [:], launcher: [String] = []
    ) async throws {
        mountpoint = emulator.directory.appendingPathComponent("mnt-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: mountpoint, withIntermediateDirectories: true)
        logFile = emulator.directory.appendingPathComponent("akvfs-\(UUID().uuidString.prefix(8)).log")
        process = try Self.start(
            emulator: emulator, vault: vault, mountpoint: mountpoint, arguments: extraArguments,
            environment: environment, log: logFile,
            launcher: launcher)
        do {
            try await waitUntilMounted()
        } catch {
            // Nobody else holds this mount yet: a daemon that mounted too late is not left behind.
            await cleanUp()
            throw error
        }
    }

    static func start(
        emulator: EmulatorProcess, vault: String, mountpoint: String, arguments: [String],
        environment: [String: String], log: URL,
        launcher: [String] = []
    ) throws -> ChildProcess {
        let variables = emulator.daemonEnvironment.merging(environment) { $1 }
        let command =
            [builtExecutable("akvfs"), "mount", emulator.vaultURL(vault), mountpoint]
            + arguments
        let argv = launcher + command
        return try ChildProcess.spawn(argv[0], Array(argv.dropFirst()), environment: variables, stderr: .file(log.path))
    }

    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    func waitUntilMounted() async throws {
        for _ in 0..<300 {
            if TestMounts.isAkvfsMount(mountpoint) { return }
            guard process.isRunning else {
                throw TestFailure("akvfs exited (\(process.wait())) before mounting:\n\(log)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("akvfs did not mount within 30 s:\n\(log)")
    }

    func path(_ relative: String) -> String { "\(mountpoint)/\(relative)" }

    func read(_ relative: String) async throws -> String {
        let path = self.path(relative)
        return try await onOwnThread { try String(contentsOfFile: path, encoding: .utf8) }
    }

    /// Reads `relative` every 100 ms until it shows `new` (for at most `seconds`), and records an
    /// issue for any read in between that is neither `old` nor `new`: a mix of two versions.
    func readUntilRotated(_ relative: String, from old: String, to new: String, seconds: Int = 10) async throws {
        var seen = ""
        for _ in 0..<(seconds * 10) where seen != new {
            try await Task.sleep(for: .milliseconds(100))
            seen = try await read(relative)
            #expect(seen == old || seen == new, "never a mix of two versions")
        }
        #expect(seen == new, "\(relative) still reads the old version after \(seconds) s")
    }

    /// SIGTERM, and the exit status.
    func stop() async throws -> Int32 {
        process.signal(SIGTERM)
        return await process.exit()
    }

    /// Leaves nothing mounted, whatever state the test left things in.
    func cleanUp() async {
        _ = try? await stop()
        if TestMounts.isAkvfsMount(mountpoint) { umount2(mountpoint, Int32(MNT_DETACH)) }
    }
}

/// Runs `body` with an emulator of the demo vault, and always stops it.
func withEmulatorProcess(_ body: (EmulatorProcess) async throws -> Void) async throws {
    try await using(try await EmulatorProcess(), release: { await $0.stop() }, body)
}

/// Runs `body` with an emulator and a mount of its demo vault, and always cleans up.
func withMountedDemo(
    arguments: [String] = ["--ttl", "2", "--max-stale", "300"],
    _ body: (EmulatorProcess, MountedVault) async throws -> Void
) async throws {
    try await withMountedVault(arguments: arguments, body)
}

/// Runs `body` with an emulator seeded with `seedJSON` (nil: the demo vault) and a mount of
/// `vault`, and always cleans up. `prepare` runs on the emulator before the mount starts.
func withMountedVault(
    seedJSON: String? = nil, vault: String = "demo", arguments: [String] = ["--ttl", "2", "--max-stale", "300"],
    prepare: (EmulatorProcess) async throws -> Void = { _ in },
    _ body: (EmulatorProcess, MountedVault) async throws -> Void
) async throws {
    let emulator = try await EmulatorProcess(seedJSON: seedJSON)
    try await using(
        emulator, release: { await $0.stop() },
        { emulator in
            try await prepare(emulator)
            let mount = try await MountedVault(emulator: emulator, vault: vault, extraArguments: arguments)
            try await using(mount, release: { await $0.cleanUp() }, { try await body(emulator, $0) })
        })
}

/// This process's mount table, from /proc/self/mountinfo read to its end. Not with
/// String(contentsOfFile:), which reads a /proc file's first page only: on a machine busy with
/// other mounts, the ones a test waits for come after it.
enum TestMounts {
    struct Entry {
        var mountpoint: String
        /// The per-mount options, mountinfo's sixth field: `ro`, `nosuid`, …
        var options: [String]
        var filesystemType: String
    }

    static func entries() -> [Entry] {
        guard let file = fopen("/proc/self/mountinfo", "r") else { return [] }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            guard count > 0 else { break }
            bytes += buffer[..<count]
        }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard let separator = fields.firstIndex(of: "-"), separator > 5, fields.count > separator + 1 else {
                return nil
            }
            return Entry(
                mountpoint: String(fields[4]), options: fields[5].split(separator: ",").map(String.init),
                filesystemType: String(fields[separator + 1]))
        }
    }

    /// Whether anything is mounted at `path`.
    static func isMountPoint(_ path: String) -> Bool {
        entries().contains { $0.mountpoint == path }
    }

    /// Whether an akvfs FUSE filesystem is mounted at `path`.
    static func isAkvfsMount(_ path: String) -> Bool {
        entries().contains { $0.mountpoint == path && $0.filesystemType == "fuse.akvfs" }
    }

    /// The per-mount options of the mount at `path` (the topmost, if several).
    static func options(of path: String) -> [String] {
        entries().last { $0.mountpoint == path }?.options ?? []
    }

    /// Unmounts everything under `directory` (deepest first), whatever a failed test left.
    static func unmountAll(under directory: String) {
        let mounts = entries().map(\.mountpoint).filter { $0.hasPrefix(directory) }
        for mount in mounts.sorted(by: { $0.count > $1.count }) { umount2(mount, Int32(MNT_DETACH)) }
    }
}
