import Foundation
import Synchronization
import TestSupport
import Testing

/// akvfs against the emulator with the service's timing on (docs/emulator.md, "The service's
/// timing"): Key Vault's own throttling, and listings with empty pages in the middle.
@Suite("Mount: the service's throttling and paging", .serialized, .timeLimit(.minutes(5)))
struct ServiceTimingMountTests {
    static let secretCount = 60

    static func value(_ index: Int) -> String { "value-\(index)-\(String(repeating: "x", count: index % 7))" }

    /// A vault of 60 secrets: three pages at 25 per page.
    static var seedJSON: String {
        let secrets = (0..<secretCount).map {
            #"{"name": "s-\#(String(format: "%02d", $0))", "value": "\#(value($0))"}"#
        }
        return #"{"vaults": [{"name": "busy", "secrets": [\#(secrets.joined(separator: ", "))]}]}"#
    }

    @Test("ls pages through empty middle pages, and every file reads whole while the vault throttles")
    func listingAndReadsUnderThrottling() async throws {
        // Reads: 4,000 per 10 s scaled to 30, refilled at 3 a second, so reading all 60 at once must
        // ride out 429s, for about 10 s: the reads are answered in parallel, so each may wait
        // that long, and --fetch-timeout leaves them room.
        try await withMountedVault(
            seedJSON: Self.seedJSON, vault: "busy", arguments: ["--ttl", "300", "--fetch-timeout", "40"],
            prepare: Self.throttle, Self.listAndRead)
    }

    static func throttle(_ emulator: EmulatorProcess) async throws {
        try await emulator.setTiming(vault: "busy", ["throttleScale": 0.0075, "emptyMiddlePages": true])
    }

    static func listAndRead(_ emulator: EmulatorProcess, _ mount: MountedVault) async throws {
        // Off the test's threads: a throttled listing takes seconds, and Swift's cooperative
        // pool has one thread per core, which other tests need meanwhile.
        let names = try await onOwnThread { [mount] in
            try FileManager.default.contentsOfDirectory(atPath: mount.path("secrets")).filter { !$0.hasPrefix(".") }
                .sorted()
        }
        #expect(names == (0..<secretCount).map { String(format: "s-%02d", $0) })
        let listing = try await emulator.requests(vault: "busy", path: "/secrets").filter {
            $0["status"] as? Int == 200
        }
        #expect(listing.count == 5, "3 pages and the 2 empty pages between them")

        let wrong = Mutex<[String]>([])
        await onThreads(secretCount) { index in
            let name = String(format: "s-%02d", index)
            let text = (try? String(contentsOfFile: mount.path("secrets/\(name)"), encoding: .utf8)) ?? "<error>"
            if text != value(index) { wrong.withLock { $0.append("\(name): \(text)") } }
        }
        #expect(wrong.withLock { $0 }.isEmpty, "\(wrong.withLock { $0 })\n\(mount.log)")
        let throttled = try await emulator.requests(vault: "busy").filter { $0["status"] as? Int == 429 }
        #expect(!throttled.isEmpty, "the vault throttled; akvfs waited as told and retried")
    }

    @Test("A rotation is seen through the service's throttling, and readers never see an error or a mix")
    func rotationUnderThrottling() async throws {
        try await withMountedDemo { (emulator, mount) async throws in
            #expect(try await mount.read("secrets/api-key") == "demo-api-key-8c2f5e")
            // Reads: 4 per 10 s, one more every 2.5 s. Six first reads at once take them all and
            // are throttled; the rotation's refresh then has to wait its turn too.
            try await emulator.setTiming(vault: "demo", ["throttleScale": 0.001])
            let failed = Mutex<[String]>([])
            let paths = [
                "secrets/database-password", "secrets/app-settings", "certs/web-tls", "certs/api-tls", "secrets",
                "certs",
            ]
            await onThreads(paths.count) { index in
                let path = mount.path(paths[index])
                let works =
                    index < 4
                    ? FileManager.default.contents(atPath: path)?.isEmpty == false
                    : (try? FileManager.default.contentsOfDirectory(atPath: path))?.isEmpty == false
                if !works { failed.withLock { $0.append(paths[index]) } }
            }
            #expect(
                failed.withLock { $0 }.isEmpty, "reads wait out the throttling: \(failed.withLock { $0 })\n\(mount.log)"
            )
            #expect(try await emulator.requests(vault: "demo").contains { $0["status"] as? Int == 429 })
            try await emulator.setSecret(vault: "demo", name: "api-key", value: "rotated-under-throttling")
            // A read that failed would throw here: stale content is served while the refresh waits.
            try await mount.readUntilRotated(
                "secrets/api-key", from: "demo-api-key-8c2f5e", to: "rotated-under-throttling", seconds: 30)
        }
    }
}
