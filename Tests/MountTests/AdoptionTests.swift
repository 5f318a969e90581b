import Foundation
import FuseBridge
import ObjectCache
import ObjectSourceSupport
import PKI
import Synchronization
import TestSupport
import Testing
import VaultFS

/// The FUSE glue's part of a handoff, in one process: a second session serves a connection the
/// first one mounted, with no unmount in between.
@Suite("FUSE sessions hand over a connection", .serialized, .timeLimit(.minutes(5)))
struct AdoptionTests {
    @Test("A second session adopts a mounted connection: readers never see it change hands")
    func adoption() async throws {
        let source = SourceID(vault: "https://fixed", identity: "test")
        let cache = ObjectCache()
        await cache.register(InMemorySource(secrets: ["one": "first-value", "two": "second-value"]), as: source)
        let filesystem = VaultFileSystem(
            cache: cache, configuration: FileSystemConfiguration(root: .singleView("v")),
            views: [ViewDefinition(id: "v", source: source, layout: .vault)])
        let mountpoint = FileManager.default.temporaryDirectory.appendingPathComponent(
            "akvfs-adopt-\(UUID().uuidString.prefix(8))"
        ).path
        try FileManager.default.createDirectory(atPath: mountpoint, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: mountpoint) }

        let first = try FuseMount(filesystem: filesystem, mountpoint: mountpoint, options: MountOptions())
        let firstRun = Task { try await first.run() }
        #expect(
            try await onOwnThread { try String(contentsOfFile: "\(mountpoint)/secrets/one", encoding: .utf8) }
                == "first-value")
        let connection = try #require(first.connection)
        #expect(await first.stopServing(within: .seconds(5)))
        #expect(try await firstRun.value == .stopped)
        #expect(TestMounts.isMountPoint(mountpoint), "stopping leaves the mount up")

        // Meanwhile a reader waits in the kernel; the second session answers it.
        let waiting = Task {
            try await onOwnThread { try String(contentsOfFile: "\(mountpoint)/secrets/two", encoding: .utf8) }
        }
        let second = try FuseMount(
            filesystem: filesystem,
            adopting: FuseConnection(descriptor: dup(connection.descriptor), initRequest: connection.initRequest),
            mountpoint: mountpoint)
        let secondRun = Task { try await second.run() }
        #expect(try await waiting.value == "second-value")
        #expect(
            try await onOwnThread {
                try FileManager.default.contentsOfDirectory(atPath: "\(mountpoint)/secrets").sorted()
            }
                == [".versions", "one", "two"])
        #expect(
            try await onOwnThread { try String(contentsOfFile: "\(mountpoint)/secrets/one", encoding: .utf8) }
                == "first-value")

        second.unmount()
        #expect(try await secondRun.value == .unmounted)
        #expect(!TestMounts.isMountPoint(mountpoint))
        withExtendedLifetime(first) {}
    }
}
