import HTTPTransport
import KeyVault
import Logging
import Synchronization

/// Vault objects in memory between the filesystem and Key Vault.
///
/// Nothing is fetched until asked. Concurrent misses for one (source, object) share one source
/// call. "Latest" objects and listings are revalidated every `ttl` while they are being read,
/// in the background by `maintain()` or before answering a read that finds them due. When
/// revalidation fails for a transient reason the last good content is served, marked stale,
/// until `maxStaleness`; when the object is gone, disabled or forbidden it is dropped. Payload
/// and rendering bytes are bounded by `maxBytes` (least recently used first) and entries idle
/// for `idleTimeout` are evicted; evicted bytes are zeroed where Swift allows it. The single
/// consumer of `events` hears about every change so it can invalidate the kernel's caches.
///
/// Entries are keyed by source (vault and identity): content fetched with one identity is never
/// answered to another.
public actor ObjectCache {
    /// File bytes made from one fetched object.
    public struct RenderedBytes: Sendable {
        public var bytes: [UInt8]
        public var warnings: [String]

        public init(bytes: [UInt8], warnings: [String]) {
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

    private let configuration: CacheConfiguration
    private let eventSink: AsyncStream<CacheEvent>.Continuation
    private let logger = Logger(label: "akvfs.cache")

    private var sources: [SourceID: any ObjectSource] = [:]
    private var slots: [SlotKey: Slot] = [:]
    private var notFound: [SlotKey: (until: Duration, error: SourceError)] = [:]
    private var gates: [String: VaultGate] = [:]
    private var counters = CacheStatistics()
    private var totalBytes = 0
    private var lastAccessOrder: UInt64 = 0
    private var lastFlightID: UInt64 = 0
    private var lastGeneration: UInt64 = 0
    private var maintenance: Task<Void, Never>?
    private var isShutDown = false

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

    /// Forgets a source: cancels its source calls and drops and wipes all it cached.
    public func unregister(_ id: SourceID) {
        sources[id] = nil
        for key in Array(slots.keys) where key.source == id {
            remove(key)
        }
        notFound = notFound.filter { $0.key.source != id }
    }

    // MARK: Reading

    /// Object content rendered into file bytes by `render`, memoized per (source, reference,
    /// renderingKey) until the object changes. A rendering always comes from one fetched object,
    /// so a reader never sees bytes of two versions. Marks the entry accessed; fetches on a miss;
    /// revalidates a due "latest" entry first and answers the old content with `stale = true`
    /// when that fails transiently within `maxStaleness`.
    public func content(
        _ reference: ObjectReference, in source: SourceID, renderingKey: String,
        render: @Sendable (FetchedObject) throws(RenderError) -> RenderedBytes
    ) async throws(CacheError) -> RenderedContent {
        let key = SlotKey(source: source, subject: .object(reference))
        let answer = try await resolve(key)
        guard case .object(let object) = answer.value else { throw internalError(key) }
        if let memo = slots[key], memo.value != nil, memo.generation == answer.generation, let rendered = memo.renderings[renderingKey] {
            return RenderedContent(bytes: rendered.bytes, metadata: object.metadata, warnings: rendered.warnings, stale: answer.stale)
        }
        let rendered: RenderedBytes
        do {
            rendered = try render(object)
        } catch {
            throw CacheError(kind: .invalid, message: "\(reference) of \(source.vault) cannot be shown as a file: \(error.message)")
        }
        // Keep the rendering only with the object it was made from.
        if let slot = slots[key], slot.value != nil, slot.generation == answer.generation {
            let before = slot.bytes
            slot.renderings[renderingKey] = rendered
            totalBytes += slot.bytes - before
            enforceMemoryBound()
        }
        return RenderedContent(bytes: rendered.bytes, metadata: object.metadata, warnings: rendered.warnings, stale: answer.stale)
    }

    /// Metadata only (for stat and xattrs): fetches like `content` but renders nothing.
    public func metadata(_ reference: ObjectReference, in source: SourceID) async throws(CacheError) -> ObjectMetadata {
        let key = SlotKey(source: source, subject: .object(reference))
        guard case .object(let object) = try await resolve(key).value else { throw internalError(key) }
        return object.metadata
    }

    /// The latest of each object of a kind, revalidated like "latest" content. Never fetches values.
    public func listing(_ kind: ObjectKind, in source: SourceID) async throws(CacheError) -> [ListedObject] {
        let key = SlotKey(source: source, subject: .listing(kind))
        guard case .listing(let items) = try await resolve(key).value else { throw internalError(key) }
        return items
    }

    /// The versions of one object, revalidated like "latest" content.
    public func versions(_ kind: ObjectKind, name: String, in source: SourceID) async throws(CacheError) -> [ListedObject] {
        let key = SlotKey(source: source, subject: .versions(kind, name: name))
        guard case .listing(let items) = try await resolve(key).value else { throw internalError(key) }
        return items
    }

    /// Marks an entry as being read without fetching (lookups and getattr, so reads answered
    /// from the kernel's page cache still keep the entry refreshed and resident).
    public func touch(_ reference: ObjectReference, in source: SourceID) {
        let key = SlotKey(source: source, subject: .object(reference))
        guard slots[key] != nil else { return }
        slots[key]?.markAccessed(at: configuration.now(), order: nextAccessOrder())
    }

    private struct Answer {
        var value: CachedValue
        var generation: UInt64
        var stale: Bool
    }

    /// The value to answer for `key`: from memory when fresh (or immutable), else from a source
    /// call shared with every other reader of the same key.
    private func resolve(_ key: SlotKey) async throws(CacheError) -> Answer {
        guard !isShutDown else {
            throw CacheError(kind: .unavailable, message: "\(key.subject) of \(key.source.vault) is not available: the cache is shutting down.")
        }
        guard let source = sources[key.source] else {
            throw CacheError(kind: .invalid, message: "\(key.subject) was asked of \(key.source), which is not registered with the cache.")
        }
        let now = configuration.now()
        if let negative = notFound[key] {
            if now < negative.until {
                counters.hits += 1
                throw CacheError(negative.error)
            }
            notFound[key] = nil
        }
        switch answerFromMemory(for: key, at: now) {
        case .answer(let answer):
            return answer
        case .tooStale(let error):
            logger.warning("dropping \(key.subject) of \(key.source): its last good content is older than the maximum staleness and refreshing keeps failing")
            drop(key)
            throw CacheError(error)
        case .fetch:
            break
        }
        counters.misses += 1
        let flight = slots[key]?.flight ?? startFlight(for: key, from: source, at: now)
        if let fallback = staleFallback(for: key, at: now), await !finishes(flight, within: configuration.revalidationWait) {
            // Keep answering the old content while the revalidation keeps trying.
            slots[key]?.stale = true
            counters.staleServes += 1
            logger.warning("serving the last good \(key.subject) of \(key.source) while its revalidation is slow")
            return fallback
        }
        switch await flight.value {
        case .value(let value, let generation, let stale):
            if stale { counters.staleServes += 1 }
            return Answer(value: value, generation: generation, stale: stale)
        case .failure(let error):
            throw CacheError(error)
        }
    }

    /// The content a reader may fall back on while a revalidation is slow: a "latest" value still
    /// within the maximum staleness.
    private func staleFallback(for key: SlotKey, at now: Duration) -> Answer? {
        guard !key.subject.isImmutable, let slot = slots[key], let value = slot.value, now - slot.fetchedAt <= configuration.maxStaleness else {
            return nil
        }
        return Answer(value: value, generation: slot.generation, stale: true)
    }

    /// Whether `flight` ends within `wait`; it keeps running either way. (Not a task group: a
    /// group would wait for the flight before returning.)
    private func finishes(_ flight: Task<FlightOutcome, Never>, within wait: Duration) async -> Bool {
        let sleep = configuration.sleep
        let race = FirstOf()
        return await withCheckedContinuation { continuation in
            race.start(continuation)
            Task {
                _ = await flight.value
                race.finish(true)
            }
            Task {
                try? await sleep(wait)
                race.finish(false)
            }
        }
    }

    private enum MemoryAnswer {
        case answer(Answer)
        /// The last good content may no longer be served and refreshing is backing off.
        case tooStale(SourceError)
        /// Fetch, or join the fetch in flight.
        case fetch
    }

    /// Marks the entry accessed and answers from it when it may be. (A separate function so no
    /// copy of the entry outlives it: wiping zeroes buffers in place only when the cache holds
    /// the last reference.)
    private func answerFromMemory(for key: SlotKey, at now: Duration) -> MemoryAnswer {
        guard slots[key] != nil else { return .fetch }
        slots[key]?.markAccessed(at: now, order: nextAccessOrder())
        guard let slot = slots[key], let value = slot.value else { return .fetch }
        let age = now - slot.fetchedAt
        if slot.flight == nil, key.subject.isImmutable || age < configuration.ttl {
            counters.hits += 1
            return .answer(Answer(value: value, generation: slot.generation, stale: false))
        }
        // After a failed revalidation, readers get the last good content at once rather than
        // waiting for the retry (which may spend minutes in the client's own retries).
        let retrying = slot.flight != nil || slot.retryAt.map { now < $0 } ?? false
        guard slot.stale, retrying else { return .fetch }
        if age <= configuration.maxStaleness {
            counters.hits += 1
            counters.staleServes += 1
            return .answer(Answer(value: value, generation: slot.generation, stale: true))
        }
        guard slot.flight == nil else { return .fetch }
        return .tooStale(slot.lastError ?? SourceError(kind: .unavailable, message: "\(key.subject) of \(key.source.vault) could not be refreshed."))
    }

    private func internalError(_ key: SlotKey) -> CacheError {
        CacheError(kind: .invalid, message: "the cache holds something other than \(key.subject) for it; this is a bug in akvfs.")
    }

    // MARK: Source calls

    /// Starts the one source call for `key` that every reader of it will share.
    private func startFlight(for key: SlotKey, from source: any ObjectSource, at now: Duration) -> Task<FlightOutcome, Never> {
        lastFlightID += 1
        let flightID = lastFlightID
        counters.upstreamRequests += 1
        let gate = gate(for: key.source.vault)
        let subject = key.subject
        logger.debug("fetching \(subject) from \(key.source)")
        // The task runs on this actor; only the source call itself leaves it.
        let flight = Task {
            var result = await Self.call(source, for: subject, through: gate)
            return self.complete(key, flightID: flightID, result: &result)
        }
        if slots[key] == nil {
            slots[key] = Slot(now: now, accessOrder: nextAccessOrder())
        }
        slots[key]?.flight = flight
        slots[key]?.flightID = flightID
        return flight
    }

    private func gate(for vault: String) -> VaultGate {
        if let gate = gates[vault] { return gate }
        let gate = VaultGate(configuration: configuration)
        gates[vault] = gate
        return gate
    }

    private nonisolated static func call(
        _ source: any ObjectSource, for subject: Subject, through gate: VaultGate
    ) async -> Result<CachedValue, SourceError> {
        do {
            try await gate.enter()
        } catch {
            return .failure(SourceError(kind: .unavailable, message: "\(subject) was not fetched: the request was cancelled."))
        }
        let result: Result<CachedValue, SourceError>
        // A listing's later pages each take a token too, as Key Vault counts them.
        let pacer: PagePacer = { try await gate.pace() }
        do throws(SourceError) {
            switch subject {
            case .object(let reference): result = .success(.object(try await source.fetch(reference)))
            case .listing(let kind): result = .success(.listing(try await source.list(kind, pacer: pacer)))
            case .versions(let kind, let name): result = .success(.listing(try await source.listVersions(kind, name: name, pacer: pacer)))
            }
        } catch {
            result = .failure(error)
        }
        await gate.leave()
        return result
    }

    /// Applies a finished source call to its entry and says what its waiters answer. Entries are
    /// changed in place, never through copies, so the cache holds the only reference to the
    /// buffers it wipes and zeroing happens in place.
    private func complete(_ key: SlotKey, flightID: UInt64, result: inout Result<CachedValue, SourceError>) -> FlightOutcome {
        guard slots[key]?.flightID == flightID else {
            // The entry went away while its call was in flight (unregister, shutdown).
            if case .success(var value) = result {
                result = .failure(SourceError(kind: .unavailable, message: "discarded"))
                value.wipe()
            }
            return .failure(SourceError(kind: .unavailable, message: "\(key.subject) of \(key.source.vault) was dropped while being fetched: its source was unregistered or the cache shut down."))
        }
        slots[key]?.flight = nil
        let now = configuration.now()
        switch result {
        case .success(let fresh): return accept(fresh, key, at: now)
        case .failure(let error): return reject(error, key, at: now)
        }
    }

    private func accept(_ fresh: CachedValue, _ key: SlotKey, at now: Duration) -> FlightOutcome {
        let changed = slots[key]?.value?.hasSameContent(as: fresh) == false
        totalBytes -= slots[key]?.bytes ?? 0
        if slots[key]?.value == nil || changed {
            lastGeneration += 1
            slots[key]?.replace(with: fresh, generation: lastGeneration)
        } else {
            slots[key]?.refresh(with: fresh)
        }
        slots[key]?.markFetched(at: now)
        totalBytes += slots[key]?.bytes ?? 0
        let generation = slots[key]?.generation ?? 0
        notFound[key] = nil
        if changed {
            logger.debug("\(key.subject) of \(key.source) changed")
            announce(key)
        } else {
            logger.debug("fetched \(key.subject) from \(key.source)")
        }
        enforceMemoryBound()
        return .value(fresh, generation: generation, stale: false)
    }

    private func reject(_ error: SourceError, _ key: SlotKey, at now: Duration) -> FlightOutcome {
        let hadValue = slots[key]?.value != nil
        switch error.kind {
        case .notFound, .disabled, .forbidden:
            // The object is gone for this identity: nothing of it may be served any more.
            remove(key)
            if error.kind == .notFound {
                notFound[key] = (now + configuration.negativeTTL, error)
            }
            logger.debug("\(key.subject) of \(key.source) is no longer available: \(error.message)")
            if hadValue { announce(key) }
            return .failure(error)
        case .throttled, .unavailable, .invalid:
            guard hadValue, let failures = slots[key]?.failures else {
                remove(key)
                return .failure(error)
            }
            let wait = max(configuration.refreshBackoff.delay(beforeRetry: failures), error.retryAfter ?? .zero)
            slots[key]?.markFailed(error, retryAt: now + wait)
            let age = now - (slots[key]?.fetchedAt ?? .zero)
            if age <= configuration.maxStaleness, let value = slots[key]?.value, let generation = slots[key]?.generation {
                logger.warning(
                    "serving the last good \(key.subject) of \(key.source), fetched \(age.components.seconds) s ago: refreshing failed (\(error.message)); next try in \(wait.components.seconds) s"
                )
                return .value(value, generation: generation, stale: true)
            }
            logger.warning("dropping \(key.subject) of \(key.source): its last good content is older than the maximum staleness and refreshing failed (\(error.message))")
            drop(key)
            return .failure(error)
        }
    }

    // MARK: Maintenance

    /// One maintenance pass: expires negative entries, evicts entries idle for `idleTimeout`,
    /// drops stale entries past `maxStaleness`, and refreshes every "latest" entry (objects and
    /// listings) that is due (fetched `ttl` or more ago, not backing off after a failure) and
    /// was accessed since its last fetch. Refreshes run concurrently within the per-vault limits;
    /// this returns when they have finished, so their events have been sent.
    public func maintain() async {
        for flight in maintenancePass() {
            _ = await flight.value
        }
    }

    /// Runs a maintenance pass every `interval` until `shutdown()`, without waiting for the
    /// refreshes a pass starts (a slow vault never delays eviction; a refresh still in flight is
    /// not started twice). The default is ttl/4, at most 1 s and at least 10 ms: due entries are
    /// then refreshed within a second of falling due, before most readers would find them due
    /// and wait for a revalidation, and a pass is a cheap scan of memory.
    public func startMaintenance(interval: Duration? = nil) {
        guard !isShutDown else { return }
        maintenance?.cancel()
        let period = max(interval ?? min(configuration.ttl / 4, .seconds(1)), .milliseconds(10))
        let sleep = configuration.sleep
        maintenance = Task { [weak self] in
            while !Task.isCancelled {
                guard let cache = self else { return }
                await cache.startMaintenancePass()
                do {
                    try await sleep(period)
                } catch {
                    return
                }
            }
        }
    }

    private func startMaintenancePass() {
        _ = maintenancePass()
    }

    private func maintenancePass() -> [Task<FlightOutcome, Never>] {
        guard !isShutDown else { return [] }
        let now = configuration.now()
        notFound = notFound.filter { now < $0.value.until }
        var due: [SlotKey] = []
        for key in Array(slots.keys) {
            switch maintenanceAction(for: key, at: now) {
            case .keep:
                break
            case .evict:
                logger.debug("evicting idle \(key.subject) of \(key.source)")
                evict(key)
            case .drop:
                logger.warning("dropping \(key.subject) of \(key.source): its last good content is older than the maximum staleness and refreshing keeps failing")
                drop(key)
            case .refresh:
                due.append(key)
            }
        }
        enforceMemoryBound()
        return due.compactMap { key in
            guard let source = sources[key.source] else { return nil }
            logger.debug("refreshing \(key.subject) of \(key.source)")
            return startFlight(for: key, from: source, at: now)
        }
    }

    private enum MaintenanceAction {
        case keep, evict, drop, refresh
    }

    private func maintenanceAction(for key: SlotKey, at now: Duration) -> MaintenanceAction {
        guard let slot = slots[key], slot.flight == nil else { return .keep }
        if now - slot.lastAccess >= configuration.idleTimeout { return .evict }
        guard !key.subject.isImmutable, slot.value != nil else { return .keep }
        let age = now - slot.fetchedAt
        if slot.stale, age > configuration.maxStaleness { return .drop }
        let backingOff = slot.retryAt.map { now < $0 } ?? false
        if slot.accessedSinceFetch, age >= configuration.ttl, !backingOff, sources[key.source] != nil { return .refresh }
        return .keep
    }

    /// Stops maintenance, cancels source calls, wipes every value and ends `events`.
    public func shutdown() {
        isShutDown = true
        maintenance?.cancel()
        maintenance = nil
        for key in Array(slots.keys) {
            remove(key)
        }
        notFound.removeAll()
        sources.removeAll()
        eventSink.finish()
    }

    public func statistics() -> CacheStatistics {
        var statistics = counters
        statistics.entries = slots.values.reduce(0) { $0 + ($1.value == nil ? 0 : 1) }
        statistics.bytes = totalBytes
        return statistics
    }

    // MARK: Removing entries

    /// Evicts least recently used entries until the bytes fit; entries with a call in flight stay.
    private func enforceMemoryBound() {
        guard totalBytes > configuration.maxBytes else { return }
        let order = slots.compactMap { key, slot in slot.flight == nil && slot.bytes > 0 ? (key, slot.accessOrder) : nil }
            .sorted { $0.1 < $1.1 }
        for (key, _) in order {
            guard totalBytes > configuration.maxBytes else { break }
            logger.debug("evicting \(key.subject) of \(key.source) to stay within \(configuration.maxBytes) bytes")
            evict(key)
        }
    }

    private func evict(_ key: SlotKey) {
        remove(key)
        counters.evictions += 1
    }

    /// Removes an entry whose content may no longer be served, and says so.
    private func drop(_ key: SlotKey) {
        remove(key)
        announce(key)
    }

    /// Removes and wipes an entry, cancelling its source call.
    private func remove(_ key: SlotKey) {
        guard let slot = slots.removeValue(forKey: key) else { return }
        slot.flight?.cancel()
        totalBytes -= slot.bytes
        slot.wipe()
    }

    private func announce(_ key: SlotKey) {
        switch key.subject {
        case .object(let reference): eventSink.yield(.contentChanged(key.source, reference))
        case .listing(let kind), .versions(let kind, _): eventSink.yield(.listingChanged(key.source, kind))
        }
    }

    private func nextAccessOrder() -> UInt64 {
        lastAccessOrder += 1
        return lastAccessOrder
    }
}

/// Resumes a continuation with whichever result comes first and ignores the rest.
private final class FirstOf: Sendable {
    private let continuation = Mutex<CheckedContinuation<Bool, Never>?>(nil)

    func start(_ continuation: CheckedContinuation<Bool, Never>) {
        self.continuation.withLock { $0 = continuation }
    }

    func finish(_ result: Bool) {
        continuation.withLock { pending in
            pending?.resume(returning: result)
            pending = nil
        }
    }
}
