import HTTPTransport
import KeyVault
import Logging
import Metrics
import PKI

/// Vault objects in memory between the filesystem and Key Vault.
///
/// Nothing is fetched until asked. Concurrent misses for one (source, object) share one source
/// call. A reader never waits for Key Vault when there is content it may be given: "latest"
/// objects and listings found due (older than `ttl`) are answered at once and revalidated in the
/// background, as is everything being read, by `maintain()`. When revalidation fails for a
/// transient reason the last good content is served, marked stale, until `maxStaleness`; when the
/// object is gone, disabled or forbidden it is dropped. A reader with nothing to be given waits
/// for the first fetch at most `fetchTimeout`, and when every such reader has given up the fetch
/// is called off, so the next read tries again. Payload and rendering bytes are bounded by
/// `maxBytes` (least recently used first) and entries idle for `idleTimeout` are evicted, except
/// what published volumes pin (bounded by `maxPublishedBytes` instead); buffers are zeroed when
/// the last holder lets go (`SecretBytes`). The single consumer of
/// `events` hears about every change so it can invalidate the kernel's caches.
///
/// Entries are keyed by source (vault and identity): content fetched with one identity is never
/// answered to another.
///
/// The actor is split by concern: reading (this file), source calls (`+SourceCalls`), and
/// maintenance and eviction (`+Maintenance`).
public actor ObjectCache {
    /// File bytes made from one fetched object.
    public struct RenderedBytes: Sendable {
        public var bytes: SecretBytes
        public var warnings: [String]

        public init(bytes: SecretBytes, warnings: [String]) {
            self.bytes = bytes
            self.warnings = warnings
        }
    }

    /// Why an object could not be turned into file bytes; answered as `CacheError(kind: .invalid)`.
    public struct RenderError: Error, Sendable {
        public var message: String

        public init(_ message: String) {
            self.message = message
        }
    }

    /// Content changes, for one consumer (the filesystem). The newest 10 000 are buffered.
    public nonisolated let events: AsyncStream<CacheEvent>

    public nonisolated let configuration: CacheConfiguration
    let eventSink: AsyncStream<CacheEvent>.Continuation
    let logger = Logger(label: "akvfs.cache")

    var sources: [SourceID: any ObjectSource] = [:]
    var slots: [SlotKey: Slot] = [:]
    var notFound: [SlotKey: (until: Duration, error: SourceError)] = [:]
    var gates: [String: VaultGate] = [:]
    /// Vaults whose revalidations are failing; the first success clears their backoff.
    var troubledVaults: Set<String> = []
    /// Entries published volumes show, and the volumes showing each (`+Published`).
    var pins: [SlotKey: Set<String>] = [:]
    var pinsByVolume: [String: Set<SlotKey>] = [:]
    var counters = CacheStatistics()
    var totalBytes = 0
    var lastAccessOrder: UInt64 = 0
    var lastFlightID: UInt64 = 0
    var lastGeneration: UInt64 = 0
    var maintenance: Task<Void, Never>?
    var isShutDown = false

    public init(configuration: CacheConfiguration = .init()) {
        self.configuration = configuration
        (events, eventSink) = AsyncStream.makeStream(of: CacheEvent.self, bufferingPolicy: .bufferingNewest(10_000))
    }

    // MARK: Sources

    /// Adds a source, or replaces one; a replacement (a pod's refreshed token) keeps the
    /// entries already cached for that id.
    public func register(_ source: any ObjectSource, as id: SourceID) {
        guard !isShutDown else { return }
        sources[id] = source
    }

    /// Forgets a source: cancels its source calls and drops all it cached.
    public func unregister(_ id: SourceID) {
        sources[id] = nil
        for key in Array(slots.keys) where key.source == id {
            remove(key)
        }
        notFound = notFound.filter { $0.key.source != id }
        for key in pins.keys where key.source == id {
            for volume in pins.removeValue(forKey: key) ?? [] { pinsByVolume[volume]?.remove(key) }
        }
    }

    // MARK: Reading

    /// Object content rendered into file bytes by `render`, memoized per (source, reference,
    /// renderingKey) until the object changes. A rendering always comes from one fetched object,
    /// so a reader never sees bytes of two versions. Marks the entry accessed. A reader with no
    /// content to be given waits at most `wait` (default `fetchTimeout`) for the first fetch.
    public func content(
        _ reference: ObjectReference, in source: SourceID, renderingKey: String, wait: Duration? = nil,
        render: @Sendable (FetchedObject) throws(RenderError) -> RenderedBytes
    ) async throws(CacheError) -> RenderedContent {
        let (key, answer, object) = try await resolveObject(reference, in: source, wait: wait)
        if let slot = slots[key], slot.value != nil, slot.generation == answer.generation,
            let rendered = slot.renderings[renderingKey]
        {
            return RenderedContent(rendered, object, answer)
        }
        let rendered: RenderedBytes
        do {
            rendered = try render(object)
        } catch {
            throw CacheError(
                kind: .invalid, message: "\(reference) of \(source.vault) cannot be shown as a file: \(error.message)")
        }
        // Keep the rendering only with the object it was made from. A rendering that is the
        // payload's own buffer is not kept: making it again is free, and keeping it would cost
        // each entry a dictionary.
        let isPayload = rendered.warnings.isEmpty && rendered.bytes === object.payload.secretBytes
        if !isPayload, let slot = slots[key], slot.value != nil, slot.generation == answer.generation {
            let before = slot.bytes
            slot.renderings[renderingKey] = rendered
            totalBytes += slot.bytes - before
            enforceMemoryBound()
        }
        return RenderedContent(rendered, object, answer)
    }

    /// Metadata only (for xattrs): fetches like `content` but renders nothing.
    public func metadata(_ reference: ObjectReference, in source: SourceID) async throws(CacheError) -> ObjectMetadata {
        try await resolveObject(reference, in: source, wait: nil).object.metadata
    }

    /// The latest of each object of a kind, revalidated like "latest" content. Never fetches values.
    public func listing(_ kind: ObjectKind, in source: SourceID) async throws(CacheError) -> [ListedObject] {
        let key = SlotKey(source: source, subject: .listing(kind))
        guard case .listing(let items) = try await resolve(key, wait: nil).value else { throw internalError(key) }
        return items
    }

    /// The versions of one object, revalidated like "latest" content.
    public func versions(_ kind: ObjectKind, name: String, in source: SourceID) async throws(CacheError)
        -> [ListedObject]
    {
        let key = SlotKey(source: source, subject: .versions(kind, name: name))
        guard case .listing(let items) = try await resolve(key, wait: nil).value else { throw internalError(key) }
        return items
    }

    /// Marks an entry as being read without fetching (getattr, and reads of a file's own
    /// version, so content read from the kernel's page cache is still kept fresh and resident).
    /// A due entry starts its revalidation.
    public func touch(_ reference: ObjectReference, in source: SourceID) {
        let key = SlotKey(source: source, subject: .object(reference))
        guard let slot = slots[key], let registered = sources[source] else { return }
        let now = configuration.now()
        slot.markAccessed(at: now, order: nextAccessOrder())
        if slot.value != nil { revalidateIfDue(key, slot, from: registered, at: now) }
    }

    struct Answer {
        var value: CachedValue
        var generation: UInt64
        var stale: Bool
    }

    /// An object's entry and content. An exact version that the "latest" entry holds is answered
    /// from that entry: a file opened before a rotation goes on reading its version without a
    /// second fetch, as long as the cache has it.
    private func resolveObject(
        _ reference: ObjectReference, in source: SourceID, wait: Duration?
    ) async throws(CacheError) -> (key: SlotKey, answer: Answer, object: FetchedObject) {
        let exact = SlotKey(source: source, subject: .object(reference))
        if let version = reference.version, slots[exact]?.value == nil {
            let latest = SlotKey(
                source: source, subject: .object(ObjectReference(kind: reference.kind, name: reference.name)))
            if case .object(let held)? = slots[latest]?.value, held.metadata.version == version,
                let answer = answerFromMemory(for: latest), case .object(let object) = answer.value,
                object.metadata.version == version
            {
                return (latest, answer, object)
            }
        }
        let answer = try await resolve(exact, wait: wait)
        guard case .object(let object) = answer.value else { throw internalError(exact) }
        return (exact, answer, object)
    }

    /// The value to answer for `key`: from memory when there is content that may be served, else
    /// from a source call shared with every other reader of the key.
    func resolve(_ key: SlotKey, wait: Duration?) async throws(CacheError) -> Answer {
        guard !isShutDown else {
            throw CacheError(
                kind: .unavailable,
                message: "\(key.subject) of \(key.source.vault) is not available: the cache is shutting down.")
        }
        guard let source = sources[key.source] else {
            throw CacheError(
                kind: .invalid,
                message: "\(key.subject) was asked of \(key.source), which is not registered with the cache.")
        }
        let now = configuration.now()
        if let negative = notFound[key] {
            if now < negative.until {
                counters.hits += 1
                CacheMetrics.hits.increment()
                throw CacheError(negative.error)
            }
            notFound[key] = nil
        }
        if let answer = answerFromMemory(for: key) { return answer }
        counters.misses += 1
        CacheMetrics.misses.increment()
        let flight = slots[key]?.flight ?? startFlight(for: key, from: source, at: now)
        return try await awaitFetch(key, flight, within: wait ?? configuration.fetchTimeout)
    }

    /// Answers from the entry when it holds content that may be served: fresh, immutable, or due
    /// but within `maxStaleness` (its revalidation then starts in the background). Marks the
    /// entry accessed. (A separate function so no copy of the entry outlives it.)
    private func answerFromMemory(for key: SlotKey) -> Answer? {
        guard let slot = slots[key] else { return nil }
        let now = configuration.now()
        slot.markAccessed(at: now, order: nextAccessOrder())
        guard let value = slot.value else { return nil }
        if !key.subject.isImmutable, now - slot.fetchedAt > configuration.maxStaleness {
            // Too old to serve without a successful revalidation: the reader waits for one.
            return nil
        }
        if let source = sources[key.source] { revalidateIfDue(key, slot, from: source, at: now) }
        counters.hits += 1
        CacheMetrics.hits.increment()
        if slot.stale {
            counters.staleServes += 1
            CacheMetrics.staleAnswers.increment()
        }
        return Answer(value: value, generation: slot.generation, stale: slot.stale)
    }

    /// Starts a background revalidation of a "latest" entry that is due and not backing off.
    func revalidateIfDue(_ key: SlotKey, _ slot: Slot, from source: any ObjectSource, at now: Duration) {
        guard slot.flight == nil, !key.subject.isImmutable, now - slot.fetchedAt >= configuration.ttl else { return }
        if let retryAt = slot.retryAt, now < retryAt { return }
        logger.debug("revalidating \(key.subject) of \(key.source)")
        startFlight(for: key, from: source, at: now)
    }

    /// Waits for the fetch of an entry that has nothing to serve yet, at most `limit` or until
    /// the waiting task is cancelled. When the last waiter gives up on a first fetch, the fetch is
    /// called off and the entry forgotten, so the next read starts afresh.
    private func awaitFetch(_ key: SlotKey, _ flight: Task<FlightOutcome, Never>, within limit: Duration)
        async throws(CacheError) -> Answer
    {
        guard let slot = slots[key] else { throw internalError(key) }
        let flightID = slot.flightID
        slot.waiters += 1
        let outcome = await Deadline.value(of: flight, within: limit, sleep: configuration.sleep)
        let current = slots[key].flatMap { $0.flightID == flightID ? $0 : nil }
        current?.waiters -= 1
        guard let outcome else {
            if let current, current.waiters == 0, current.value == nil, current.flight != nil {
                current.flight?.cancel()
                slots[key] = nil
            }
            if Task.isCancelled {
                throw CacheError(
                    kind: .unavailable,
                    message: "\(key.subject) of \(key.source.vault) was not fetched: the request was cancelled.")
            }
            throw CacheError(
                kind: .timedOut,
                message: "\(key.subject) of \(key.source.vault): Key Vault did not answer within \(limit.secondsText).")
        }
        switch outcome {
        case .value(let value, let generation, let stale):
            if stale {
                counters.staleServes += 1
                CacheMetrics.staleAnswers.increment()
            }
            return Answer(value: value, generation: generation, stale: stale)
        case .failure(let error):
            throw CacheError(error)
        }
    }

    func internalError(_ key: SlotKey) -> CacheError {
        CacheError(
            kind: .invalid,
            message: "the cache holds something other than \(key.subject) for it; this is a bug in akvfs.")
    }

    func nextAccessOrder() -> UInt64 {
        lastAccessOrder += 1
        return lastAccessOrder
    }

    public func statistics() -> CacheStatistics {
        var statistics = counters
        statistics.entries = slots.values.reduce(0) { $0 + ($1.value == nil ? 0 : 1) }
        statistics.bytes = totalBytes
        return statistics
    }
}

extension RenderedContent {
    fileprivate init(_ rendered: ObjectCache.RenderedBytes, _ object: FetchedObject, _ answer: ObjectCache.Answer) {
        self.init(bytes: rendered.bytes, metadata: object.metadata, warnings: rendered.warnings, stale: answer.stale)
    }
}

extension Duration {
    /// "2 s", "1.5 s", "250 ms": for messages.
    var secondsText: String {
        let milliseconds = components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
        if milliseconds < 1000 { return "\(milliseconds) ms" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000) s" }
        return "\(Double(milliseconds) / 1000) s"
    }
}
