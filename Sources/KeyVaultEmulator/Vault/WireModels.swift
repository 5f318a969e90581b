import PKI

/// JSON shapes of Key Vault responses. Timestamps are integer Unix seconds; JWK members and `x5t`
/// are base64url without padding; `cer` is standard base64.
struct WireAttributes: Codable, Sendable {
    var enabled: Bool?
    var nbf: Int64?
    var exp: Int64?
    var created: Int64?
    var updated: Int64?
    var recoveryLevel: String?
    var recoverableDays: Int?
    var exportable: Bool?

    init(_ attributes: ObjectAttributes, exportable: Bool? = nil) {
        enabled = attributes.enabled
        nbf = attributes.notBefore
        exp = attributes.expires
        created = attributes.created
        updated = attributes.updated
        recoveryLevel = "Recoverable+Purgeable"
        recoverableDays = VaultStore.retentionDays
        self.exportable = exportable
    }
}

struct SecretBundleJSON: Encodable {
    var value: String?
    var id: String
    var contentType: String?
    var attributes: WireAttributes
    var tags: [String: String]?
    var kid: String?
    var managed: Bool?
}

struct SecretItemJSON: Encodable {
    var id: String
    var attributes: WireAttributes
    var tags: [String: String]?
    var contentType: String?
    var managed: Bool?
}

struct KeyBundleJSON: Encodable {
    var key: JSONWebKey
    var attributes: WireAttributes
    var tags: [String: String]?
    var managed: Bool?
}

struct KeyItemJSON: Encodable {
    var kid: String
    var attributes: WireAttributes
    var tags: [String: String]?
    var managed: Bool?
}

struct CertificateBundleJSON: Encodable {
    var id: String
    var kid: String
    var sid: String
    var x5t: String
    var cer: String
    var attributes: WireAttributes
    var tags: [String: String]?
    var policy: CertificatePolicy?
    var preserveCertOrder: Bool?
}

struct CertificateItemJSON: Encodable {
    var id: String
    var attributes: WireAttributes
    var tags: [String: String]?
    var x5t: String
}

/// An object in the recycle bin: its usual JSON with the fields Key Vault adds there, written
/// into the same JSON object after the object's own fields.
struct DeletedJSON<Object: Encodable>: Encodable {
    var object: Object
    var recoveryId: String
    var deletedDate: Int64
    var scheduledPurgeDate: Int64

    private enum CodingKeys: String, CodingKey { case recoveryId, deletedDate, scheduledPurgeDate }

    func encode(to encoder: any Encoder) throws {
        try object.encode(to: encoder)
        // Asking the same encoder for a keyed container again continues the object's container.
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(recoveryId, forKey: .recoveryId)
        try container.encode(deletedDate, forKey: .deletedDate)
        try container.encode(scheduledPurgeDate, forKey: .scheduledPurgeDate)
    }
}

struct CertificateOperationJSON: Encodable {
    struct Issuer: Encodable { var name: String }
    var id: String
    var issuer: Issuer
    var csr: String?
    var cancellationRequested: Bool
    var status: String
    var statusDetails: String?
    var target: String
    var requestId: String

    /// What the service says while a certificate is being issued.
    static let pendingDetails =
        "Pending certificate created. Certificate request is in progress. This may take some time based on the issuer provider. Please check again later."

    enum CodingKeys: String, CodingKey {
        case id, issuer, csr, status, target
        case cancellationRequested = "cancellation_requested"
        case statusDetails = "status_details"
        case requestId = "request_id"
    }
}

/// One page of a list answer, written as Key Vault writes it: `value` first, then `nextLink`
/// (null on the last page). JSONEncoder's member order is not fixed on Linux, and clients such
/// as akvfs read the link from the page's tail before decoding the items.
struct PageJSON<Item: Encodable> {
    var value: [Item]
    var nextLink: String?

    var bytes: [UInt8] {
        Array(#"{"value":"#.utf8) + JSON.bytes(value) + Array(#","nextLink":"#.utf8)
            + (nextLink.map(JSON.bytes) ?? Array("null".utf8)) + [UInt8(ascii: "}")]
    }
}

// MARK: Request bodies

struct WireAttributesInput: Decodable, Sendable {
    var enabled: Bool?
    var nbf: Int64?
    var exp: Int64?
    var exportable: Bool?
}

struct SetSecretInput: Decodable {
    var value: String?
    var contentType: String?
    var tags: [String: String]?
    var attributes: WireAttributesInput?
}

struct UpdateInput: Decodable {
    var contentType: String?
    var tags: [String: String]?
    var attributes: WireAttributesInput?
    var keyOperations: [String]?

    enum CodingKeys: String, CodingKey {
        case contentType, tags, attributes
        case keyOperations = "key_ops"
    }
}

struct CreateKeyInput: Decodable {
    var keyType: String?
    var keySize: Int?
    var curve: String?
    var keyOperations: [String]?
    var attributes: WireAttributesInput?
    var tags: [String: String]?
    var exportable: Bool?

    enum CodingKeys: String, CodingKey {
        case keyType = "kty"
        case keySize = "key_size"
        case curve = "crv"
        case keyOperations = "key_ops"
        case attributes, tags, exportable
    }
}

struct ImportKeyInput: Decodable {
    var key: JSONWebKey?
    var hsm: Bool?
    var attributes: WireAttributesInput?
    var tags: [String: String]?

    enum CodingKeys: String, CodingKey {
        case key
        case hsm = "Hsm"
        case attributes, tags
    }
}

/// What a create and an import request both set on the new certificate version.
protocol NewCertificateInput {
    var attributes: WireAttributesInput? { get }
    var tags: [String: String]? { get }
    var preserveCertOrder: Bool? { get }
}

struct CreateCertificateInput: Decodable, NewCertificateInput {
    var policy: CertificatePolicy?
    var attributes: WireAttributesInput?
    var tags: [String: String]?
    var preserveCertOrder: Bool?
}

struct ImportCertificateInput: Decodable, NewCertificateInput {
    var value: String?
    var password: String?
    var policy: CertificatePolicy?
    var attributes: WireAttributesInput?
    var tags: [String: String]?
    var preserveCertOrder: Bool?

    enum CodingKeys: String, CodingKey {
        case value
        case password = "pwd"
        case policy, attributes, tags, preserveCertOrder
    }
}
