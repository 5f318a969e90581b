/// Why a credential produced no token. Messages name the credential and the cause, and never
/// contain secrets, assertions or tokens.
public struct CredentialError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// Not set up on this machine (variables missing, no IMDS, no `az`): a chain moves on.
        case unavailable
        /// Set up, but the identity provider refused (wrong secret, unknown app, no identity assigned to the VM…).
        case authenticationFailed
        /// The identity provider or network failed even after retries.
        case transient
        /// Settings contradict each other or a file cannot be used.
        case invalidConfiguration
    }

    public let credential: String
    public let kind: Kind
    public let message: String
    /// For a chain: why each credential failed, in order.
    public let attempts: [CredentialError]

    public init(credential: String, kind: Kind, message: String, attempts: [CredentialError] = []) {
        self.credential = credential
        self.kind = kind
        self.message = message
        self.attempts = attempts
    }

    public var description: String {
        guard !attempts.isEmpty else { return "\(credential): \(message)" }
        return ([message] + attempts.map { "- \($0.description)" }).joined(separator: "\n")
    }
}
