import FoundationEssentials
import HTTPTypes
import Hummingbird
import PKI

/// The Kubernetes API calls the CSI plugin makes, on `https://localhost:<port>`, authenticated
/// with a service-account token this emulator minted: GET a SecretProviderClass
/// (`/apis/secrets-store.csi.x-k8s.io/v1/namespaces/<ns>/secretproviderclasses/<name>`), Secrets
/// (`KubernetesSecretsAPI`), and the
/// service-account issuer's discovery document and keys (`/.well-known/openid-configuration`,
/// `/openid/v1/jwks`). Objects are stored through the admin API; answers and errors have the API
/// server's shape.
struct KubernetesAPI: Sendable {
    static let prefix = "/apis/secrets-store.csi.x-k8s.io/v1/namespaces/"
    static let discoveryPath = "/.well-known/openid-configuration"
    static let jwksPath = "/openid/v1/jwks"

    let state: EmulatorState

    /// Whether `path` is one of the Kubernetes API's, so faults and the log can say so.
    static func serves(_ path: String) -> Bool {
        path == discoveryPath || path == jwksPath || path.hasPrefix(prefix)
            || path.hasPrefix(KubernetesSecretsAPI.prefix)
    }

    func handle(_ request: IncomingRequest) async -> Response? {
        if let namespace = KubernetesEventsAPI.route(request.path) {
            guard isAuthenticated(request) else {
                return Self.status(401, reason: "Unauthorized", message: "Unauthorized")
            }
            return await KubernetesEventsAPI(state: state).handle(request, namespace: namespace)
        }
        if let (namespace, name) = KubernetesSecretsAPI.route(request.path) {
            guard isAuthenticated(request) else {
                return Self.status(401, reason: "Unauthorized", message: "Unauthorized")
            }
            return await KubernetesSecretsAPI(state: state).handle(request, namespace: namespace, name: name)
        }
        if request.path == Self.discoveryPath || request.path == Self.jwksPath {
            return issuerDiscovery(request)
        }
        guard request.path.hasPrefix(Self.prefix) else { return nil }
        let parts = request.path.dropFirst(Self.prefix.count).split(separator: "/", omittingEmptySubsequences: false)
            .map(String.init)
        guard parts.count == 3, parts[1] == "secretproviderclasses", !parts[0].isEmpty, !parts[2].isEmpty else {
            return Self.status(404, reason: "NotFound", message: "the server could not find the requested resource")
        }
        guard request.method == "GET" else {
            return Self.status(
                405, reason: "MethodNotAllowed", message: "the emulator serves GET on secretproviderclasses only")
        }
        guard isAuthenticated(request) else { return Self.status(401, reason: "Unauthorized", message: "Unauthorized") }
        let (namespace, name) = (parts[0], parts[2])
        guard let object = await state.kubernetes.secretProviderClass(namespace: namespace, name: name) else {
            return Self.status(
                404, reason: "NotFound",
                message: "secretproviderclasses.secrets-store.csi.x-k8s.io \"\(name)\" not found")
        }
        return .bytes(object, status: 200, contentType: "application/json")
    }

    /// A bearer service-account token this emulator minted and that has not expired.
    private func isAuthenticated(_ request: IncomingRequest) -> Bool {
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else {
            return false
        }
        return state.tokens.validateServiceAccountToken(String(header.dropFirst(7)).trimmedWhitespace) != nil
    }

