import Foundation
import Glibc
import TestSupport
import Testing

/// mount(8) helper, systemd readiness and the unit file.
@Suite("mount.akvfs, systemd", .serialized, .timeLimit(.minutes(5)))
struct HelperAndServiceTests {
    /// A directory with `mount.akvfs` pointing at the built akvfs, as packages install it.
    static func helperDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "akvfs-helper-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: directory.appendingPathComponent("mount.akvfs").path,
            withDestinationPath: builtExecutable("akvfs"))
        return directory
    }

    @Test("fstab options become akvfs flags; mount(8)'s own options are ignored")
    func optionTranslation() async throws {
        let helper = try Self.helperDirectory().appendingPathComponent("mount.akvfs").path
        let outcome = try await ChildProcess.run(
            helper,
            [
                "myvault", "/mnt/kv", "-f", "-v", "-o",
                #"rw,_netdev,nofail,x-systemd.automount,allow_other,tenant=t-1,client_id=c-1,uid=33,file_mode=0400,ca_file=/etc/ssl/a\,b.pem"#,
            ],
            environment: [:])
        #expect(outcome.status == 0, "\(outcome.output)")
        #expect(
            outcome.output.contains(
                "akvfs mount myvault /mnt/kv --allow-other --tenant-id t-1 --client-id c-1 --uid 33 --file-mode 0400 --ca-file /etc/ssl/a,b.pem"
            ))
    }

    @Test("Unknown options and secrets in options are refused with mount(8)'s usage status")
    func badOptions() async throws {
        let helper = try Self.helperDirectory().appendingPathComponent("mount.akvfs").path
        let unknown = try await ChildProcess.run(helper, ["v", "/mnt", "-o", "tenat=x"], environment: [:])
        #expect(unknown.status == 1)
        #expect(unknown.output.contains("unknown option 'tenat'"))
        let secret = try await ChildProcess.run(helper, ["v", "/mnt", "-o", "client_secret=hunter2"], environment: [:])
        #expect(secret.status == 1)
        #expect(secret.output.contains("client_secret_file="))
        let missing = try await ChildProcess.run(helper, ["only-one-argument"], environment: [:])
        #expect(missing.status == 1)
        let level = try await ChildProcess.run(helper, ["v", "/mnt", "-o", "log_level=bogus"], environment: [:])
        #expect(level.status == 1)
        #expect(level.output.contains("option 'log_level=bogus' names no log level; use one of trace, debug"))
    }

    @Test("mount -t akvfs mounts in the background and returns once the mount is up")
    func mountCommand() async throws {
        try await withEmulatorProcess { emulator in
            let mountpoint = emulator.directory.appendingPathComponent("fstab-mount").path
            try FileManager.default.createDirectory(atPath: mountpoint, withIntermediateDirectories: true)
            let environmentFile = emulator.directory.appendingPathComponent("vault.env")
            try Data(
                "# settings for the helper\nAKVFS_CA_FILE=\(emulator.caFile)\nAKVFS_IMDS_ENDPOINT=\"\(emulator.imdsEndpoint)\"\n"
                    .utf8
            ).write(to: environmentFile)
            // util-linux mount looks for /sbin/mount.<type>.
            let installed = "/sbin/mount.akvfs"
            try? FileManager.default.removeItem(atPath: installed)
            try FileManager.default.createSymbolicLink(
                atPath: installed, withDestinationPath: builtExecutable("akvfs"))
            defer { try? FileManager.default.removeItem(atPath: installed) }
            let outcome = try await ChildProcess.run(
                "/bin/mount",
                [
                    "-t", "akvfs", emulator.vaultURL("demo"), mountpoint, "-o",
                    "_netdev,env_file=\(environmentFile.path),ttl=30",
                ],
                environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"])
            #expect(outcome.status == 0, "\(outcome.output)")
            #expect(TestMounts.isAkvfsMount(mountpoint))
            #expect(
                try await onOwnThread { try String(contentsOfFile: mountpoint + "/secrets/api-key", encoding: .utf8) }
                    == "demo-api-key-8c2f5e")
            let unmounted = try await ChildProcess.run(
                builtExecutable("akvfs"), ["unmount", mountpoint], environment: [:])
            #expect(unmounted.status == 0, "\(unmounted.output)")
            for _ in 0..<50 where TestMounts.isAkvfsMount(mountpoint) { try await Task.sleep(for: .milliseconds(100)) }
            #expect(!TestMounts.isAkvfsMount(mountpoint))

            let failing = try await ChildProcess.run(
                "/bin/mount",
                [
                    "-t", "akvfs", emulator.vaultURL("demo"), mountpoint, "-o",
                    "env_file=\(environmentFile.path),credential=client-secret",
                ],
                environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"])
            #expect(failing.status != 0)
            #expect(
                failing.output.contains("AZURE_CLIENT_SECRET"),
                "the daemon's reason reaches mount's caller: \(failing.output)")
            #expect(!TestMounts.isAkvfsMount(mountpoint))
        }
    }

    @Test("Under systemd, akvfs reports READY=1 once mounted, and STOPPING=1 on SIGTERM")
    func readiness() async throws {
        try await withEmulatorProcess { emulator in
            let socketPath = emulator.directory.appendingPathComponent("notify.sock").path
            let descriptor = try boundDatagramSocket(at: socketPath)
            defer { close(descriptor) }
            let mount = try await MountedVault(
                emulator: emulator, extraArguments: [], environment: ["NOTIFY_SOCKET": socketPath])
            func receive() async throws -> String {
                var message = ""
                for _ in 0..<100 where message.isEmpty {
                    message = try await onOwnThread {
                        var buffer = [UInt8](repeating: 0, count: 512)
                        let length = recv(descriptor, &buffer, buffer.count, Int32(MSG_DONTWAIT))
                        return length > 0 ? String(decoding: buffer[..<length], as: UTF8.self) : ""
                    }
                    if message.isEmpty { try await Task.sleep(for: .milliseconds(50)) }
                }
                return message
            }
            // The mount shows up in the mount table a moment before the daemon reports it.
            #expect(try await receive().hasPrefix("READY=1"))
            #expect(try await mount.stop() == 0)
            #expect(try await receive() == "STOPPING=1")
        }
    }

    @Test("The systemd unit passes systemd-analyze verify")
    func unitVerifies() async throws {
        let unit = repositoryFile("systemd/akvfs@.service")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "akvfs-unit-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // The unit names /usr/local/bin/akvfs; verify checks that the binary exists, so point it at the build.
        let text = try String(contentsOf: unit, encoding: .utf8).replacingOccurrences(
            of: "/usr/local/bin/akvfs", with: builtExecutable("akvfs"))
        try Data(text.utf8).write(to: directory.appendingPathComponent("akvfs@.service"))
        let outcome = try await ChildProcess.run(
            "/usr/bin/systemd-analyze", ["verify", directory.appendingPathComponent("akvfs@demo.service").path],
            environment: [:])
        #expect(outcome.status == 0)
        #expect(outcome.output.isEmpty, "systemd-analyze warned: \(outcome.output)")
    }

    @Test(
        "The unit keeps the mount in systemd's descriptor store; ExecStopPost unmounts on a stop, never on a restart or a crash"
    )
    func unitOutlivesRestarts() async throws {
        let unit = try String(
            contentsOf: repositoryFile("systemd/akvfs@.service"),
            encoding: .utf8)
        let lines = unit.split(separator: "\n").map(String.init)
        func value(_ key: String) -> String? {
            lines.first { $0.hasPrefix("\(key)=") }.map { String($0.dropFirst(key.count + 1)) }
        }
        #expect(value("ExecStart")?.contains("--systemd-descriptor-store") == true)
        #expect(Int(value("FileDescriptorStoreMax") ?? "") ?? 0 >= 2, "the FUSE connection and the state")

        // Run ExecStopPost's command as systemd would (after its own $$ and %n expansion), with
        // stand-ins for systemctl and umount that say which job is queued and record the call. The
        // vault is named "restart": only the job's type may count.
        let command = try #require(value("ExecStopPost"))
        #expect(command.hasPrefix("-/bin/sh -c '"), "a failed unmount must not fail the stop")
        let script = String(command.dropFirst("-/bin/sh -c '".count).dropLast())
            .replacingOccurrences(of: "$$", with: "$").replacingOccurrences(of: "%n", with: "akvfs@demo.service")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "akvfs-stoppost-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let record = directory.appendingPathComponent("umount-called").path
        try Data(
            "#!/bin/sh\n[ -n \"$QUEUED_JOB\" ] && echo \"42 akvfs@restart.service $QUEUED_JOB running\"\nexit 0\n".utf8
        ).write(to: directory.appendingPathComponent("systemctl"))
        try Data("#!/bin/sh\necho \"$@\" > '\(record)'\n".utf8).write(to: directory.appendingPathComponent("umount"))
        for tool in ["systemctl", "umount"] { chmod(directory.appendingPathComponent(tool).path, 0o755) }

        for (result, job, unmounts) in [
            ("success", "", true), ("success", "stop", true), ("success", "restart", false), ("signal", "", false),
            ("exit-code", "", false),
        ] {
            try? FileManager.default.removeItem(atPath: record)
            let outcome = try await ChildProcess.run(
                "/bin/sh", ["-c", script],
                environment: [
                    "PATH": "\(directory.path):/usr/bin:/bin", "SERVICE_RESULT": result, "QUEUED_JOB": job,
                    "AKVFS_MOUNTPOINT": "/mnt/kv/demo",
                ])
            #expect(outcome.status == 0)
            let called = try? String(contentsOfFile: record, encoding: .utf8)
            #expect((called != nil) == unmounts, "result \(result), queued job '\(job)'")
            if unmounts { #expect(called == "--lazy /mnt/kv/demo\n") }
        }
    }
}
