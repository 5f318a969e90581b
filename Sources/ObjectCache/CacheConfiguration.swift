import HTTPTransport
import PKI

public struct CacheConfiguration: Sendable {
    /// How often "latest" content and listings are revalidated while being read.
    public var ttl: Duration = .seconds(120)
    /// Entries not accessed for this long are evicted (values wiped).
    public var idleTimeout: Duration = .seconds(600)
    /// When refreshes fail, the last good content is served until it is this old (counted from
    /// the last successful fetch).
    public var maxStaleness: Duration = .seconds(86_400)
    /// How long a not-found answer is remembered.
    public var negativeTTL: Duration = .seconds(10)
    /// Bound on cached payload and rendering bytes; least recently used entries go first.
    public var maxBytes: Int = 64 << 20
    /// Bound on what published volumes pin (`pin`): that content is never evicted, so a volume
    /// that would not fit is refused instead.
    public var maxPublishedBytes: Int = 128 << 20
    /// The most one pinned object may take, payload and renderings, counted for an object not
    /// fetched yet. Key Vault keeps secrets of at most 25 KiB; a certificate's PEM rendering of
    /// its PKCS#12 roughly doubles that.
    public var maxObjectBytes: Int = 64 << 10
    /// Source calls in flight per vault, shared by all identities of that vault.
    public var maxConcurrentRequestsPerVault = 16
    /// Token bucket per vault with a burst of twice the rate, counting every page of a listing;
    /// the default keeps a node well below Key Vault's limit of 4000 requests per 10 s. Zero or
    /// less means no rate limit.
    public var requestsPerSecondPerVault: Double = 200
    /// Between failed background revalidations of one entry; never more than half a TTL (unless
    /// Key Vault asks for longer with Retry-After), so content shows up within about one TTL of
    /// the vault answering again.
    public var refreshBackoff = Backoff(base: .seconds(5), maximum: .seconds(300))
    /// A reader with nothing cached to be given (a first read, or content past `maxStaleness`)
    /// waits this long for Key Vault, then gets a timeout error; the next read tries again.
    /// Readers of cached content never wait.
    public var fetchTimeout: Duration = .seconds(10)
    /// Monotonic time since an arbitrary origin. Every decision of the cache reads this.
    public var now: @Sendable () -> Duration = CacheConfiguration.monotonicNow
    /// Waits (the rate limiter and the maintenance loop). It must agree with `now`: tests that
    /// drive `now` by hand pass a sleep that returns when their time has moved on. A sleep that
    /// does not agree still works, only less efficiently: every wait re-reads `now` afterwards.
    /// Waits are often cancelled (a fetch's deadline once Key Vault answers), hence `promptSleep`.
    public var sleep: @Sendable (Duration) async throws -> Void = { try await promptSleep(for: $0) }

    public init() {}

    /// How long one background revalidation may take before it is given up and retried: half a
    /// TTL for an object (at least 1 s), a TTL for a listing (at least 10 s, it may be many pages).
    func refreshAttemptLimit(for subject: Subject) -> Duration {
        switch subject {
        case .object: max(ttl / 2, .seconds(1))
        case .listing, .versions: max(ttl, .seconds(10))
        }
    }

    private static let origin = ContinuousClock.now

    public static func monotonicNow() -> Duration {
        origin.duration(to: .now)
    }
}

public enum CacheEvent: Sendable, Equatable {
    /// A refresh found a different version, or the object vanished, got disabled, lost access,
    /// or its last good content grew too old to serve.
    case contentChanged(SourceID, ObjectReference)
    /// A revalidated listing has different names, versions or enabled flags.
    case listingChanged(SourceID, ObjectKind)
    /// Revalidating an object failed for the first time since it last worked (Key Vault's
    /// message, never the value); its last good content is served meanwhile.
    case refreshFailed(SourceID, ObjectReference, String)
}

public struct RenderedContent: Sendable {
    public var bytes: SecretBytes
    public var metadata: ObjectMetadata
    public var warnings: [String]
    /// Revalidation failed and this is the last good content (within `maxStaleness`).
    public var stale: Bool

    public init(bytes: SecretBytes, metadata: ObjectMetadata, warnings: [String], stale: Bool) {
        self.bytes = bytes
        self.metadata = metadata
        self.warnings = warnings
        self.stale = stale
    }
}

public struct CacheError: Error, Sendable, CustomStringConvertible {
    public var kind: SourceError.Kind
    public var message: String

    public init(kind: SourceError.Kind, message: String) {
        self.kind = kind
        self.message = message
    }

    init(_ error: SourceError) {
        self.init(kind: error.kind, message: error.message)
    }

    public var description: String { message }
}

public struct CacheStatistics: Sendable, Equatable {
    /// Objects and listings held.
    public var entries: Int
    /// Payload and rendering bytes held (the quantity `maxBytes` bounds).
    public var bytes: Int
    /// Source calls started (fetch, list, listVersions), including those queued by the limiter.
    public var upstreamRequests: Int
    /// Answers given from memory without waiting for a source call.
    public var hits: Int
    /// Answers that waited for a source call (their own or a shared one).
    public var misses: Int
    /// Answers of last good content after a failed revalidation.
    public var staleServes: Int
    /// Entries removed for being idle or to stay within `maxBytes`.
    public var evictions: Int

    public init(
        entries: Int = 0, bytes: Int = 0, upstreamRequests: Int = 0, hits: Int = 0, misses: Int = 0,
        staleServes: Int = 0, evictions: Int = 0
    ) {
        self.entries = entries
        self.bytes = bytes
        self.upstreamRequests = upstreamRequests
        self.hits = hits
        self.misses = misses
        self.staleServes = staleServes
        self.evictions = evictions
    }
}