    /// Service-account issuer discovery (KEP-1393): the OIDC configuration, whose `issuer` is the
    /// one in the tokens, and the keys that sign them. The API server's `jwks_uri` is on its own
    /// external address; here it is the request's.
    private func issuerDiscovery(_ request: IncomingRequest) -> Response {
        guard request.method == "GET" else {
            return Self.status(
                405, reason: "MethodNotAllowed",
                message: "the server does not allow this method on the requested resource")
        }
        guard isAuthenticated(request) else { return Self.status(401, reason: "Unauthorized", message: "Unauthorized") }
        let cache: HTTPFields = [.cacheControl: "public, max-age=3600"]
        if request.path == Self.jwksPath {
            do {
                return .bytes(
                    JSON.bytes(try state.tokens.serviceAccountJWKS()), status: 200,
                    contentType: "application/jwk-set+json", headers: cache)
            } catch {
                return Self.status(
                    500, reason: "InternalError", message: "the service-account key could not be exported: \(error)")
            }
        }
        let configuration = OpenIDConfiguration(
            issuer: TokenService.serviceAccountIssuer,
            jwksUri: "https://\(request.authority)\(Self.jwksPath)",
            responseTypesSupported: ["id_token"],
            subjectTypesSupported: ["public"],
            idTokenSigningAlgValuesSupported: ["RS256"]
        )
        return .bytes(JSON.bytes(configuration), status: 200, contentType: "application/json", headers: cache)
    }

    /// A `v1.Status`, as the API server answers failures.
    static func status(_ code: Int, reason: String, message: String) -> Response {
        struct Status: Encodable {
            var kind = "Status"
            var apiVersion = "v1"
            var status = "Failure"
            var message: String
            var reason: String
            var code: Int
        }
        return .json(Status(message: message, reason: reason, code: code), status: code)
    }
}

/// SecretProviderClass objects by namespace and name, as JSON objects stored through the admin
/// API, and Secrets, as the API stores them.
actor KubernetesObjects {
    private var secretProviderClasses: [String: [UInt8]] = [:]
    private var secrets: [String: KubernetesSecret] = [:]
    private var eventsByNamespace: [String: [JSONValue]] = [:]
    /// The API server's resourceVersion: one counter for every write.
    private var revision = 1000

    func addEvent(_ event: JSONValue, namespace: String) {
        eventsByNamespace[namespace, default: []].append(event)
    }

    func events(namespace: String) -> [JSONValue] {
        eventsByNamespace[namespace] ?? []
    }

    func secret(namespace: String, name: String) -> KubernetesSecret? {
        secrets["\(namespace)/\(name)"]
    }

    /// nil when a Secret of that name exists.
    func createSecret(_ secret: KubernetesSecret, namespace: String) -> KubernetesSecret? {
        let key = "\(namespace)/\(secret.metadata.name ?? "")"
        guard secrets[key] == nil else { return nil }
        var stored = secret
        revision += 1
        stored.metadata.uid = UUID().uuidString.lowercased()
        stored.metadata.resourceVersion = String(revision)
        stored.metadata.creationTimestamp = Date().formatted(.iso8601)
        secrets[key] = stored
        return stored
    }

    /// An update with a resourceVersion must name the current one; without, it always applies.
    func updateSecret(_ secret: KubernetesSecret, namespace: String) -> SecretUpdate {
        let key = "\(namespace)/\(secret.metadata.name ?? "")"
        guard let current = secrets[key] else { return .notFound }
        if let expected = secret.metadata.resourceVersion, expected != current.metadata.resourceVersion {
            return .conflict
        }
        guard secret.type == current.type else { return .typeChanged }
        var stored = secret
        revision += 1
        stored.metadata.uid = current.metadata.uid
        stored.metadata.creationTimestamp = current.metadata.creationTimestamp
        stored.metadata.resourceVersion = String(revision)
        secrets[key] = stored
        return .updated(stored)
    }

    func deleteSecret(namespace: String, name: String, resourceVersion: String?) -> Bool {
        let key = "\(namespace)/\(name)"
        guard let current = secrets[key], current.metadata.resourceVersion == resourceVersion else { return false }
        secrets[key] = nil
        return true
    }

    func secretProviderClass(namespace: String, name: String) -> [UInt8]? {
        secretProviderClasses["\(namespace)/\(name)"]
    }

    func setSecretProviderClass(namespace: String, name: String, object: [UInt8]?) {
        secretProviderClasses["\(namespace)/\(name)"] = object
    }
}
