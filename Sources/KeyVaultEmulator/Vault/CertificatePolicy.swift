import PKI

/// Key Vault's certificate policy, as sent and returned on the wire.
struct CertificatePolicy: Codable, Sendable {
    var id: String?
    var keyProperties: KeyProperties?
    var secretProperties: SecretProperties?
    var x509Properties: X509Properties?
    var lifetimeActions: [JSONValue]?
    var issuer: IssuerParameters?
    var attributes: JSONValue?

    enum CodingKeys: String, CodingKey {
        case id
        case keyProperties = "key_props"
        case secretProperties = "secret_props"
        case x509Properties = "x509_props"
        case lifetimeActions = "lifetime_actions"
        case issuer
        case attributes
    }

    struct KeyProperties: Codable, Sendable {
        var exportable: Bool?
        var keyType: String?
        var keySize: Int?
        var reuseKey: Bool?
        var curve: String?

        enum CodingKeys: String, CodingKey {
            case exportable
            case keyType = "kty"
            case keySize = "key_size"
            case reuseKey = "reuse_key"
            case curve = "crv"
        }
    }

    struct SecretProperties: Codable, Sendable {
        var contentType: String?
    }

    struct X509Properties: Codable, Sendable {
        var subject: String?
        var extendedKeyUsages: [String]?
        var subjectAlternativeNames: SubjectAlternativeNames?
        var keyUsage: [String]?
        var validityMonths: Int?

        enum CodingKeys: String, CodingKey {
            case subject
            case extendedKeyUsages = "ekus"
            case subjectAlternativeNames = "sans"
            case keyUsage = "key_usage"
            case validityMonths = "validity_months"
        }
    }

    struct SubjectAlternativeNames: Codable, Sendable {
        var emails: [String]?
        var dnsNames: [String]?
        var userPrincipalNames: [String]?
        var uris: [String]?
        var ipAddresses: [String]?

        enum CodingKeys: String, CodingKey {
            case emails
            case dnsNames = "dns_names"
            case userPrincipalNames = "upns"
            case uris
            case ipAddresses
        }
    }

    struct IssuerParameters: Codable, Sendable {
        var name: String?
        var certificateType: String?
        var certificateTransparency: Bool?

        enum CodingKeys: String, CodingKey {
            case name
            case certificateType = "cty"
            case certificateTransparency = "cert_transparency"
        }
    }

    static let pkcs12ContentType = "application/x-pkcs12"
    static let pemContentType = "application/x-pem-file"

    /// Fills in what Key Vault assumes when a field is absent (RSA 2048, exportable, PKCS#12,
    /// 12 months, issuer Self).
    func withDefaults() -> CertificatePolicy {
        var policy = self
        var key = policy.keyProperties ?? KeyProperties()
        if key.keyType == nil { key.keyType = key.curve == nil ? "RSA" : "EC" }
        if key.keyType?.hasPrefix("RSA") == true, key.keySize == nil { key.keySize = 2048 }
        if key.keyType?.hasPrefix("EC") == true, key.curve == nil { key.curve = "P-256" }
        if key.exportable == nil { key.exportable = true }
        if key.reuseKey == nil { key.reuseKey = false }
        policy.keyProperties = key
        var secret = policy.secretProperties ?? SecretProperties()
        if secret.contentType == nil { secret.contentType = Self.pkcs12ContentType }
        policy.secretProperties = secret
        var x509 = policy.x509Properties ?? X509Properties()
        if x509.validityMonths == nil { x509.validityMonths = 12 }
        policy.x509Properties = x509
        var issuer = policy.issuer ?? IssuerParameters()
        if issuer.name == nil { issuer.name = "Self" }
        policy.issuer = issuer
        if policy.lifetimeActions == nil { policy.lifetimeActions = Self.defaultLifetimeActions("AutoRenew") }
        return policy
    }

    /// The service's default lifetime actions: `actionType` when 80% of the lifetime has passed.
    static func defaultLifetimeActions(_ actionType: String) -> [JSONValue] {
        [
            .object([
                "trigger": .object(["lifetime_percentage": .number(80)]),
                "action": .object(["action_type": .string(actionType)]),
            ])
        ]
    }
}
