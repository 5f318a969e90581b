import HTTPTransport
import KeyVault
import Logging

extension ObjectCache {
    /// Starts the one source call for `key` that every reader of it will share. A revalidation
    /// (the entry has content) gives up after `refreshAttemptLimit`, so an attempt stuck on a
    /// dead connection never delays noticing that the vault answers again.
    @discardableResult
    func startFlight(for key: SlotKey, from source: any ObjectSource, at now: Duration) -> Task<FlightOutcome, Never> {
        lastFlightID += 1
        let flightID = lastFlightID
        counters.upstreamRequests += 1
        let gate = gate(for: key.source.vault)
        let subject = key.subject
        if slots[key] == nil {
            slots[key] = Slot(now: now, accessOrder: nextAccessOrder())
        }
        let limit = slots[key]?.value == nil ? nil : configuration.refreshAttemptLimit(for: subject)
        let sleep = configuration.sleep
        logger.debug("fetching \(subject) from \(key.source)")
        // The task runs on this actor; only the source call itself leaves it.
        let flight = Task {
            let result = await Self.call(source, for: subject, through: gate, within: limit, sleep: sleep)
            return self.complete(key, flightID: flightID, result: result)
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

    /// One attempt, ended after `limit` when there is one.
    private nonisolated static func call(
        _ source: any ObjectSource, for subject: Subject, through gate: VaultGate, within limit: Duration?,
        sleep: @escaping @Sendable (Duration) async throws -> Void
    ) async -> Result<CachedValue, SourceError> {
        guard let limit else { return await call(source, for: subject, through: gate) }
        let attempt = Task { await call(source, for: subject, through: gate) }
        return await withTaskCancellationHandler {
            if let result = await Deadline.value(of: attempt, within: limit, sleep: sleep) { return result }
            attempt.cancel()
            return .failure(
                SourceError(
                    kind: .timedOut,
                    message: "\(subject) was not revalidated: Key Vault did not answer within \(limit.secondsText)."))
        } onCancel: {
            attempt.cancel()
        }
    }

    private nonisolated static func call(
        _ source: any ObjectSource, for subject: Subject, through gate: VaultGate
    ) async -> Result<CachedValue, SourceError> {
        do {
            try await gate.enter()
        } catch {
            return .failure(
                SourceError(kind: .unavailable, message: "\(subject) was not fetched: the request was cancelled."))
        }
        let result: Result<CachedValue, SourceError>
        // A listing's later pages each take a token too, as Key Vault counts them.
        let pacer: PagePacer = { try await gate.pace() }
        do throws(SourceError) {
            switch subject {
            case .object(let reference): result = .success(.object(try await source.fetch(reference)))
            case .listing(let kind): result = .success(.listing(try await source.list(kind, pacer: pacer)))
            case .versions(let kind, let name):
                result = .success(.listing(try await source.listVersions(kind, name: name, pacer: pacer)))
            }
        } catch {
            result = .failure(error)
        }
        await gate.leave()
        return result
    }

    /// Applies a finished source call to its entry and says what its waiters answer.
    private func complete(_ key: SlotKey, flightID: UInt64, result: Result<CachedValue, SourceError>) -> FlightOutcome {
        guard slots[key]?.flightID == flightID else {
            // The entry went away while its call was in flight (unregister, shutdown, or every
            // reader gave up on it); its value is dropped, which zeroes its buffers.
            return .failure(
                SourceError(
                    kind: .unavailable,
                    message:
                        "\(key.subject) of \(key.source.vault) was dropped while being fetched: its source was unregistered, the cache shut down, or every reader gave up."
                ))
        }
        slots[key]?.flight = nil
        let now = configuration.now()
        switch result {
        case .success(let fresh): return accept(fresh, key, at: now)
        case .failure(let error): return reject(error, key, at: now)
        }
    }

    private func accept(_ fresh: CachedValue, _ key: SlotKey, at now: Duration) -> FlightOutcome {
        guard let slot = slots[key] else {
            return .failure(SourceError(kind: .unavailable, message: "\(key.subject) was dropped while being fetched."))
        }
        let changed = slot.value?.hasSameContent(as: fresh) == false
        if changed { retireVersion(of: key, slot, at: now) }
        totalBytes -= slot.bytes
        if slot.value == nil || changed {
            lastGeneration += 1
            slot.replace(with: fresh, generation: lastGeneration)
        } else {
            slot.refresh(with: fresh)
        }
        slot.markFetched(at: now)
        totalBytes += slot.bytes
        notFound[key] = nil
        if changed {
            logger.debug("\(key.subject) of \(key.source) changed")
            announce(key)
        } else {
            logger.debug("fetched \(key.subject) from \(key.source)")
        }
        if troubledVaults.remove(key.source.vault) != nil { vaultAnswersAgain(key.source.vault, at: now) }
        enforceMemoryBound()
        return .value(fresh, generation: slot.generation, stale: false)
    }

    /// Keeps the version a "latest" entry held before a rotation as an entry of its own, for
    /// files opened before the rotation that still read it; it goes once idle for a TTL.
    private func retireVersion(of key: SlotKey, _ slot: Slot, at now: Duration) {
        guard case .object(let reference) = key.subject, reference.version == nil, case .object(let old)? = slot.value,
            !old.metadata.version.isEmpty
        else { return }
        let retiredKey = SlotKey(
            source: key.source,
            subject: .object(ObjectReference(kind: reference.kind, name: reference.name, version: old.metadata.version))
        )
        guard slots[retiredKey] == nil else { return }
        let retired = Slot(now: now, accessOrder: slot.accessOrder)
        retired.value = slot.value
        retired.generation = slot.generation
        retired.renderings = slot.renderings
        retired.fetchedAt = slot.fetchedAt
        retired.retired = true
        slots[retiredKey] = retired
        totalBytes += retired.bytes
    }

    /// The vault answered after revalidations failed: entries waiting out their backoff are due
    /// again now, so everything being read shows the vault's content within a maintenance pass.
    private func vaultAnswersAgain(_ vault: String, at now: Duration) {
        var resumed = 0
        for (key, slot) in slots where key.source.vault == vault {
            guard let retryAt = slot.retryAt, retryAt > now else { continue }
            slot.retryAt = now
            resumed += 1
        }
        logger.info("\(vault) answers again; revalidating \(resumed) entries that were backing off")
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
        case .throttled, .unavailable, .timedOut, .invalid:
            guard hadValue, let slot = slots[key] else {
                remove(key)
                return .failure(error)
            }
            troubledVaults.insert(key.source.vault)
            // Never longer than half a TTL between tries, unless Key Vault asked for longer.
            let backoff = min(configuration.refreshBackoff.delay(beforeRetry: slot.failures), configuration.ttl / 2)
            let wait = max(backoff, error.retryAfter ?? .zero)
            if slot.failures == 0, case .object(let reference) = key.subject {
                eventSink.yield(.refreshFailed(key.source, reference, error.message))
            }
            slot.markFailed(retryAt: now + wait)
            let age = now - slot.fetchedAt
            if age <= configuration.maxStaleness, let value = slot.value {
                logger.warning(
                    "serving the last good \(key.subject) of \(key.source), fetched \(age.components.seconds) s ago: refreshing failed (\(error.message)); next try in \(wait.secondsText)"
                )
                return .value(value, generation: slot.generation, stale: true)
            }
            logger.warning(
                "dropping \(key.subject) of \(key.source): its last good content is older than the maximum staleness and refreshing failed (\(error.message))"
            )
            drop(key)
            return .failure(error)
        }
    }
}
