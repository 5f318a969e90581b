import AzureIdentity
import FoundationEssentials
import HTTPTransport
import HTTPTypes
import Metrics
import Synchronization

/// How hard to try before giving up.
public struct RetryOptions: Sendable {
    /// Retries after the first attempt.
    public var maxRetries = 8
    public var backoff = Backoff(base: .milliseconds(800), maximum: .seconds(60))
    /// A server's `Retry-After` is honoured up to this long (longer asks are shortened to it).
    public var maxRetryAfter: Duration = .seconds(120)
    /// The whole call, retries and waits included, ends by then.
    public var deadline: Duration = .seconds(180)

    public init() {}
}

public struct KeyVaultClientOptions: Sendable {
    public var apiVersion = "7.6"
    public var retry = RetryOptions()
    public var requestTimeout: Duration = .seconds(30)
    /// Refuse to send a token when the challenge's resource is not the vault's domain. Turn off
    /// only for a vault behind a custom domain you trust.
    public var verifyChallengeResource = true
    public var clock: any Clock<Duration> = ContinuousClock()

    public init() {}
}

/// Awaited before each page of a listing after the first (a rate limiter's turn); throwing ends
/// the listing as cancelled.
public typealias PagePacer = @Sendable () async throws -> Void

/// The Key Vault data plane for one vault: get and list secrets, keys and certificates.
/// Authentication follows the service's challenge (scope and tenant come from the first 401),
/// retries back off with jitter and honour `Retry-After` within a deadline, and list calls
/// follow `nextLink` through every page.
public final class KeyVaultClient: Sendable {
    public let vault: VaultEndpoint
    public let credential: any TokenCredential
    private let http: any HTTPClient
    private let options: KeyVaultClientOptions
    private let challenge = Mutex<AuthenticationChallenge?>(nil)
    private let lastToken = Mutex<(AuthenticationChallenge, AccessToken)?>(nil)
    /// The unauthenticated first request in flight, which concurrent first requests wait for, and
    /// how many wait.
    private let pendingProbe = Mutex<(task: Task<HTTPClientResponse, any Error>, waiters: Int)?>(nil)

    public init(
        vault: VaultEndpoint, credential: any TokenCredential, http: any HTTPClient,
        options: KeyVaultClientOptions = .init()
    ) {
        self.vault = vault
        self.credential = credential
        self.http = http
        self.options = options
    }

    /// The challenge learned from the vault, once a request has been made.
    public var currentChallenge: AuthenticationChallenge? { challenge.withLock { $0 } }

    /// Learns the vault's challenge and gets a token for it without reading anything, so a mount
    /// can fail fast when the vault is unreachable or the identity cannot authenticate.
    public func authenticate() async throws(KeyVaultError) -> AccessToken {
        let operation = "authenticate"
        if let known = currentChallenge { return try await token(for: known, operation: operation) }
        let request = HTTPRequest(
            method: .get, scheme: "https", authority: vault.authority,
            path: "/secrets?api-version=\(options.apiVersion)&maxresults=1",
            headerFields: [.accept: "application/json"])
        let probe = try await retrying(operation: operation) { try await self.execute(request) }
        let status = probe.head.status.code
        if status == 401 {
            return try await token(for: try learnChallenge(from: probe, operation: operation), operation: operation)
        }
        let failure = error(from: probe, operation: operation)
        guard !Self.isRetryable(status) else { throw failure }
        throw KeyVaultError(
            kind: .invalidResponse, operation: operation, vault: vault.url, status: status,
            detail:
                "the vault answered an unauthenticated request with \(status) instead of asking for a token (\(failure.detail))"
        )
    }

    // MARK: Objects

    public func getSecret(_ name: String, version: String? = nil) async throws(KeyVaultError) -> SecretBundle {
        try await get(SecretBundle.self, "secrets", name, version, operation: "get secret '\(name)'")
    }

    public func getKey(_ name: String, version: String? = nil) async throws(KeyVaultError) -> KeyBundle {
        try await get(KeyBundle.self, "keys", name, version, operation: "get key '\(name)'")
    }

    public func getCertificate(_ name: String, version: String? = nil) async throws(KeyVaultError) -> CertificateBundle
    {
        try await get(CertificateBundle.self, "certificates", name, version, operation: "get certificate '\(name)'")
    }

    // Listings take a `pacer`, awaited before each page after the first: Key Vault counts every
    // page as a request, so a rate limit must count them too.

    public func listSecrets(pacer: PagePacer? = nil) async throws(KeyVaultError) -> [SecretItem] {
        try await list(SecretItem.self, path: "/secrets", operation: "list secrets", pacer: pacer)
    }

