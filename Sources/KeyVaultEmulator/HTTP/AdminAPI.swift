import FoundationEssentials
import Hummingbird
import PKI

/// The emulator's own control surface under `/_emulator/` (a prefix no Key Vault, Entra or IMDS
/// path can start with), on both ports. It is for tests and benchmarks on this machine and has no
/// authentication. See docs/emulator.md.
struct AdminAPI: Sendable {
    static let prefix = "/_emulator"
    static let secretProviderClasses = "/secretproviderclasses/"
    static let vaults = "/vaults/"

    let state: EmulatorState

    struct Failure: Error {
        var status: Int
        var message: String
        func response() -> Response { .json(["error": message], status: status) }
    }

    func handle(_ request: IncomingRequest) async -> Response {
        do {
            return try await route(request)
        } catch {
            return error.response()
        }
    }

    private func route(_ request: IncomingRequest) async throws(Failure) -> Response {
        let path = String(request.path.dropFirst(Self.prefix.count))
        switch (request.method, path) {
        case ("GET", "/info"):
            guard let endpoints = state.endpoints else {
                throw Failure(status: 503, message: "the emulator is still starting")
            }
            return .json(endpoints)
        case ("GET", "/requests"):
            return .json(RequestsBody(requests: await state.log.all()))
        case ("DELETE", "/requests"):
            await state.log.reset()
            return .empty(status: 204)
        case ("GET", "/faults"):
            return .json(FaultsBody(faults: await state.faults.pending.map(FaultRuleJSON.init)))
        case ("POST", "/faults"):
            let rule = try decodeStrictly(FaultRuleJSON.self, request.body).rule()
            await state.faults.add(rule)
            return .json(FaultsBody(faults: await state.faults.pending.map(FaultRuleJSON.init)), status: 201)
        case ("DELETE", "/faults"):
            await state.faults.clear()
            return .empty(status: 204)
        case ("PUT", "/latency"):
            let input = try decodeStrictly(LatencyJSON.self, request.body)
            guard (0...600_000).contains(input.milliseconds) else {
                throw Failure(status: 400, message: "milliseconds must be between 0 and 600000")
            }
            await state.faults.setLatency(milliseconds: input.milliseconds)
            return .empty(status: 204)
        case ("POST", "/service-account-tokens"):
            let input = try decodeStrictly(ServiceAccountTokenRequest.self, request.body)
            let lifetime = Int64(input.lifetimeSeconds ?? 3600)
            guard (60...86_400 * 7).contains(lifetime) else {
                throw Failure(status: 400, message: "lifetimeSeconds must be between 60 and 604800")
            }
            if let issuer = input.issuer, issuer.isEmpty {
                throw Failure(status: 400, message: "issuer must not be empty")
            }
            if let pod = input.pod, pod.name.isEmpty || pod.uid.isEmpty {
                throw Failure(status: 400, message: "pod needs a name and a uid")
            }
            let token = state.tokens.issueServiceAccountToken(
                subject: input.subject,
                audience: input.audience ?? TokenService.federatedAudience,
                lifetimeSeconds: lifetime,
                options: .init(issuedAt: input.issuedAt, issuer: input.issuer, pod: input.pod.map { ($0.name, $0.uid) })
            )
            return .json(ServiceAccountTokenBody(token: token, issuer: TokenService.serviceAccountIssuer), status: 201)
        case ("GET", _) where path.hasPrefix(Self.vaults), ("PUT", _) where path.hasPrefix(Self.vaults):
            let parts = path.dropFirst(Self.vaults.count).split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, parts[1] == "timing", Identifiers.isValidVaultName(String(parts[0])) else {
                throw Failure(
                    status: 404, message: "use \(Self.prefix)\(Self.vaults)<vault>/timing with a valid vault name")
            }
            let vault = String(parts[0])
            if request.method == "PUT" {
                let timing = try decode(VaultTiming.self, request.body)
                if let problem = timing.problem { throw Failure(status: 400, message: problem) }
                await state.timing.set(timing, for: vault)
            }
            return .json(await state.timing.timing(of: vault))
        case ("PUT", _) where path.hasPrefix(Self.secretProviderClasses),
            ("DELETE", _) where path.hasPrefix(Self.secretProviderClasses):
            let parts = path.dropFirst(Self.secretProviderClasses.count).split(
                separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw Failure(status: 404, message: "use \(Self.prefix)\(Self.secretProviderClasses)<namespace>/<name>")
            }
            var object: [UInt8]?
            if request.method == "PUT" {
                guard case .object = try? JSONDecoder().decode(JSONValue.self, from: Data(request.body)) else {
                    throw Failure(status: 400, message: "the body must be a SecretProviderClass as a JSON object")
                }
                object = request.body
            }
            await state.kubernetes.setSecretProviderClass(
                namespace: String(parts[0]), name: String(parts[1]), object: object)
            return .empty(status: request.method == "PUT" ? 201 : 204)
        case ("GET", "/identities"):
            let all = state.identities.identities + [state.identities.systemAssigned]
            return .json([
                "identities": all.map { IdentityJSON(principal: $0.principal, systemAssigned: $0.systemAssigned) }
            ])
        default:
            throw Failure(
                status: 404,
                message:
                    "unknown admin endpoint \(request.method) \(request.path); see docs/emulator.md for GET /info, GET|DELETE /requests, GET|POST|DELETE /faults, PUT /latency, POST /service-account-tokens, GET /identities, PUT|DELETE /secretproviderclasses/<namespace>/<name>"
            )
        }
    }

