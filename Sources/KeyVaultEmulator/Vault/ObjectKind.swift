/// The three kinds of Key Vault objects, with the words the service uses for each in paths,
/// messages, error codes and access-policy permissions.
enum ObjectKind: String, Sendable, CaseIterable, Codable {
    case secrets
    case keys
    case certificates

    var singular: String {
        switch self {
        case .secrets: "secret"
        case .keys: "key"
        case .certificates: "certificate"
        }
    }

    var notFoundCode: String {
        switch self {
        case .secrets: "SecretNotFound"
        case .keys: "KeyNotFound"
        case .certificates: "CertificateNotFound"
        }
    }

    var disabledCode: String {
        switch self {
        case .secrets: "SecretDisabled"
        case .keys: "KeyDisabled"
        case .certificates: "CertificateDisabled"
        }
    }

    var deletedPathSegment: String { "deleted" + rawValue }
}
