import FoundationEssentials

/// A bearer token and when it stops working. The value never appears in descriptions or logs.
public struct AccessToken: Sendable, CustomStringConvertible {
    public let token: String
    public let expiresOn: Date
    /// When to start fetching a replacement, ahead of expiry.
    public let refreshOn: Date

    public init(token: String, expiresOn: Date, issuedAt: Date) {
        self.token = token
        self.expiresOn = expiresOn
        self.refreshOn = Self.refreshTime(issuedAt: issuedAt, expiresOn: expiresOn)
    }

    /// Long tokens are refreshed at half-life (as MSAL does for lifetimes of 2 hours or more);
    /// others 5 minutes before expiry, but never before half-life, so a short-lived token is not
    /// refreshed on every use.
    static func refreshTime(issuedAt: Date, expiresOn: Date) -> Date {
        let lifetime = expiresOn.timeIntervalSince(issuedAt)
        let halfLife = issuedAt.addingTimeInterval(lifetime / 2)
        if lifetime >= 7200 { return halfLife }
        return max(halfLife, expiresOn.addingTimeInterval(-300))
    }

    public var description: String { "AccessToken(expires \(expiresOn), value redacted)" }
}

/// What a token is for: `scope` (e.g. `https://vault.azure.net/.default`) and, when a Key Vault
/// challenge named one, the tenant.
public struct TokenRequestContext: Sendable, Hashable {
    public var scope: String
    public var tenantId: String?

    public init(scope: String, tenantId: String? = nil) {
        self.scope = scope
        self.tenantId = tenantId
    }

    /// The resource for v1-style endpoints (IMDS, App Service, Azure CLI): the scope without `/.default`.
    public var resource: String {
        scope.hasSuffix("/.default") ? String(scope.dropLast("/.default".count)) : scope
    }
}

/// A source of Entra ID access tokens. Implementations fetch a new token on every call; wrap
/// them in `CachingCredential` to reuse tokens.
public protocol TokenCredential: Sendable {
    /// A human name for messages, e.g. "ManagedIdentityCredential (IMDS, system-assigned)".
    var name: String { get }
    func getToken(_ context: TokenRequestContext) async throws(CredentialError) -> AccessToken
}
