import Foundation
import ObjectCache
import ObjectFormats
import ObjectSourceSupport
import PKI
import TestSupport
import Testing
import VaultFS

/// The filesystem model without FUSE, over an in-memory vault.
@Suite("VaultFS: layout, attributes, lookups, errors, refresh")
struct VaultFileSystemTests {
    static let source = SourceID(vault: "https://memory.vault.test", identity: "test")

    struct Fixture {
        let vault = InMemorySource()
        let clock = ManualClock()
        let cache: ObjectCache
        let filesystem: VaultFileSystem

        init(layout: ViewLayout = .vault, ownership: Ownership = Ownership(uid: 1000, gid: 2000)) async {
            var configuration = CacheConfiguration()
            let clock = self.clock
            configuration.now = { clock.now }
            configuration.ttl = .seconds(120)
            configuration.maxStaleness = .seconds(600)
            cache = ObjectCache(configuration: configuration)
            await cache.register(vault, as: VaultFileSystemTests.source)
            filesystem = VaultFileSystem(
                cache: cache, configuration: FileSystemConfiguration(root: .singleView("v")),
                views: [
                    ViewDefinition(id: "v", source: VaultFileSystemTests.source, layout: layout, ownership: ownership)
                ])
        }

        /// Looks a path up from the root, one component at a time, as the kernel does.
        func lookup(_ path: String) async throws(Errno) -> EntryReply {
            var parent: UInt64 = 1
            var reply: EntryReply?
            for component in path.split(separator: "/") {
                reply = try await filesystem.lookup(parent: parent, name: String(component))
                parent = reply!.attributes.inode
            }
            return reply!
        }

        func read(_ path: String) async throws(Errno) -> String {
            let entry = try await lookup(path)
            return String(
                decoding: try await filesystem.read(entry.attributes.inode, offset: 0, size: 1 << 20) { Array($0) },
                as: UTF8.self)
        }

        func read(inode: UInt64) async throws(Errno) -> String {
            String(decoding: try await filesystem.read(inode, offset: 0, size: 1 << 20) { Array($0) }, as: UTF8.self)
        }

        /// The next invalidation the filesystem asks of the kernel, or nil after 10 s.
        func nextInvalidation() async -> Invalidation? {
            let invalidations = filesystem.invalidations
            let waiter = Task { () -> Invalidation? in
                for await invalidation in invalidations { return invalidation }
                return nil
            }
            let timeout = Task {
                try await Task.sleep(for: .seconds(10))
                waiter.cancel()
            }
            defer { timeout.cancel() }
            return await waiter.value
        }

        func names(_ path: String) async throws(Errno) -> [String] {
            let inode = path.isEmpty ? 1 : try await lookup(path).attributes.inode
            return try await filesystem.listDirectory(inode).map(\.name)
        }
    }

    @Test(
        "The kernel remembers a missing name for the negative TTL, never longer than it trusts names",
        arguments: [
            (1.0, 10.0, 1.0), (5.0, 2.0, 2.0), (2.0, 0.0, 0.0),
        ])
    func kernelTimeouts(metadataTTL: Double, negativeTTL: Double, negativeTimeout: Double) {
        for root in [FileSystemConfiguration.Root.singleView("vault"), .viewDirectories] {
            let configuration = FileSystemConfiguration(root: root, metadataTTL: metadataTTL, negativeTTL: negativeTTL)
            #expect(configuration.metadataTimeout == metadataTTL)
            #expect(configuration.negativeTimeout == negativeTimeout)
        }
    }

    @Test("The root holds certs, keys, secrets and tls; listing shows enabled names without fetching values")
    func layout() async throws {
        let fixture = await Fixture()
        await fixture.vault.put(.secret, "db-password", .secret("hunter2"))
        await fixture.vault.put(.secret, "api-key", .secret("k"))
        await fixture.vault.put(.secret, "retired", .secret("x"), enabled: false)
        #expect(try await fixture.names("") == [".", "..", "certs", "keys", "secrets", "tls"])
        #expect(try await fixture.names("secrets") == [".", "..", ".versions", "api-key", "db-password"])
        #expect(await fixture.vault.totalFetches == 0, "listing never fetches values")
    }

