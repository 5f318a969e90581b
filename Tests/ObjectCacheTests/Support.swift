import ObjectCache
import PKI
import Synchronization
import Testing

/// Time that moves only when a test says so, with sleepers that wake when it has moved far enough.
final class ManualClock: Sendable {
    private struct Sleeper {
        var deadline: Duration
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: Duration = .seconds(1_000)
        var sleepers: [UInt64: Sleeper] = [:]
        var cancelled: Set<UInt64> = []
        var lastID: UInt64 = 0
    }

    private let state = Mutex(State())

    var now: Duration { state.withLock { $0.now } }
    var sleepers: Int { state.withLock { $0.sleepers.count } }

    /// Sleepers that wake within `horizon`: the rate limiter's short waits, not the readers'
    /// long fetch deadlines.
    func sleepers(dueWithin horizon: Duration) -> Int {
        state.withLock { state in state.sleepers.values.filter { $0.deadline <= state.now + horizon }.count }
    }

    func advance(by duration: Duration) {
        let ready = state.withLock { state in
            state.now += duration
            let due = state.sleepers.filter { $0.value.deadline <= state.now }
            for id in due.keys { state.sleepers[id] = nil }
            return due.values.map(\.continuation)
        }
        for continuation in ready { continuation.resume() }
    }

