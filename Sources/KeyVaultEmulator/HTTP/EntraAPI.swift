import FoundationEssentials
import Hummingbird
import PKI

/// The Entra ID endpoints on `https://localhost:<port>/<tenant>/…`: OIDC discovery, JWKS and the
/// OAuth 2.0 token endpoint for the client-credentials grant (secret, certificate assertion,
/// federated assertion).
struct EntraAPI: Sendable {
    let state: EmulatorState

    static let jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

    /// Returns nil when the path is not an Entra endpoint.
    func handle(_ request: IncomingRequest) async -> (
        response: Response, principal: Principal?, endpoint: LoggedRequest.Endpoint
    )? {
        let segments = request.pathSegments
        guard segments.count >= 2 else { return nil }
        let tenant = segments[0]
        let rest = segments.dropFirst().joined(separator: "/").lowercased()
        let origin = "https://\(request.authority)"
        switch (request.method, rest) {
        case ("GET", "v2.0/.well-known/openid-configuration"), ("GET", ".well-known/openid-configuration"):
            return (discovery(tenant: tenant, origin: origin), nil, .discovery)
        case ("GET", "discovery/v2.0/keys"), ("GET", "discovery/keys"):
            do {
                return (.json(try state.tokens.jwks()), nil, .discovery)
            } catch {
                return (.empty(status: 500), nil, .discovery)
            }
        case ("POST", "oauth2/v2.0/token"), ("POST", "oauth2/token"):
            do {
                let (body, principal) = try token(
                    request, tenant: tenant, tokenEndpoint: "\(origin)/\(segments.joined(separator: "/"))",
                    version2: rest.hasPrefix("oauth2/v2.0"))
                return (body, principal, .token)
            } catch {
                return (error.response(), nil, .token)
            }
        default:
            return nil
        }
    }

    private func discovery(tenant: String, origin: String) -> Response {
        return .json(
            OpenIDConfiguration(
                issuer: "\(origin)/\(state.tenantId)/v2.0",
                authorizationEndpoint: "\(origin)/\(tenant)/oauth2/v2.0/authorize",
                tokenEndpoint: "\(origin)/\(tenant)/oauth2/v2.0/token",
                deviceAuthorizationEndpoint: "\(origin)/\(tenant)/oauth2/v2.0/devicecode",
                jwksUri: "\(origin)/\(tenant)/discovery/v2.0/keys",
                responseTypesSupported: ["code", "id_token", "code id_token", "id_token token"],
                subjectTypesSupported: ["pairwise"],
                idTokenSigningAlgValuesSupported: ["RS256"],
                tokenEndpointAuthMethodsSupported: ["client_secret_post", "private_key_jwt", "client_secret_basic"]
            )
        )
    }