    @Test("A file's attributes: exact size, configured owner and mode, mtime from Key Vault's updated")
    func attributes() async throws {
        let fixture = await Fixture(ownership: Ownership(uid: 1000, gid: 2000, fileMode: 0o400, directoryMode: 0o500))
        await fixture.vault.put(.secret, "db-password", .secret("hunter2"))
        let entry = try await fixture.lookup("secrets/db-password")
        #expect(entry.attributes.size == 7)
        #expect(entry.attributes.permissions == 0o400)
        #expect(entry.attributes.uid == 1000 && entry.attributes.gid == 2000)
        #expect(entry.attributes.modified == 1_700_000_000)
        #expect(entry.attributes.type == .regular)
        let directory = try await fixture.lookup("secrets")
        #expect(directory.attributes.permissions == 0o500 && directory.attributes.type == .directory)
        #expect(try await fixture.read("secrets/db-password") == "hunter2")
        let partial = try await fixture.filesystem.read(entry.attributes.inode, offset: 2, size: 3) { Array($0) }
        #expect(String(decoding: partial, as: UTF8.self) == "nte")
        #expect(try await fixture.filesystem.read(entry.attributes.inode, offset: 100, size: 3) { $0.isEmpty })
    }

    @Test("Lookups count references; forgetting them all drops the inode")
    func lookupCounts() async throws {
        let fixture = await Fixture()
        await fixture.vault.put(.secret, "s", .secret("v"))
        let first = try await fixture.lookup("secrets/s")
        let second = try await fixture.filesystem.lookup(
            parent: try await fixture.lookup("secrets").attributes.inode, name: "s")
        #expect(first.attributes.inode == second.attributes.inode, "a path keeps its inode")
        fixture.filesystem.forget(first.attributes.inode, count: 1)
        #expect(try await fixture.filesystem.attributes(first.attributes.inode).size == 1, "one reference left")
        fixture.filesystem.forget(first.attributes.inode, count: 1)
        await #expect(throws: Errno.noEntry) { _ = try await fixture.filesystem.attributes(first.attributes.inode) }
        #expect(await fixture.vault.totalFetches == 1, "one fetch served every lookup")
    }

    @Test(
        "Errors map to errno: missing, disabled and impossible names are ENOENT; refusals EACCES; outages ETIMEDOUT; bad answers EIO"
    )
    func errnoMapping() async throws {
        let fixture = await Fixture()
        await fixture.vault.put(.secret, "off", .secret("x"), enabled: false)
        await fixture.vault.put(.secret, "file", .secret("x"))
        await #expect(throws: Errno.noEntry) { _ = try await fixture.lookup("secrets/absent") }
        await #expect(throws: Errno.noEntry) { _ = try await fixture.lookup("secrets/off") }
        let before = await fixture.vault.totalFetches
        await #expect(throws: Errno.noEntry) { _ = try await fixture.lookup("secrets/not_a_valid.name") }
        await #expect(throws: Errno.noEntry) { _ = try await fixture.lookup("nonsense") }
        #expect(await fixture.vault.totalFetches == before, "impossible names never reach Key Vault")
        await #expect(throws: Errno.notDirectory) { _ = try await fixture.lookup("secrets/file/below") }
        await fixture.vault.fail(with: .forbidden)
        await #expect(throws: Errno.accessDenied) { _ = try await fixture.lookup("secrets/other") }
        await fixture.vault.fail(with: .unavailable)
        await #expect(throws: Errno.timedOut) { _ = try await fixture.lookup("secrets/third") }
        await fixture.vault.fail(with: .throttled)
        await #expect(throws: Errno.timedOut) { _ = try await fixture.lookup("secrets/fourth") }
        await fixture.vault.fail(with: .invalid)
        await #expect(throws: Errno.inputOutput) { _ = try await fixture.lookup("secrets/fifth") }
    }

    @Test("A vault that denies list still serves named objects")
    func denyList() async throws {
        let fixture = await Fixture()
        await fixture.vault.put(.secret, "known", .secret("v"))
        await fixture.vault.failListing(with: .forbidden)
        await #expect(throws: Errno.accessDenied) { _ = try await fixture.names("secrets") }
        #expect(try await fixture.read("secrets/known") == "v")
    }

    @Test("Older versions are listed and readable under .versions")
    func versions() async throws {
        let fixture = await Fixture()
        await fixture.vault.put(.secret, "rotated", .secret("one"))
        await fixture.vault.put(.secret, "rotated", .secret("two"))
        #expect(try await fixture.names("secrets/.versions") == [".", "..", "rotated"])
        let versions = try await fixture.names("secrets/.versions/rotated").dropFirst(2)
        #expect(versions.count == 2)
        let contents = try await versions.asyncMap { try await fixture.read("secrets/.versions/rotated/\($0)") }
        #expect(Set(contents) == ["one", "two"])
        #expect(try await fixture.read("secrets/rotated") == "two")
    }

