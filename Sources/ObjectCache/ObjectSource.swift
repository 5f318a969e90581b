import KeyVault

/// Why a source could not answer. The message says what failed and what to do; it never holds
/// secret material.
public struct SourceError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case notFound, forbidden, disabled, throttled, unavailable
        /// Key Vault did not answer within the time a reader or a refresh may wait.
        case timedOut
        /// The answer or the request was unusable (bad name, unexpected response, bad settings).
        case invalid
    }

    public var kind: Kind
    public var message: String
    /// How long the service asked to wait before the next call, when it said so.
    public var retryAfter: Duration?

    public init(kind: Kind, message: String, retryAfter: Duration? = nil) {
        self.kind = kind
        self.message = message
        self.retryAfter = retryAfter
    }

    public var description: String { message }
}

/// Where objects come from. Implementations may be slow and fail; the cache never calls them for
/// cached, fresh content.
public protocol ObjectSource: Sendable {
    func fetch(_ reference: ObjectReference) async throws(SourceError) -> FetchedObject
    /// The latest of each object of a kind, all pages. A source that pages awaits `pacer` before
    /// each page after the first: the cache's per-vault rate limit counts pages as Key Vault does.
    func list(_ kind: ObjectKind, pacer: @escaping PagePacer) async throws(SourceError) -> [ListedObject]
    func listVersions(_ kind: ObjectKind, name: String, pacer: @escaping PagePacer) async throws(SourceError)
        -> [ListedObject]
}
