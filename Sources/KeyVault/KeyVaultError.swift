import AzureIdentity
import HTTPTransport

/// Why a Key Vault call failed, in terms a person can act on. Built from Key Vault's error
/// envelope where there is one. Never contains tokens or secret values.
public struct KeyVaultError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        case notFound, forbidden, disabled, unauthorized, throttled, badRequest, conflict, serverError
        /// No usable HTTP answer (network, TLS, timeout).
        case transport
        /// The credential produced no token.
        case credential
        /// The vault's authentication challenge was refused (resource not the vault's domain).
        case challengeRejected
        /// The vault answered something that is not Key Vault's protocol.
        case invalidResponse
        /// Bad settings (vault name, cloud, URL).
        case configuration
        case cancelled
    }

    public let kind: Kind
    /// What was asked, e.g. `get secret 'db-password'` or `list secrets`; nil for settings errors.
    public let operation: String?
    public let vault: String?
    public let status: Int?
    public let code: String?
    public let innerCode: String?
    /// Key Vault's own message, or the underlying error's.
    public let detail: String
    /// How long the service asked to wait, for throttling.
    public let retryAfter: Duration?

    public init(
        kind: Kind, operation: String? = nil, vault: String? = nil, status: Int? = nil, code: String? = nil,
        innerCode: String? = nil, detail: String, retryAfter: Duration? = nil
    ) {
        self.kind = kind
        self.operation = operation
        self.vault = vault
        self.status = status
        self.code = code
        self.innerCode = innerCode
        self.detail = detail
        self.retryAfter = retryAfter
    }

    static func configuration(_ detail: String) -> KeyVaultError {
        KeyVaultError(kind: .configuration, detail: detail)
    }

    public var description: String {
        var text = ""
        if let operation { text += operation }
        if let vault { text += (text.isEmpty ? "" : " in ") + vault }
        text += text.isEmpty ? "" : " failed: "
        text += summary
        if let status {
            let codes = [code, innerCode].compactMap { $0 }.joined(separator: "/")
            text += " (HTTP \(status)\(codes.isEmpty ? "" : " \(codes)"))"
        }
        if !detail.isEmpty { text += ": \(detail)" }
        if let advice { text += " \(advice)" }
        return text
    }

    private var summary: String {
        switch kind {
        case .notFound: "not found"
        case .forbidden: "access denied"
        case .disabled: "the object is disabled"
        case .unauthorized: "not authenticated"
        case .throttled: "throttled by Key Vault"
        case .badRequest: "bad request"
        case .conflict: "conflict"
        case .serverError: "Key Vault error"
        case .transport: "no answer"
        case .credential: "no token"
        case .challengeRejected: "refused the vault's authentication challenge"
        case .invalidResponse: "unexpected answer"
        case .configuration: "invalid settings"
        case .cancelled: "cancelled"
        }
    }

    private var advice: String? {
        switch kind {
        case .notFound: "Check the name and version, and whether the object was deleted."
        case .forbidden:
            "Grant this identity the needed permission (an access policy, or an RBAC role such as Key Vault Secrets User) on the vault."
        case .disabled: "Enable the object in Key Vault, or stop asking for it."
        case .unauthorized: "Check that the token is for this vault's cloud and tenant."
        case .throttled: retryAfter.map { "Key Vault asked to wait \($0.components.seconds) s." }
        default: nil
        }
    }
}
