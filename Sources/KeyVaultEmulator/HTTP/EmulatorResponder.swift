import FoundationEssentials
import HTTPTypes
import Hummingbird
import NIOCore

/// The single entry point for every request on either port: admin API, then latency and fault
/// injection, then Key Vault, Entra or managed identity, then the request log.
struct EmulatorResponder: HTTPResponder {
    enum Listener: Sendable {
        /// The HTTPS port: Key Vault on `<vault>.vault.localhost`, Entra ID on `localhost`.
        case https
        /// The plain-HTTP port: IMDS and the App Service identity endpoint.
        case http
    }

    let state: EmulatorState
    let listener: Listener

    static let vaultHostSuffix = ".vault.localhost"

    func respond(to request: Request, context: EmulatorRequestContext) async throws -> Response {
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        let incoming = IncomingRequest(request: request, body: Array(buffer.readableBytesView))
        if incoming.path == AdminAPI.prefix || incoming.path.hasPrefix(AdminAPI.prefix + "/") {
            return await AdminAPI(state: state).handle(incoming)
        }

        let vault = vaultName(incoming)
        let endpoint: LoggedRequest.Endpoint =
            listener == .http
            ? .imds
            : vault != nil
                ? .keyVault
                : KubernetesAPI.serves(incoming.path)
                    ? .kubernetes
                    : ResourceManagerAPI.serves(incoming.path) ? .resourceManager : .token
        let latency = await state.faults.latencyMilliseconds
        if latency > 0 { try await Task.sleep(for: .milliseconds(latency)) }

        if let fault = await state.faults.take(method: incoming.method, vault: vault, path: incoming.path) {
            return try await inject(fault, incoming, vault: vault, endpoint: endpoint, context: context)
        }

        let (response, principal, answeredEndpoint) = await dispatch(incoming, vault: vault)
        await record(
            incoming, vault: vault, endpoint: answeredEndpoint, status: response.status.code, principal: principal,
            fault: nil)
        return response
    }

    private func dispatch(_ request: IncomingRequest, vault: String?) async -> (
        Response, Principal?, LoggedRequest.Endpoint
    ) {
        switch listener {
        case .http:
            if let answer = ManagedIdentityAPI(state: state).handle(request) { return answer }
            return (
                ManagedIdentityFailure(
                    status: 404, error: "not_found", description: "No identity endpoint at \(request.path)"
                ).response(), nil, .imds
            )
        case .https:
            if let vault {
                let (response, principal) = await keyVault(request, vault: vault)
                return (response, principal, .keyVault)
            }
            if ["localhost", "127.0.0.1", "::1"].contains(request.hostName) {
                if let answer = await KubernetesAPI(state: state).handle(request) { return (answer, nil, .kubernetes) }
                if let answer = ResourceManagerAPI(state: state).handle(request) {
                    return (answer, nil, .resourceManager)
                }
                if let answer = await EntraAPI(state: state).handle(request) { return answer }
            }
            let failure = KeyVaultFailure(
                status: 404,
                code: "NotFound",
                message:
                    "Nothing is served at \(request.authority)\(request.path). Vaults are at https://<vault>\(Self.vaultHostSuffix):<port>/, Entra ID at https://localhost:<port>/<tenant>/oauth2/v2.0/token."
            )
            return (failure.response(), nil, .token)
        }
    }

    /// `<vault>.vault.localhost` names a vault; other hosts do not.
    private func vaultName(_ request: IncomingRequest) -> String? {
        guard listener == .https, request.hostName.hasSuffix(Self.vaultHostSuffix) else { return nil }
        let name = String(request.hostName.dropLast(Self.vaultHostSuffix.count))
        return name.isEmpty ? nil : name
    }

    // MARK: Key Vault

