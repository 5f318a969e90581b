import FoundationEssentials
import PKI

/// Who an access token names, read from its payload without checking the signature (the token
/// came from our own credential; this is for telling the operator, e.g. in `akvfs check`).
public struct TokenClaims: Sendable, Decodable {
    public var tenantId: String?
    public var objectId: String?
    public var applicationId: String?
    public var audience: String?
    public var issuer: String?
    public var managedIdentityResourceId: String?

    enum CodingKeys: String, CodingKey {
        case tenantId = "tid"
        case objectId = "oid"
        case applicationId = "appid"
        case azp
        case audience = "aud"
        case issuer = "iss"
        case managedIdentityResourceId = "xms_mirid"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        tenantId = try? c.decodeIfPresent(String.self, forKey: .tenantId)
        objectId = try? c.decodeIfPresent(String.self, forKey: .objectId)
        applicationId =
            (try? c.decodeIfPresent(String.self, forKey: .applicationId))
            ?? (try? c.decodeIfPresent(String.self, forKey: .azp))
        audience = try? c.decodeIfPresent(String.self, forKey: .audience)
        issuer = try? c.decodeIfPresent(String.self, forKey: .issuer)
        managedIdentityResourceId = try? c.decodeIfPresent(String.self, forKey: .managedIdentityResourceId)
    }

    /// Nil when the token is not a JWT (Entra tokens for Key Vault always are).
    public init?(token: AccessToken) {
        let parts = token.token.split(separator: ".")
        guard parts.count == 3, let payload = Base64URL.decode(String(parts[1])),
            let claims = try? JSONDecoder().decode(TokenClaims.self, from: Data(payload))
        else { return nil }
        self = claims
    }
}
