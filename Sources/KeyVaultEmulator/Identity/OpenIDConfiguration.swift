/// An OpenID Connect discovery document (`.well-known/openid-configuration`), as Entra and the
/// Kubernetes service-account issuer serve it; the members only Entra has are nil for Kubernetes.
struct OpenIDConfiguration: Encodable, Sendable {
    var issuer: String
    var authorizationEndpoint: String?
    var tokenEndpoint: String?
    var deviceAuthorizationEndpoint: String?
    var jwksUri: String
    var responseTypesSupported: [String]
    var subjectTypesSupported: [String]
    var idTokenSigningAlgValuesSupported: [String]
    var tokenEndpointAuthMethodsSupported: [String]?

    enum CodingKeys: String, CodingKey {
        case issuer
        case authorizationEndpoint = "authorization_endpoint"
        case tokenEndpoint = "token_endpoint"
        case deviceAuthorizationEndpoint = "device_authorization_endpoint"
        case jwksUri = "jwks_uri"
        case responseTypesSupported = "response_types_supported"
        case subjectTypesSupported = "subject_types_supported"
        case idTokenSigningAlgValuesSupported = "id_token_signing_alg_values_supported"
        case tokenEndpointAuthMethodsSupported = "token_endpoint_auth_methods_supported"
    }
}
