import Synchronization

/// Tries credentials in order, like the Azure SDKs' DefaultAzureCredential, and sticks with the
/// first one that produces a token. A credential that is not set up here is skipped; one that is
/// set up but fails stops the chain, so a wrong secret is reported instead of hidden behind a
/// fallback. When none works, the error says why for each.
public final class CredentialChain: TokenCredential {
    public let credentials: [any TokenCredential]
    private let chosen = Mutex<Int?>(nil)

    public init(_ credentials: [any TokenCredential]) {
        self.credentials = credentials
    }

    public var name: String {
        if let index = chosen.withLock({ $0 }) { return credentials[index].name }
        return "DefaultAzureCredential (" + credentials.map(\.name).joined(separator: ", ") + ")"
    }

    /// The credential that produced the first token, once one has.
    public var selected: (any TokenCredential)? {
        chosen.withLock { $0 }.map { credentials[$0] }
    }

    public func getToken(_ context: TokenRequestContext) async throws(CredentialError) -> AccessToken {
        if let index = chosen.withLock({ $0 }) {
            return try await credentials[index].getToken(context)
        }
        var attempts: [CredentialError] = []
        for (index, credential) in credentials.enumerated() {
            do {
                let token = try await credential.getToken(context)
                chosen.withLock { $0 = $0 ?? index }
                return token
            } catch {
                attempts.append(error)
                guard error.kind == .unavailable else {
                    throw CredentialError(
                        credential: "DefaultAzureCredential",
                        kind: error.kind,
                        message: "\(credential.name) is set up but failed; not trying the remaining credentials:",
                        attempts: attempts
                    )
                }
            }
        }
        throw CredentialError(
            credential: "DefaultAzureCredential",
            kind: .unavailable,
            message: "no credential could get a token. Tried, in order:",
            attempts: attempts
        )
    }
}
