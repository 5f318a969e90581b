/// An OpenID Connect discovery document (`.well-known/openid-configuration`), as Entra and the
/// Kubernetes service-account issuer serve it; the members only Entra has are nil for Kubernetes.
struct OpenIDConfiguration: SnakeCaseKeys, Sendable {
    var issuer: String
    var authorizationEndpoint: String?
    var tokenEndpoint: String?
    var deviceAuthorizationEndpoint: String?
    var jwksUri: String
    var responseTypesSupported: [String]
    var subjectTypesSupported: [String]
    var idTokenSigningAlgValuesSupported: [String]
    var tokenEndpointAuthMethodsSupported: [String]?
}
