import CSINode
import CSIProtocol
import Foundation
import Glibc
import SwiftProtobuf
import TestSupport
import Testing

/// A process in a mount namespace of its own with private propagation, as a container whose
/// volume mounts have no mountPropagation: it keeps the volumes' bind mounts as they were when it
/// started and sees nothing the host mounts later, so only the FUSE connection staying alive keeps
/// its files readable. It reads every file and lists every volume in a loop until stopped.
final class PrivateNamespaceReader: Sendable {
    struct Tally {
        var rounds: Int
        var failures: [String]
    }

    let process: ChildProcess
    let output: String

    init(files: [(path: String, expected: String)], directories: [String], in directory: URL) throws {
        output = directory.appendingPathComponent("reader-\(UUID().uuidString.prefix(8))").path
        let reads = files.map { file in
            """
            if v=$(cat '\(file.path)' 2>&1); then [ "$v" = '\(file.expected)' ] || echo "wrong: \(file.path): $v" >> "$out.failures"; \
            else echo "failed: \(file.path): $v" >> "$out.failures"; fi
            """
        }
        let listings = directories.map {
            "ls '\($0)' > /dev/null 2>> \"$out.failures\" || echo \"failed: ls \($0)\" >> \"$out.failures\""
        }
        let script = """
            out='\(output)'
            rounds=0
            while [ ! -e "$out.stop" ]; do
            \((reads + listings).joined(separator: "\n"))
            rounds=$((rounds + 1)); echo $rounds > "$out.rounds.tmp"; mv "$out.rounds.tmp" "$out.rounds"
            done
            """
        process = try ChildProcess.spawn(
            "/usr/bin/unshare", ["--mount", "--propagation", "private", "/bin/sh", "-c", script])
    }

    var rounds: Int {
        Int(
            (try? String(contentsOfFile: "\(output).rounds", encoding: .utf8))?.trimmingCharacters(
                in: .whitespacesAndNewlines) ?? "") ?? 0
    }

