import Hummingbird

/// The plain-HTTP managed-identity endpoints: Azure IMDS
/// (`/metadata/identity/oauth2/token`, `Metadata: true`) and the App Service identity endpoint
/// (`/msi/token`, `X-IDENTITY-HEADER`). Both answer times as strings, as the real ones do.
struct ManagedIdentityAPI: Sendable {
    let state: EmulatorState

    func handle(_ request: IncomingRequest) -> (
        response: Response, principal: Principal?, endpoint: LoggedRequest.Endpoint
    )? {
        switch (request.method, request.path.lowercased()) {
        case ("GET", "/metadata/identity/oauth2/token"):
            return respond(.imds) { () throws(ManagedIdentityFailure) in try imds(request) }
        case ("GET", "/msi/token"):
            return respond(.appService) { () throws(ManagedIdentityFailure) in try appService(request) }
        default:
            return nil
        }
    }

    private func respond(
        _ endpoint: LoggedRequest.Endpoint,
        _ body: () throws(ManagedIdentityFailure) -> (Response, Principal)
    ) -> (Response, Principal?, LoggedRequest.Endpoint) {
        do {
            let (response, principal) = try body()
            return (response, principal, endpoint)
        } catch {
            return (error.response(), nil, endpoint)
        }
    }

    private func imds(_ request: IncomingRequest) throws(ManagedIdentityFailure) -> (Response, Principal) {
        guard request.headers[.init("Metadata")!]?.lowercased() == "true" else {
            throw ManagedIdentityFailure(
                status: 400, error: "invalid_request", description: "Required metadata header not specified")
        }
        let (identity, resource, issued) = try issueToken(request.query, resourceIdParameter: "msi_res_id")
        let body = TokenBody(
            accessToken: issued.token,
            clientId: identity.principal.clientId,
            expiresIn: String(issued.expiresIn),
            expiresOn: String(issued.expiresOn),
            extExpiresIn: String(issued.expiresIn),
            notBefore: String(issued.notBefore),
            resource: resource
        )
        return (.json(body), identity.principal)
    }

    private func appService(_ request: IncomingRequest) throws(ManagedIdentityFailure) -> (Response, Principal) {
        guard let header = request.headers[.init("X-IDENTITY-HEADER")!], !header.isEmpty else {
            throw ManagedIdentityFailure(
                status: 400, error: "invalid_request", description: "Required header X-IDENTITY-HEADER not specified")
        }
        if let expected = state.appServiceIdentityHeader, header != expected {
            throw ManagedIdentityFailure(
                status: 401, error: "unauthorized",
                description: "The X-IDENTITY-HEADER value is not the one this endpoint was started with")
        }
        let (identity, resource, issued) = try issueToken(request.query, resourceIdParameter: "mi_res_id")
        let body = TokenBody(
            accessToken: issued.token,
            clientId: identity.principal.clientId,
            expiresOn: String(issued.expiresOn),
            resource: resource
        )
        return (.json(body), identity.principal)
    }

    /// The token answer of both endpoints, times as strings; App Service's has only `expires_on`.
    private struct TokenBody: SnakeCaseKeys {
        var accessToken: String
        var clientId: String
        var expiresIn: String?
        var expiresOn: String
        var extExpiresIn: String?
        var notBefore: String?
        var resource: String
        var tokenType = "Bearer"
    }

    /// What both endpoints do once their header is checked: require an api-version, select the
    /// identity and issue its token for the requested resource.
    private func issueToken(_ query: [String: String], resourceIdParameter: String) throws(ManagedIdentityFailure)
        -> (RegisteredIdentity, String, TokenService.IssuedToken)
    {
        guard query["api-version"] != nil else {
            throw ManagedIdentityFailure(
                status: 400, error: "invalid_request", description: "Required query variable 'api-version' is missing")
        }
        let (identity, resource) = try select(query, resourceIdParameter: resourceIdParameter)
        let issued = state.tokens.issueAccessToken(
            for: identity.principal, audience: resource, authenticationMethod: "2")
        return (identity, resource, issued)
    }

    /// The identity named by `client_id`, `object_id` or the resource id parameter, else the
    /// system-assigned one; and the resource the token is for.
    private func select(_ query: [String: String], resourceIdParameter: String) throws(ManagedIdentityFailure) -> (
        RegisteredIdentity, String
    ) {
        guard let resource = query["resource"], !resource.isEmpty else {
            throw ManagedIdentityFailure(
                status: 400, error: "invalid_request", description: "Required query variable 'resource' is missing")
        }
        let selectors: [(String, (String) -> IdentityRegistry.ManagedIdentitySelector)] = [
            ("client_id", { .clientId($0) }), ("object_id", { .objectId($0) }),
            (resourceIdParameter, { .resourceId($0) }),
        ]
        let given = selectors.compactMap { name, make in query[name].map { make($0) } }
        guard given.count <= 1 else {
            throw ManagedIdentityFailure(
                status: 400,
                error: "invalid_request",
                description: "Only one of client_id, object_id and \(resourceIdParameter) may be given"
            )
        }
        guard let identity = state.identities.managedIdentity(given.first ?? .systemAssigned) else {
            throw ManagedIdentityFailure(status: 400, error: "invalid_request", description: "Identity not found")
        }
        return (identity, resource.replacingSuffix("/.default", with: ""))
    }
}
