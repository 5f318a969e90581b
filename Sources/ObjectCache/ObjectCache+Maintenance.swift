import Logging

extension ObjectCache {
    // MARK: Maintenance

    /// One maintenance pass: expires negative entries, evicts entries idle for `idleTimeout`,
    /// drops stale entries past `maxStaleness`, and revalidates every "latest" entry (objects and
    /// listings) that is due (fetched `ttl` or more ago, not backing off after a failure) and
    /// was accessed since its last fetch. Revalidations run concurrently within the per-vault
    /// limits; this returns when they and those already in flight (started by readers) have
    /// finished, so their events have been sent.
    public func maintain() async {
        _ = maintenancePass()
        for flight in slots.values.compactMap({ $0.value == nil ? nil : $0.flight }) {
            _ = await flight.value
        }
    }

    /// Runs a maintenance pass every `interval` until `shutdown()`, without waiting for the
    /// revalidations a pass starts (a slow vault never delays eviction; one still in flight is
    /// not started twice). The default is ttl/4, at most 1 s and at least 10 ms: due entries are
    /// then revalidated within a second of falling due, and a pass is a cheap scan of memory.
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
        for (key, slot) in slots {
            switch maintenanceAction(for: key, slot, at: now) {
            case .keep:
                break
            case .evict:
                logger.debug("evicting idle \(key.subject) of \(key.source)")
                evict(key)
            case .drop:
                logger.warning(
                    "dropping \(key.subject) of \(key.source): its last good content is older than the maximum staleness and refreshing keeps failing"
                )
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

    private func maintenanceAction(for key: SlotKey, _ slot: Slot, at now: Duration) -> MaintenanceAction {
        guard slot.flight == nil else { return .keep }
        let idleLimit = slot.retired ? min(configuration.idleTimeout, configuration.ttl) : configuration.idleTimeout
        if now - slot.lastAccess >= idleLimit, !isPinned(key) { return .evict }
        guard !key.subject.isImmutable, slot.value != nil else { return .keep }
        let age = now - slot.fetchedAt
        if slot.stale, age > configuration.maxStaleness { return .drop }
        let backingOff = slot.retryAt.map { now < $0 } ?? false
        if slot.accessedSinceFetch, age >= configuration.ttl, !backingOff, sources[key.source] != nil {
            return .refresh
        }
        return .keep
    }

    /// Stops maintenance, cancels source calls, drops every value and ends `events`.
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

    // MARK: Removing entries

    /// Evicts least recently used entries until the bytes not pinned by published volumes fit;
    /// entries with a call in flight stay.
    func enforceMemoryBound() {
        guard totalBytes > configuration.maxBytes else { return }
        let pinned = pins.keys.reduce(0) { $0 + (slots[$1]?.bytes ?? 0) }
        guard totalBytes - pinned > configuration.maxBytes else { return }
        let order = slots.compactMap { key, slot in
            slot.flight == nil && slot.bytes > 0 && !isPinned(key) ? (key, slot.accessOrder) : nil
        }
        .sorted { $0.1 < $1.1 }
        for (key, _) in order {
            guard totalBytes - pinned > configuration.maxBytes else { break }
            logger.debug("evicting \(key.subject) of \(key.source) to stay within \(configuration.maxBytes) bytes")
            evict(key)
        }
    }

    func evict(_ key: SlotKey) {
        remove(key)
        counters.evictions += 1
    }

    /// Removes an entry whose content may no longer be served, and says so.
    func drop(_ key: SlotKey) {
        remove(key)
        announce(key)
    }

    /// Removes an entry, cancelling its source call. Its buffers are zeroed when the last holder
    /// (this entry, or a file still being read) lets go.
    func remove(_ key: SlotKey) {
        guard let slot = slots.removeValue(forKey: key) else { return }
        slot.flight?.cancel()
        totalBytes -= slot.bytes
    }

    func announce(_ key: SlotKey) {
        switch key.subject {
        case .object(let reference): eventSink.yield(.contentChanged(key.source, reference))
        case .listing(let kind), .versions(let kind, _): eventSink.yield(.listingChanged(key.source, kind))
        }
    }
}