    private func keyVault(_ request: IncomingRequest, vault: String) async -> (Response, Principal?) {
        var headers = serviceHeaders(request)
        do throws(KeyVaultFailure) {
            guard Identifiers.isValidVaultName(vault) else {
                throw KeyVaultFailure.badParameter(
                    "'\(vault)' is not a valid vault name. Vault names are \(Identifiers.vaultNameRule).")
            }
            let apiVersion = try checkedAPIVersion(request.query["api-version"])
            guard let token = bearerToken(request) else {
                headers[.wwwAuthenticate] = challenge(request)
                throw KeyVaultFailure.unauthorized("AKV10000: Request is missing a Bearer or PoP token.")
            }
            let resource = resourceURL(request)
            let claims: AccessTokenClaims
            do {
                claims = try state.tokens.validateAccessToken(token, resource: resource)
            } catch {
                headers[.wwwAuthenticate] = challenge(request)
                throw error
            }
            let principal =
                state.identities.resolve(claims.oid).map(\.principal)
                ?? Principal(
                    name: nil, kind: .servicePrincipal, clientId: claims.appid, objectId: claims.oid,
                    resourceId: claims.xmsMirid)
            do {
                var response = try await KeyVaultAPI(state: state).handle(
                    request, vault: vault, principal: principal, apiVersion: apiVersion)
                response.headers.append(contentsOf: headers)
                return (response, principal)
            } catch {
                return (error.response(extraHeaders: headers), principal)
            }
        } catch {
            return (error.response(extraHeaders: headers), nil)
        }
    }

    /// Any well-formed api-version is accepted: `7.6`, `7.6-preview.1`, `2025-07-01`, `2026-05-01-preview`.
    private func checkedAPIVersion(_ value: String?) throws(KeyVaultFailure) -> String {
        guard let value, !value.isEmpty else {
            throw .badParameter(
                "The api-version query parameter is required, for example api-version=7.6. There is no default.")
        }
        let numbered = value.wholeMatch(of: /\d+\.\d+(-preview(\.\d+)?)?/) != nil
        let dated = value.wholeMatch(of: /\d{4}-\d{2}-\d{2}(-preview)?/) != nil
        guard numbered || dated, state.acceptAnyAPIVersion || Self.knownAPIVersions.contains(value) else {
            throw .badParameter(
                "The specified version (\(value)) is not recognized. Consider using the latest supported version (\(Self.latestAPIVersion))."
            )
        }
        return value
    }

    static let latestAPIVersion = "2026-04-01"
    /// The data-plane versions the service answers (its REST specification's stable and preview
    /// versions, and the older ones SDKs still send); anything else is a 400, as from the service.
    static let knownAPIVersions: Set<String> = [
        "2016-10-01", "7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "2025-07-01", "2026-04-01",
        "7.0-preview", "7.1-preview", "7.2-preview", "7.3-preview", "7.4-preview.1", "7.5-preview.1", "7.6-preview.1",
        "7.6-preview.2",
        "2025-06-01-preview", "2026-01-01-preview", "2026-03-01-preview", "2026-05-01-preview", "2026-07-01-preview",
    ]

    private func bearerToken(_ request: IncomingRequest) -> String? {
        guard let header = request.headers[.authorization] else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmedWhitespace
        return token.isEmpty ? nil : token
    }

    /// The resource a vault token must be issued for, as the challenge announces it.
    private func resourceURL(_ request: IncomingRequest) -> String {
        "https://vault.localhost\(request.portSuffix)"
    }

    private func challenge(_ request: IncomingRequest) -> String {
        let resource = state.challengeResource ?? resourceURL(request)
        return
            #"Bearer authorization="https://localhost\#(request.portSuffix)/\#(state.tenantId)", resource="\#(resource)""#
    }

    /// Headers the real service sends on every data-plane answer.
    private func serviceHeaders(_ request: IncomingRequest) -> HTTPFields {
        var headers = HTTPFields()
        headers[HTTPField.Name("x-ms-request-id")!] = Identifiers.newUUID()
        if let clientRequestId = request.headers[HTTPField.Name("x-ms-client-request-id")!] {
            headers[HTTPField.Name("x-ms-client-request-id")!] = clientRequestId
        }
        headers[HTTPField.Name("x-ms-keyvault-service-version")!] = "1.9.0.0"
        headers[HTTPField.Name("x-ms-keyvault-region")!] = "emulator"
        headers[HTTPField.Name("x-ms-keyvault-network-info")!] =
            "conn_type=Ipv4;addr=127.0.0.1;act_addr_fam=InterNetwork;"
        headers[.cacheControl] = "no-cache"
        headers[HTTPField.Name("Pragma")!] = "no-cache"
        headers[.expires] = "-1"
        headers[.strictTransportSecurity] = "max-age=31536000;includeSubDomains"
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        return headers
    }

