import Foundation
import Synchronization
import TestSupport
import Testing

/// What readers of a real mount see while Key Vault rotates secrets and while it fails.
@Suite("Real mounts: rotation and outages", .serialized, .timeLimit(.minutes(5)))
struct ConsistencyTests {
    /// Version `index` of the rotating secret: a marker, then one letter, at one of two lengths
    /// (several pages each), so bytes of two versions never pass for one.
    static func rotatingValue(_ index: Int) -> String {
        let letter = Character(UnicodeScalar(UInt8(ascii: "A") + UInt8(index % 26)))
        return "version-\(index):" + String(repeating: letter, count: index % 2 == 0 ? 5_000 : 9_123)
    }

    /// Whether `bytes` are exactly one version of the rotating secret; its index when they are.
    static func wholeVersion(_ bytes: [UInt8]) -> Int? {
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.hasPrefix("version-"), let colon = text.firstIndex(of: ":"),
            let index = Int(text[text.index(text.startIndex, offsetBy: 8)..<colon]), text == rotatingValue(index)
        else { return nil }
        return index
    }

    struct ReadTally: Sendable {
        var reads = 0
        var torn = 0
        var versions: Set<Int> = []
    }

    /// What readers on several threads found, and when they should stop.
    final class ReadProgress: Sendable {
        let tally = Mutex(ReadTally())
        let done = Atomic(false)
    }

