import FoundationEssentials

/// JOSE header fields the emulator writes and reads.
struct JOSEHeader: Codable, Sendable {
    var alg: String
    var typ: String?
    var kid: String?
    var x5t: String?
    var x5tS256: String?
    var x5c: [String]?

    enum CodingKeys: String, CodingKey {
        case alg, typ, kid, x5t, x5c
        case x5tS256 = "x5t#S256"
    }
}

/// Claims of the access tokens the emulator issues (Entra v1 style, as Key Vault receives them).
struct AccessTokenClaims: Codable, Sendable {
    var aud: String
    var iss: String
    var iat: Int64
    var nbf: Int64
    var exp: Int64
    var appid: String
    var appidacr: String
    var idp: String
    var idtyp: String
    var oid: String
    var sub: String
    var tid: String
    var uti: String
    var ver: String
    var xmsMirid: String?

    enum CodingKeys: String, CodingKey {
        case aud, iss, iat, nbf, exp, appid, appidacr, idp, idtyp, oid, sub, tid, uti, ver
        case xmsMirid = "xms_mirid"
    }
}

/// Claims of JWTs presented to the token endpoint (client assertions and federated tokens).
/// Clients disagree on number formats (MSAL sends floats) and `aud` may be a string or a list,
/// so every field is read leniently.
struct AssertionClaims: Decodable, Sendable {
    var iss: String?
    var sub: String?
    var aud: [String]
    var exp: Double?
    var nbf: Double?
    var iat: Double?

    enum CodingKeys: String, CodingKey { case iss, sub, aud, exp, nbf, iat }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        iss = try c.decodeIfPresent(String.self, forKey: .iss)
        sub = try c.decodeIfPresent(String.self, forKey: .sub)
        if let single = try? c.decodeIfPresent(String.self, forKey: .aud) {
            aud = [single]
        } else {
            aud = try c.decodeIfPresent([String].self, forKey: .aud) ?? []
        }
        exp = try Self.number(c, .exp)
        nbf = try Self.number(c, .nbf)
        iat = try Self.number(c, .iat)
    }

    private static func number(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> Double? {
        if let value = try? c.decodeIfPresent(Double.self, forKey: key) { return value }
        if let text = try c.decodeIfPresent(String.self, forKey: key) { return Double(text) }
        return nil
    }
}

/// Claims of the Kubernetes-style service-account tokens the emulator mints for workload identity tests.
struct ServiceAccountTokenClaims: Codable, Sendable {
    var iss: String
    var sub: String
    var aud: [String]
    var iat: Int64
    var nbf: Int64
    var exp: Int64
    var jti: String
    var kubernetes: Kubernetes?

    /// `kubernetes.io`: who the token is for, as the API server writes it.
    struct Kubernetes: Codable, Sendable {
        var namespace: String
        var serviceaccount: Reference
        var pod: Reference?
    }

    struct Reference: Codable, Sendable {
        var name: String
        var uid: String
    }

    enum CodingKeys: String, CodingKey {
        case iss, sub, aud, iat, nbf, exp, jti
        case kubernetes = "kubernetes.io"
    }
}

/// The service-account issuer's key set (`/openid/v1/jwks`), members as the API server names them.
struct ServiceAccountJWKS: Codable, Sendable {
    struct Key: Codable, Sendable {
        var use: String
        var kty: String
        var kid: String
        var alg: String
        var n: String?
        var e: String?
    }
    var keys: [Key]
}
