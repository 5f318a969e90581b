import AzureIdentity
import CommandLineSupport
import FoundationEssentials
import Glibc

/// `mount.akvfs SOURCE DIR [-sfnv] [-o options]`, as mount(8) runs it for an fstab line such as
/// `myvault /mnt/kv akvfs _netdev,allow_other,tenant=…,client_id=… 0 0`. It starts the daemon
/// (`akvfs mount`) in the background and returns 0 only once the mount is up, or 32 with the
/// daemon's reason. Exit statuses follow mount(8): 1 for bad usage, 32 for a failed mount.
enum MountHelper {
    /// Options mount(8), systemd and fstab use that mean nothing to akvfs (or that it always does).
    static let ignored: Set<String> = [
        "auto", "noauto", "user", "nouser", "users", "group", "owner", "_netdev", "nofail", "defaults", "rw", "ro",
        "dev", "nodev", "suid", "nosuid", "exec", "noexec", "atime", "noatime", "relatime", "strictatime", "sync",
        "async",
    ]
    /// `key=value` options and the `akvfs mount` flag each becomes.
    static let valued: [String: String] = [
        "tenant": "--tenant-id", "tenant_id": "--tenant-id", "client_id": "--client-id", "credential": "--credential",
        "cloud": "--cloud", "cloud_env_file": "--cloud-env-file", "ca_file": "--ca-file",
        "client_secret_file": "--client-secret-file",
        "client_certificate": "--client-certificate", "federated_token_file": "--federated-token-file",
        "authority_host": "--authority-host",
        "imds_endpoint": "--imds-endpoint", "managed_identity_object_id": "--managed-identity-object-id",
        "managed_identity_resource_id": "--managed-identity-resource-id",
        "additionally_allowed_tenants": "--additionally-allowed-tenants",
        "uid": "--uid", "gid": "--gid", "file_mode": "--file-mode", "dir_mode": "--dir-mode", "ttl": "--ttl",
        "max_stale": "--max-stale",
        "idle_timeout": "--idle-timeout", "fetch_timeout": "--fetch-timeout", "negative_ttl": "--negative-ttl",
        "metadata_ttl": "--metadata-ttl", "cache_size": "--cache-size",
        "max_concurrency": "--max-concurrency", "rate_limit": "--rate-limit", "timeout": "--timeout",
        "api_version": "--api-version",
    ]
    static let flags: [String: String] = [
        "allow_other": "--allow-other", "no_preflight": "--no-preflight",
        "disable_challenge_resource_verification": "--disable-challenge-resource-verification",
    ]
    /// Settings that go into the daemon's environment instead of its arguments.
    static let environmental: Set<String> = ["env_file", "log_level"]

    /// POSIX_SPAWN_SETSID from <spawn.h>; glibc hides it behind _GNU_SOURCE, which Swift's Glibc
    /// module does not define. The daemon gets its own session so it outlives mount(8).
    static let spawnNewSession: Int16 = 0x80

    struct Invocation {
        var source: String
        var mountpoint: String
        var arguments: [String]
        var environment: [String: String]
        var fake = false
        var verbose = false
    }

    struct UsageError: Error {
        var message: String
    }

    static func main(_ arguments: [String]) -> Never {
        do {
            let invocation = try parse(arguments)
            if invocation.verbose {
                Terminal.error("mount.akvfs: akvfs \(invocation.arguments.joined(separator: " "))")
            }
            if invocation.fake { exit(0) }
            exit(start(invocation))
        } catch {
            Terminal.error("mount.akvfs: \(error.message)")
            Terminal.error(
                "usage: mount.akvfs VAULT MOUNTPOINT [-sfnv] [-o option[,option…]]; options are listed in docs/mounting.md"
            )
            exit(1)
        }
    }

