import FoundationEssentials
import Metrics

/// Reuses tokens per (tenant, scope) and refreshes them ahead of expiry. However many callers
/// ask at once, at most one request per (tenant, scope) is in flight. A token that is due for
/// refresh but still valid is returned at once while the refresh runs in the background; when a
/// refresh fails, the old token keeps being used until it expires and the refresh is retried
/// with backoff.
public final class CachingCredential: TokenCredential {
    public let base: any TokenCredential
    private let cache: TokenCache

    public init(_ base: any TokenCredential, now: @escaping @Sendable () -> Date = { Date() }) {
        self.base = base
        self.cache = TokenCache(now: now)
    }

    public var name: String { base.name }

    public func getToken(_ context: TokenRequestContext) async throws(CredentialError) -> AccessToken {
        let base = self.base
        return try await cache.token(for: context) { () async throws(CredentialError) -> AccessToken in
            try await base.getToken(context)
        }
    }

    /// Forgets every cached token, e.g. after Key Vault rejected one.
    public func invalidate(_ context: TokenRequestContext) async {
        await cache.invalidate(context)
    }
}

extension Result {
    fileprivate var isSuccess: Bool { if case .success = self { true } else { false } }
}

actor TokenCache {
    typealias Fetch = @Sendable () async throws(CredentialError) -> AccessToken

    /// A token this close to expiry is not handed out: the request using it could outlive it.
    static let expiryMargin: TimeInterval = 30

    private struct Entry {
        var token: AccessToken?
        var refresh: Task<Result<AccessToken, CredentialError>, Never>?
        var failures = 0
        var lastFailure: CredentialError?
        var retryNotBefore: Date?
    }

    private var entries: [TokenRequestContext: Entry] = [:]
    private let now: @Sendable () -> Date

    init(now: @escaping @Sendable () -> Date) {
        self.now = now
    }

    func token(for context: TokenRequestContext, fetch: @escaping Fetch) async throws(CredentialError) -> AccessToken {
        let current = now()
        let entry = entries[context] ?? Entry()
        let coolingDown = entry.retryNotBefore.map { current < $0 } ?? false
        if let token = entry.token, current < token.expiresOn.addingTimeInterval(-Self.expiryMargin) {
            if current >= token.refreshOn, entry.refresh == nil, !coolingDown {
                _ = startRefresh(context, fetch)
            }
            return token
        }
        if let running = entry.refresh {
            return try await running.value.get()
        }
        if coolingDown, let failure = entry.lastFailure {
            throw failure
        }
        return try await startRefresh(context, fetch).value.get()
    }

    func invalidate(_ context: TokenRequestContext) {
        entries[context]?.token = nil
        entries[context]?.retryNotBefore = nil
    }

    private func startRefresh(_ context: TokenRequestContext, _ fetch: @escaping Fetch) -> Task<
        Result<AccessToken, CredentialError>, Never
    > {
        let task = Task { () -> Result<AccessToken, CredentialError> in
            let result: Result<AccessToken, CredentialError>
            do throws(CredentialError) {
                result = .success(try await fetch())
            } catch {
                result = .failure(error)
            }
            self.finish(context, result)
            return result
        }
        entries[context, default: Entry()].refresh = task
        return task
    }

    private func finish(_ context: TokenRequestContext, _ result: Result<AccessToken, CredentialError>) {
        var entry = entries[context] ?? Entry()
        entry.refresh = nil
        // akvfs_token_requests_total: every request for a new token, by outcome (docs/metrics.md).
        Counter(
            label: "akvfs_token_requests_total", dimensions: [("outcome", result.isSuccess ? "success" : "failure")]
        ).increment()
        switch result {
        case .success(let token):
            entry.token = token
            entry.failures = 0
            entry.lastFailure = nil
            entry.retryNotBefore = nil
        case .failure(let error):
            entry.failures += 1
            entry.lastFailure = error
            // 2, 4, 8 … 60 seconds between attempts while failing.
            let wait = min(60.0, 2.0 * Double(1 << min(entry.failures - 1, 5)))
            entry.retryNotBefore = now().addingTimeInterval(wait)
        }
        entries[context] = entry
    }
}