    public func listSecretVersions(_ name: String, pacer: PagePacer? = nil) async throws(KeyVaultError) -> [SecretItem]
    {
        try await list(
            SecretItem.self, path: "/secrets/\(try checkedName(name, "secret"))/versions",
            operation: "list versions of secret '\(name)'", pacer: pacer)
    }

    public func listKeys(pacer: PagePacer? = nil) async throws(KeyVaultError) -> [KeyItem] {
        try await list(KeyItem.self, path: "/keys", operation: "list keys", pacer: pacer)
    }

    public func listKeyVersions(_ name: String, pacer: PagePacer? = nil) async throws(KeyVaultError) -> [KeyItem] {
        try await list(
            KeyItem.self, path: "/keys/\(try checkedName(name, "key"))/versions",
            operation: "list versions of key '\(name)'", pacer: pacer)
    }

    public func listCertificates(pacer: PagePacer? = nil) async throws(KeyVaultError) -> [CertificateItem] {
        try await list(CertificateItem.self, path: "/certificates", operation: "list certificates", pacer: pacer)
    }

    public func listCertificateVersions(_ name: String, pacer: PagePacer? = nil) async throws(KeyVaultError)
        -> [CertificateItem]
    {
        try await list(
            CertificateItem.self, path: "/certificates/\(try checkedName(name, "certificate"))/versions",
            operation: "list versions of certificate '\(name)'", pacer: pacer)
    }

    // MARK: Building blocks

