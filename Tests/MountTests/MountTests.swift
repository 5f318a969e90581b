import CXattr
import Foundation
import Synchronization
import TestSupport
import Testing

/// Real FUSE mounts of the emulator's demo vault (needs /dev/fuse and root, as CI has).
@Suite("Real mounts", .serialized, .timeLimit(.minutes(5)))
struct MountTests {
    @Test("ls, cat and stat: the layout, exact sizes, modes and times")
    func browse() async throws {
        try await withMountedDemo { (_, mount) async throws in
            let top = try await onOwnThread { [mount] in
                try FileManager.default.contentsOfDirectory(atPath: mount.mountpoint).sorted()
            }
            #expect(top == ["certs", "keys", "secrets", "tls"])
            let secrets = try await onOwnThread { [mount] in
                try FileManager.default.contentsOfDirectory(atPath: mount.path("secrets")).sorted()
            }
            #expect(
                secrets == [".versions", "api-key", "api-tls", "app-settings", "database-password", "web-tls"],
                "the disabled secret is not listed")
            #expect(try await mount.read("secrets/api-key") == "demo-api-key-8c2f5e")
            #expect(try await mount.read("secrets/database-password") == "correct-horse-battery-staple")
            let file = try await status(mount.path("secrets/api-key"))
            #expect(file.size == 19)
            #expect(file.permissions == 0o440)
            let directory = try await status(mount.path("secrets"))
            #expect(directory.permissions == 0o550 && directory.isDirectory)
            #expect(
                abs(Double(file.modified) - Date().timeIntervalSince1970) < 3600,
                "mtime is Key Vault's updated time (the emulator seeded it just now)")
            #expect(try await mount.read("keys/signing-key").hasPrefix("-----BEGIN PUBLIC KEY-----"))
            #expect(try await mount.read("certs/web-tls").hasPrefix("-----BEGIN CERTIFICATE-----"))
            let pem = try await mount.read("secrets/api-tls")
            #expect(pem.hasPrefix("-----BEGIN PRIVATE KEY-----"))
            #expect(
                pem.components(separatedBy: "-----BEGIN CERTIFICATE-----").count == 4,
                "key, then leaf, intermediate and root")
            #expect(
                try await mount.read("tls/api-tls/fullchain.pem").components(separatedBy: "-----BEGIN CERTIFICATE-----")
                    .count == 4)
            #expect(
                try await mount.read("tls/api-tls/cert.pem").components(separatedBy: "-----BEGIN CERTIFICATE-----")
                    .count == 2)
            #expect(try await mount.read("tls/api-tls/key.pem").hasPrefix("-----BEGIN PRIVATE KEY-----"))
            await #expect(throws: (any Error).self) { _ = try await mount.read("secrets/retired-token") }
            await #expect(throws: (any Error).self) { _ = try await mount.read("secrets/does-not-exist") }
        }
    }

    @Test("Versions are listed and readable under .versions")
    func versions() async throws {
        try await withMountedDemo { (_, mount) async throws in
            let versions = try await onOwnThread { [mount] in
                try FileManager.default.contentsOfDirectory(atPath: mount.path("secrets/.versions/database-password"))
            }
            #expect(versions.count == 2)
            var values: Set<String> = []
            for version in versions {
                values.insert(try await mount.read("secrets/.versions/database-password/\(version)"))
            }
            #expect(values == ["initial-password-1", "correct-horse-battery-staple"])
        }
    }

    @Test("Extended attributes describe the object")
    func extendedAttributes() async throws {
        try await withMountedDemo { (_, mount) async throws in
            let path = mount.path("secrets/api-key")
            let names: [String] = try await onOwnThread {
                var buffer = [CChar](repeating: 0, count: 4096)
                let length = listxattr(path, &buffer, buffer.count)
                guard length >= 0 else { throw TestFailure("listxattr: \(String(cString: strerror(errno)))") }
                return buffer[..<length].split(separator: 0).map {
                    String(decoding: $0.map(UInt8.init(bitPattern:)), as: UTF8.self)
                }
            }
            for expected in [
                "user.version", "user.id", "user.content_type", "user.created", "user.updated", "user.tags",
                "user.tag.team",
            ] {
                #expect(names.contains(expected), "missing \(expected) in \(names)")
            }
            func value(_ name: String) async throws -> String {
                try await onOwnThread {
                    var buffer = [UInt8](repeating: 0, count: 4096)
                    let length = getxattr(path, name, &buffer, buffer.count)
                    guard length >= 0 else {
                        throw TestFailure("getxattr \(name): \(String(cString: strerror(errno)))")
                    }
                    return String(decoding: buffer[..<length], as: UTF8.self)
                }
            }
            #expect(try await value("user.tag.team") == "payments")
            #expect(try await value("user.content_type") == "text/plain")
            #expect(try await value("user.version").count == 32)
            #expect(try await value("user.id").contains("/secrets/api-key/"))
        }
    }

    @Test("Every write answers EROFS")
    func readOnly() async throws {
        try await withMountedDemo { (_, mount) async throws in
            let failures: [Int32] = try await onOwnThread { [mount] in
                [
                    open(mount.path("secrets/api-key"), O_WRONLY) < 0 ? errno : 0,
                    open(mount.path("secrets/new-file"), O_CREAT | O_WRONLY, 0o600) < 0 ? errno : 0,
                    mkdir(mount.path("secrets/dir"), 0o700) < 0 ? errno : 0,
                    unlink(mount.path("secrets/api-key")) < 0 ? errno : 0,
                    rename(mount.path("secrets/api-key"), mount.path("secrets/other")) < 0 ? errno : 0,
                    setxattr(mount.path("secrets/api-key"), "user.x", "1", 1, 0) < 0 ? errno : 0,
                    chmod(mount.path("secrets/api-key"), 0o777) < 0 ? errno : 0,
                ]
            }
            #expect(failures == Array(repeating: EROFS, count: failures.count))
        }
    }

    @Test("100 concurrent first reads of one secret cause exactly one GET")
    func singleFlight() async throws {
        try await withMountedDemo { (emulator, mount) async throws in
            let path = mount.path("secrets/app-settings")
            let results = Mutex([String](repeating: "", count: 100))
            await onThreads(100) { index in
                let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? "error"
                results.withLock { $0[index] = text }
            }
            let contents = results.withLock { $0 }
            #expect(Set(contents).count == 1 && contents[0].contains("newCheckout"))
            #expect(try await emulator.requests(vault: "demo", path: "/secrets/app-settings").count == 1)
        }
    }

    @Test("A rotated secret is seen after the TTL, under a new inode")
    func rotation() async throws {
        try await withMountedDemo { (emulator, mount) async throws in
            #expect(try await mount.read("secrets/api-key") == "demo-api-key-8c2f5e")
            let inode = try await status(mount.path("secrets/api-key")).inode
            try await emulator.setSecret(vault: "demo", name: "api-key", value: "rotated-value-longer")
            try await mount.readUntilRotated("secrets/api-key", from: "demo-api-key-8c2f5e", to: "rotated-value-longer")
            let after = try await status(mount.path("secrets/api-key"))
            #expect(after.size == "rotated-value-longer".utf8.count)
            #expect(after.inode != inode, "a version is an inode: a file opened before keeps reading the old one")
        }
    }

    @Test("Names in any letter case are one object: one GET, and a rotation reaches every spelling at once")
    func letterCase() async throws {
        try await withMountedDemo { (emulator, mount) async throws in
            #expect(try await mount.read("secrets/api-key") == "demo-api-key-8c2f5e")
            #expect(try await mount.read("secrets/API-KEY") == "demo-api-key-8c2f5e")
            #expect(try await mount.read("secrets/Api-Key") == "demo-api-key-8c2f5e")
            let gets = try await emulator.requestLog().filter {
                ($0["path"] as? String)?.lowercased() == "/secrets/api-key" && $0["status"] as? Int == 200
            }
            #expect(gets.count == 1, "Key Vault's names are case-insensitive: one object, one GET")

            try await emulator.setSecret(vault: "demo", name: "api-key", value: "rotated-value-longer")
            try await mount.readUntilRotated("secrets/API-KEY", from: "demo-api-key-8c2f5e", to: "rotated-value-longer")
            // The other spellings show the same version as soon as one does: one entry, one rotation.
            #expect(try await mount.read("secrets/api-key") == "rotated-value-longer")
            #expect(try await mount.read("secrets/Api-Key") == "rotated-value-longer")
        }
    }

    @Test("During an injected outage the last good content keeps being served")
    func staleDuringOutage() async throws {
        try await withMountedDemo { (emulator, mount) async throws in
            #expect(try await mount.read("secrets/api-key") == "demo-api-key-8c2f5e")
            try await emulator.injectFault(["vault": "demo", "status": 503, "count": 10_000])
            try await Task.sleep(for: .seconds(3))  // past the 2 s TTL: a refresh is due and fails
            #expect(try await mount.read("secrets/api-key") == "demo-api-key-8c2f5e")
            let failed = try await emulator.requests(vault: "demo", path: "/secrets/api-key").filter {
                $0["status"] as? Int == 503
            }
            #expect(!failed.isEmpty, "the refresh reached Key Vault and failed")
            try await emulator.clearFaults()
        }
    }

    @Test("SIGTERM unmounts cleanly and exits 0")
    func sigterm() async throws {
        try await withMountedDemo { (_, mount) async throws in
            #expect(try await mount.read("secrets/api-key") == "demo-api-key-8c2f5e")
            #expect(try await mount.stop() == 0)
            #expect(!TestMounts.isAkvfsMount(mount.mountpoint))
            #expect(mount.log.contains("unmounted"))
        }
    }

    @Test(
        "SIGINT and SIGHUP unmount as SIGTERM does, and a second signal while stopping changes nothing",
        arguments: [SIGINT, SIGHUP])
    func otherStopSignals(_ number: Int32) async throws {
        try await withMountedDemo { (_, mount) async throws in
            #expect(try await mount.read("secrets/api-key") == "demo-api-key-8c2f5e")
            mount.process.signal(number)
            mount.process.signal(SIGTERM)
            #expect(await mount.process.exit() == 0)
            #expect(!TestMounts.isAkvfsMount(mount.mountpoint))
            #expect(mount.log.contains("unmounted"))
        }
    }

    @Test("A crashing daemon writes no core dump: its memory holds the vault's secrets")
    func noCoreDump() async throws {
        try await withEmulatorProcess { emulator in
            // Core dumps allowed by the limit and, with a file core pattern, written to the
            // daemon's working directory: only akvfs itself can keep them from happening.
            let workingDirectory = emulator.directory.appendingPathComponent("crash-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: workingDirectory, withIntermediateDirectories: true)
            let launcher = [
                "/bin/sh", "-c", #"cd "$0" && exec prlimit --core=unlimited:unlimited -- "$@""#, workingDirectory.path,
            ]
            // Swift's crash backtracer would catch the signal and let the daemon live on.
            let mount = try await MountedVault(
                emulator: emulator, environment: ["SWIFT_BACKTRACE": "enable=no"], launcher: launcher)
            #expect(try await mount.read("secrets/api-key") == "demo-api-key-8c2f5e")
            mount.process.signal(SIGABRT)
            #expect(await mount.process.exit() == 128 + SIGABRT)
            #expect(!mount.process.dumpedCore)
            #expect(try FileManager.default.contentsOfDirectory(atPath: workingDirectory.path).isEmpty)
            umount2(mount.mountpoint, Int32(MNT_DETACH))
        }
    }

    @Test("After the daemon is killed, a new mount replaces the dead one")
    func recoverFromKill() async throws {
        try await withEmulatorProcess { emulator in
            let first = try await MountedVault(emulator: emulator)
            #expect(try await first.read("secrets/api-key") == "demo-api-key-8c2f5e")
            first.process.signal(SIGKILL)
            _ = await first.process.exit()
            let deadError: Int32 = try await onOwnThread { [first] in
                var buffer = statvfs()
                return statvfs(first.mountpoint, &buffer) == 0 ? 0 : errno
            }
            #expect(deadError == ENOTCONN, "the killed daemon left a dead mount")
            let secondLog = emulator.directory.appendingPathComponent("second.log")
            let process = try MountedVault.start(
                emulator: emulator, vault: "demo", mountpoint: first.mountpoint, arguments: [], environment: [:],
                log: secondLog)
            // Wait for the new daemon to serve (statvfs reaches the daemon; the kernel may still
            // answer reads of recently read files from its cache). Once the dead mount is cleared,
            // statvfs succeeds on the bare directory too, so the new mount must be in the table.
            var live = false
            for _ in 0..<300 where !live {
                try await Task.sleep(for: .milliseconds(100))
                guard TestMounts.isAkvfsMount(first.mountpoint) else { continue }
                live = try await onOwnThread { [first] in
                    var buffer = statvfs()
                    return statvfs(first.mountpoint, &buffer) == 0
                }
            }
            #expect(live)
            #expect(try await first.read("secrets/api-key") == "demo-api-key-8c2f5e")
            #expect((try? String(contentsOf: secondLog, encoding: .utf8))?.contains("clearing a dead mount") == true)
            process.signal(SIGTERM)
            _ = await process.exit()
            #expect(!TestMounts.isAkvfsMount(first.mountpoint))
            let mountCount = TestMounts.entries().filter { $0.mountpoint.hasPrefix(first.mountpoint) }.count
            #expect(mountCount == 0, "no stacked or dead mount is left behind")
        }
    }

    @Test("A bad vault or identity fails before mounting, leaving nothing mounted")
    func failFast() async throws {
        try await withEmulatorProcess { emulator in
            let mountpoint = emulator.directory.appendingPathComponent("never").path
            try FileManager.default.createDirectory(atPath: mountpoint, withIntermediateDirectories: true)
            let log = emulator.directory.appendingPathComponent("fail.log")
            let process = try MountedVault.start(
                emulator: emulator, vault: "demo", mountpoint: mountpoint,
                arguments: ["--credential", "client-secret"], environment: [:], log: log)
            #expect(await process.exit() != 0)
            #expect((try? String(contentsOf: log, encoding: .utf8))?.contains("AZURE_CLIENT_SECRET") == true)
            #expect(!TestMounts.isAkvfsMount(mountpoint))
        }
    }
}