    func sleep(for duration: Duration) async throws {
        let (id, deadline) = state.withLock { state in
            state.lastID += 1
            return (state.lastID, state.now + duration)
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome: Result<Void, any Error>? = state.withLock { state in
                    if state.cancelled.remove(id) != nil { return .failure(CancellationError()) }
                    if deadline <= state.now { return .success(()) }
                    state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let sleeper = state.withLock { state in
                guard let sleeper = state.sleepers.removeValue(forKey: id) else {
                    state.cancelled.insert(id)
                    return nil as Sleeper?
                }
                return sleeper
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }
}

/// A vault in memory that counts calls, can fail, can hold calls until released, and can rotate objects.
actor InMemorySource: ObjectSource {
    private struct Stored {
        var version: String
        var enabled = true
    }

    private var latest: [ObjectKind: [String: Stored]] = [:]
    /// Every version ever stored: kind, name, version -> value.
    private var values: [ObjectKind: [String: [String: String]]] = [:]
    private var failure: SourceError.Kind?
    private var holding = false
    private var held: [UInt64: CheckedContinuation<Void, Never>] = [:]
    private var lastHeldID: UInt64 = 0
    /// Held calls whose task was cancelled (the cache called them off).
    private(set) var cancelledCalls = 0

    private(set) var fetches: [String: Int] = [:]
    private(set) var lists = 0
    private(set) var versionLists = 0
    private(set) var inFlight = 0
    private(set) var maxInFlight = 0
    /// Listings come in pages of this many names, each after the first paced; nil is one page.
    private var pageSize: Int?
    private(set) var pagesServed = 0

    init(secrets: [String: String] = [:]) {
        for (name, value) in secrets {
            latest[.secret, default: [:]][name] = Stored(version: "v1")
            values[.secret, default: [:]][name, default: [:]]["v1"] = value
        }
    }

    var totalFetches: Int { fetches.values.reduce(0, +) }
    var heldCalls: Int { held.count }

    func fetches(of name: String) -> Int { fetches[name] ?? 0 }

    func put(_ name: String, _ value: String, version: String, kind: ObjectKind = .secret, enabled: Bool = true) {
        latest[kind, default: [:]][name] = Stored(version: version, enabled: enabled)
        values[kind, default: [:]][name, default: [:]][version] = value
    }

    func remove(_ name: String, kind: ObjectKind = .secret) {
        latest[kind]?[name] = nil
        values[kind]?[name] = nil
    }

    func fail(with kind: SourceError.Kind?) {
        failure = kind
    }

    func page(by size: Int) {
        pageSize = size
    }

    func hold() {
        holding = true
    }

    func releaseAll() {
        holding = false
        let waiting = held.values
        held.removeAll()
        for continuation in waiting { continuation.resume() }
    }

    func fetch(_ reference: ObjectReference) async throws(SourceError) -> FetchedObject {
        fetches[reference.name, default: 0] += 1
        try await admit()
        defer { inFlight -= 1 }
        guard let stored = latest[reference.kind]?[reference.name] else {
            throw SourceError(kind: .notFound, message: "\(reference) not found")
        }
        let version = reference.version ?? stored.version
        guard let value = values[reference.kind]?[reference.name]?[version] else {
            throw SourceError(kind: .notFound, message: "\(reference) not found")
        }
        let metadata = ObjectMetadata(
            id: "https://vault.test/\(reference.kind.rawValue)s/\(reference.name)/\(version)", version: version,
            enabled: reference.version == nil ? stored.enabled : true
        )
        switch reference.kind {
        case .secret: return FetchedObject(metadata: metadata, payload: .secret(value))
        case .key: return FetchedObject(metadata: metadata, payload: .key(JSONWebKey(kty: "RSA", n: value, e: "AQAB")))
        case .certificate: return FetchedObject(metadata: metadata, payload: .certificate(Array(value.utf8)))
        }
    }

    func list(_ kind: ObjectKind, pacer: @escaping @Sendable () async throws -> Void) async throws(SourceError)
        -> [ListedObject]
    {
        lists += 1
        try await admit()
        defer { inFlight -= 1 }
        let all = (latest[kind] ?? [:]).sorted { $0.key < $1.key }.map {
            ListedObject(name: $0.key, enabled: $0.value.enabled)
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

    func listVersions(
        _ kind: ObjectKind, name: String, pacer: @escaping @Sendable () async throws -> Void
    ) async throws(SourceError) -> [ListedObject] {
        versionLists += 1
        try await admit()
        defer { inFlight -= 1 }
        guard let versions = values[kind]?[name] else {
            throw SourceError(kind: .notFound, message: "\(kind) '\(name)' not found")
        }
        return versions.keys.sorted().map { ListedObject(name: name, version: $0) }
    }

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

final class Counter: Sendable {
    private let value = Mutex(0)
    func increment() { value.withLock { $0 += 1 } }
    var count: Int { value.withLock { $0 } }
}

/// A configuration on a hand-driven clock, with round numbers tests can reason about.
func testConfiguration(_ clock: ManualClock, _ adjust: (inout CacheConfiguration) -> Void = { _ in })
    -> CacheConfiguration
{
    var configuration = CacheConfiguration()
    configuration.now = { clock.now }
    configuration.sleep = { try await clock.sleep(for: $0) }
    configuration.ttl = .seconds(100)
    configuration.idleTimeout = .seconds(300)
    configuration.maxStaleness = .seconds(1_000)
    configuration.negativeTTL = .seconds(10)
    // Readers' fetch deadlines out of the way of tests that move time; tests of the deadline set it.
    configuration.fetchTimeout = .seconds(100_000)
    adjust(&configuration)
    return configuration
}

let vaultA = SourceID(vault: "https://vault-a.vault.azure.net", identity: "mi:node")
let vaultAOtherIdentity = SourceID(
    vault: "https://vault-a.vault.azure.net", identity: "wi:tenant:client:system:serviceaccount:app:reader")

func secret(_ name: String, version: String? = nil) -> ObjectReference {
    ObjectReference(kind: .secret, name: name, version: version)
}

/// Renders any payload as its UTF-8 text (secrets) or raw bytes.
let plainRender: @Sendable (FetchedObject) throws(ObjectCache.RenderError) -> ObjectCache.RenderedBytes = { object in
    switch object.payload {
    case .secret(let value): ObjectCache.RenderedBytes(bytes: value, warnings: [])
    case .certificate(let der): ObjectCache.RenderedBytes(bytes: SecretBytes(copying: der), warnings: [])
    case .key(let jwk): ObjectCache.RenderedBytes(bytes: SecretBytes(utf8: jwk.n ?? ""), warnings: [])
    }
}

extension ObjectCache {
    /// The content of a secret as text, rendered plainly.
    func text(_ reference: ObjectReference, in source: SourceID = vaultA) async throws(CacheError) -> String {
        let content = try await content(reference, in: source, renderingKey: "plain", render: plainRender)
        return String(decoding: content.bytes, as: UTF8.self)
    }
}

/// Waits (without asserting how long it takes) until a condition holds; records an issue if it
/// never does.
func waitUntil(_ what: String, _ condition: () async -> Bool) async {
    for _ in 0..<60_000 {
        if await condition() { return }
        try? await Task.sleep(for: .milliseconds(1))
    }
    Issue.record("gave up waiting until \(what)")
}
