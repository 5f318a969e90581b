import Foundation
import HTTPTransport
import HTTPTypes
import TestSupport
import Testing

/// Runs blocking work (file system calls into the mount, process waits) on a Dispatch thread,
/// never on Swift's small cooperative pool.
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await onOwnThread(body)
}

/// What stat(2) says about a path, in Sendable form.
struct FileStatus: Sendable {
    var size: Int
    var permissions: Int
    var inode: UInt64
    var modified: Int
    var isDirectory: Bool
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}

func status(_ path: String) async throws -> FileStatus {
    try await blocking {
        var buffer = stat()
        guard stat(path, &buffer) == 0 else { throw TestFailure("stat \(path): \(String(cString: strerror(errno)))") }
        return FileStatus(
            size: Int(buffer.st_size), permissions: Int(buffer.st_mode & 0o7777), inode: UInt64(buffer.st_ino),
            modified: buffer.st_mtim.tv_sec, isDirectory: buffer.st_mode & S_IFMT == S_IFDIR, uid: buffer.st_uid,
            gid: buffer.st_gid)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

var buildDirectory: URL { URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent() }

/// `akvfs-emulator --demo` in its own process, and a client for its admin API and data plane.
final class EmulatorProcess: Sendable {
    struct Info: Decodable, Sendable {
        var port: Int
        var tenantId: String
        var imdsEndpoint: String
        var adminURL: String
    }

    let process: ChildProcess
    let info: Info
    let directory: URL
    let http: CurlHTTPClient

    var port: Int { info.port }
    var tenantId: String { info.tenantId }
    var imdsEndpoint: String { info.imdsEndpoint }
    var caFile: String { directory.appendingPathComponent("ca.pem").path }
    var adminURL: String { info.adminURL }
    func vaultURL(_ name: String) -> String { "https://\(name).vault.localhost:\(port)/" }

    init(seedJSON: String? = nil) async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "akvfs-mount-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var arguments = [
            "--port", "0", "--imds-port", "0", "--ca-out", directory.appendingPathComponent("ca.pem").path,
            "--log-level", "error",
        ]
        if let seedJSON {
            let seed = directory.appendingPathComponent("seed.json")
            try Data(seedJSON.utf8).write(to: seed)
            arguments += ["--seed", seed.path]
        } else {
            arguments.append("--demo")
        }
        let process = try ChildProcess.spawn(
            buildDirectory.appendingPathComponent("akvfs-emulator").path, arguments, stdout: .pipe)
        self.process = process
        let line = try await blocking { process.readLine() ?? "" }
        info = try JSONDecoder().decode(Info.self, from: Data(line.utf8))
        var configuration = HTTPClientConfiguration()
        configuration.extraCAFile = directory.appendingPathComponent("ca.pem").path
        http = try CurlHTTPClient(configuration: configuration)
    }

    func stop() async {
        http.shutdown()
        process.signal(SIGTERM)
        _ = await process.exit()
        try? FileManager.default.removeItem(at: directory)
    }

    // MARK: Admin API and data plane

    func send(_ method: HTTPRequest.Method, _ url: String, headers: HTTPFields = [:], json: Any? = nil) async throws
        -> (status: Int, body: [UInt8])
    {
        let components = try #require(URLComponents(string: url))
        var headers = headers
        var body: [UInt8]?
        if let json {
            body = Array(try JSONSerialization.data(withJSONObject: json))
            headers[.contentType] = "application/json"
        }
        let request = HTTPRequest(
            method: method, scheme: components.scheme, authority: "\(components.host!):\(components.port!)",
            path: components.percentEncodedPath + (components.percentEncodedQuery.map { "?\($0)" } ?? ""),
            headerFields: headers)
        let response = try await http.execute(request, body: body)
        return (response.head.status.code, response.body)
    }

    /// Requests the emulator served for `vault` whose path is exactly `path`.
    func requests(vault: String, path: String, method: String = "GET") async throws -> [[String: Any]] {
        let (_, body) = try await send(.get, "\(adminURL)/requests")
        let all =
            (try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])?["requests"] as? [[String: Any]]
            ?? []
        return all.filter {
            $0["vault"] as? String == vault && $0["path"] as? String == path && $0["method"] as? String == method
        }
    }

    /// Every request the emulator answered so far: Key Vault, Entra ID, IMDS and Kubernetes.
    func requestCount() async throws -> Int {
        let (_, body) = try await send(.get, "\(adminURL)/requests")
        return
            ((try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])?["requests"] as? [[String: Any]])?
            .count ?? 0
    }

    func injectFault(_ rule: [String: Any]) async throws {
        _ = try await send(.post, "\(adminURL)/faults", json: rule)
    }

    func clearFaults() async throws {
        _ = try await send(.delete, "\(adminURL)/faults")
    }

    /// The service's timing in `vault` (docs/emulator.md): `deleteSeconds`, `recoverSeconds`,
    /// `throttleScale`, `emptyMiddlePages`.
    func setTiming(vault: String, _ timing: [String: Any]) async throws {
        let (status, body) = try await send(.put, "\(adminURL)/vaults/\(vault)/timing", json: timing)
        guard status == 200 else {
            throw TestFailure(
                "setting the timing of \(vault) answered \(status): \(String(decoding: body, as: UTF8.self))")
        }
    }

    /// Requests the emulator served for `vault`, whatever their path.
    func requests(vault: String) async throws -> [[String: Any]] {
        let (_, body) = try await send(.get, "\(adminURL)/requests")
        let all =
            (try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])?["requests"] as? [[String: Any]]
            ?? []
        return all.filter { $0["vault"] as? String == vault }
    }

    /// Sets a new secret version through the data plane, as an open client-secret identity.
    func setSecret(vault: String, name: String, value: String) async throws {
        let status = try await callVault(.put, vault: vault, path: "secrets/\(name)", json: ["value": value])
        guard status == 200 else { throw TestFailure("setting \(name) answered \(status)") }
    }

    /// A data-plane call (`path` relative to the vault, e.g. `secrets/x`), as an open
    /// client-secret identity; the status it answered.
    func callVault(_ method: HTTPRequest.Method, vault: String, path: String, json: Any? = nil) async throws -> Int {
        let form =
            "grant_type=client_credentials&client_id=setter&client_secret=x&scope=\("https://vault.localhost:\(port)/.default".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)"
        let tokenRequest = HTTPRequest(
            method: .post, scheme: "https", authority: "localhost:\(port)", path: "/\(tenantId)/oauth2/v2.0/token",
            headerFields: [.contentType: "application/x-www-form-urlencoded"])
        let tokenResponse = try await http.execute(tokenRequest, body: Array(form.utf8))
        let token = try #require(
            (try JSONSerialization.jsonObject(with: Data(tokenResponse.body)) as? [String: Any])?["access_token"]
                as? String)
        return try await send(
            method, vaultURL(vault) + "\(path)?api-version=7.6", headers: [.authorization: "Bearer \(token)"],
            json: json
        ).status
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
        try await waitUntilMounted()
    }

    static func start(
        emulator: EmulatorProcess, vault: String, mountpoint: String, arguments: [String],
        environment: [String: String], log: URL,
        launcher: [String] = []
    ) throws -> ChildProcess {
        let variables = [
            "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
            "AKVFS_CA_FILE": emulator.caFile,
            "AKVFS_IMDS_ENDPOINT": emulator.imdsEndpoint,
            "AKVFS_LOG_LEVEL": "debug",
        ].merging(environment) { $1 }
        let command =
            [buildDirectory.appendingPathComponent("akvfs").path, "mount", emulator.vaultURL(vault), mountpoint]
            + arguments
        let argv = launcher + command
        return try ChildProcess.spawn(argv[0], Array(argv.dropFirst()), environment: variables, stderr: .file(log.path))
    }

    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    static func isMounted(_ path: String) -> Bool {
        let table = mountInfo()
        return table.split(separator: "\n").contains { line in
            let fields = line.split(separator: " ")
            return fields.count > 4 && fields[4] == path && line.contains(" fuse.akvfs ")
        }
    }

    /// Whether anything is mounted at `path`.
    static func isMountedAnyFilesystem(_ path: String) -> Bool {
        let table = mountInfo()
        return table.split(separator: "\n").contains {
            $0.split(separator: " ").count > 4 && $0.split(separator: " ")[4] == path
        }
    }

    func waitUntilMounted() async throws {
        for _ in 0..<300 {
            if Self.isMounted(mountpoint) { return }
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
        return try await blocking { try String(contentsOfFile: path, encoding: .utf8) }
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
        if Self.isMounted(mountpoint) { umount2(mountpoint, Int32(MNT_DETACH)) }
    }
}

/// Runs `body` with an emulator of the demo vault, and always stops it.
func withEmulatorProcess(_ body: (EmulatorProcess) async throws -> Void) async throws {
    let emulator = try await EmulatorProcess()
    do {
        try await body(emulator)
    } catch {
        await emulator.stop()
        throw error
    }
    await emulator.stop()
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
    let mount: MountedVault
    do {
        try await prepare(emulator)
        mount = try await MountedVault(emulator: emulator, vault: vault, extraArguments: arguments)
    } catch {
        await emulator.stop()
        throw error
    }
    do {
        try await body(emulator, mount)
    } catch {
        await mount.cleanUp()
        await emulator.stop()
        throw error
    }
    await mount.cleanUp()
    await emulator.stop()
}