    private func get<Bundle: Decodable>(
        _ type: Bundle.Type, _ collection: String, _ name: String, _ version: String?, operation: String
    ) async throws(KeyVaultError) -> Bundle {
        let kind = String(collection.dropLast())
        var path = "/\(collection)/\(try checkedName(name, kind))"
        if let version {
            guard !version.isEmpty, version.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
                throw KeyVaultError(
                    kind: .badRequest, operation: operation, vault: vault.url,
                    detail:
                        "'\(version)' is not a valid version: versions are letters and digits (32 hex characters from Key Vault)."
                )
            }
            path += "/\(version)"
        }
        var body = try await send(path: path, query: [], operation: operation)
        defer { body.withUnsafeMutableBufferPointer { $0.initialize(repeating: 0) } }
        return try decode(type, body, operation: operation)
    }

    private func checkedName(_ name: String, _ kind: String) throws(KeyVaultError) -> String {
        guard !name.isEmpty, name.utf8.count <= 127,
            name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") })
        else {
            throw KeyVaultError(
                kind: .badRequest, operation: "use \(kind) '\(name)'", vault: vault.url,
                detail: "Key Vault names are 1-127 characters of letters, digits and '-'.")
        }
        return name
    }

    private func decode<T: Decodable>(_ type: T.Type, _ body: [UInt8], operation: String) throws(KeyVaultError) -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(body))
        } catch {
            throw KeyVaultError(
                kind: .invalidResponse, operation: operation, vault: vault.url,
                detail: "the answer is not the JSON Key Vault sends (\(error))")
        }
    }

    /// Follows `nextLink` until it is absent or empty. Pages may be empty and still link on.
    /// The link's path and query are sent to this vault's host with this client's api-version,
    /// so a link naming another host (private endpoints, custom domains) never gets a token.
    ///
    /// Only the round trips are sequential. Each page's link is read ahead of decoding, the next
    /// page is requested at once, and pages decode in child tasks on the global pool meanwhile.
    /// The loop itself runs on the transport's thread when it offers one, so no thread hand-off
    /// sits between a page's answer and the next request.
    private func list<Item: Decodable & Sendable>(
        _ type: Item.Type, path: String, operation: String, pacer: PagePacer?
    ) async throws(KeyVaultError) -> [Item] {
        do {
            return try await withTaskExecutorPreference(http.taskExecutor) {
                try await followPages(Item.self, path: path, operation: operation, pacer: pacer)
            }
        } catch let error as KeyVaultError {
            throw error
        } catch {
            throw KeyVaultError(kind: .cancelled, operation: operation, vault: vault.url, detail: "\(error)")
        }
    }

    private func followPages<Item: Decodable & Sendable>(
        _ type: Item.Type, path: String, operation: String, pacer: PagePacer?
    ) async throws -> [Item] {
        try await withThrowingTaskGroup(of: (Int, [Item]).self) { group in
            var nextPath = path
            var nextQuery: [String] = []
            var pages = 0
            while true {
                if pages > 0, let pacer { try await pacer() }
                let body = try await send(path: nextPath, query: nextQuery, operation: operation)
                let link = try (PageLink.scan(body) ?? decode(PageLink.self, body, operation: operation)).link
                let index = pages
                group.addTask(executorPreference: globalConcurrentExecutor) {
                    (index, try self.items(of: Item.self, body, expectedLink: link, operation: operation))
                }
                pages += 1
                guard let link else { break }
                guard pages < 100_000 else {
                    throw KeyVaultError(
                        kind: .invalidResponse, operation: operation, vault: vault.url,
                        detail: "more than 100000 pages; the vault keeps linking on")
                }
                (nextPath, nextQuery) = try split(nextLink: link, operation: operation)
            }
            var itemsByPage = [[Item]](repeating: [], count: pages)
            for try await (index, items) in group { itemsByPage[index] = items }
            return itemsByPage.flatMap { $0 }
        }
    }

    /// One page's items, checking that the link read ahead is the one the page really holds.
    private func items<Item: Decodable>(of type: Item.Type, _ body: [UInt8], expectedLink: String?, operation: String)
        throws(KeyVaultError) -> [Item]
    {
        let page = try decode(Page<Item>.self, body, operation: operation)
        guard PageLink(nextLink: page.nextLink).link == expectedLink else {
            throw KeyVaultError(
                kind: .invalidResponse, operation: operation, vault: vault.url,
                detail:
                    "a page's nextLink was misread ahead of decoding; please report this with the vault's API version")
        }
        return page.value ?? []
    }

    private static let urlCharacters = Set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%".utf8)

    /// The link's path, and its query items (`key=value`, kept as written) but for api-version.
    private func split(nextLink: String, operation: String) throws(KeyVaultError) -> (String, [String]) {
        let bytes = Array(nextLink.utf8)
        // Anything RFC 3986 does not allow in a URL (spaces, controls, raw non-ASCII, braces…)
        // would garble the request line.
        guard let authority = authorityStart(in: bytes), bytes.allSatisfy(Self.urlCharacters.contains) else {
            throw KeyVaultError(
                kind: .invalidResponse, operation: operation, vault: vault.url,
                detail: "nextLink \(nextLink.debugDescription) is not an absolute URL")
        }
        // The authority ends at the path, or at the query of a link without one.
        let pathStart =
            bytes[authority...].firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") } ?? bytes.endIndex
        let queryStart = bytes[pathStart...].firstIndex(of: UInt8(ascii: "?")) ?? bytes.endIndex
        let path = String(decoding: bytes[pathStart..<queryStart], as: UTF8.self)
        let query = bytes[queryStart...].dropFirst().split(separator: UInt8(ascii: "&"))
            .map { String(decoding: $0, as: UTF8.self) }
            .filter { $0 != "api-version" && !$0.hasPrefix("api-version=") }
        return (path.isEmpty ? "/" : path, query)
    }

    // MARK: Sending with authentication and retries

    /// Sends a GET and returns the body of a 2xx answer; query items (`key=value`) must already be encoded.
    private func send(path: String, query: [String], operation: String) async throws(KeyVaultError) -> [UInt8] {
        let target = path + "?" + (["api-version=\(options.apiVersion)"] + query).joined(separator: "&")
        let request = HTTPRequest(
            method: .get, scheme: "https", authority: vault.authority, path: target,
            headerFields: [.accept: "application/json"])
        let response = try await retrying(operation: operation) {
            try await self.authenticatedSend(request, operation: operation)
        }
        guard (200...299).contains(response.head.status.code) else { throw error(from: response, operation: operation) }
        return response.body
    }

    /// Repeats `attempt` while its failure may pass: transport errors that are retryable, and
    /// the statuses in `isRetryable`, with backoff (or the server's `Retry-After`, capped) within
    /// the call's deadline. Returns the last answer, which is a retryable status when retries or
    /// time ran out; throws when the transport failed for good.
    private func retrying(
        operation: String, _ attempt: () async throws -> HTTPClientResponse
    ) async throws(KeyVaultError) -> HTTPClientResponse {
        let budget = RetryBudget(clock: options.clock, budget: options.retry.deadline)
        var retries = 0
        while true {
            let outcome: Result<HTTPClientResponse, HTTPTransportError>
            do {
                outcome = .success(try await attempt())
            } catch let error as HTTPTransportError {
                outcome = .failure(error)
            } catch let error as KeyVaultError {
                throw error
            } catch {
                throw KeyVaultError(kind: .invalidResponse, operation: operation, vault: vault.url, detail: "\(error)")
            }
            let wait: Duration
            switch outcome {
            case .success(let response):
                guard Self.isRetryable(response.head.status.code), retries < options.retry.maxRetries else {
                    return response
                }
                wait =
                    RetryAfter.parse(response.head.headerFields).map { min($0, options.retry.maxRetryAfter) }
                    ?? options.retry.backoff.delay(beforeRetry: retries)
                guard budget.allows(waiting: wait) else { return response }
            case .failure(let transport):
                if transport.kind == .cancelled {
                    throw KeyVaultError(
                        kind: .cancelled, operation: operation, vault: vault.url, detail: transport.reason)
                }
                let failure = KeyVaultError(
                    kind: .transport, operation: operation, vault: vault.url, detail: transport.description)
                wait = options.retry.backoff.delay(beforeRetry: retries)
                guard transport.isRetryable, retries < options.retry.maxRetries, budget.allows(waiting: wait) else {
                    throw failure
                }
            }
            do {
                try await budget.sleep(for: wait)
            } catch {
                throw KeyVaultError(
                    kind: .cancelled, operation: operation, vault: vault.url, detail: "cancelled while waiting to retry"
                )
            }
            retries += 1
        }
    }

    /// 408, 429 and the 5xx statuses Azure's SDKs retry.
    static func isRetryable(_ status: Int) -> Bool {
        [408, 429, 500, 502, 503, 504].contains(status)
    }

    /// One exchange with the vault, authenticated: learns the challenge on first contact, and
    /// gets a fresh token once when the vault rejects a cached one.
    private func authenticatedSend(_ request: HTTPRequest, operation: String) async throws -> HTTPClientResponse {
        var known = challenge.withLock { $0 }
        if known == nil {
            switch try await firstContact(request, operation: operation) {
            case .answered(let response): return response
            case .learned(let learned): known = learned
            }
        }
        var current = known!
        var response = try await execute(request, token: try await token(for: current, operation: operation))
        if response.head.status.code == 401 {
            // A rejected token: the challenge may have changed (another tenant), or the token went stale.
            if response.head.headerFields[.wwwAuthenticate] != nil {
                current = try learnChallenge(from: response, operation: operation)
            }
            lastToken.withLock { $0 = nil }
            if let caching = credential as? CachingCredential {
                await caching.invalidate(TokenRequestContext(scope: current.scope, tenantId: current.tenantId))
            }
            response = try await execute(request, token: try await token(for: current, operation: operation))
        }
        return response
    }

    private enum FirstContact {
        case answered(HTTPClientResponse)
        case learned(AuthenticationChallenge)
    }

    /// No token is sent until the vault says which resource and tenant it wants. Only one
    /// unauthenticated request is in flight at a time: the parallel first fetches of a mount or a
    /// volume wait for its 401 instead of each paying a round trip (and a TLS handshake) for it.
    private func firstContact(_ request: HTTPRequest, operation: String) async throws -> FirstContact {
        let (probe, isMine) = pendingProbe.withLock { pending in
            if let current = pending {
                pending?.waiters += 1
                return (current.task, false)
            }
            let task = Task { () async throws -> HTTPClientResponse in try await self.execute(request) }
            pending = (task, 1)
            return (task, true)
        }
        let result = await withTaskCancellationHandler {
            await probe.result
        } onCancel: {
            // The last waiter to leave calls the probe off (a hung one would otherwise hold every
            // first request of this vault until it times out); the next request asks afresh.
            let abandoned = pendingProbe.withLock { pending in
                guard let current = pending, current.task == probe else { return false }
                pending?.waiters -= 1
                guard current.waiters <= 1 else { return false }
                pending = nil
                return true
            }
            if abandoned { probe.cancel() }
        }
        if case .success(let response) = result, response.head.status.code == 401 {
            defer { if isMine { clearProbe(probe) } }
            return .learned(try learnChallenge(from: response, operation: operation))
        }
        if isMine {
            clearProbe(probe)
            return .answered(try result.get())
        }
        // The other request's answer taught nothing (an error, or no challenge): ask with this one.
        let own = try await execute(request)
        guard own.head.status.code == 401 else { return .answered(own) }
        return .learned(try learnChallenge(from: own, operation: operation))
    }

    private func clearProbe(_ probe: Task<HTTPClientResponse, any Error>) {
        pendingProbe.withLock { if $0?.task == probe { $0 = nil } }
    }

    private func learnChallenge(from response: HTTPClientResponse, operation: String) throws(KeyVaultError)
        -> AuthenticationChallenge
    {
        guard let header = response.head.headerFields[.wwwAuthenticate],
            let parsed = AuthenticationChallenge.parse(header)
        else {
            throw KeyVaultError(
                kind: .unauthorized, operation: operation, vault: vault.url, status: 401,
                detail:
                    "the vault answered 401 without a Bearer challenge naming an authorization server and resource; is this a Key Vault endpoint?"
            )
        }
        if options.verifyChallengeResource, !parsed.isResource(of: vault) {
            throw KeyVaultError(
                kind: .challengeRejected, operation: operation, vault: vault.url,
                detail:
                    "the vault asked for a token for \(parsed.scope), but \(vault.authority) is not in that resource's domain, so no token was sent. "
                    + "Check the vault URL and cloud; for a custom domain you trust, disable challenge resource verification."
            )
        }
        challenge.withLock { $0 = parsed }
        return parsed
    }

    /// The credential's token for the challenge. The last one is kept here until it is due for
    /// refresh, so most requests skip the trip through the credential's cache.
    private func token(for challenge: AuthenticationChallenge, operation: String) async throws(KeyVaultError)
        -> AccessToken
    {
        let now = Date()
        if let (known, token) = lastToken.withLock({ $0 }), known == challenge, now < token.refreshOn {
            return token
        }
        do {
            let token = try await credential.getToken(
                TokenRequestContext(scope: challenge.scope, tenantId: challenge.tenantId))
            lastToken.withLock { $0 = (challenge, token) }
            return token
        } catch {
            throw KeyVaultError(kind: .credential, operation: operation, vault: vault.url, detail: error.description)
        }
    }

    private func execute(_ request: HTTPRequest, token: AccessToken? = nil) async throws(HTTPTransportError)
        -> HTTPClientResponse
    {
        var request = request
        if let token { request.headerFields[.authorization] = "Bearer \(token.token)" }
        let started = ContinuousClock.now
        let operation = Self.metricOperation(request.path ?? "")
        let outcome: Result<HTTPClientResponse, HTTPTransportError>
        do {
            outcome = .success(try await http.execute(request, body: nil, timeout: options.requestTimeout))
        } catch {
            outcome = .failure(error)
        }
        // akvfs_keyvault_requests_total and _duration_seconds (docs/metrics.md): every HTTP
        // request, retries and challenge probes included.
        let status = (try? outcome.get()).map { String($0.head.status.code) } ?? "transport_error"
        Counter(label: "akvfs_keyvault_requests_total", dimensions: [("operation", operation), ("status", status)])
            .increment()
        Metrics.Timer(label: "akvfs_keyvault_request_duration_seconds", dimensions: [("operation", operation)])
            .recordNanoseconds(Int64((ContinuousClock.now - started) / .nanoseconds(1)))
        return try outcome.get()
    }

    /// The REST operation a path is, as Key Vault's API names it; never the object's name.
    static func metricOperation(_ target: String) -> String {
        let path = target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? ""
        let parts = path.split(separator: "/")
        guard let collection = parts.first else { return "Other" }
        let kind: String
        switch collection {
        case "secrets": kind = "Secret"
        case "keys": kind = "Key"
        case "certificates": kind = "Certificate"
        default: return "Other"
        }
        switch parts.count {
        case 1: return "Get\(kind)s"
        case 2: return "Get\(kind)"
        case 3 where parts[2] == "versions": return "Get\(kind)Versions"
        case 3: return "Get\(kind)"
        default: return "Other"
        }
    }

    private func error(from response: HTTPClientResponse, operation: String) -> KeyVaultError {
        let status = response.head.status.code
        let envelope = try? JSONDecoder().decode(ErrorEnvelope.self, from: Data(response.body))
        let code = envelope?.error?.code
        let inner = envelope?.error?.innererror?.code
        let message =
            envelope?.error?.message
            ?? "the answer carries no Key Vault error body; is \(vault.url) a Key Vault endpoint?"
        let kind: KeyVaultError.Kind
        switch status {
        case 404: kind = .notFound
        case 403 where inner?.hasSuffix("Disabled") == true: kind = .disabled
        case 403: kind = .forbidden
        case 401: kind = .unauthorized
        case 429: kind = .throttled
        case 409: kind = .conflict
        case 400...499: kind = .badRequest
        case 500...599: kind = .serverError
        default: kind = .invalidResponse
        }
        return KeyVaultError(
            kind: kind, operation: operation, vault: vault.url, status: status, code: code, innerCode: inner,
            detail: message,
            retryAfter: RetryAfter.parse(response.head.headerFields))
    }
}