    // MARK: Faults and log

    private func inject(
        _ fault: FaultAction,
        _ request: IncomingRequest,
        vault: String?,
        endpoint: LoggedRequest.Endpoint,
        context: EmulatorRequestContext
    ) async throws -> Response {
        switch fault {
        case .status(let status, let retryAfter):
            await record(
                request, vault: vault, endpoint: endpoint, status: status, principal: nil, fault: "status \(status)")
            var response = faultResponse(status: status, retryAfter: retryAfter, endpoint: endpoint)
            // The service's own headers come with its failures too (a 429 has x-ms-request-id).
            if endpoint == .keyVault { response.headers.append(contentsOf: serviceHeaders(request)) }
            return response
        case .hang(let seconds):
            await record(request, vault: vault, endpoint: endpoint, status: 0, principal: nil, fault: "hang")
            let deadline = ContinuousClock.now.advanced(by: .seconds(seconds))
            while ContinuousClock.now < deadline {
                // The client gave up (closed the connection, or reset its HTTP/2 stream): nothing
                // is left to answer, and other streams on the connection must not be harmed.
                guard context.channel.isActive else { throw ConnectionDropped() }
                try await Task.sleep(for: .milliseconds(50))
            }
            try await drop(context)
        case .drop:
            await record(request, vault: vault, endpoint: endpoint, status: 0, principal: nil, fault: "drop")
            try await drop(context)
        }
    }

    private struct ConnectionDropped: Error {}

    /// Closes the connection (the whole HTTP/2 connection, not just the stream) so the client
    /// sees it end without an answer. The connection is the channel whose parent is the
    /// listening socket: an HTTP/1.1 request's own channel, an HTTP/2 stream's parent.
    private func drop(_ context: EmulatorRequestContext) async throws -> Never {
        var connection = context.channel
        while let parent = connection.parent, parent.parent != nil { connection = parent }
        try? await connection.close()
        throw ConnectionDropped()
    }

    private func faultResponse(status: Int, retryAfter: Int?, endpoint: LoggedRequest.Endpoint) -> Response {
        switch endpoint {
        case .keyVault:
            let failure: KeyVaultFailure =
                switch status {
                case 429: .throttled(retryAfter: retryAfter)
                case 500...599: .serverError(status: status, retryAfter: retryAfter)
                default:
                    KeyVaultFailure(
                        status: status, code: "InjectedFault",
                        message: "An injected fault answered this request with \(status).")
                }
            return failure.response()
        case .kubernetes:
            return KubernetesAPI.status(
                status, reason: "InternalError", message: "An injected fault answered this request with \(status).")
        case .token, .discovery:
            var response = EntraFailure(
                status: status, error: status == 429 ? "temporarily_unavailable" : "server_error", code: 50196,
                description: "An injected fault answered this request with \(status)."
            ).response()
            if let retryAfter { response.headers[.retryAfter] = String(retryAfter) }
            return response
        case .resourceManager:
            var response = ResourceManagerAPI.failure(
                status, status == 429 ? "TooManyRequests" : "InjectedFault",
                "An injected fault answered this request with \(status).")
            if let retryAfter { response.headers[.retryAfter] = String(retryAfter) }
            return response
        case .imds, .appService:
            var response = ManagedIdentityFailure(
                status: status, error: status == 429 ? "too_many_requests" : "unknown",
                description: "An injected fault answered this request with \(status)."
            ).response()
            if let retryAfter { response.headers[.retryAfter] = String(retryAfter) }
            return response
        }
    }

    private func record(
        _ request: IncomingRequest,
        vault: String?,
        endpoint: LoggedRequest.Endpoint,
        status: Int,
        principal: Principal?,
        fault: String?
    ) async {
        let time = state.now().timeIntervalSince1970
        await state.log.record { sequence in
            LoggedRequest(
                sequence: sequence,
                time: time,
                endpoint: endpoint,
                method: request.method,
                host: request.authority,
                vault: vault,
                path: request.path,
                query: request.rawQuery,
                status: status,
                identity: principal.map { .init(name: $0.name, clientId: $0.clientId, objectId: $0.objectId) },
                fault: fault
            )
        }
    }
}
