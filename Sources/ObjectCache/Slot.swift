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

    mutating func wipe() {
        guard case .object(var object) = self else { return }
        self = .listing([])
        object.payload.wipe()
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
        case .secret(let bytes), .certificate(let bytes):
            return bytes.count
        case .key(let jwk):
            let members = [jwk.kid, jwk.kty, jwk.n, jwk.e, jwk.d, jwk.dp, jwk.dq, jwk.qi, jwk.p, jwk.q, jwk.crv, jwk.x, jwk.y, jwk.k]
            return members.reduce(0) { $0 + ($1?.utf8.count ?? 0) } + (jwk.key_ops ?? []).reduce(0) { $0 + $1.utf8.count }
        }
    }

    /// The secret or DER bytes; nil for a key.
    var rawBytes: [UInt8]? {
        switch self {
        case .secret(let bytes), .certificate(let bytes): bytes
        case .key: nil
        }
    }

    /// Where the secret or DER bytes live, to recognise a rendering that shares them.
    var storage: UnsafeRawPointer? {
        rawBytes?.withUnsafeBytes { $0.baseAddress }
    }

    /// Zeroes secret values and DER bytes. JWK members (public keys) are Swift Strings, which
    /// cannot be overwritten in place; they are released and left to the allocator.
    mutating func wipe() {
        switch self {
        case .secret(var bytes), .certificate(var bytes):
            self = .secret([])
            bytes.wipe()
        case .key:
            break
        }
    }
}

extension [UInt8] {
    /// Zeroes the buffer, then releases it. A buffer still shared with a reader (an answer not
    /// yet sent) is copied by copy-on-write first, so the reader's bytes stay whole; only the
    /// cache's last reference is zeroed in place.
    mutating func wipe() {
        withUnsafeMutableBufferPointer { $0.initialize(repeating: 0) }
        removeAll()
    }
}

/// The answer every waiter of one source call gets.
enum FlightOutcome: Sendable {
    case value(CachedValue, generation: UInt64, stale: Bool)
    case failure(SourceError)
}

/// One cache entry and its bookkeeping. A class, so the cache's table holds a pointer per entry
/// rather than the whole entry inline (at 10,000 entries that table was 10 MB, twice while growing).
final class Slot {
    /// The last good value; nil only while the first fetch is in flight.
    var value: CachedValue?
    /// Unique per value content; renderings belong to exactly one generation.
    var generation: UInt64 = 0
    var renderings: [String: ObjectCache.RenderedBytes] = [:]
    /// Payload plus renderings, as counted in the cache's total. A rendering that shares the
    /// payload's buffer (a plain secret file) is not counted again.
    var bytes: Int {
        let payloadStorage = payloadStorage
        return (value?.byteCount ?? 0) + renderings.values.reduce(0) { total, rendering in
            total + (shares(rendering, payloadStorage) ? 0 : rendering.bytes.count)
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
    var lastError: SourceError?
    var flight: Task<FlightOutcome, Never>?
    var flightID: UInt64 = 0

    init(now: Duration, accessOrder: UInt64) {
        lastAccess = now
        self.accessOrder = accessOrder
    }

    func markAccessed(at now: Duration, order: UInt64) {
        lastAccess = now
        accessOrder = order
        accessedSinceFetch = true
    }

    /// New content: the old value and its renderings are wiped.
    func replace(with fresh: CachedValue, generation: UInt64) {
        wipe()
        value = fresh
        self.generation = generation
    }

    /// The same content fetched again: the renderings stay, the newer attributes (tags, expiry)
    /// are taken.
    func refresh(with fresh: CachedValue) {
        if case .object(let object) = fresh, let freshBytes = object.payload.rawBytes {
            // Same version, same bytes: renderings that shared the old buffer share the fresh one,
            // so the old buffer has no other holder here and is zeroed in place below.
            let oldStorage = payloadStorage
            for (renderingKey, rendering) in renderings where shares(rendering, oldStorage) {
                renderings[renderingKey]?.bytes = freshBytes
            }
        }
        if var old = value {
            value = nil
            old.wipe()
        }
        value = fresh
    }

    func markFetched(at now: Duration) {
        fetchedAt = now
        accessedSinceFetch = false
        stale = false
        failures = 0
        retryAt = nil
        lastError = nil
    }

    func markFailed(_ error: SourceError, retryAt: Duration) {
        failures += 1
        stale = true
        lastError = error
        self.retryAt = retryAt
    }

    func wipeRenderings() {
        let payloadStorage = payloadStorage
        for renderingKey in Array(renderings.keys) {
            guard var rendering = renderings.removeValue(forKey: renderingKey) else { continue }
            // A rendering sharing the payload's buffer is only let go: zeroing it here would
            // copy the buffer first. The payload's wipe zeroes it in place.
            if !shares(rendering, payloadStorage) { rendering.bytes.wipe() }
        }
    }

    private var payloadStorage: UnsafeRawPointer? {
        guard case .object(let object) = value else { return nil }
        return object.payload.storage
    }

    private func shares(_ rendering: ObjectCache.RenderedBytes, _ payloadStorage: UnsafeRawPointer?) -> Bool {
        payloadStorage != nil && rendering.bytes.withUnsafeBytes { $0.baseAddress } == payloadStorage
    }

    func wipe() {
        wipeRenderings()
        if var old = value {
            value = nil
            old.wipe()
        }
    }
}
