import HTTPTransport
import ObjectCache
import ObjectSourceSupport
import PKI
import TestSupport
import Testing

@Suite("ObjectCache")
struct ObjectCacheTests {
    // MARK: Laziness and single flight

    @Test func nothingIsFetchedUntilAskedAndListingFetchesNoValues() async throws {
        let clock = ManualClock()
        let source = InMemorySource(secrets: ["a": "alpha", "b": "bravo"])
        let cache = ObjectCache(configuration: testConfiguration(clock))
        await cache.register(source, as: vaultA)
        #expect(await source.totalFetches == 0)
        #expect(await source.lists == 0)
        #expect(await cache.statistics().upstreamRequests == 0)

        let listing = try await cache.listing(.secret, in: vaultA)
        #expect(listing.map(\.name) == ["a", "b"])
        #expect(await source.lists == 1)
        #expect(await source.totalFetches == 0)
        #expect(await cache.statistics().bytes == 0)
    }

    @Test func namesAndVersionsIgnoreLetterCaseOnly() {
        let lower = ObjectReference(kind: .secret, name: "api-key")
        #expect(lower == ObjectReference(kind: .secret, name: "API-Key"))
        #expect(
            Set([lower, ObjectReference(kind: .secret, name: "API-KEY")]).count == 1, "one hash for every spelling")
        #expect(
            ObjectReference(kind: .secret, name: "a", version: "AB12")
                == ObjectReference(kind: .secret, name: "A", version: "ab12"))
        #expect(lower != ObjectReference(kind: .key, name: "api-key"))
        #expect(lower != ObjectReference(kind: .secret, name: "api-keys"))
        #expect(lower != ObjectReference(kind: .secret, name: "api-key", version: "ab"))
        #expect(
            ObjectReference(kind: .secret, name: "a@") != ObjectReference(kind: .secret, name: "a`"),
            "only A to Z fold: @ and ` differ by the same bit")
    }

    @Test func concurrentMissesShareOneFetch() async throws {
        let clock = ManualClock()
        let source = InMemorySource(secrets: ["a": "alpha"])
        await source.hold()
        let cache = ObjectCache(configuration: testConfiguration(clock))
        await cache.register(source, as: vaultA)

        let texts = try await withThrowingTaskGroup(of: String.self) { group in
            for index in 0..<100 {
                group.addTask {
                    // Half ask for metadata, which shares the same flight.
                    if index % 2 == 0 { _ = try await cache.metadata(secret("a"), in: vaultA) }
                    return try await cache.text(secret("a"))
                }
            }
            await waitUntil("the one fetch is held") { await source.heldCalls == 1 }
            await source.releaseAll()
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(texts.count == 100)
        #expect(texts.allSatisfy { $0 == "alpha" })
        #expect(await source.fetches(of: "a") == 1)
        #expect(await cache.statistics().upstreamRequests == 1)
    }

    @Test func concurrentListingsShareOneCall() async throws {
        let clock = ManualClock()
        let source = InMemorySource(secrets: ["a": "alpha"])
        await source.hold()
        let cache = ObjectCache(configuration: testConfiguration(clock))
        await cache.register(source, as: vaultA)

        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<100 {
                group.addTask {
                    let names = try await cache.listing(.secret, in: vaultA).map(\.name)
                    let versions = try await cache.versions(.secret, name: "a", in: vaultA).map(\.version)
                    #expect(names == ["a"])
                    #expect(versions == ["v1"])
                }
            }
            await waitUntil("the listing is held") { await source.heldCalls == 1 }
            await source.releaseAll()
            try await group.waitForAll()
        }
        #expect(await source.lists == 1)
        #expect(await source.versionLists == 1)
        #expect(await source.totalFetches == 0)
    }

    @Test func identitiesNeverShareContent() async throws {
        let clock = ManualClock()
        let seenByNode = InMemorySource(secrets: ["a": "node's value"])
        let seenByPod = InMemorySource(secrets: ["a": "pod's value"])
        let cache = ObjectCache(configuration: testConfiguration(clock))
        await cache.register(seenByNode, as: vaultA)
        await cache.register(seenByPod, as: vaultAOtherIdentity)

        async let nodeText = cache.text(secret("a"), in: vaultA)
        async let podText = cache.text(secret("a"), in: vaultAOtherIdentity)
        #expect(try await nodeText == "node's value")
        #expect(try await podText == "pod's value")
        #expect(try await cache.text(secret("a"), in: vaultA) == "node's value")
        #expect(try await cache.text(secret("a"), in: vaultAOtherIdentity) == "pod's value")
        #expect(await seenByNode.fetches(of: "a") == 1)
        #expect(await seenByPod.fetches(of: "a") == 1)
        #expect(await cache.statistics().upstreamRequests == 2)
    }

    // MARK: TTL and background refresh

    @Test func freshHitsDoNotFetchAndDueReadsAreAnsweredAtOnceAndRevalidatedInTheBackground() async throws {
        let clock = ManualClock()
        let source = InMemorySource(secrets: ["a": "alpha"])
        let cache = ObjectCache(configuration: testConfiguration(clock))
        await cache.register(source, as: vaultA)
        var events = cache.events.makeAsyncIterator()

        #expect(try await cache.text(secret("a")) == "alpha")
        clock.advance(by: .seconds(99))
        #expect(try await cache.text(secret("a")) == "alpha")
        #expect(try await cache.metadata(secret("a"), in: vaultA).version == "v1")
        #expect(await source.fetches(of: "a") == 1)

        // Due: the reader gets what is cached, without waiting, even while the source is held.
        await source.put("a", "alpha-2", version: "v2")
        await source.hold()
        clock.advance(by: .seconds(1))
        #expect(try await cache.text(secret("a")) == "alpha")
        await waitUntil("the revalidation reaches the source") { await source.heldCalls == 1 }
        #expect(try await cache.text(secret("a")) == "alpha", "one revalidation, however many readers")
        #expect(await source.fetches(of: "a") == 2)
        await source.releaseAll()
        await cache.maintain()
        #expect(await events.next() == .contentChanged(vaultA, secret("a")))
        #expect(try await cache.text(secret("a")) == "alpha-2")
        let statistics = await cache.statistics()
        #expect(statistics.hits == 5)
        #expect(statistics.misses == 1)
    }

    @Test func maintenanceRefreshesOnlyEntriesAccessedSinceTheirFetch() async throws {
        let clock = ManualClock()
        let source = InMemorySource(secrets: ["a": "alpha", "b": "bravo"])
        let cache = ObjectCache(configuration: testConfiguration(clock))
        await cache.register(source, as: vaultA)
        _ = try await cache.text(secret("a"))
        _ = try await cache.text(secret("b"))

        clock.advance(by: .seconds(50))
        await cache.touch(secret("a"), in: vaultA)
        await cache.maintain()
        #expect(await source.totalFetches == 2, "nothing is due yet")

        clock.advance(by: .seconds(50))
        await cache.maintain()
        #expect(await source.fetches(of: "a") == 2)
        #expect(await source.fetches(of: "b") == 1)
        await cache.maintain()
        #expect(await source.fetches(of: "a") == 2, "a refreshed entry needs a new access before its next refresh")
    }

    @Test func steadyReadingRefreshesOncePerTTL() async throws {
        let clock = ManualClock()
        let source = InMemorySource(secrets: ["a": "alpha"])
        let cache = ObjectCache(configuration: testConfiguration(clock))
        await cache.register(source, as: vaultA)
        _ = try await cache.text(secret("a"))

        for tick in 0..<10 {
            if tick % 2 == 0 {
                await cache.touch(secret("a"), in: vaultA)
            } else {
                #expect(try await cache.text(secret("a")) == "alpha")
            }
            clock.advance(by: .seconds(100))
            await cache.maintain()
        }
        #expect(await source.fetches(of: "a") == 11)
        #expect(try await cache.text(secret("a")) == "alpha")
        #expect(await source.fetches(of: "a") == 11, "maintenance kept the entry fresh for readers")
    }

    @Test func idleEntriesAreEvictedAndFetchedAgainOnTheNextRead() async throws {
        let clock = ManualClock()
        let source = InMemorySource(secrets: ["a": "alpha"])
        let cache = ObjectCache(configuration: testConfiguration(clock))
        await cache.register(source, as: vaultA)
        _ = try await cache.text(secret("a"))
        _ = try await cache.listing(.secret, in: vaultA)

        clock.advance(by: .seconds(299))
        await cache.maintain()
        #expect(await cache.statistics().entries == 2)

        clock.advance(by: .seconds(1))
        await cache.maintain()
        let statistics = await cache.statistics()
        #expect(statistics.entries == 0)
        #expect(statistics.bytes == 0)
        #expect(statistics.evictions == 2)

        #expect(try await cache.text(secret("a")) == "alpha")
        #expect(await source.fetches(of: "a") == 2)
    }

    // MARK: Changes and events

    @Test func rotationIsAnnouncedAndUnchangedRefreshesAreNot() async throws {
        let clock = ManualClock()
        let source = InMemorySource(secrets: ["a": "alpha", "b": "bravo"])
        let cache = ObjectCache(configuration: testConfiguration(clock))
        await cache.register(source, as: vaultA)
        var events = cache.events.makeAsyncIterator()
        _ = try await cache.text(secret("a"))
        _ = try await cache.text(secret("b"))

        // Both refreshed, neither changed: no event.
        await cache.touch(secret("a"), in: vaultA)
        await cache.touch(secret("b"), in: vaultA)
        clock.advance(by: .seconds(100))
        await cache.maintain()
        #expect(await source.totalFetches == 4)

        // b rotates: its event is the first one.
        await source.put("b", "bravo-2", version: "v2")
        await cache.touch(secret("b"), in: vaultA)
        clock.advance(by: .seconds(100))
        await cache.maintain()
        #expect(await events.next() == .contentChanged(vaultA, secret("b")))
        #expect(try await cache.text(secret("b")) == "bravo-2")

        // a rotates: announced, and the next read answers the new bytes without another fetch.
        await source.put("a", "alpha-2", version: "v2")
        await cache.touch(secret("a"), in: vaultA)
        clock.advance(by: .seconds(100))
        await cache.maintain()
        #expect(await events.next() == .contentChanged(vaultA, secret("a")))
        let fetchesBefore = await source.fetches(of: "a")
        let content = try await cache.content(secret("a"), in: vaultA, renderingKey: "plain", render: plainRender)
        #expect(String(decoding: content.bytes, as: UTF8.self) == "alpha-2")
        #expect(content.metadata.version == "v2")
        #expect(content.stale == false)
        #expect(await source.fetches(of: "a") == fetchesBefore)
    }

    @Test func listingChangesAreAnnounced() async throws {
        let clock = ManualClock()
        let source = InMemorySource(secrets: ["a": "alpha"])
        let cache = ObjectCache(configuration: testConfiguration(clock))
        await cache.register(source, as: vaultA)
        var events = cache.events.makeAsyncIterator()
        #expect(try await cache.listing(.secret, in: vaultA).map(\.name) == ["a"])

        // Unchanged listing refreshed: no event (checked by the next event being the change below).
        _ = try await cache.listing(.secret, in: vaultA)
        clock.advance(by: .seconds(100))
        await cache.maintain()
        #expect(await source.lists == 2)

        await source.put("b", "bravo", version: "v1")
        _ = try await cache.listing(.secret, in: vaultA)
        clock.advance(by: .seconds(100))
        await cache.maintain()
        #expect(await source.lists == 3)
        #expect(await events.next() == .listingChanged(vaultA, .secret))
        #expect(try await cache.listing(.secret, in: vaultA).map(\.name) == ["a", "b"])
        #expect(await source.lists == 3)
        #expect(await source.totalFetches == 0)
    }

    @Test func renderingsAreMemoizedPerKeyAndReplacedWithTheObject() async throws {
        let clock = ManualClock()
        let source = InMemorySource(secrets: ["a": "alpha"])
        let cache = ObjectCache(configuration: testConfiguration(clock))
        await cache.register(source, as: vaultA)
        let renders = Counter()
        let countingRender: @Sendable (FetchedObject) throws(ObjectCache.RenderError) -> ObjectCache.RenderedBytes = {
            object throws(ObjectCache.RenderError) in
            renders.increment()
            guard case .secret(let value) = object.payload else { throw ObjectCache.RenderError("not a secret") }
            return ObjectCache.RenderedBytes(
                bytes: SecretBytes(copying: Array("\(object.metadata.version):".utf8) + Array(value)), warnings: ["w"])
        }

        for _ in 0..<3 {
            let content = try await cache.content(
                secret("a"), in: vaultA, renderingKey: "tagged", render: countingRender)
            #expect(Array(content.bytes) == Array("v1:alpha".utf8))
            #expect(content.warnings == ["w"])
        }
        #expect(renders.count == 1)
        _ = try await cache.content(secret("a"), in: vaultA, renderingKey: "other", render: countingRender)
        #expect(renders.count == 2)
        #expect(await cache.statistics().bytes == 5 + 8 + 8)

        await source.put("a", "alpha-2", version: "v2")
        clock.advance(by: .seconds(100))
        await cache.touch(secret("a"), in: vaultA)
        await cache.maintain()
        let rotated = try await cache.content(secret("a"), in: vaultA, renderingKey: "tagged", render: countingRender)
        #expect(Array(rotated.bytes) == Array("v2:alpha-2".utf8))
        #expect(rotated.metadata.version == "v2")
        #expect(renders.count == 3)
        #expect(
            await cache.statistics().bytes == 7 + 10 + (5 + 8 + 8), "the old version is kept for readers that opened it"
        )
        clock.advance(by: .seconds(100))
        await cache.maintain()
        #expect(await cache.statistics().bytes == 7 + 10, "the old version and its renderings go once idle for a TTL")

        let failing: @Sendable (FetchedObject) throws(ObjectCache.RenderError) -> ObjectCache.RenderedBytes = {
            _ throws(ObjectCache.RenderError) in
            throw ObjectCache.RenderError("objectEncoding 'hex' is not supported")
        }
        let error = await #expect(throws: CacheError.self) {
            try await cache.content(secret("a"), in: vaultA, renderingKey: "bad", render: failing)
        }
        #expect(error?.kind == .invalid)
        #expect(error?.message.contains("objectEncoding 'hex' is not supported") == true)
    }

    // MARK: Failures

    @Test func staleContentIsServedWhileRefreshesFailUntilMaxStaleness() async throws {
        let clock = ManualClock()
        let source = InMemorySource(secrets: ["a": "alpha"])
        let cache = ObjectCache(configuration: testConfiguration(clock))
        await cache.register(source, as: vaultA)
        var events = cache.events.makeAsyncIterator()
        _ = try await cache.text(secret("a"))

        await source.fail(with: .unavailable)
        clock.advance(by: .seconds(100))
        #expect(try await cache.text(secret("a")) == "alpha", "due: answered while the revalidation runs")
        await cache.maintain()
        let stale = try await cache.content(secret("a"), in: vaultA, renderingKey: "plain", render: plainRender)
        #expect(stale.stale)
        #expect(Array(stale.bytes) == Array("alpha".utf8))
        #expect(await source.fetches(of: "a") == 2)

        // Backing off: answered from memory without asking the source.
        let again = try await cache.content(secret("a"), in: vaultA, renderingKey: "plain", render: plainRender)
        #expect(again.stale)
        #expect(await source.fetches(of: "a") == 2)
        #expect(await cache.statistics().staleServes == 2)

        // The first failure is announced once, with the source's reason (for the CSI plugin's events).
        guard case .refreshFailed(vaultA, secret("a"), let reason)? = await events.next() else {
            Issue.record("the first failed revalidation is announced")
            return
        }
        #expect(!reason.isEmpty)

        clock.advance(by: .seconds(901))
        let error = await #expect(throws: CacheError.self) { try await cache.text(secret("a")) }
        #expect(error?.kind == .unavailable)
        #expect(await events.next() == .contentChanged(vaultA, secret("a")), "no second failure announcement before it")
        #expect(await cache.statistics().entries == 0)

        await source.fail(with: nil)
        #expect(try await cache.text(secret("a")) == "alpha")
    }

    @Test func failedBackgroundRefreshesBackOff() async throws {
        let clock = ManualClock()
        let source = InMemorySource(secrets: ["a": "alpha"])
        let cache = ObjectCache(configuration: testConfiguration(clock))
        await cache.register(source, as: vaultA)
        _ = try await cache.text(secret("a"))

        await source.fail(with: .throttled)
        await cache.touch(secret("a"), in: vaultA)
        clock.advance(by: .seconds(100))
        await cache.maintain()
        #expect(await source.fetches(of: "a") == 2)

        // The first retry waits 5 s with jitter in [0.8, 1.3): not before 4 s, surely by 7 s.
        await cache.maintain()
        clock.advance(by: .seconds(3))
        await cache.maintain()
        #expect(await source.fetches(of: "a") == 2)
        #expect(try await cache.content(secret("a"), in: vaultA, renderingKey: "plain", render: plainRender).stale)
        #expect(await source.fetches(of: "a") == 2)

        clock.advance(by: .seconds(4))
        await cache.maintain()
        #expect(await source.fetches(of: "a") == 3)

        await source.fail(with: nil)
        clock.advance(by: .seconds(14))
        await cache.maintain()
        #expect(await source.fetches(of: "a") == 4)
        let recovered = try await cache.content(secret("a"), in: vaultA, renderingKey: "plain", render: plainRender)
        #expect(recovered.stale == false)
        #expect(await source.fetches(of: "a") == 4)
    }

    @Test func notFoundOnRefreshDropsTheEntryAndIsAnnounced() async throws {
        let clock = ManualClock()
        let source = InMemorySource(secrets: ["a": "alpha"])
        let cache = ObjectCache(configuration: testConfiguration(clock))
        await cache.register(source, as: vaultA)
        var events = cache.events.makeAsyncIterator()
        _ = try await cache.text(secret("a"))

        await source.remove("a")
        await cache.touch(secret("a"), in: vaultA)
        clock.advance(by: .seconds(100))
        await cache.maintain()
        #expect(await events.next() == .contentChanged(vaultA, secret("a")))
        #expect(await cache.statistics().entries == 0)

        let error = await #expect(throws: CacheError.self) { try await cache.text(secret("a")) }
        #expect(error?.kind == .notFound)
        #expect(await source.fetches(of: "a") == 2, "the not-found answer is remembered")
    }

    @Test func notFoundIsRememberedForNegativeTTL() async throws {
        let clock = ManualClock()
        let source = InMemorySource()
        let cache = ObjectCache(configuration: testConfiguration(clock))
        await cache.register(source, as: vaultA)

        for _ in 0..<3 {
            let error = await #expect(throws: CacheError.self) { try await cache.text(secret("missing")) }
            #expect(error?.kind == .notFound)
        }
        clock.advance(by: .seconds(9))
        await cache.maintain()
        _ = await #expect(throws: CacheError.self) { try await cache.metadata(secret("missing"), in: vaultA) }
        #expect(await source.fetches(of: "missing") == 1)

        clock.advance(by: .seconds(1))
        await cache.maintain()
        await source.put("missing", "now here", version: "v1")
        #expect(try await cache.text(secret("missing")) == "now here")
        #expect(await source.fetches(of: "missing") == 2)
    }

    @Test(arguments: [SourceError.Kind.disabled, .forbidden])
    func disabledAndForbiddenAreNotRemembered(kind: SourceError.Kind) async throws {
        let clock = ManualClock()
        let source = InMemorySource(secrets: ["a": "alpha"])
        await source.fail(with: kind)
        let cache = ObjectCache(configuration: testConfiguration(clock))
        await cache.register(source, as: vaultA)

        for _ in 0..<2 {
            let error = await #expect(throws: CacheError.self) { try await cache.text(secret("a")) }
            #expect(error?.kind == kind)
        }
        #expect(await source.fetches(of: "a") == 2)
    }

    @Test func forbiddenOnRefreshDropsContent() async throws {
        let clock = ManualClock()
        let source = InMemorySource(secrets: ["a": "alpha"])
        let cache = ObjectCache(configuration: testConfiguration(clock))
        await cache.register(source, as: vaultA)
        var events = cache.events.makeAsyncIterator()
        _ = try await cache.text(secret("a"))

        await source.fail(with: .forbidden)
        clock.advance(by: .seconds(100))
        #expect(try await cache.text(secret("a")) == "alpha", "answered while the revalidation runs")
        await cache.maintain()
        #expect(await events.next() == .contentChanged(vaultA, secret("a")))
        #expect(await cache.statistics().entries == 0)
        let error = await #expect(throws: CacheError.self) { try await cache.text(secret("a")) }
        #expect(error?.kind == .forbidden)
    }

    @Test func fixedVersionsAreNeverRevalidated() async throws {
        let clock = ManualClock()
        let source = InMemorySource(secrets: ["a": "alpha"])
        let cache = ObjectCache(configuration: testConfiguration(clock))
        await cache.register(source, as: vaultA)
        #expect(try await cache.text(secret("a", version: "v1")) == "alpha")

        await source.put("a", "alpha-2", version: "v2")
        for _ in 0..<10 {
            await cache.touch(secret("a", version: "v1"), in: vaultA)
            clock.advance(by: .seconds(100))
            await cache.maintain()
            #expect(try await cache.text(secret("a", version: "v1")) == "alpha")
        }
        #expect(await source.fetches(of: "a") == 1)
        #expect(try await cache.text(secret("a")) == "alpha-2")
    }

    // MARK: Outages: readers never wait for content that is cached; first reads are bounded

    @Test func aFirstReadGivesUpAfterTheFetchTimeoutAndTheNextReadTriesAgain() async throws {
        let clock = ManualClock()
        let source = InMemorySource(secrets: ["a": "alpha"])
        let cache = ObjectCache(configuration: testConfiguration(clock) { $0.fetchTimeout = .seconds(10) })
        await cache.register(source, as: vaultA)
        await source.hold()
        let reader = Task { try await cache.text(secret("a")) }
        await waitUntil("the fetch is held") { await source.heldCalls == 1 }
        clock.advance(by: .seconds(10))
        let error = await #expect(throws: CacheError.self) { try await reader.value }
        #expect(error?.kind == .timedOut)
        #expect(error?.message.contains("did not answer within 10 s") == true)
        await waitUntil("the fetch nobody waits for is called off") { await source.cancelledCalls == 1 }
        #expect(await cache.statistics().entries == 0)

        await source.releaseAll()
        #expect(try await cache.text(secret("a")) == "alpha", "the next read starts a new fetch")
        #expect(await source.fetches(of: "a") == 2)
    }

    @Test func aFetchIsCalledOffOnlyWhenItsLastWaiterGivesUp() async throws {
        let clock = ManualClock()
        let source = InMemorySource(secrets: ["a": "alpha"])
        let cache = ObjectCache(configuration: testConfiguration(clock))
        await cache.register(source, as: vaultA)
        await source.hold()
        let impatient = Task {
            try await cache.content(
                secret("a"), in: vaultA, renderingKey: "plain", wait: .seconds(5), render: plainRender)
        }
        let patient = Task { try await cache.text(secret("a")) }
        await waitUntil("both wait on one fetch") { await source.heldCalls == 1 && clock.sleepers == 2 }
        clock.advance(by: .seconds(5))
        await #expect(throws: CacheError.self) { try await impatient.value }
        #expect(await source.cancelledCalls == 0)

        // A waiter whose task is cancelled (a publish given up on) leaves too; the last one calls the fetch off.
        patient.cancel()
        await #expect(throws: CacheError.self) { try await patient.value }
        await waitUntil("the fetch is called off") { await source.cancelledCalls == 1 }
        #expect(await source.fetches(of: "a") == 1)
    }

    @Test func aHungRevalidationIsGivenUpAfterHalfATTLAndTheContentServedStale() async throws {
        let clock = ManualClock()
        let source = InMemorySource(secrets: ["a": "alpha"])
        let cache = ObjectCache(configuration: testConfiguration(clock))
        await cache.register(source, as: vaultA)
        _ = try await cache.text(secret("a"))
        await source.hold()
        clock.advance(by: .seconds(100))
        #expect(try await cache.text(secret("a")) == "alpha")
        await waitUntil("the revalidation is held") { await source.heldCalls == 1 }
        clock.advance(by: .seconds(50))
        await waitUntil("the revalidation is given up") { await source.cancelledCalls == 1 }
        await source.releaseAll()
        let content = try await cache.content(secret("a"), in: vaultA, renderingKey: "plain", render: plainRender)
        #expect(content.stale)
        #expect(Array(content.bytes) == Array("alpha".utf8))
    }

    @Test func backoffNeverExceedsHalfATTLAndEndsWhenTheVaultAnswersAgain() async throws {
        let clock = ManualClock()
        let source = InMemorySource(secrets: ["a": "alpha", "b": "bravo"])
        let cache = ObjectCache(
            configuration: testConfiguration(clock) {
                $0.refreshBackoff = Backoff(base: .seconds(400), maximum: .seconds(400))
            })
        await cache.register(source, as: vaultA)
        _ = try await cache.text(secret("a"))
        _ = try await cache.text(secret("b"))

        await source.fail(with: .unavailable)
        clock.advance(by: .seconds(100))
        await cache.touch(secret("a"), in: vaultA)
        await cache.touch(secret("b"), in: vaultA)
        await cache.maintain()
        #expect(await source.fetches(of: "a") == 2)
        #expect(await source.fetches(of: "b") == 2)

        // A 400 s backoff is cut to half the 100 s TTL.
        clock.advance(by: .seconds(49))
        await cache.maintain()
        #expect(await source.fetches(of: "a") == 2)
        clock.advance(by: .seconds(1))
        await source.fail(with: nil)
        await source.put("a", "alpha-2", version: "v2")
        await source.put("b", "bravo-2", version: "v2")
        await cache.touch(secret("a"), in: vaultA)
        await cache.maintain()
        #expect(try await cache.text(secret("a")) == "alpha-2")
        #expect(try await cache.text(secret("b")) == "bravo-2", "the vault answering again ended b's backoff too")
    }

    @Test func aVersionTheLatestEntryHoldsIsServedFromIt() async throws {
        let clock = ManualClock()
        let source = InMemorySource(secrets: ["a": "alpha"])
        let cache = ObjectCache(configuration: testConfiguration(clock))
        await cache.register(source, as: vaultA)
        _ = try await cache.text(secret("a"))
        #expect(try await cache.text(secret("a", version: "v1")) == "alpha")
        #expect(await source.fetches(of: "a") == 1)

        // After a rotation the old version stays for readers that opened it, until idle for a TTL.
        await source.put("a", "alpha-2", version: "v2")
        clock.advance(by: .seconds(100))
        await cache.touch(secret("a"), in: vaultA)
        await cache.maintain()
        #expect(try await cache.text(secret("a")) == "alpha-2")
        #expect(try await cache.text(secret("a", version: "v1")) == "alpha")
        #expect(await source.fetches(of: "a") == 2)
        clock.advance(by: .seconds(100))
        await cache.maintain()
        #expect(try await cache.text(secret("a", version: "v1")) == "alpha")
        #expect(
            await source.fetches(of: "a") == 4,
            "a revalidation of the latest, and the old version fetched by its id once gone")
    }

    // MARK: Memory

    @Test func memoryBoundEvictsLeastRecentlyUsed() async throws {
        let clock = ManualClock()
        let fifty = { (letter: Character) in String(repeating: letter, count: 50) }
        let source = InMemorySource(secrets: ["a": fifty("a"), "b": fifty("b"), "c": fifty("c")])
        // Each entry holds 50 bytes: the value, which its plain rendering shares (counted once).
        let cache = ObjectCache(configuration: testConfiguration(clock) { $0.maxBytes = 125 })
        await cache.register(source, as: vaultA)

        _ = try await cache.text(secret("a"))
        _ = try await cache.text(secret("b"))
        _ = try await cache.text(secret("a"))
        #expect(await cache.statistics().bytes == 100)

        _ = try await cache.text(secret("c"))
        var statistics = await cache.statistics()
        #expect(statistics.evictions == 1)
        #expect(statistics.entries == 2)
        #expect(statistics.bytes == 100)

        // a and c stayed; b was the least recently used.
        _ = try await cache.text(secret("a"))
        _ = try await cache.text(secret("c"))
        #expect(await source.totalFetches == 3)
        #expect(try await cache.text(secret("b")) == fifty("b"))
        #expect(await source.fetches(of: "b") == 2)
        statistics = await cache.statistics()
        #expect(statistics.evictions == 2)
        #expect(statistics.bytes == 100)
    }

    @Test func entriesBeingFetchedAreNeverEvicted() async throws {
        let clock = ManualClock()
        let fifty = { (letter: Character) in String(repeating: letter, count: 50) }
        let slow = InMemorySource(secrets: ["a": fifty("a")])
        let other = InMemorySource(secrets: ["b": fifty("b")])
        let cache = ObjectCache(configuration: testConfiguration(clock) { $0.maxBytes = 75 })
        await cache.register(slow, as: vaultA)
        await cache.register(other, as: vaultAOtherIdentity)
        _ = try await cache.text(secret("a"))

        clock.advance(by: .seconds(100))
        await slow.hold()
        let reader = Task { try await cache.text(secret("a")) }
        await waitUntil("a's revalidation is held") { await slow.heldCalls == 1 }

        // b pushes the total over the bound; a is being fetched, so b is the one to go.
        #expect(try await cache.text(secret("b"), in: vaultAOtherIdentity) == fifty("b"))
        var statistics = await cache.statistics()
        #expect(statistics.evictions == 1)
        #expect(statistics.entries == 1)
        #expect(statistics.bytes == 50)

        await slow.releaseAll()
        #expect(try await reader.value == fifty("a"))
        #expect(try await cache.text(secret("a")) == fifty("a"))
        #expect(await slow.fetches(of: "a") == 2)
        statistics = await cache.statistics()
        #expect(
            statistics.bytes == 50, "after a refresh of the same version the rendering still shares the value's buffer")
    }

    // MARK: Published volumes

    @Test func publishedContentIsAdmittedOnlyWhenItFitsAndIsNeverEvicted() async throws {
        let clock = ManualClock()
        let source = InMemorySource(secrets: [
            "a": String(repeating: "a", count: 40), "b": "bravo", "c": "charlie", "d": "delta", "e": "echo-echo-echo",
        ])
        let cache = ObjectCache(
            configuration: testConfiguration(clock) {
                $0.maxPublishedBytes = 200
                $0.maxObjectBytes = 60
                $0.maxBytes = 10
            })
        await cache.register(source, as: vaultA)

        // Not fetched yet, each counts 60: three fit in 200, four do not.
        #expect(await cache.pin([secret("a"), secret("b"), secret("c")], in: vaultA, for: "volume-1") == nil)
        #expect(await cache.publishedBytes == 180)
        let refused = await cache.pin([secret("d")], in: vaultA, for: "volume-2")
        #expect(refused == PublishedMemory(used: 180, needed: 60, newObjects: 1, limit: 200))

        // Fetched, they count what they take; objects another volume pinned cost nothing more.
        for name in ["a", "b", "c"] { _ = try await cache.text(secret(name)) }
        #expect(await cache.publishedBytes == 40 + 5 + 7)
        #expect(await cache.pin([secret("a"), secret("d")], in: vaultA, for: "volume-2") == nil)
        #expect(await cache.publishedBytes == 40 + 5 + 7 + 60)

        // Over the LRU bound and idle for long: pinned content stays, the rest goes.
        #expect(try await cache.text(secret("e")) == "echo-echo-echo")
        clock.advance(by: .seconds(1_000))
        await cache.maintain()
        #expect(await cache.statistics().entries == 3, "a, b and c stay; nothing else does")
        #expect(await cache.statistics().evictions == 1, "e, not pinned, over the LRU bound")

        // Unpinned, they are cached content like any other.
        await cache.unpin(volume: "volume-1")
        await cache.unpin(volume: "volume-2")
        #expect(await cache.publishedBytes == 0)
        clock.advance(by: .seconds(1_000))
        await cache.maintain()
        let remaining = await cache.statistics()
        #expect(remaining.entries == 0, "\(remaining)")
    }

    @Test func aVolumeRepinningFreesWhatOnlyItShowed() async throws {
        let clock = ManualClock()
        let cache = ObjectCache(
            configuration: testConfiguration(clock) {
                $0.maxPublishedBytes = 120
                $0.maxObjectBytes = 60
            })
        await cache.register(InMemorySource(secrets: ["a": "1", "b": "2", "c": "3"]), as: vaultA)
        #expect(await cache.pin([secret("a"), secret("b")], in: vaultA, for: "volume") == nil)
        #expect(await cache.pin([secret("a"), secret("c")], in: vaultA, for: "volume") == nil, "b's room goes to c")
        #expect(await cache.pin([secret("b")], in: vaultA, for: "other") != nil)
        await cache.unregister(vaultA)
        #expect(await cache.publishedBytes == 0)
    }

    // MARK: Limits per vault

    @Test func concurrentRequestsPerVaultAreLimitedAcrossIdentities() async throws {
        let clock = ManualClock()
        let names = (0..<10).map { "s\($0)" }
        let source = InMemorySource(secrets: Dictionary(uniqueKeysWithValues: names.map { ($0, "value of \($0)") }))
        await source.hold()
        let cache = ObjectCache(configuration: testConfiguration(clock) { $0.maxConcurrentRequestsPerVault = 2 })
        // One recording source behind two identities of the same vault.
        await cache.register(source, as: vaultA)
        await cache.register(source, as: vaultAOtherIdentity)

        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, name) in names.enumerated() {
                group.addTask {
                    let id = index.isMultiple(of: 2) ? vaultA : vaultAOtherIdentity
                    let text = try await cache.text(secret(name), in: id)
                    #expect(text == "value of \(name)")
                }
            }
            await waitUntil("two calls are held") { await source.heldCalls == 2 }
            #expect(await source.inFlight == 2)
            #expect(await cache.statistics().upstreamRequests == 10)
            await source.releaseAll()
            try await group.waitForAll()
        }
        #expect(await source.maxInFlight == 2)
        #expect(await source.totalFetches == 10)
    }

    @Test func requestsBeyondTheBurstWaitForTokens() async throws {
        let clock = ManualClock()
        let names = ["a", "b", "c", "d"]
        let source = InMemorySource(secrets: Dictionary(uniqueKeysWithValues: names.map { ($0, $0) }))
        // One request per second, burst two.
        let cache = ObjectCache(configuration: testConfiguration(clock) { $0.requestsPerSecondPerVault = 1 })
        await cache.register(source, as: vaultA)

        try await withThrowingTaskGroup(of: Void.self) { group in
            for name in names {
                group.addTask { _ = try await cache.text(secret(name)) }
            }
            await waitUntil("the burst is spent and two wait") {
                await source.totalFetches == 2 && clock.sleepers(dueWithin: .seconds(60)) == 2
            }
            #expect(await source.totalFetches == 2)

            clock.advance(by: .seconds(1))
            await waitUntil("one more token is used") {
                await source.totalFetches == 3 && clock.sleepers(dueWithin: .seconds(60)) == 1
            }
            #expect(await source.totalFetches == 3)

            clock.advance(by: .seconds(1))
            try await group.waitForAll()
        }
        #expect(await source.totalFetches == 4)
    }

    @Test func everyPageOfAListingTakesAToken() async throws {
        let clock = ManualClock()
        let source = InMemorySource(secrets: ["a": "1", "b": "2", "c": "3", "d": "4"])
        await source.page(by: 1)
        // One request per second, burst two: the listing's call and its second page spend the
        // burst, so its third and fourth pages wait a second each, as four GETs would.
        let cache = ObjectCache(configuration: testConfiguration(clock) { $0.requestsPerSecondPerVault = 1 })
        await cache.register(source, as: vaultA)
        let listing = Task { try await cache.listing(.secret, in: vaultA) }
        await waitUntil("two pages are served and the third waits") {
            await source.pagesServed == 2 && clock.sleepers(dueWithin: .seconds(60)) == 1
        }
        clock.advance(by: .seconds(1))
        await waitUntil("the third page is served and the fourth waits") {
            await source.pagesServed == 3 && clock.sleepers(dueWithin: .seconds(60)) == 1
        }
        clock.advance(by: .seconds(1))
        #expect(try await listing.value.count == 4)
        #expect(await source.pagesServed == 4)
    }

    // MARK: Sources and lifecycle

    @Test func unregisterWipesAndForgetsASource() async throws {
        let clock = ManualClock()
        let source = InMemorySource(secrets: ["a": "alpha"])
        let other = InMemorySource(secrets: ["a": "other"])
        let cache = ObjectCache(configuration: testConfiguration(clock))
        await cache.register(source, as: vaultA)
        await cache.register(other, as: vaultAOtherIdentity)
        let answered = try await cache.content(secret("a"), in: vaultA, renderingKey: "plain", render: plainRender)
        _ = try await cache.listing(.secret, in: vaultA)
        _ = try await cache.text(secret("a"), in: vaultAOtherIdentity)

        await cache.unregister(vaultA)
        #expect(Array(answered.bytes) == Array("alpha".utf8), "wiping never tears bytes already answered")
        let statistics = await cache.statistics()
        #expect(statistics.entries == 1)
        #expect(statistics.bytes == 5, "the plain rendering shares the value's buffer")
        let error = await #expect(throws: CacheError.self) { try await cache.text(secret("a")) }
        #expect(error?.kind == .invalid)
        #expect(try await cache.text(secret("a"), in: vaultAOtherIdentity) == "other")

        await cache.register(source, as: vaultA)
        #expect(try await cache.text(secret("a")) == "alpha")
        #expect(await source.fetches(of: "a") == 2)
    }

    @Test func unregisterFailsReadersOfAFetchInFlight() async throws {
        let clock = ManualClock()
        let source = InMemorySource(secrets: ["a": "alpha"])
        await source.hold()
        let cache = ObjectCache(configuration: testConfiguration(clock))
        await cache.register(source, as: vaultA)

        let reader = Task { try await cache.text(secret("a")) }
        await waitUntil("the fetch is held") { await source.heldCalls == 1 }
        await cache.unregister(vaultA)
        await source.releaseAll()
        await #expect(throws: CacheError.self) { try await reader.value }
        #expect(await cache.statistics().entries == 0)
    }

    @Test func replacingARegistrationKeepsEntries() async throws {
        let clock = ManualClock()
        let source = InMemorySource(secrets: ["a": "alpha"])
        let refreshed = InMemorySource(secrets: ["a": "alpha"])
        let cache = ObjectCache(configuration: testConfiguration(clock))
        await cache.register(source, as: vaultA)
        _ = try await cache.text(secret("a"))

        await cache.register(refreshed, as: vaultA)
        #expect(try await cache.text(secret("a")) == "alpha")
        #expect(await refreshed.totalFetches == 0)
        clock.advance(by: .seconds(100))
        _ = try await cache.text(secret("a"))
        await cache.maintain()
        #expect(await refreshed.totalFetches == 1, "revalidation uses the new registration")
        #expect(await source.totalFetches == 1)
    }

    @Test(.timeLimit(.minutes(1)))
    func maintenanceLoopRefreshesOnItsOwnAndStopsAtShutdown() async throws {
        let clock = ManualClock()
        let source = InMemorySource(secrets: ["a": "alpha"])
        let cache = ObjectCache(configuration: testConfiguration(clock))
        await cache.register(source, as: vaultA)
        var events = cache.events.makeAsyncIterator()
        _ = try await cache.text(secret("a"))
        await cache.touch(secret("a"), in: vaultA)
        await source.put("a", "alpha-2", version: "v2")

        await cache.startMaintenance(interval: .seconds(1))
        await waitUntil("the loop sleeps") { clock.sleepers == 1 }
        clock.advance(by: .seconds(100))
        #expect(await events.next() == .contentChanged(vaultA, secret("a")))
        #expect(try await cache.text(secret("a")) == "alpha-2")

        await cache.shutdown()
        #expect(await events.next() == nil)
        await waitUntil("the loop stopped") { clock.sleepers == 0 }
        let statistics = await cache.statistics()
        #expect(statistics.entries == 0)
        #expect(statistics.bytes == 0)
        let error = await #expect(throws: CacheError.self) { try await cache.text(secret("a")) }
        #expect(error?.kind == .unavailable)
    }
}
