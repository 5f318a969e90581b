import AzureIdentity
import FoundationEssentials
import HTTPTransport
import HTTPTypes
import Metrics
import PKI
import Synchronization

/// The Key Vault data plane for one vault: get and list secrets, keys and certificates.
/// Authentication follows the service's challenge (scope and tenant come from the first 401),
/// retries back off with jitter and honour `Retry-After` within a deadline, and list calls
/// follow `nextLink` through every page.
public final class KeyVaultClient: Sendable {
    public let vault: VaultEndpoint
    public let credential: any TokenCredential
    let http: any HTTPClient
    let options: KeyVaultClientOptions
    let challenge: VaultChallenge
    let lastToken = Mutex<(AuthenticationChallenge, AccessToken)?>(nil)
    /// The unauthenticated first request in flight, how many concurrent first requests wait for
    /// it, and how many (the probe included) asked on their own.
    let pendingProbe = Mutex<(task: Task<HTTPClientResponse, any Error>, waiters: Int, askers: Int)?>(nil)

    public init(
        vault: VaultEndpoint, credential: any TokenCredential, http: any HTTPClient,
        options: KeyVaultClientOptions = .init(), challenge: VaultChallenge = VaultChallenge()
    ) {
        self.challenge = challenge
        self.vault = vault
        self.credential = credential
        self.http = http
        self.options = options
    }

    // First contact, the challenge and tokens are in KeyVaultClient+Authentication.swift, retries
    // in KeyVaultClient+Retries.swift, following a listing's pages in KeyVaultClient+Paging.swift.

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
            guard KeyVaultNames.isVersion(version) else {
                throw KeyVaultError(
                    kind: .badRequest, operation: operation, vault: vault.url,
                    detail:
                        "'\(version)' is not a valid version: versions are letters and digits (32 hex characters from Key Vault)."
                )
            }
            path += "/\(version)"
        }
        var body = try await send(path: path, query: [], operation: operation)
        defer { body.wipe() }
        return try decode(type, body, operation: operation)
    }

    private func checkedName(_ name: String, _ kind: String) throws(KeyVaultError) -> String {
        guard KeyVaultNames.isObjectName(name) else {
            throw KeyVaultError(
                kind: .badRequest, operation: "use \(kind) '\(name)'", vault: vault.url,
                detail: "Key Vault names are 1-127 characters of letters, digits and '-'.")
        }
        return name
    }

    func decode<T: Decodable>(_ type: T.Type, _ body: [UInt8], operation: String) throws(KeyVaultError) -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(body))
        } catch {
            throw KeyVaultError(
                kind: .invalidResponse, operation: operation, vault: vault.url,
                detail: "the answer is not the JSON Key Vault sends (\(error))")
        }
    }

    // MARK: Sending

    /// Sends a GET and returns the body of a 2xx answer; query items (`key=value`) must already be encoded.
    func send(path: String, query: [String], operation: String) async throws(KeyVaultError) -> [UInt8] {
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

    func execute(_ request: HTTPRequest, token: AccessToken? = nil) async throws(HTTPTransportError)
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

    func error(from response: HTTPClientResponse, operation: String) -> KeyVaultError {
        let status = response.head.status.code
        let envelope = try? JSONDecoder().decode(ErrorEnvelope.self, from: Data(response.body))
        // The server's words go into logs and pod events: escaped, and short.
        let code = envelope?.error?.code.map { OutsideText.escaped($0, limit: 128) }
        let inner = envelope?.error?.innererror?.code.map { OutsideText.escaped($0, limit: 128) }
        let message =
            envelope?.error?.message.map { OutsideText.escaped($0, limit: 1024) }
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
            // Capped as the retries cap it: callers schedule their next try by it (a revalidation), and
            // one answer must not be able to put that off for a day.
            retryAfter: RetryAfter.parse(response.head.headerFields).map { min($0, options.retry.maxRetryAfter) })
    }
}