    private func token(_ request: IncomingRequest, tenant: String, tokenEndpoint: String, version2: Bool)
        throws(EntraFailure) -> (Response, Principal)
    {
        guard tenant.lowercased() == state.tenantId.lowercased() else {
            throw EntraFailure(
                status: 400,
                error: "invalid_request",
                code: 90002,
                description:
                    "Tenant '\(tenant)' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. The emulator's tenant is \(state.tenantId)."
            )
        }
        let form = FormEncoding.parse(String(decoding: request.body, as: UTF8.self))
        guard let grantType = form["grant_type"] else { throw missing("grant_type") }
        guard grantType == "client_credentials" else {
            throw EntraFailure(
                status: 400,
                error: "unsupported_grant_type",
                code: 70003,
                description:
                    "The app requested an unsupported grant type '\(grantType)'. The emulator supports client_credentials."
            )
        }
        guard let clientId = form["client_id"], !clientId.isEmpty else { throw missing("client_id") }
        let resource = try requestedResource(form, version2: version2)
        guard let application = state.identities.application(clientId: clientId) else {
            throw EntraFailure(
                status: 400,
                error: "unauthorized_client",
                code: 700016,
                description:
                    "Application with identifier '\(clientId)' was not found in the directory '\(state.tenantId)'."
            )
        }
        let method: String
        if let secret = form["client_secret"] {
            try checkSecret(secret, for: application)
            method = "1"
        } else if let assertion = form["client_assertion"] {
            guard form["client_assertion_type"] == Self.jwtBearer else {
                throw EntraFailure(
                    status: 400,
                    error: "invalid_request",
                    code: 50027,
                    description: "client_assertion_type must be \(Self.jwtBearer)."
                )
            }
            method = try checkAssertion(assertion, for: application, tokenEndpoint: tokenEndpoint)
        } else {
            throw EntraFailure(
                status: 401,
                error: "invalid_client",
                code: 7_000_218,
                description:
                    "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."
            )
        }
        let issued = state.tokens.issueAccessToken(
            for: application.principal, audience: resource, authenticationMethod: method)
        struct Body: SnakeCaseKeys {
            var tokenType = "Bearer"
            var expiresIn: Int64
            var extExpiresIn: Int64
            var accessToken: String
        }
        return (
            .json(Body(expiresIn: issued.expiresIn, extExpiresIn: issued.expiresIn, accessToken: issued.token)),
            application.principal
        )
    }