    /// Opens `path` again and again until `done`, reading each time to the end in 100-byte
    /// chunks with short pauses, so rotations land in the middle of reads.
    static func readRepeatedly(_ path: String, _ progress: ReadProgress) {
        var chunk = [UInt8](repeating: 0, count: 100)
        while !progress.done.load(ordering: .relaxed) {
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            var content: [UInt8] = []
            while descriptor >= 0 {
                let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, 100) }
                if count <= 0 { break }
                content += chunk[0..<count]
                if content.count % 1_000 == 0 { usleep(500) }
            }
            if descriptor >= 0 { close(descriptor) }
            let version = descriptor >= 0 ? wholeVersion(content) : nil
            progress.tally.withLock { tally in
                tally.reads += 1
                if let version { tally.versions.insert(version) } else { tally.torn += 1 }
            }
        }
    }

    @Test(
        "Readers never get bytes of two versions while a secret rotates every 50 ms; a later open gets the new version")
    func wholeReadsDuringRotation() async throws {
        try await withMountedDemo(arguments: ["--ttl", "1"]) { emulator, mount in
            try await emulator.setSecret(vault: "demo", name: "rotating", value: Self.rotatingValue(0))
            let path = mount.path("secrets/rotating")
            #expect(Self.wholeVersion(Array(try await mount.read("secrets/rotating").utf8)) == 0)

            let stop = Mutex(false)
            let rotator = Task {
                var index = 0
                while !stop.withLock({ $0 }) {
                    index += 1
                    try await emulator.setSecret(vault: "demo", name: "rotating", value: Self.rotatingValue(index))
                    try await Task.sleep(for: .milliseconds(50))
                }
                return index
            }
            // Three readers until they have seen several rotations (at most a minute on a busy machine).
            let progress = ReadProgress()
            let readers = (0..<3).map { _ in Task { try await onOwnThread { Self.readRepeatedly(path, progress) } } }
            let started = ContinuousClock.now
            while ContinuousClock.now - started < .seconds(60) {
                try await Task.sleep(for: .milliseconds(200))
                let (reads, versions) = progress.tally.withLock { ($0.reads, $0.versions.count) }
                if reads >= 300, versions >= 5 { break }
            }
            progress.done.store(true, ordering: .relaxed)
            for reader in readers { try await reader.value }
            stop.withLock { $0 = true }
            let last = try await rotator.value

            let result = progress.tally.withLock { $0 }
            #expect(result.torn == 0, "\(result.torn) of \(result.reads) reads mixed versions")
            #expect(result.reads >= 300)
            #expect(result.versions.count >= 5, "rotations reached the readers")

            // Once the rotations stop, a new open finds the last version (within a few TTLs).
            var seen: Int?
            for _ in 0..<100 where seen != last {
                try await Task.sleep(for: .milliseconds(100))
                seen = Self.wholeVersion(Array(try await mount.read("secrets/rotating").utf8))
            }
            #expect(seen == last)
        }
    }

    @Test(
        "A file open across a rotation reads its version to the end; its name moves to a new inode and its watchers hear DELETE_SELF"
    )
    func openFileKeepsItsVersion() async throws {
        try await withMountedDemo { emulator, mount in
            let path = mount.path("secrets/api-key")
            #expect(try await mount.read("secrets/api-key") == "demo-api-key-8c2f5e")
            let before = try await status(path)
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            #expect(descriptor >= 0)
            var head = [UInt8](repeating: 0, count: 5)
            #expect(read(descriptor, &head, 5) == 5)
            let watcher = try InotifyWatch(path)

            try await emulator.setSecret(vault: "demo", name: "api-key", value: "rotated-value-longer")
            var seen = ""
            for _ in 0..<100 where seen != "rotated-value-longer" {
                try await Task.sleep(for: .milliseconds(100))
                seen = try await mount.read("secrets/api-key")
            }
            #expect(seen == "rotated-value-longer")
            let after = try await status(path)
            #expect(after.inode != before.inode)
            #expect(after.size == "rotated-value-longer".utf8.count)

            // Past the attribute timeout, so the kernel asks for the old inode's attributes again.
            try await Task.sleep(for: .milliseconds(1_500))
            var rest = [UInt8](repeating: 0, count: 100)
            let count = read(descriptor, &rest, 100)
            #expect(String(decoding: head + rest.prefix(max(count, 0)), as: UTF8.self) == "demo-api-key-8c2f5e")
            #expect(lseek(descriptor, 0, SEEK_END) == 19, "the open file keeps its version's size")
            // As for an unlinked file: the old inode is deleted when its last user closes it.
            close(descriptor)
            var events: [UInt32] = []
            for _ in 0..<50 where !events.contains(where: { $0 & UInt32(IN_DELETE_SELF) != 0 }) {
                try await Task.sleep(for: .milliseconds(100))
                events += watcher.events()
            }
            #expect(events.contains { $0 & UInt32(IN_DELETE_SELF) != 0 })
        }
    }

    @Test(
        "During an outage of hangs, 503s and dropped connections, cached files are served without waiting; new content shows within a TTL of recovery"
    )
    func outage() async throws {
        try await withMountedDemo(arguments: ["--ttl", "3", "--max-stale", "300"]) { emulator, mount in
            let names = ["api-key", "database-password", "app-settings"]
            var before: [String: String] = [:]
            for name in names { before[name] = try await mount.read("secrets/\(name)") }
            // A TTL of each kind of failure: revalidations fall due, fail and back off meanwhile.
            var slowest: Duration = .zero
            for action in [
                ["action": "hang", "hangSeconds": 120], ["action": "status", "status": 503], ["action": "drop"],
            ] as [[String: Any]] {
                try await emulator.clearFaults()
                try await emulator.injectFault(
                    action.merging(["method": "GET", "vault": "demo", "count": 100_000]) { $1 })
                let until = ContinuousClock.now + .seconds(3)
                while ContinuousClock.now < until {
                    for name in names {
                        let started = ContinuousClock.now
                        #expect(try await mount.read("secrets/\(name)") == before[name])
                        slowest = max(slowest, ContinuousClock.now - started)
                    }
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            // A read that waited for Key Vault would take at least the revalidation's 1.5 s limit.
            #expect(slowest < .milliseconds(1_000), "the slowest read took \(slowest)")
            let failed = try await emulator.requests(vault: "demo", path: "/secrets/api-key").filter {
                $0["fault"] is String
            }
            #expect(!failed.isEmpty, "revalidations reached Key Vault and failed")

            for name in names { try await emulator.setSecret(vault: "demo", name: name, value: "after-\(name)") }
            try await emulator.clearFaults()
            let recovered = ContinuousClock.now
            var pending = Set(names)
            while !pending.isEmpty, ContinuousClock.now - recovered < .seconds(30) {
                for name in pending where try await mount.read("secrets/\(name)") == "after-\(name)" {
                    pending.remove(name)
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            let took = ContinuousClock.now - recovered
            #expect(pending.isEmpty)
            #expect(
                took <= .seconds(4),
                "every file showed its new content \(took) after the vault answered again (TTL 3 s)")
        }
    }

    @Test(
        "A file never read fails with ETIMEDOUT within --fetch-timeout while Key Vault hangs, and the next read tries again"
    )
    func firstReadDuringOutage() async throws {
        try await withMountedDemo(arguments: ["--ttl", "2", "--fetch-timeout", "2"]) { emulator, mount in
            try await emulator.injectFault(["vault": "demo", "action": "hang", "hangSeconds": 120, "count": 100_000])
            let path = mount.path("secrets/app-settings")
            let failure: Int32 = try await onOwnThread {
                open(path, O_RDONLY) >= 0 ? 0 : errno
            }
            #expect(failure == ETIMEDOUT)
            #expect(mount.log.contains("did not answer within 2 s"))
            try await emulator.clearFaults()
            var value = ""
            for _ in 0..<50 where value.isEmpty {
                value = (try? await mount.read("secrets/app-settings")) ?? ""
                if value.isEmpty { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(value.contains("newCheckout"))
        }
    }
}

/// An inotify watch on one path, read without blocking.
final class InotifyWatch: Sendable {
    private let descriptor: Int32

    init(_ path: String) throws {
        descriptor = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        // 0xFFF is IN_ALL_EVENTS, a macro Swift does not import.
        guard descriptor >= 0, inotify_add_watch(descriptor, path, 0xFFF) >= 0
        else {
            throw TestFailure("inotify on \(path): \(String(cString: strerror(errno)))")
        }
    }

    deinit { close(descriptor) }

    /// The masks of the events queued so far.
    func events() -> [UInt32] {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        guard count > 0 else { return [] }
        var masks: [UInt32] = []
        var offset = 0
        while offset + MemoryLayout<inotify_event>.size <= count {
            let event = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: inotify_event.self) }
            masks.append(event.mask)
            offset += MemoryLayout<inotify_event>.size + Int(event.len)
        }
        return masks
    }
}
