import FoundationEssentials
import HTTPTransport
import HTTPTypes
import PKI

/// Where Entra ID issues tokens, and which tenants a credential may ask it for.
public struct EntraAuthority: Sendable, Equatable {
    /// `https://login.microsoftonline.com` or a sovereign cloud's host; https only.
    public var host: String
    public var tenantId: String
    /// Tenants besides `tenantId` a Key Vault challenge may name (`*` for any).
    public var additionallyAllowedTenants: [String]

    public static let publicCloudHost = "https://login.microsoftonline.com"

    public init(
        host: String = EntraAuthority.publicCloudHost, tenantId: String, additionallyAllowedTenants: [String] = []
    ) {
        self.host = host.hasSuffix("/") ? String(host.dropLast()) : host
        self.tenantId = tenantId
        self.additionallyAllowedTenants = additionallyAllowedTenants
    }

    /// Tenant ids go into a URL path: letters, digits, '.', '-' only.
    static func isValidTenant(_ tenant: String) -> Bool {
        !tenant.isEmpty && tenant.utf8.count <= 256
            && tenant.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") }
    }

    func validate(credential: String) throws(CredentialError) {
        guard host.hasPrefix("https://") else {
            throw CredentialError(
                credential: credential,
                kind: .invalidConfiguration,
                message: "authority host '\(host)' must be an https URL (AZURE_AUTHORITY_HOST or --authority-host)"
            )
        }
        guard Self.isValidTenant(tenantId) else {
            throw CredentialError(
                credential: credential,
                kind: .invalidConfiguration,
                message: "tenant id '\(tenantId)' is not valid: use the directory (tenant) GUID or domain"
            )
        }
    }

    /// The tenant to ask: the configured one, or the one a Key Vault challenge names when allowed.
    func tenant(for requested: String?, credential: String) throws(CredentialError) -> String {
        guard let requested, !requested.isEmpty, requested.lowercased() != tenantId.lowercased() else {
            return tenantId
        }
        if tenantId.lowercased() == "adfs" { return tenantId }
        if additionallyAllowedTenants.contains("*")
            || additionallyAllowedTenants.contains(where: { $0.lowercased() == requested.lowercased() })
        {
            guard Self.isValidTenant(requested) else {
                throw CredentialError(
                    credential: credential, kind: .invalidConfiguration,
                    message: "the vault named an invalid tenant '\(requested)'")
            }
            return requested
        }
        throw CredentialError(
            credential: credential,
            kind: .invalidConfiguration,
            message:
                "the vault belongs to tenant \(requested), but this credential is configured for tenant \(tenantId). "
                + "Use the vault's tenant, or, for a multi-tenant app, allow it with --additionally-allowed-tenants \(requested) (or '*')."
        )
    }
}

/// The OAuth 2.0 token endpoint (`/<tenant>/oauth2/v2.0/token`) for one app's client-credentials
/// grant with a secret or an assertion. Retries 429, 5xx and network failures a few times.
///
/// The app credentials (secret, certificate, workload identity) differ only in the proof they
/// send, so the rest of their plumbing lives here.
struct EntraTokenEndpoint: Sendable {
    let http: any HTTPClient
    let authority: EntraAuthority
    /// The credential's type name, which its errors carry.
    let credential: String
    let clientId: String
    let now: @Sendable () -> Date
    let clock: any Clock<Duration>

    static let maxAttempts = 4
    static let backoff = Backoff(base: .seconds(1), maximum: .seconds(10))
    /// A `Retry-After` longer than this is not waited for: the caller's own retry does better.
    static let maxRetryAfter: Duration = .seconds(30)

    func tokenURL(tenant: String) -> String {
        "\(authority.host)/\(tenant)/oauth2/v2.0/token"
    }

    /// The credential's `name`, e.g. "ClientSecretCredential (client <id>, tenant <id>)".
    var credentialName: String { "\(credential) (client \(clientId), tenant \(authority.tenantId))" }

    func invalidConfiguration(_ message: String) -> CredentialError {
        CredentialError(credential: credential, kind: .invalidConfiguration, message: message)
    }

    /// The grant with a client secret. Settings are checked before anything is sent.
    func requestToken(_ context: TokenRequestContext, secret: String) async throws(CredentialError) -> AccessToken {
        try authority.validate(credential: credential)
        guard !secret.isEmpty else { throw invalidConfiguration("the client secret is empty") }
        let tenant = try authority.tenant(for: context.tenantId, credential: credential)
        return try await requestToken(
            tenant: tenant,
            fields: [
                ("grant_type", "client_credentials"), ("client_id", clientId), ("client_secret", secret),
                ("scope", context.scope),
            ]
        )
    }

    /// The grant with an assertion, a JWT: one the app signs itself (its audience is the tenant's
    /// token URL) or a federated token from another issuer. The assertion is made only once the
    /// settings and the tenant have been checked.
    func requestToken(
        _ context: TokenRequestContext,
        assertion makeAssertion: (_ tenant: String) async throws(CredentialError) -> String
    ) async throws(CredentialError) -> AccessToken {
        try authority.validate(credential: credential)
        let tenant = try authority.tenant(for: context.tenantId, credential: credential)
        let assertion = try await makeAssertion(tenant)
        return try await requestToken(
            tenant: tenant,
            fields: [
                ("grant_type", "client_credentials"), ("client_id", clientId), ("scope", context.scope),
                ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                ("client_assertion", assertion),
            ]
        )
    }

    private func requestToken(tenant: String, fields: [(String, String)]) async throws(CredentialError) -> AccessToken {
        let url = tokenURL(tenant: tenant)
        var headers = HTTPFields()
        headers[.contentType] = "application/x-www-form-urlencoded"
        headers[.accept] = "application/json"
        guard let request = HTTPSupport.request(.post, url: url, headers: headers) else {
            throw CredentialError(
                credential: credential, kind: .invalidConfiguration, message: "invalid token endpoint URL \(url)")
        }
        var body = HTTPSupport.form(fields)
        defer { body.wipe() }
        var lastProblem = ""
        var delay: Duration?
        for attempt in 0..<Self.maxAttempts {
            if let delay { try? await clock.sleep(for: delay) }
            delay = Self.backoff.delay(beforeRetry: attempt)
            let response: HTTPClientResponse
            do {
                response = try await http.execute(request, body: body, timeout: .seconds(30))
            } catch {
                guard error.isRetryable else {
                    throw CredentialError(credential: credential, kind: .transient, message: error.description)
                }
                lastProblem = error.description
                continue
            }
            let status = response.head.status.code
            if status == 200 {
                guard let token = HTTPSupport.accessToken(in: response.body, now: now()) else {
                    throw CredentialError(
                        credential: credential, kind: .transient,
                        message: "the token endpoint \(url) answered 200 without a usable access_token and expiry")
                }
                return token
            }
            let summary = HTTPSupport.ErrorResponse.summary(of: response.body, status: status)
            guard HTTPSupport.isRetryable(status: status) else {
                throw CredentialError(
                    credential: credential, kind: .authenticationFailed,
                    message: "\(url) refused the request: \(summary)")
            }
            lastProblem = "HTTP \(status) from \(url): \(summary)"
            if let wait = RetryAfter.parse(response.head.headerFields, now: now()) {
                guard wait <= Self.maxRetryAfter else { break }
                delay = wait
            }
        }
        throw CredentialError(
            credential: credential, kind: .transient,
            message: "no token after \(Self.maxAttempts) attempts: \(lastProblem)")
    }
}