    /// Waits until the reader has gone round `more` more times, at most 30 s.
    func waitForRounds(_ more: Int) async throws {
        let target = rounds + more
        for _ in 0..<600 where rounds < target {
            guard process.isRunning else { throw TestFailure("the reader stopped") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    func stop() async -> Tally {
        FileManager.default.createFile(atPath: "\(output).stop", contents: nil)
        _ = await process.exit()
        let failures =
            (try? String(contentsOfFile: "\(output).failures", encoding: .utf8))?.split(separator: "\n").map(
                String.init) ?? []
        return Tally(rounds: rounds, failures: failures)
    }
}

/// The CSI plugin outliving its process: volumes keep serving through a kill -9, a stop and a
/// planned handoff to a new plugin process, with no republish.
@Suite("CSI node plugin: restarts and handoffs", .serialized, .timeLimit(.minutes(5)))
struct CSIRestartTests {
    @Test(
        "3 volumes read from a private mount namespace keep working through kill -9, a stop and a handoff, without republish"
    )
    func volumesOutliveThePlugin() async throws {
        let emulator = try await EmulatorProcess(seedJSON: CSISeed.json)
        let keeper = try await KeeperProcess(directory: emulator.directory)
        let arguments = ["--ttl", "300", "--keeper", keeper.socketPath]
        var plugins: [CSIPluginProcess] = []
        var reader: PrivateNamespaceReader?
        do {
            let first = try await CSIPluginProcess(emulator: emulator, arguments: arguments)
            plugins.append(first)
            try await emulator.putSecretProviderClass(
                namespace: "team-a", name: "app",
                parameters: CSIPluginTests.teamAParameters(objects: [
                    ["objectName": "db-password", "objectType": "secret"],
                    ["objectName": "api-key", "objectType": "secret"],
                ]))
            let tokens = try await emulator.serviceAccountTokens(subject: CSISeed.teamASubject)
            let web = try TestVolume(
                emulator, pod: "web",
                attributes: ["secretProviderClass": "app", "csi.storage.k8s.io/serviceAccount.tokens": tokens])
            let worker = try TestVolume(
                emulator, pod: "worker",
                attributes: ["secretProviderClass": "app", "csi.storage.k8s.io/serviceAccount.tokens": tokens])
            // A service principal's volume: its identity key holds a fingerprint of the secret,
            // which the next process must compute the same way.
            let ops = try TestVolume.servicePrincipal(emulator, pod: "ops")
            for volume in [web, worker, ops] {
                try await first.client {
                    try await $0.publish(
                        volumeID: volume.id, targetPath: volume.targetPath, attributes: volume.attributes,
                        secrets: volume.secrets)
                }
            }
            let files = [
                (web.path("db-password"), "team-a-password"), (web.path("api-key"), "team-a-api-key"),
                (worker.path("db-password"), "team-a-password"), (ops.path("password.txt"), "team-a-password"),
            ]
            reader = try PrivateNamespaceReader(
                files: files, directories: [web.targetPath, worker.targetPath, ops.targetPath], in: emulator.directory)
            try await reader!.waitForRounds(10)

            // kill -9: the keeper holds the mount; the next process reclaims it and the volumes.
            let lastBeforeKill = try await emulator.requestLog().map { $0["sequence"] as? Int ?? 0 }.max() ?? 0
            first.process.signal(SIGKILL)
            _ = await first.process.exit()
            let second = try await CSIPluginProcess(emulator: emulator, arguments: arguments, reuseStateOf: first)
            plugins.append(second)
            #expect(second.log.contains("serving CSI with the volumes taken over"), "\(second.log)")
            #expect(second.log.contains("took over 3 published volumes"))
            try await reader!.waitForRounds(10)
            // db-password is read with two identities (team-a's workload identity, ops's service
            // principal), so this process holds it in two cache entries. The kernel may answer
            // reads from its page cache for a while; the handoff below can only carry what this
            // process has fetched, so wait until it has fetched with both.
            var fetchers = try await emulator.fetchers(
                of: "/secrets/db-password", in: "team-a-kv", after: lastBeforeKill)
            for _ in 0..<200 where fetchers.count < 2 {
                try await Task.sleep(for: .milliseconds(100))
                fetchers = try await emulator.fetchers(
                    of: "/secrets/db-password", in: "team-a-kv", after: lastBeforeKill)
            }
            #expect(
                fetchers.count == 2,
                "the process that reclaimed the volumes after kill -9 fetches what is read: \(fetchers)")
            let getsBefore = try await emulator.gets(vault: "team-a-kv", path: "/secrets/db-password")

            // A planned handoff: the cache travels with the volumes, so no Key Vault GET follows.
            let third = try await CSIPluginProcess(emulator: emulator, arguments: arguments, reuseStateOf: second)
            plugins.append(third)
            #expect(third.log.contains("took over 3 published volumes"), "\(third.log)")
            try await reader!.waitForRounds(10)
            #expect(
                second.process.isRunning,
                "the process that handed over waits to be stopped, so a container restart does not take the volumes back"
            )
            #expect(second.log.contains("the next plugin process serves the volumes now"))
            let secondStatus = await second.stop()
            #expect(secondStatus == 0, "\(second.log)")
            try await reader!.waitForRounds(5)
            let getsAfter = try await emulator.gets(vault: "team-a-kv", path: "/secrets/db-password")
            let requests = try await emulator.requests(vault: "team-a-kv", path: "/secrets/db-password")
            #expect(getsAfter == getsBefore, "content handed over is not fetched again: \(requests)\n\(third.log)")

            // A stop with a keeper leaves the volumes for the next start.
            #expect(await third.stop() == 0)
            #expect(third.log.contains("the keeper holds the mount and 3 volumes"), "\(third.log)")
            let fourth = try await CSIPluginProcess(emulator: emulator, arguments: arguments, reuseStateOf: third)
            plugins.append(fourth)
            try await reader!.waitForRounds(10)

            let tally = await reader!.stop()
            reader = nil
            #expect(tally.failures.isEmpty, "\(tally.failures.prefix(10))")
            #expect(tally.rounds > 40)
            for plugin in plugins {
                #expect(!plugin.log.contains(CSISeed.servicePrincipalSecret), "secrets never appear in the log")
            }

            // The last process owns the volumes: unpublish works and cleans up.
            for volume in [web, worker, ops] {
                try await fourth.client { try await $0.unpublish(volumeID: volume.id, targetPath: volume.targetPath) }
                #expect(!volume.isMounted)
            }
        } catch {
            for plugin in plugins { Issue.record("plugin log:\n\(plugin.log)") }
            _ = await reader?.stop()
            await cleanUp(emulator, plugins, keeper)
            throw error
        }
        await cleanUp(emulator, plugins, keeper)
    }

    @Test(
        "A second plugin on a live socket with no handoff is refused before it changes anything; the first keeps serving"
    )
    func liveSocketIsNotTaken() async throws {
        try await withCSIPlugin { emulator, plugin in
            let other = emulator.directory.appendingPathComponent("other-state").path
            let log = emulator.directory.appendingPathComponent("second.log")
            let second = try ChildProcess.spawn(
                builtExecutable("akvfs"),
                [
                    "csi", "--endpoint", "unix://\(plugin.socketPath)", "--node-id", "n", "--state-dir", other,
                    "--kubelet-dir", emulator.directory.path,
                ],
                environment: ["PATH": "/usr/bin:/bin"], stderr: .file(log.path))
            #expect(await second.exit() == 1)
            let message = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            #expect(message.contains("another process serves \(plugin.socketPath) and offers no handoff"), "\(message)")
            #expect(FileManager.default.fileExists(atPath: plugin.socketPath))
            #expect(try await plugin.client { try await $0.identity.probe(.init()).ready.value })
            #expect(!TestMounts.isMountPoint("\(other)/mount"), "nothing was mounted")
        }
    }

    @Test("The readiness probe's command passes while the plugin serves, and fails saying why once it has stopped")
    func readinessProbe() async throws {
        try await withCSIPlugin { emulator, plugin in
            func probe() async throws -> (status: Int32, message: String) {
                let log = emulator.directory.appendingPathComponent("ready-\(UUID().uuidString.prefix(8)).log")
                let process = try ChildProcess.spawn(
                    builtExecutable("akvfs-csi"),
                    ["ready", "--ready-file", plugin.readyFile],
                    environment: ["PATH": "/usr/bin:/bin"], stderr: .file(log.path))
                let status = await process.exit()
                return (status, (try? String(contentsOf: log, encoding: .utf8)) ?? "")
            }
            #expect(try await probe().status == 0)
            _ = await plugin.stop()
            let stopped = try await probe()
            #expect(stopped.status == 1)
            #expect(stopped.message.contains("not ready: \(plugin.readyFile) does not exist"), "\(stopped.message)")
        }
    }

    private func cleanUp(_ emulator: EmulatorProcess, _ plugins: [CSIPluginProcess], _ keeper: KeeperProcess) async {
        TestMounts.unmountAll(under: emulator.directory.path)
        for plugin in plugins where plugin.process.isRunning { _ = await plugin.stop() }
        await keeper.stop()
        TestMounts.unmountAll(under: emulator.directory.path)
        await emulator.stop()
    }
}
