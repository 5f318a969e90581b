import FoundationEssentials
import HTTPTypes
import Hummingbird

/// The one Kubernetes API call the CSI plugin makes: GET a SecretProviderClass
/// (`/apis/secrets-store.csi.x-k8s.io/v1/namespaces/<ns>/secretproviderclasses/<name>`), on
/// `https://localhost:<port>`, authenticated with a service-account token this emulator minted.
/// Objects are stored through the admin API; answers and errors have the API server's shape.
struct KubernetesAPI: Sendable {
    static let prefix = "/apis/secrets-store.csi.x-k8s.io/v1/namespaces/"

    let state: EmulatorState

    func handle(_ request: IncomingRequest) async -> Response? {
        guard request.path.hasPrefix(Self.prefix) else { return nil }
        let parts = request.path.dropFirst(Self.prefix.count).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, parts[1] == "secretproviderclasses", !parts[0].isEmpty, !parts[2].isEmpty else {
            return Self.status(404, reason: "NotFound", message: "the server could not find the requested resource")
        }
        guard request.method == "GET" else {
            return Self.status(405, reason: "MethodNotAllowed", message: "the emulator serves GET on secretproviderclasses only")
        }
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer "),
            state.tokens.validateServiceAccountToken(String(header.dropFirst(7)).trimmedWhitespace) != nil
        else {
            return Self.status(401, reason: "Unauthorized", message: "Unauthorized")
        }
        let (namespace, name) = (parts[0], parts[2])
        guard let object = await state.kubernetes.secretProviderClass(namespace: namespace, name: name) else {
            return Self.status(404, reason: "NotFound", message: "secretproviderclasses.secrets-store.csi.x-k8s.io \"\(name)\" not found")
        }
        return .bytes(object, status: 200, contentType: "application/json")
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

/// SecretProviderClass objects by namespace and name, as JSON objects stored through the admin API.
actor KubernetesObjects {
    private var secretProviderClasses: [String: [UInt8]] = [:]

    func secretProviderClass(namespace: String, name: String) -> [UInt8]? {
        secretProviderClasses["\(namespace)/\(name)"]
    }

    func setSecretProviderClass(namespace: String, name: String, object: [UInt8]?) {
        secretProviderClasses["\(namespace)/\(name)"] = object
    }
}