    /// v2 takes `scope=<resource>/.default`; v1 takes `resource=<resource>`.
    private func requestedResource(_ form: [String: String], version2: Bool) throws(EntraFailure) -> String {
        if !version2, let resource = form["resource"] { return resource }
        guard let scopes = form["scope"] else { throw missing(version2 ? "scope" : "resource") }
        let oidcScopes: Set<String> = ["openid", "profile", "offline_access", "email"]
        let candidates = scopes.split(separator: " ").map(String.init).filter { !oidcScopes.contains($0) }
        guard candidates.count == 1, let scope = candidates.first, scope.hasSuffix("/.default") else {
            throw EntraFailure(
                status: 400,
                error: "invalid_scope",
                code: 1_002_012,
                description:
                    "The provided value for scope '\(scopes)' is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            )
        }
        return String(scope.dropLast("/.default".count))
    }

    private func missing(_ parameter: String) -> EntraFailure {
        EntraFailure(
            status: 400, error: "invalid_request", code: 900144,
            description: "The request body must contain the following parameter: '\(parameter)'.")
    }

    private func checkSecret(_ secret: String, for application: RegisteredIdentity) throws(EntraFailure) {
        guard !secret.isEmpty else { throw missing("client_secret") }
        if !acceptsAnyCredential(application) {
            guard let expected = application.clientSecret, constantTimeEquals(expected, secret) else {
                throw EntraFailure(
                    status: 401,
                    error: "invalid_client",
                    code: 7_000_215,
                    description:
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '\(application.principal.clientId)'."
                )
            }
        }
    }

    /// Certificate assertions are signed by the app (`iss` = `sub` = client id); anything else is
    /// treated as a federated token from the emulator's service-account issuer.
    private func checkAssertion(_ assertion: String, for application: RegisteredIdentity, tokenEndpoint: String)
        throws(EntraFailure) -> String
    {
        let (jws, header, claims) = try state.tokens.readAssertion(assertion)
        if claims.iss?.lowercased() == application.principal.clientId.lowercased() {
            try checkCertificateAssertion(
                jws: jws, header: header, claims: claims, application: application, tokenEndpoint: tokenEndpoint)
            return "2"
        }
        if !acceptsAnyCredential(application), application.federatedSubjects == nil {
            throw EntraFailure(
                status: 400,
                error: "invalid_client",
                code: 70021,
                description:
                    "No matching federated identity record found for presented assertion. Application '\(application.principal.clientId)' has no federated credentials."
            )
        }
        _ = try state.tokens.validateFederatedAssertion(
            jws: jws, claims: claims, acceptedSubjects: application.federatedSubjects)
        return "2"
    }

    private func checkCertificateAssertion(
        jws: JWS,
        header: JOSEHeader,
        claims: AssertionClaims,
        application: RegisteredIdentity,
        tokenEndpoint: String
    ) throws(EntraFailure) {
        guard claims.sub?.lowercased() == application.principal.clientId.lowercased() else {
            throw EntraFailure(
                status: 400, error: "invalid_client", code: 700021,
                description: "Client assertion application identifier doesn't match 'client_id' parameter.")
        }
        guard let algorithm = SignatureAlgorithm(rawValue: header.alg), [.rs256, .ps256].contains(algorithm) else {
            throw EntraFailure(
                status: 400, error: "invalid_client", code: 5_002_738,
                description: "Invalid JWT token. '\(header.alg)' is not a supported signature algorithm.")
        }
        let endpoints = [
            tokenEndpoint, tokenEndpoint.replacingSuffix("/oauth2/v2.0/token", with: "/oauth2/token"),
            tokenEndpoint.replacingSuffix("/oauth2/token", with: "/oauth2/v2.0/token"),
        ]
        guard claims.aud.contains(where: { endpoints.contains($0) }) else {
            throw EntraFailure(
                status: 400,
                error: "invalid_client",
                code: 700024,
                description:
                    "Client assertion audience claim does not match Realm issuer. Expected \(tokenEndpoint), found \(claims.aud.joined(separator: ","))."
            )
        }
        try state.tokens.checkValidity(claims)
        let presented = Thumbprint(header: header)
        if application.certificates.isEmpty {
            guard acceptsAnyCredential(application) else {
                throw EntraFailure(
                    status: 401, error: "invalid_client", code: 700027,
                    description: "The application has no certificate credentials registered.")
            }
            // Open mode: without a registered certificate only an embedded x5c can be checked.
            if let first = header.x5c?.first, let der = Data(base64Encoded: first),
                let certificate = try? Certificate(der: Array(der))
            {
                guard presented.matches(certificate), jws.verify(with: certificate.publicKey, algorithm: algorithm)
                else {
                    throw EntraFailure(
                        status: 401, error: "invalid_client", code: 700027,
                        description: "Client assertion failed signature validation.")
                }
            }
            return
        }
        guard let certificate = application.certificates.first(where: presented.matches) else {
            throw EntraFailure(
                status: 401,
                error: "invalid_client",
                code: 700027,
                description:
                    "The certificate with identifier used to sign the client assertion is not registered on application."
            )
        }
        guard jws.verify(with: certificate.publicKey, algorithm: algorithm) else {
            throw EntraFailure(
                status: 401, error: "invalid_client", code: 700027,
                description: "Client assertion failed signature validation.")
        }
    }

    /// A seed identity that declares no credentials accepts any (open mode); one that declares
    /// some accepts only those.
    private func acceptsAnyCredential(_ application: RegisteredIdentity) -> Bool {
        application.clientSecret == nil && application.certificates.isEmpty && application.federatedSubjects == nil
    }

    private func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let left = Array(a.utf8)
        let right = Array(b.utf8)
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }
}

/// The certificate thumbprint in an assertion header: `x5t` (SHA-1, base64url, padded or not)
/// or `x5t#S256`.
struct Thumbprint {
    var sha1: [UInt8]?
    var sha256: [UInt8]?

    init(header: JOSEHeader) {
        sha1 = header.x5t.flatMap { Base64URL.decode($0) }
        sha256 = header.x5tS256.flatMap { Base64URL.decode($0) }
    }

    func matches(_ certificate: Certificate) -> Bool {
        if let sha256 { return sha256 == certificate.sha256Thumbprint }
        if let sha1 { return sha1 == certificate.sha1Thumbprint }
        return false
    }
}

extension String {
    func replacingSuffix(_ suffix: String, with replacement: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) + replacement : self
    }
}
