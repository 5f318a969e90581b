import ObjectCache
import PKI

/// A vault in memory: objects with versions, content types, tags and timestamps; counts what it is
/// asked; fails, holds calls until released, and pages listings when told to.
public actor InMemorySource: ObjectSource {
    private struct Version: Sendable {
        var id: String
        var payload: Payload
        var contentType: String?
        var enabled = true
        var updated: Int64
        var tags: [String: String] = [:]
        var certificateBacked = false
    }

    /// Every version ever stored, oldest first; the last is the latest.
    private var objects: [ObjectKind: [String: [Version]]] = [:]
    private var failure: SourceError.Kind?
    private var listFailure: SourceError.Kind?
    private var holding = false
    private var held: [UInt64: CheckedContinuation<Void, Never>] = [:]
    private var lastHeldID: UInt64 = 0
    /// Listings come in pages of this many names, each after the first paced; nil is one page.
    private var pageSize: Int?

    private var fetchesByName: [String: Int] = [:]
    public private(set) var lists = 0
    public private(set) var versionLists = 0
    public private(set) var inFlight = 0
    public private(set) var maxInFlight = 0
    public private(set) var pagesServed = 0
    /// Held calls whose task was cancelled (the cache called them off).
    public private(set) var cancelledCalls = 0

    /// Each of `secrets` stored as version `v1`.
    public init(secrets: [String: String] = [:]) {
        for (name, value) in secrets {
            objects[.secret, default: [:]][name] = [Version(id: "v1", payload: .secret(value), updated: Self.epoch)]
        }
    }

    public var totalFetches: Int { fetchesByName.values.reduce(0, +) }
    public var heldCalls: Int { held.count }

    public func fetches(of name: String) -> Int { fetchesByName[name] ?? 0 }

    // MARK: What the test stores

    /// Adds a version and makes it the latest. Without `version` it is named after its place,
    /// `v2-name` say (letters and digits only, as Key Vault's are).
    public func put(
        _ kind: ObjectKind, _ name: String, _ payload: Payload, version: String? = nil, contentType: String? = nil,
        enabled: Bool = true, certificateBacked: Bool = false, tags: [String: String] = [:]
    ) {
        var versions = objects[kind]?[name] ?? []
        let id = version ?? "v\(versions.count + 1)-\(name)".filter { $0.isLetter || $0.isNumber }
        let updated = Self.epoch + Int64(versions.count)
        versions.removeAll { $0.id == id }
        versions.append(
            Version(
                id: id, payload: payload, contentType: contentType, enabled: enabled, updated: updated, tags: tags,
                certificateBacked: certificateBacked))
        objects[kind, default: [:]][name] = versions
    }

    /// A new latest version of a secret.
    public func put(_ name: String, _ value: String, version: String) {
        put(.secret, name, .secret(value), version: version)
    }

    public func remove(_ name: String, kind: ObjectKind = .secret) {
        objects[kind]?[name] = nil
    }

    /// Every call fails with `kind` from now on; nil ends that.
    public func fail(with kind: SourceError.Kind?) {
        failure = kind
    }

    /// Listings alone fail with `kind`; nil ends that.
    public func failListing(with kind: SourceError.Kind?) {
        listFailure = kind
    }

    public func page(by size: Int) {
        pageSize = size
    }

    /// Calls wait from now on until `releaseAll`.
    public func hold() {
        holding = true
    }

    public func releaseAll() {
        holding = false
        let waiting = held.values
        held.removeAll()
        for continuation in waiting { continuation.resume() }
    }

    // MARK: ObjectSource

    public func fetch(_ reference: ObjectReference) async throws(SourceError) -> FetchedObject {
        fetchesByName[reference.name, default: 0] += 1
        try await admit()
        defer { inFlight -= 1 }
        guard let versions = objects[reference.kind]?[reference.name], let latest = versions.last else {
            throw SourceError(kind: .notFound, message: "\(reference) not found")
        }
        let wanted = reference.version.map { id in versions.first { $0.id == id } } ?? latest
        guard let chosen = wanted else { throw SourceError(kind: .notFound, message: "\(reference) not found") }
        guard chosen.enabled else { throw SourceError(kind: .disabled, message: "\(reference) is disabled") }
        let metadata = ObjectMetadata(
            id: "https://memory.vault.test/\(reference.kind.rawValue)s/\(reference.name)/\(chosen.id)",
            version: chosen.id, enabled: chosen.enabled, contentType: chosen.contentType,
            created: chosen.updated - 100, updated: chosen.updated, notBefore: nil, expires: nil, tags: chosen.tags,
            certificateBacked: chosen.certificateBacked, managed: chosen.certificateBacked)
        return FetchedObject(metadata: metadata, payload: chosen.payload)
    }

    public func list(_ kind: ObjectKind, pacer: @escaping @Sendable () async throws -> Void)
        async throws(SourceError) -> [ListedObject]
    {
        lists += 1
        try await admit()
        defer { inFlight -= 1 }
        if let listFailure { throw SourceError(kind: listFailure, message: "the test source was told to fail lists") }
        let all = (objects[kind] ?? [:]).sorted { $0.key < $1.key }.compactMap { name, versions in
            versions.last.map {
                ListedObject(
                    name: name, version: nil, enabled: $0.enabled, managed: $0.certificateBacked,
                    contentType: $0.contentType, created: nil, updated: $0.updated, tags: $0.tags)
            }
        }
        let pages = pageSize.map { max(1, (all.count + $0 - 1) / $0) } ?? 1
        for page in 0..<pages {
            if page > 0 {
                do {
                    try await pacer()
                } catch {
                    throw SourceError(kind: .unavailable, message: "the listing was cancelled while waiting to page")
                }
            }
            pagesServed += 1
        }
        return all
    }

    public func listVersions(
        _ kind: ObjectKind, name: String, pacer: @escaping @Sendable () async throws -> Void
    ) async throws(SourceError) -> [ListedObject] {
        versionLists += 1
        try await admit()
        defer { inFlight -= 1 }
        if let listFailure { throw SourceError(kind: listFailure, message: "the test source was told to fail lists") }
        guard let versions = objects[kind]?[name] else {
            throw SourceError(kind: .notFound, message: "\(kind) '\(name)' not found")
        }
        return versions.map {
            ListedObject(
                name: name, version: $0.id, enabled: $0.enabled, managed: false, contentType: $0.contentType,
                created: nil, updated: $0.updated, tags: $0.tags)
        }
    }

    // MARK: Holding and failing

    /// When the first version was updated (Unix seconds); each later one a second after.
    private static let epoch: Int64 = 1_700_000_000

    /// Counts the call as in flight, holds it while told to (a cancelled call is let go and
    /// fails), then fails it if told to.
    private func admit() async throws(SourceError) {
        inFlight += 1
        maxInFlight = max(maxInFlight, inFlight)
        if holding {
            lastHeldID += 1
            let id = lastHeldID
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    if Task.isCancelled {
                        continuation.resume()
                    } else {
                        held[id] = continuation
                    }
                }
            } onCancel: {
                Task { await self.letGo(id) }
            }
            if Task.isCancelled {
                cancelledCalls += 1
                inFlight -= 1
                throw SourceError(kind: .unavailable, message: "the call was cancelled")
            }
        }
        if let failure {
            inFlight -= 1
            throw SourceError(kind: failure, message: "the test source was told to fail with \(failure)")
        }
    }

    private func letGo(_ id: UInt64) {
        held.removeValue(forKey: id)?.resume()
    }
}