    /// Admin bodies are written by hand in tests and scripts: a misspelt field is refused.
    private func decodeStrictly<T: StrictlyDecodable>(_ type: T.Type, _ body: [UInt8]) throws(Failure) -> T {
        try decode(Strict<T>.self, body).value
    }

    private func decode<T: Decodable>(_ type: T.Type, _ body: [UInt8]) throws(Failure) -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(body))
        } catch let error as DecodingError {
            throw Failure(status: 400, message: "invalid request body: \(error.readableDescription)")
        } catch {
            throw Failure(status: 400, message: "invalid request body: not JSON")
        }
    }
}

private struct RequestsBody: Encodable { var requests: [LoggedRequest] }
private struct FaultsBody: Encodable { var faults: [FaultRuleJSON] }

private struct LatencyJSON: StrictlyDecodable {
    var milliseconds: Int
    enum CodingKeys: String, CodingKey, CaseIterable { case milliseconds }
}

private struct ServiceAccountTokenRequest: StrictlyDecodable {
    var subject: String
    var audience: String?
    var lifetimeSeconds: Int?
    /// Unix seconds: in the past for an expired token, in the future for a not-yet-valid one.
    var issuedAt: Int64?
    /// Another issuer than the cluster's, for tests of a token the cluster's key signed but did not issue.
    var issuer: String?
    /// The pod a bound token names (kubelet's tokenRequests tokens are bound to their pod).
    var pod: Pod?

    struct Pod: Decodable {
        var name: String
        var uid: String
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case subject, audience, lifetimeSeconds, issuedAt, issuer, pod }
}

private struct ServiceAccountTokenBody: Encodable {
    var token: String
    var issuer: String
}

private struct IdentityJSON: Encodable {
    var name: String?
    var type: String
    var clientId: String
    var objectId: String
    var resourceId: String?
    var systemAssigned: Bool

    init(principal: Principal, systemAssigned: Bool) {
        name = principal.name
        type = principal.kind.rawValue
        clientId = principal.clientId
        objectId = principal.objectId
        resourceId = principal.resourceId
        self.systemAssigned = systemAssigned
    }
}

/// The admin API's JSON form of a fault rule:
/// `{"method":"GET","vault":"demo","pathPrefix":"/secrets/","count":2,"action":"status","status":429,"retryAfter":1}`.
struct FaultRuleJSON: Encodable, StrictlyDecodable {
    var method: String?
    var vault: String?
    var pathPrefix: String?
    var count: Int?
    var action: String?
    var status: Int?
    var retryAfter: Int?
    var hangSeconds: Int?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case method, vault, pathPrefix, count, action, status, retryAfter, hangSeconds
    }

    init(_ rule: FaultRule) {
        method = rule.method
        vault = rule.vault
        pathPrefix = rule.pathPrefix
        count = rule.count
        switch rule.action {
        case .status(let code, let retryAfter):
            action = "status"
            status = code
            self.retryAfter = retryAfter
        case .hang(let seconds):
            action = "hang"
            hangSeconds = seconds
        case .drop:
            action = "drop"
        }
    }

    func rule() throws(AdminAPI.Failure) -> FaultRule {
        let count = self.count ?? 1
        guard count >= 1 else { throw AdminAPI.Failure(status: 400, message: "count must be at least 1") }
        let faultAction: FaultAction
        switch action ?? (status != nil ? "status" : nil) {
        case "status":
            guard let status, (400...599).contains(status) else {
                throw AdminAPI.Failure(status: 400, message: "action 'status' needs 'status' between 400 and 599")
            }
            if let retryAfter, retryAfter < 0 {
                throw AdminAPI.Failure(status: 400, message: "retryAfter must not be negative")
            }
            faultAction = .status(status, retryAfter: retryAfter)
        case "hang":
            faultAction = .hang(seconds: hangSeconds ?? 300)
        case "drop":
            faultAction = .drop
        case let other:
            throw AdminAPI.Failure(status: 400, message: "unknown action '\(other ?? "")'; allowed: status, hang, drop")
        }
        return FaultRule(method: method, vault: vault, pathPrefix: pathPrefix, count: count, action: faultAction)
    }
}
