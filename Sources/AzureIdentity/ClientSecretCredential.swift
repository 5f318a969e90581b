import FoundationEssentials
import HTTPTransport

/// A service principal authenticating with a client secret.
public struct ClientSecretCredential: TokenCredential {
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
        self.secret = secret
        endpoint = EntraTokenEndpoint(
            http: http, authority: authority, credential: "ClientSecretCredential", clientId: clientId, now: now,
            clock: clock)
    }

    public var clientId: String { endpoint.clientId }

    public var name: String { endpoint.credentialName }

    public func getToken(_ context: TokenRequestContext) async throws(CredentialError) -> AccessToken {
        try await endpoint.requestToken(context, secret: secret)
    }
}
