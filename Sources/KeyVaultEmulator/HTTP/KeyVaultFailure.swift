/// An error answer in Key Vault's envelope:
/// `{"error":{"code":…,"message":…,"innererror":{"code":…}}}` with the status the service uses.
struct KeyVaultFailure: Error, Sendable {
    var status: Int
    var code: String
    var message: String
    var innerCode: String?
    var headers: [(name: String, value: String)] = []

    static let helpLinkNotFound =
        "For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"

    static func notFound(_ kind: ObjectKind, name: String, version: String? = nil) -> KeyVaultFailure {
        let identifier = version.map { "\(name)/\($0)" } ?? name
        return KeyVaultFailure(
            status: 404,
            code: kind.notFoundCode,
            message: "A \(kind.singular) with (name/id) \(identifier) was not found in this key vault. "
                + "If you recently deleted this \(kind.singular) you may be able to recover it using the correct recovery command. "
                + helpLinkNotFound
        )
    }

    static func deletedNotFound(_ kind: ObjectKind, name: String) -> KeyVaultFailure {
        KeyVaultFailure(
            status: 404,
            code: kind.notFoundCode,
            message: "Deleted \(kind.singular) \(name) was not found in this key vault. " + helpLinkNotFound
        )
    }

    static func disabled(_ kind: ObjectKind, operation: String = "get") -> KeyVaultFailure {
        KeyVaultFailure(
            status: 403,
            code: "Forbidden",
            message: "Operation \(operation) is not allowed on a disabled \(kind.singular).",
            innerCode: kind.disabledCode
        )
    }

    static func badParameter(_ message: String) -> KeyVaultFailure {
        KeyVaultFailure(status: 400, code: "BadParameter", message: message)
    }

    static func conflictDeleted(_ kind: ObjectKind, name: String) -> KeyVaultFailure {
        KeyVaultFailure(
            status: 409,
            code: "Conflict",
            message: "\(kind.singular.capitalizedFirst) \(name) is currently in a deleted but recoverable state, "
                + "and its name cannot be reused; in this state, the \(kind.singular) can only be recovered or purged."
        )
    }

    /// A soft delete or recovery still under way (`VaultTiming`).
    static func inTransition(_ kind: ObjectKind, name: String, inner: String, state: String) -> KeyVaultFailure {
        KeyVaultFailure(
            status: 409,
            code: "Conflict",
            message:
                "\(kind.singular.capitalizedFirst) \(name) is currently \(state). Retry the operation once it has completed.",
            innerCode: inner
        )
    }

    static func unauthorized(_ message: String) -> KeyVaultFailure {
        KeyVaultFailure(status: 401, code: "Unauthorized", message: message)
    }

    static func throttled(retryAfter: Int?) -> KeyVaultFailure {
        var failure = KeyVaultFailure(
            status: 429,
            code: "Throttled",
            message:
                "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached"
        )
        if let retryAfter { failure.headers.append(("Retry-After", String(retryAfter))) }
        return failure
    }

    static func serverError(status: Int, retryAfter: Int?) -> KeyVaultFailure {
        var failure: KeyVaultFailure
        switch status {
        case 503:
            failure = KeyVaultFailure(
                status: 503, code: "ServiceUnavailable",
                message: "The service is temporarily unavailable. Please retry.")
        case 502:
            failure = KeyVaultFailure(
                status: 502, code: "BadGateway", message: "The gateway received an invalid response.")
        case 504:
            failure = KeyVaultFailure(status: 504, code: "GatewayTimeout", message: "The gateway timed out.")
        default:
            failure = KeyVaultFailure(
                status: status, code: "InternalServerError", message: "An unexpected error occurred. Please retry.")
        }
        if let retryAfter { failure.headers.append(("Retry-After", String(retryAfter))) }
        return failure
    }

    static let methodNotAllowed = KeyVaultFailure(
        status: 405, code: "BadRequest", message: "The requested resource does not support this HTTP method.")

    static func unknownRoute(_ path: String) -> KeyVaultFailure {
        KeyVaultFailure(
            status: 404, code: "NotFound", message: "The requested path \(path) is not a Key Vault operation.")
    }
}

extension String {
    var capitalizedFirst: String { prefix(1).uppercased() + dropFirst() }
}
