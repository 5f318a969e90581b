import Foundation
import TestSupport
import Testing

/// Scrapes `--metrics-address` the way Prometheus does.
func scrape(_ log: @autoclosure () -> String, path: String = "/metrics") async throws -> (status: Int, body: String) {
    var address: String?
    for _ in 0..<100 where address == nil {
        address =
            log().components(separatedBy: "serving Prometheus metrics at http://").dropFirst().first?
            .components(separatedBy: "/metrics").first
        if address == nil { try await Task.sleep(for: .milliseconds(50)) }
    }
    let url = try #require(address.map { "http://\($0)\(path)" }, "the daemon logs where it serves metrics")
    return try await onOwnThread {
        // curl, as Prometheus would reach it: a plain HTTP GET.
        let output = FileManager.default.temporaryDirectory.appendingPathComponent(
            "scrape-\(UUID().uuidString.prefix(8))"
        ).path
        defer { unlink(output) }
        let process = try ChildProcess.spawn(
            "/usr/bin/curl", ["-s", "-o", output, "-w", "%{http_code}", url], stdout: .pipe)
        let code = Int(String(decoding: process.readAll(), as: UTF8.self)) ?? 0
        _ = process.wait()
        return (code, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }
}

/// The value of one sample line, `name{labels} value`, or nil.
func sample(_ body: String, _ series: String) -> Double? {
    body.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap {
        Double($0.split(separator: " ").last ?? "")
    }
}

@Suite("Metrics", .timeLimit(.minutes(5)))
struct MetricsTests {
    @Test("akvfs mount --metrics-address serves Key Vault requests, latency, cache and token metrics to a scrape")
    func nodeMount() async throws {
        try await withMountedDemo(arguments: ["--metrics-address", "127.0.0.1:0"]) { emulator, mount in
            #expect(try await mount.read("secrets/api-key") == "demo-api-key-8c2f5e")
            #expect(try await mount.read("secrets/api-key") == "demo-api-key-8c2f5e")
            _ = try await onOwnThread { [mount] in
                try FileManager.default.contentsOfDirectory(atPath: mount.path("secrets"))
            }
            let (status, body) = try await scrape(mount.log)
            #expect(status == 200)
            #expect(
                (sample(body, #"akvfs_keyvault_requests_total{operation="GetSecret",status="200"}"#) ?? 0) >= 1,
                "\(body)")
            #expect((sample(body, #"akvfs_keyvault_requests_total{operation="GetSecrets",status="200"}"#) ?? 0) >= 1)
            #expect(body.contains(#"akvfs_keyvault_request_duration_seconds_bucket{operation="GetSecret",le="0.005"}"#))
            #expect((sample(body, "akvfs_cache_misses_total") ?? 0) >= 1)
            #expect(sample(body, "akvfs_cache_hits_total") != nil)
            #expect((sample(body, #"akvfs_token_requests_total{outcome="success"}"#) ?? 0) >= 1)
            #expect(!body.contains("demo-api-key"), "no value, and no object name, in the metrics")
            #expect(try await scrape(mount.log, path: "/other").status == 404)
        }
    }

    @Test("A --metrics-address that cannot be used fails before mounting, saying what is wrong")
    func badAddress() async throws {
        try await withEmulatorProcess { emulator in
            for (address, message) in [
                ("9090", "is not host:port"), ("256.1.1.1:9090", "cannot resolve"),
                ("127.0.0.1:99999", "is not host:port"),
            ] {
                let mountpoint = emulator.directory.appendingPathComponent("mnt-\(UUID().uuidString.prefix(6))").path
                try FileManager.default.createDirectory(atPath: mountpoint, withIntermediateDirectories: true)
                let log = emulator.directory.appendingPathComponent("bad-metrics.log")
                let process = try MountedVault.start(
                    emulator: emulator, vault: "demo", mountpoint: mountpoint,
                    arguments: ["--metrics-address", address], environment: [:], log: log)
                #expect(await process.exit() != 0)
                let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                #expect(text.contains(message), "\(address): \(text)")
                #expect(!TestMounts.isAkvfsMount(mountpoint))
            }
        }
    }

    @Test("akvfs csi with a --metrics-address that cannot be used fails before it mounts its shared filesystem")
    func badAddressForThePlugin() async throws {
        try await withEmulatorProcess { emulator in
            let state = emulator.directory.appendingPathComponent("csi-state-\(UUID().uuidString.prefix(6))").path
            let log = emulator.directory.appendingPathComponent("csi-bad-metrics.log")
            let process = try ChildProcess.spawn(
                builtExecutable("akvfs"),
                [
                    "csi", "--endpoint", "unix://\(emulator.directory.path)/csi-\(UUID().uuidString.prefix(6)).sock",
                    "--node-id", "n",
                    "--state-dir", state, "--kubelet-dir", emulator.directory.path, "--metrics-address", "9090",
                ],
                environment: ["PATH": "/usr/bin:/bin"], stderr: .file(log.path))
            #expect(await process.exit() != 0)
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            #expect(text.contains("is not host:port"), "\(text)")
            #expect(!TestMounts.isMountPoint("\(state)/mount"), "nothing was mounted")
            TestMounts.unmountAll(under: emulator.directory.path)
        }
    }
}