    @Test("Keys are public PEM, certs the leaf PEM, and tls/ splits a certificate's secret")
    func formatsAndTLS() async throws {
        let fixture = await Fixture()
        let key = try PrivateKey.generate(.ec(.p256))
        let certificate = try CertificateTemplate(
            subject: "CN=web", notBefore: Date(), notAfter: Date().addingTimeInterval(3600)
        ).selfSigned(with: key)
        await fixture.vault.put(.key, "k", .key(try key.publicKey.jwk()))
        await fixture.vault.put(.certificate, "web", .certificate(certificate.der))
        await fixture.vault.put(
            .secret, "web", .secret(try key.pkcs8PEM() + certificate.pem()), contentType: "application/x-pem-file",
            certificateBacked: true)
        #expect(try PublicKey(pem: try await fixture.read("keys/k")) == key.publicKey)
        #expect(try Certificate(pem: try await fixture.read("certs/web")) == certificate)
        #expect(try await fixture.names("tls") == [".", "..", "web"])
        #expect(
            try await fixture.names("tls/web").dropFirst(2) == ["cert.pem", "chain.pem", "fullchain.pem", "key.pem"])
        #expect(try PrivateKey(pem: try await fixture.read("tls/web/key.pem")).publicKey == key.publicKey)
        #expect(try Certificate(pem: try await fixture.read("tls/web/cert.pem")) == certificate)
        #expect(try await fixture.read("tls/web/chain.pem").isEmpty)
        #expect(try await fixture.read("tls/web/fullchain.pem") == certificate.pem())
    }

    @Test("Extended attributes carry version, id, content type, times and tags")
    func extendedAttributes() async throws {
        let fixture = await Fixture()
        await fixture.vault.put(
            .secret, "tagged", .secret("v"), contentType: "text/plain", tags: ["team": "payments", "env": "prod"])
        let inode = try await fixture.lookup("secrets/tagged").attributes.inode
        let names = try await fixture.filesystem.extendedAttributeNames(inode)
        #expect(
            names.contains("user.version") && names.contains("user.id") && names.contains("user.updated")
                && names.contains("user.created"))
        #expect(names.contains("user.tag.team"))
        func value(_ name: String) async throws -> String {
            String(decoding: try await fixture.filesystem.extendedAttribute(inode, name: name), as: UTF8.self)
        }
        #expect(try await value("user.content_type") == "text/plain")
        #expect(try await value("user.tag.team") == "payments")
        #expect(try await value("user.tags") == #"{"env":"prod","team":"payments"}"#)
        #expect(try await value("user.updated") == "2023-11-14T22:13:20Z")
        await #expect(throws: Errno.noAttribute) {
            _ = try await fixture.filesystem.extendedAttribute(inode, name: "user.nope")
        }
    }

    @Test("A rotation moves the name to a new inode; the old inode goes on showing its own version")
    func rotation() async throws {
        let fixture = await Fixture()
        let watcher = fixture.filesystem.watchCache()
        defer { watcher.cancel() }
        await fixture.vault.put(.secret, "rotating", .secret("old"))
        let inode = try await fixture.lookup("secrets/rotating").attributes.inode
        let parent = try await fixture.lookup("secrets").attributes.inode
        await fixture.vault.put(.secret, "rotating", .secret("new-value"))
        fixture.clock.advance(by: .seconds(121))
        _ = try await fixture.filesystem.attributes(inode)  // being read: due, so revalidated
        await fixture.cache.maintain()
        let invalidation = await fixture.nextInvalidation()
        #expect(invalidation == .entry(parent: parent, name: "rotating", inode: inode))

        // Until the kernel has heard, the name shows the old inode (so its watchers hear of it).
        #expect(try await fixture.lookup("secrets/rotating").attributes.inode == inode)
        #expect(await fixture.nextInvalidation() == invalidation, "each lookup until then asks again")
        if let invalidation { fixture.filesystem.invalidationDelivered(invalidation) }

        // Whoever has the old inode open reads the old version to its end, with its size; no
        // name shows it any more.
        #expect(try await fixture.read(inode: inode) == "old")
        #expect(try await fixture.filesystem.attributes(inode).size == 3)
        #expect(try await fixture.filesystem.attributes(inode).linkCount == 0)
        // The name shows the new version, under a new inode.
        let fresh = try await fixture.lookup("secrets/rotating").attributes
        #expect(fresh.inode != inode)
        #expect(fresh.size == 9)
        #expect(try await fixture.read(inode: fresh.inode) == "new-value")
        #expect(await fixture.vault.totalFetches == 2, "the old version came from memory, not a fetch")

        // Once the cache no longer holds the old version (idle for a TTL), the old inode fetches it by version.
        fixture.clock.advance(by: .seconds(121))
        await fixture.cache.maintain()
        #expect(try await fixture.read(inode: inode) == "old")
        #expect(await fixture.vault.totalFetches == 4, "a revalidation of the name, and the old version by its id")
    }

    @Test("During an outage the last good content keeps being served")
    func staleServing() async throws {
        let fixture = await Fixture()
        await fixture.vault.put(.secret, "steady", .secret("still-here"))
        #expect(try await fixture.read("secrets/steady") == "still-here")
        await fixture.vault.fail(with: .unavailable)
        fixture.clock.advance(by: .seconds(300))
        #expect(try await fixture.read("secrets/steady") == "still-here")
        fixture.clock.advance(by: .seconds(400))
        await #expect(throws: Errno.timedOut) { _ = try await fixture.read("secrets/steady") }
    }

    /// A volume of three files, two of them at the root, one in a nested directory, with their values in the vault.
    static func volumeFixture() async -> Fixture {
        let files = [
            VolumeFile(
                path: ["db"], reference: ObjectReference(kind: .secret, name: "db-password", version: nil),
                rendering: .plain, permissions: 0o600),
            VolumeFile(
                path: ["nested", "deeper", "key"],
                reference: ObjectReference(kind: .secret, name: "api-key", version: nil), rendering: .plain,
                permissions: 0o644),
            VolumeFile(
                path: ["encoded"], reference: ObjectReference(kind: .secret, name: "b64", version: nil),
                rendering: .standard(format: .pem, encoding: .base64), permissions: 0o644),
        ]
        let fixture = await Fixture(layout: .volume(files))
        await fixture.vault.put(.secret, "db-password", .secret("pw"))
        await fixture.vault.put(.secret, "api-key", .secret("ak"))
        await fixture.vault.put(.secret, "b64", .secret("aGVsbG8="))
        return fixture
    }

    @Test("A volume view shows its files at their paths with their modes")
    func volumeLayout() async throws {
        let fixture = await Self.volumeFixture()
        #expect(try await fixture.names("") == [".", "..", "..data", "db", "encoded", "nested"])
        #expect(try await fixture.names("nested/deeper") == [".", "..", "key"])
        #expect(try await fixture.read("nested/deeper/key") == "ak")
        #expect(try await fixture.read("encoded") == "hello")
        #expect(try await fixture.lookup("db").attributes.permissions == 0o600)
        await #expect(throws: Errno.noEntry) { _ = try await fixture.lookup("secrets") }
    }

    @Test("A volume shows its files again under ..data, as the CSI driver's volumes do")
    func volumeDataDirectory() async throws {
        let fixture = await Self.volumeFixture()
        #expect(try await fixture.names("..data") == [".", "..", "db", "encoded", "nested"])
        #expect(try await fixture.names("..data/nested/deeper") == [".", "..", "key"])
        #expect(try await fixture.read("..data/db") == "pw")
        #expect(try await fixture.read("..data/nested/deeper/key") == "ak")
        #expect(try await fixture.read("..data/encoded") == "hello")
        #expect(try await fixture.lookup("..data/db").attributes.permissions == 0o600)
        #expect(try await fixture.lookup("..data").attributes.type == .directory)
        // Once only: no ..data inside ..data or in a subdirectory.
        await #expect(throws: Errno.noEntry) { _ = try await fixture.lookup("..data/..data") }
        await #expect(throws: Errno.noEntry) { _ = try await fixture.lookup("nested/..data") }
        await #expect(throws: Errno.noEntry) { _ = try await fixture.lookup("..data/missing") }

        // A rotation reaches the file under ..data as it reaches the file itself.
        let watcher = fixture.filesystem.watchCache()
        defer { watcher.cancel() }
        let direct = try await fixture.lookup("db").attributes.inode
        let mirrored = try await fixture.lookup("..data/db").attributes.inode
        #expect(direct != mirrored)
        await fixture.vault.put(.secret, "db-password", .secret("rotated"))
        fixture.clock.advance(by: .seconds(121))
        _ = try await fixture.filesystem.attributes(mirrored)  // being read: due, so revalidated
        await fixture.cache.maintain()
        var invalidated: Set<UInt64> = []
        for _ in 0..<2 {
            guard let invalidation = await fixture.nextInvalidation() else { break }
            if case .entry(_, _, let inode) = invalidation { invalidated.insert(inode) }
            fixture.filesystem.invalidationDelivered(invalidation)
        }
        #expect(invalidated == [direct, mirrored])
        #expect(try await fixture.read("..data/db") == "rotated")
        #expect(try await fixture.read("db") == "rotated")
    }
}

extension Sequence where Element: Sendable {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
