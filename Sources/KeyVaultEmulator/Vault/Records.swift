import PKI

struct SecretVersion: VersionRecord {
    static var kind: ObjectKind { .secrets }
    static var table: WritableKeyPath<Vault, ObjectTable<Self>> { \.secrets }

    let version: String
    var value: String
    var contentType: String?
    var tags: [String: String]?
    var attributes: ObjectAttributes
    /// Set when the secret backs a certificate: the matching key version's relative path.
    var backingKey: ObjectReference?
    var managed: Bool { backingKey != nil }
}

struct KeyVersion: VersionRecord {
    static var kind: ObjectKind { .keys }
    static var table: WritableKeyPath<Vault, ObjectTable<Self>> { \.keys }

    let version: String
    /// Public members only: Key Vault never returns private key material from GET.
    var publicKey: JSONWebKey
    var keyOperations: [String]
    var tags: [String: String]?
    var attributes: ObjectAttributes
    var exportable: Bool?
    var managed: Bool
}

struct CertificateVersion: VersionRecord {
    static var kind: ObjectKind { .certificates }
    static var table: WritableKeyPath<Vault, ObjectTable<Self>> { \.certificates }

    let version: String
    var certificate: Certificate
    var policy: CertificatePolicy
    var tags: [String: String]?
    var attributes: ObjectAttributes
    var preserveCertOrder: Bool?
}

/// `kind/name/version`, turned into an absolute id with the vault's base URL when answering.
struct ObjectReference: Sendable, Equatable {
    var kind: ObjectKind
    var name: String
    var version: String?

    func url(base: String) -> String {
        var url = "\(base)/\(kind.rawValue)/\(name)"
        if let version { url += "/\(version)" }
        return url
    }
}

/// The last create or import request for a certificate, served by `GET /certificates/{name}/pending`.
struct CertificateOperation: Sendable {
    var requestID: String
    var issuerName: String
    var status: String
    var targetVersion: String
    /// DER; nil for an imported certificate, which was requested elsewhere.
    var signingRequest: [UInt8]?
}
