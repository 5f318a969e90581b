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
        self.assertion = assertion
        endpoint = EntraTokenEndpoint(
            http: http, authority: authority, credential: "WorkloadIdentityCredential", clientId: clientId, now: now,
            clock: clock)
    }

    public var clientId: String { endpoint.clientId }

    public var name: String { endpoint.credentialName }

    public func getToken(_ context: TokenRequestContext) async throws(CredentialError) -> AccessToken {
        try await endpoint.requestToken(context) { _ throws(CredentialError) in try await readAssertion() }
    }

    private func readAssertion() async throws(CredentialError) -> String {
        switch assertion {
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw endpoint.invalidConfiguration(
                    "cannot read the federated token file \(path) (AZURE_FEDERATED_TOKEN_FILE); is the service-account token projected into the pod?"
                )
            }
            // Projected files may end in a newline; Entra wants the bare JWT.
            let token = String(decoding: data, as: UTF8.self).trimmingWhitespace
            guard !token.isEmpty else {
                throw endpoint.invalidConfiguration("the federated token file \(path) is empty")
            }
            return token
        case .provider(let provide):
            guard let token = await provide()?.trimmingWhitespace, !token.isEmpty else {
                throw endpoint.invalidConfiguration("no service-account token is available")
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
