import PKI

/// What a cache entry holds: one object (one version, or the latest) or one listing.
enum Subject: Hashable, Sendable, CustomStringConvertible {
    case object(ObjectReference)
    case listing(ObjectKind)
    case versions(ObjectKind, name: String)

    /// A fixed version never changes, so it is never revalidated.
    var isImmutable: Bool {
        if case .object(let reference) = self { reference.version != nil } else { false }
    }

    var description: String {
        switch self {
        case .object(let reference): "\(reference)"
        case .listing(let kind): "listing of \(kind.rawValue)s"
        case .versions(let kind, let name): "versions of \(kind.rawValue) '\(name)'"
        }
    }

    // An object's versions, like the object, are one entry whatever the name's letter case.

    static func == (lhs: Self, rhs: Self) -> Bool {
        switch (lhs, rhs) {
        case (.object(let left), .object(let right)): left == right
        case (.listing(let left), .listing(let right)): left == right
        case (.versions(let leftKind, let left), .versions(let rightKind, let right)):
            ObjectReference(kind: leftKind, name: left) == ObjectReference(kind: rightKind, name: right)
        default: false
        }
    }

    func hash(into hasher: inout Hasher) {
        switch self {
        case .object(let reference):
            hasher.combine(0)
            hasher.combine(reference)
        case .listing(let kind):
            hasher.combine(1)
            hasher.combine(kind)
        case .versions(let kind, let name):
            hasher.combine(2)
            hasher.combine(ObjectReference(kind: kind, name: name))
        }
    }
}

/// The cache key: content is never shared between sources, so the source (vault and identity)
/// is always part of it.
struct SlotKey: Hashable, Sendable {
    var source: SourceID
    var subject: Subject
}

enum CachedValue: Sendable {
    case object(FetchedObject)
    case listing([ListedObject])

    /// Bytes counted against `maxBytes`; listings hold no secret material and are not counted.
    var byteCount: Int {
        switch self {
        case .object(let object): object.payload.byteCount
        case .listing: 0
        }
    }

    /// Whether a refresh found nothing a reader would see differently: for an object the same
    /// version, enabled flag and content type (versions are immutable in Key Vault); for a
    /// listing the same names, versions and enabled flags.
    func hasSameContent(as other: CachedValue) -> Bool {
        switch (self, other) {
        case (.object(let old), .object(let new)):
            old.metadata.version == new.metadata.version && old.metadata.enabled == new.metadata.enabled
                && old.metadata.contentType == new.metadata.contentType
        case (.listing(let old), .listing(let new)):
            Set(old.map(ListingRow.init)) == Set(new.map(ListingRow.init))
        default:
            false
        }
    }
}

private struct ListingRow: Hashable {
    var name: String
    var version: String?
    var enabled: Bool

    init(_ item: ListedObject) {
        name = item.name
        version = item.version
        enabled = item.enabled
    }
}

extension Payload {
    var byteCount: Int {
        switch self {
        case .secret(let bytes): return bytes.count
        case .certificate(let der): return der.count
        case .key(let jwk):
            let members = [
                jwk.kid, jwk.kty, jwk.n, jwk.e, jwk.d, jwk.dp, jwk.dq, jwk.qi, jwk.p, jwk.q, jwk.crv, jwk.x, jwk.y,
                jwk.k,
            ]
            return members.reduce(0) { $0 + ($1?.utf8.count ?? 0) }
                + (jwk.key_ops ?? []).reduce(0) { $0 + $1.utf8.count }
        }
    }

    /// The secret's buffer, which a plain rendering shares.
    var secretBytes: SecretBytes? {
        if case .secret(let bytes) = self { bytes } else { nil }
    }
}

/// The answer every waiter of one source call gets.
enum FlightOutcome: Sendable {
    case value(CachedValue, generation: UInt64, stale: Bool)
    case failure(SourceError)
}

/// One cache entry and its bookkeeping. A class, so the cache's table holds a pointer per entry
/// rather than the whole entry inline (at 10,000 entries that table was 10 MB, twice while growing).
///
/// Secret bytes are `SecretBytes`, zeroed when their last holder lets go, so dropping a value or
/// a rendering here is all "wiping" takes: a file still being read keeps its buffer whole.
final class Slot {
    /// The last good value; nil only while the first fetch is in flight.
    var value: CachedValue?
    /// Unique per value content; renderings belong to exactly one generation.
    var generation: UInt64 = 0
    var renderings: [String: ObjectCache.RenderedBytes] = [:]
    /// Payload plus renderings, as counted in the cache's total. A rendering that shares the
    /// payload's buffer (a plain secret file) is not counted again.
    var bytes: Int {
        let payload = payloadBytes
        return (value?.byteCount ?? 0)
            + renderings.values.reduce(0) { total, rendering in
                total + (rendering.bytes === payload ? 0 : rendering.bytes.count)
            }
    }
    /// The last successful fetch.
    var fetchedAt: Duration = .zero
    var lastAccess: Duration
    /// Orders entries for LRU eviction (a counter, since time may stand still in tests).
    var accessOrder: UInt64
    var accessedSinceFetch = true
    /// The last revalidation failed and `value` is the last good content.
    var stale = false
    var failures = 0
    /// No revalidation before this, after a failure.
    var retryAt: Duration?
    var flight: Task<FlightOutcome, Never>?
    var flightID: UInt64 = 0
    /// Readers waiting for a first fetch; when the last one gives up, the fetch is called off.
    var waiters = 0
    /// A version a "latest" entry held before a rotation, kept for files opened before it.
    var retired = false

    init(now: Duration, accessOrder: UInt64) {
        lastAccess = now
        self.accessOrder = accessOrder
    }

    func markAccessed(at now: Duration, order: UInt64) {
        lastAccess = now
        accessOrder = order
        accessedSinceFetch = true
    }

    /// New content: the old value and its renderings are let go.
    func replace(with fresh: CachedValue, generation: UInt64) {
        renderings.removeAll()
        value = fresh
        self.generation = generation
    }

    /// The same content fetched again: the renderings stay, the newer attributes (tags, expiry)
    /// are taken. Renderings that shared the old buffer share the fresh one, so the old buffer
    /// is let go (and zeroed) now rather than when the renderings go.
    func refresh(with fresh: CachedValue) {
        if case .object(let object) = fresh, let freshBytes = object.payload.secretBytes {
            let old = payloadBytes
            for (renderingKey, rendering) in renderings where rendering.bytes === old {
                renderings[renderingKey]?.bytes = freshBytes
            }
        }
        value = fresh
    }

    func markFetched(at now: Duration) {
        fetchedAt = now
        accessedSinceFetch = false
        stale = false
        failures = 0
        retryAt = nil
    }

    func markFailed(retryAt: Duration) {
        failures += 1
        stale = true
        self.retryAt = retryAt
    }

    private var payloadBytes: SecretBytes? {
        guard case .object(let object) = value else { return nil }
        return object.payload.secretBytes
    }
}
