internal import COpenSSL

/// The elliptic curves Key Vault keys use, named as in JWK "crv".
public enum ECCurve: String, Sendable, CaseIterable, Codable {
    case p256 = "P-256"
    case p384 = "P-384"
    case p521 = "P-521"

    /// Bytes in one coordinate (and in the private scalar, and in r and s of a JOSE signature).
    var coordinateByteCount: Int {
        switch self {
        case .p256: 32
        case .p384: 48
        case .p521: 66
        }
    }

    /// The group name OpenSSL uses.
    var openSSLGroupName: StaticString {
        switch self {
        case .p256: "prime256v1"
        case .p384: "secp384r1"
        case .p521: "secp521r1"
        }
    }

    /// Accepts the names OpenSSL reports for these groups.
    init?(openSSLGroupName name: String) {
        switch name {
        case "prime256v1", "secp256r1", "P-256": self = .p256
        case "secp384r1", "P-384": self = .p384
        case "secp521r1", "P-521": self = .p521
        default: return nil
        }
    }
}

public enum KeyAlgorithm: Sendable, Hashable, CustomStringConvertible {
    case rsa(bits: Int)
    case ec(ECCurve)

    public var description: String {
        switch self {
        case .rsa(let bits): "RSA \(bits)"
        case .ec(let curve): "EC \(curve.rawValue)"
        }
    }

    /// What a key handle holds; RSA and EC on the three Key Vault curves are all PKI supports.
    init(of pkey: OpaquePointer, operation: String) throws(PKIError) {
        if EVP_PKEY_is_a(pkey, "RSA") == 1 || EVP_PKEY_is_a(pkey, "RSA-PSS") == 1 {
            self = .rsa(bits: Int(EVP_PKEY_get_bits(pkey)))
            return
        }
        if EVP_PKEY_is_a(pkey, "EC") == 1 {
            var name = [CChar](repeating: 0, count: 80)
            var length = 0
            guard EVP_PKEY_get_group_name(pkey, &name, name.count, &length) == 1 else {
                throw .openSSL(
                    operation, "the EC key does not use a named curve; only P-256, P-384 and P-521 are supported")
            }
            let groupName = String(decoding: name.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard let curve = ECCurve(openSSLGroupName: groupName) else {
                throw PKIError(
                    operation: operation,
                    reason: "EC curve '\(groupName)' is not supported; only P-256, P-384 and P-521 are")
            }
            self = .ec(curve)
            return
        }
        let typeName = EVP_PKEY_get0_type_name(pkey).map { String(cString: $0) } ?? "unknown"
        throw PKIError(
            operation: operation,
            reason: "key type '\(typeName)' is not supported; only RSA and EC (P-256, P-384, P-521) are")
    }
}

/// JWS algorithms (RFC 7518 section 3.1) that Key Vault and Entra ID use.
public enum SignatureAlgorithm: String, Sendable, CaseIterable {
    case rs256 = "RS256"
    case ps256 = "PS256"
    case es256 = "ES256"
    case es384 = "ES384"
    case es512 = "ES512"

    var digestName: StaticString {
        switch self {
        case .rs256, .ps256, .es256: "SHA256"
        case .es384: "SHA384"
        case .es512: "SHA512"
        }
    }

    /// RS256 and PS256 take any RSA key; each ES algorithm takes exactly one curve.
    func accepts(_ key: KeyAlgorithm) -> Bool {
        switch (self, key) {
        case (.rs256, .rsa), (.ps256, .rsa): true
        case (.es256, .ec(.p256)), (.es384, .ec(.p384)), (.es512, .ec(.p521)): true
        default: false
        }
    }

    var keyRequirement: String {
        switch self {
        case .rs256, .ps256: "an RSA key"
        case .es256: "an EC P-256 key"
        case .es384: "an EC P-384 key"
        case .es512: "an EC P-521 key"
        }
    }
}

/// A JSON Web Key as Key Vault sends and accepts it (RFC 7517, with Key Vault's "-HSM" key
/// types). Byte members are base64url without padding.
public struct JSONWebKey: Codable, Sendable, Hashable {
    public var kid: String?
    public var kty: String
    // swift-format-ignore: AlwaysUseLowerCamelCase
    // The JWK member's own name (RFC 7517), as every other member here.
    public var key_ops: [String]?
    public var n: String?
    public var e: String?
    public var d: String?
    public var dp: String?
    public var dq: String?
    public var qi: String?
    public var p: String?
    public var q: String?
    public var crv: String?
    public var x: String?
    public var y: String?
    public var k: String?

    public init(
        kty: String, kid: String? = nil, key_ops: [String]? = nil,
        n: String? = nil, e: String? = nil, d: String? = nil,
        dp: String? = nil, dq: String? = nil, qi: String? = nil, p: String? = nil, q: String? = nil,
        crv: String? = nil, x: String? = nil, y: String? = nil, k: String? = nil
    ) {
        self.kid = kid
        self.kty = kty
        self.key_ops = key_ops
        self.n = n
        self.e = e
        self.d = d
        self.dp = dp
        self.dq = dq
        self.qi = qi
        self.p = p
        self.q = q
        self.crv = crv
        self.x = x
        self.y = y
        self.k = k
    }

    /// This key without its private members (d, dp, dq, qi, p, q, and a symmetric k).
    public var publicOnly: JSONWebKey {
        var key = self
        key.d = nil
        key.dp = nil
        key.dq = nil
        key.qi = nil
        key.p = nil
        key.q = nil
        key.k = nil
        return key
    }

    /// The family a JWK key type belongs to; Key Vault's HSM types share their software type's
    /// members. The reasons are the exact texts akvfs shows for keys it cannot turn into PEM.
    enum Family {
        case rsa
        case ec(ECCurve)

        init(of jwk: JSONWebKey, operation: String) throws(PKIError) {
            switch jwk.kty {
            case "RSA", "RSA-HSM":
                self = .rsa
            case "EC", "EC-HSM":
                guard let crv = jwk.crv else {
                    throw PKIError(operation: operation, reason: "JWK member 'crv' is missing")
                }
                if crv == "P-256K" || crv == "SECP256K1" {
                    throw PKIError(operation: operation, reason: "curve P-256K is not supported")
                }
                guard let curve = ECCurve(rawValue: crv) else {
                    throw PKIError(operation: operation, reason: "curve \(crv) is not supported")
                }
                self = .ec(curve)
            default:
                throw PKIError(operation: operation, reason: "key type '\(jwk.kty)' currently not supported")
            }
        }
    }

    /// The decoded bytes of a required base64url member.
    func bytes(_ member: KeyPath<JSONWebKey, String?>, named name: String, operation: String) throws(PKIError)
        -> [UInt8]
    {
        guard let text = self[keyPath: member] else {
            throw PKIError(operation: operation, reason: "JWK member '\(name)' is missing")
        }
        guard let bytes = Base64URL.decode(text), !bytes.isEmpty else {
            throw PKIError(operation: operation, reason: "JWK member '\(name)' is not valid base64url")
        }
        return bytes
    }
}