    static func parse(_ arguments: [String]) throws(UsageError) -> Invocation {
        var positional: [String] = []
        var optionLists: [String] = []
        var fake = false
        var verbose = false
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            switch argument {
            case "-o":
                guard index + 1 < arguments.count else { throw UsageError(message: "-o needs a list of options") }
                optionLists.append(arguments[index + 1])
                index += 1
            case "-f": fake = true
            case "-v": verbose = true
            case "-s", "-n": break  // sloppy options, no mtab: nothing to do
            default:
                if argument.hasPrefix("-o"), argument.count > 2 {
                    optionLists.append(String(argument.dropFirst(2)))
                } else if argument.hasPrefix("-") {
                    throw UsageError(message: "unknown flag '\(argument)'")
                } else {
                    positional.append(argument)
                }
            }
            index += 1
        }
        guard positional.count == 2 else {
            throw UsageError(message: "expected VAULT and MOUNTPOINT, got \(positional.count) arguments")
        }
        var invocation = Invocation(
            source: positional[0], mountpoint: positional[1], arguments: ["mount", positional[0], positional[1]],
            environment: [:])
        invocation.fake = fake
        invocation.verbose = verbose
        for option in optionLists.flatMap(splitOptions) {
            try apply(option, to: &invocation)
        }
        return invocation
    }

    /// Splits on commas, honouring `\,` for a comma inside a value.
    static func splitOptions(_ list: String) -> [String] {
        var options: [String] = []
        var current = ""
        var escaped = false
        for character in list {
            if escaped {
                current.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "," {
                if !current.isEmpty { options.append(current) }
                current = ""
            } else {
                current.append(character)
            }
        }
        if !current.isEmpty { options.append(current) }
        return options
    }

    static func apply(_ option: String, to invocation: inout Invocation) throws(UsageError) {
        let parts = option.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let key = parts[0]
        let value = parts.count > 1 ? parts[1] : nil
        if ignored.contains(key) || key.hasPrefix("x-") || key.hasPrefix("comment=") || key == "comment" { return }
        if let flag = flags[key] {
            guard value == nil else { throw UsageError(message: "option '\(key)' takes no value") }
            invocation.arguments.append(flag)
        } else if let flag = valued[key] {
            guard let value, !value.isEmpty else {
                throw UsageError(message: "option '\(key)' needs a value: \(key)=…")
            }
            invocation.arguments += [flag, value]
        } else if key == "log_level", let value {
            guard LogSetup.levels.contains(value) else {
                throw UsageError(
                    message:
                        "option 'log_level=\(value)' names no log level; use one of \(LogSetup.levels.joined(separator: ", "))"
                )
            }
            invocation.environment["AKVFS_LOG_LEVEL"] = value
        } else if key == "env_file", let value {
            invocation.environment.merge(try readEnvironmentFile(value)) { $1 }
        } else if key == "client_secret" {
            throw UsageError(
                message:
                    "secrets cannot be mount options (they would be visible in /proc); use client_secret_file= or env_file="
            )
        } else {
            let allowed = (flags.keys.sorted() + valued.keys.sorted().map { "\($0)=" } + ["env_file=", "log_level="])
                .joined(separator: ", ")
            throw UsageError(
                message: "unknown option '\(key)'; akvfs accepts \(allowed), and ignores mount(8)'s generic ones")
        }
    }

    /// `KEY=value` lines (like systemd EnvironmentFile); blank lines and `#` comments skipped.
    static func readEnvironmentFile(_ path: String) throws(UsageError) -> [String: String] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw UsageError(message: "cannot read env_file \(path)")
        }
        var environment: [String: String] = [:]
        for (number, rawLine) in String(decoding: data, as: UTF8.self).split(
            separator: "\n", omittingEmptySubsequences: false
        ).enumerated() {
            let line = rawLine.trimmingWhitespace
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw UsageError(message: "env_file \(path) line \(number + 1) is not KEY=value")
            }
            var value = String(line[line.index(after: equals)...])
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            }
            environment[String(line[..<equals])] = value
        }
        return environment
    }

    /// Starts `akvfs mount` in its own session and waits for its readiness line.
    static func start(_ invocation: Invocation) -> Int32 {
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else {
            Terminal.error("mount.akvfs: cannot create a pipe: \(String(cString: strerror(errno)))")
            return 32
        }
        let readyDescriptor: Int32 = 3
        let arguments = ["akvfs"] + invocation.arguments + ["--ready-fd", String(readyDescriptor)]
        var environment = ProcessInfo.processInfo.environment
        environment.merge(invocation.environment) { $1 }
        // A crash report with register contents could carry secret bytes into the system log.
        if environment["SWIFT_BACKTRACE"] == nil { environment["SWIFT_BACKTRACE"] = "registers=none" }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        // Close the read end before moving the write end to fd 3: the read end may itself be fd 3.
        posix_spawn_file_actions_addclose(&actions, pipeEnds[0])
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], readyDescriptor)
        if pipeEnds[1] != readyDescriptor { posix_spawn_file_actions_addclose(&actions, pipeEnds[1]) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, spawnNewSession)

        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { (text: String) in strdup(text) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/proc/self/exe", &actions, &attributes, argv, envp)
        close(pipeEnds[1])
        defer { close(pipeEnds[0]) }
        guard spawned == 0 else {
            Terminal.error("mount.akvfs: cannot start the akvfs daemon: \(String(cString: strerror(spawned)))")
            return 32
        }
        let answer = readLine(pipeEnds[0], timeoutMilliseconds: 90_000)
        switch answer {
        case .some(let line) where line == "ready":
            return 0
        case .some(let line) where line.hasPrefix("error: "):
            Terminal.error("mount.akvfs: \(line.dropFirst("error: ".count))")
        case .some:
            Terminal.error("mount.akvfs: the akvfs daemon said something unexpected")
        case .none:
            kill(pid, SIGTERM)
            Terminal.error(
                "mount.akvfs: the akvfs daemon stopped or timed out before the mount was ready; see its log (journalctl, or stderr)"
            )
        }
        var status: Int32 = 0
        waitpid(pid, &status, WNOHANG)
        return 32
    }

    private static func readLine(_ descriptor: Int32, timeoutMilliseconds: Int32) -> String? {
        var bytes: [UInt8] = []
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        while true {
            let ready = poll(&poller, 1, timeoutMilliseconds)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { return nil }
            var byte: UInt8 = 0
            let count = Glibc.read(descriptor, &byte, 1)
            guard count == 1 else { return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self) }
            if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
    }
}
