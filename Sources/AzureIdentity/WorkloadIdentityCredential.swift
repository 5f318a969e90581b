import FoundationEssentials
import HTTPTransport

/// Workload identity: a Kubernetes service-account token (audience `api://AzureADTokenExchange`)
/// exchanged at Entra ID for an app's token.
public struct WorkloadIdentityCredential: TokenCredential {
    /// Where the service-account token comes from.
    public enum Assertion: Sendable {
        /// A projected token file; read again for every token request, since kubelet rotates it.
        case file(String)
        /// A token held in memory (the CSI driver hands pods' tokens over in each publish call).
        case provider(@Sendable () async -> String?)
    }

    public let clientId: String
    private let assertion: Assertion
    private let endpoint: EntraTokenEndpoint

    public init(
        authority: EntraAuthority,
        clientId: String,
        assertion: Assertion,
        http: any HTTPClient,
        now: @escaping @Sendable () -> Date = { Date() },
        clock: any Clock<Duration> = ContinuousClock()
    ) {
        self.clientId = clientId
        self.assertion = assertion
        endpoint = EntraTokenEndpoint(
            http: http, authority: authority, credential: "WorkloadIdentityCredential", now: now, clock: clock)
    }

    public var name: String { "WorkloadIdentityCredential (client \(clientId), tenant \(endpoint.authority.tenantId))" }

    public func getToken(_ context: TokenRequestContext) async throws(CredentialError) -> AccessToken {
        try endpoint.authority.validate(credential: "WorkloadIdentityCredential")
        let tenant = try endpoint.authority.tenant(for: context.tenantId, credential: "WorkloadIdentityCredential")
        let token = try await readAssertion()
        return try await endpoint.requestToken(
            tenant: tenant,
            fields: [
                ("grant_type", "client_credentials"), ("client_id", clientId), ("scope", context.scope),
                ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                ("client_assertion", token),
            ]
        )
    }

    private func readAssertion() async throws(CredentialError) -> String {
        switch assertion {
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw CredentialError(
                    credential: "WorkloadIdentityCredential",
                    kind: .invalidConfiguration,
                    message:
                        "cannot read the federated token file \(path) (AZURE_FEDERATED_TOKEN_FILE); is the service-account token projected into the pod?"
                )
            }
            // Projected files may end in a newline; Entra wants the bare JWT.
            let token = String(decoding: data, as: UTF8.self).trimmingWhitespace
            guard !token.isEmpty else {
                throw CredentialError(
                    credential: "WorkloadIdentityCredential", kind: .invalidConfiguration,
                    message: "the federated token file \(path) is empty")
            }
            return token
        case .provider(let provide):
            guard let token = await provide()?.trimmingWhitespace, !token.isEmpty else {
                throw CredentialError(
                    credential: "WorkloadIdentityCredential", kind: .invalidConfiguration,
                    message: "no service-account token is available")
            }
            return token
        }
    }
}

extension StringProtocol {
    /// Without leading and trailing whitespace (token files often end in a newline).
    public var trimmingWhitespace: String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
