import FoundationEssentials
import HTTPTransport

/// A service principal authenticating with a client secret.
public struct ClientSecretCredential: TokenCredential {
    public let clientId: String
    private let secret: String
    private let endpoint: EntraTokenEndpoint

    public init(
        authority: EntraAuthority,
        clientId: String,
        secret: String,
        http: any HTTPClient,
        now: @escaping @Sendable () -> Date = { Date() },
        clock: any Clock<Duration> = ContinuousClock()
    ) {
        self.clientId = clientId
        self.secret = secret
        endpoint = EntraTokenEndpoint(
            http: http, authority: authority, credential: "ClientSecretCredential", now: now, clock: clock)
    }

    public var name: String { "ClientSecretCredential (client \(clientId), tenant \(endpoint.authority.tenantId))" }

    public func getToken(_ context: TokenRequestContext) async throws(CredentialError) -> AccessToken {
        try endpoint.authority.validate(credential: "ClientSecretCredential")
        guard !secret.isEmpty else {
            throw CredentialError(
                credential: "ClientSecretCredential", kind: .invalidConfiguration, message: "the client secret is empty"
            )
        }
        let tenant = try endpoint.authority.tenant(for: context.tenantId, credential: "ClientSecretCredential")
        return try await endpoint.requestToken(
            tenant: tenant,
            fields: [
                ("grant_type", "client_credentials"), ("client_id", clientId), ("client_secret", secret),
                ("scope", context.scope),
            ]
        )
    }
}
