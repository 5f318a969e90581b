import FoundationEssentials
import HTTPTransport
import HTTPTypes
import SecretProviderClass

/// Where the Kubernetes API is and how the plugin authenticates to it.
public struct KubernetesAPIConfiguration: Sendable, Equatable {
    /// `https://host:port`, without a trailing slash.
    public var url: String
    /// The plugin's service-account token; read again for every request, since kubelet rotates it.
    public var tokenFile: String
    /// The cluster's CA bundle (PEM); nil trusts the system CAs only.
    public var caFile: String?

    public static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    public init(url: String, tokenFile: String, caFile: String?) {
        self.url = url.hasSuffix("/") ? String(url.dropLast()) : url
        self.tokenFile = tokenFile
        self.caFile = caFile
    }

    /// The in-cluster configuration client-go uses: KUBERNETES_SERVICE_HOST and _PORT, and the
    /// pod's service-account token and CA; nil outside a cluster.
    public static func inCluster(environment: [String: String]) -> KubernetesAPIConfiguration? {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty,
            let port = environment["KUBERNETES_SERVICE_PORT"], !port.isEmpty
        else { return nil }
        let authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        return KubernetesAPIConfiguration(
            url: "https://\(authority)", tokenFile: "\(serviceAccountDirectory)/token",
            caFile: "\(serviceAccountDirectory)/ca.crt")
    }
}

/// The parts of a SecretProviderClass the plugin uses.
public struct SecretProviderClassObject: Sendable, Equatable {
    public var namespace: String
    public var name: String
    public var provider: String
    public var parameters: [String: String]
    /// `spec.secretObjects`: Kubernetes Secrets to fill from the volume's files.
    public var secretObjects: [SecretObject]
}

/// Reads SecretProviderClass objects (secrets-store.csi.x-k8s.io/v1) from the Kubernetes API.
public struct SecretProviderClassReader: Sendable {
    /// The providers whose parameters akvfs understands: the Azure provider's, and its own name.
    public static let providers = ["azure", "akvfs"]
    static let resource = "secretproviderclasses.secrets-store.csi.x-k8s.io"

    let api: KubernetesAPIClient
    public var configuration: KubernetesAPIConfiguration { api.configuration }

    public init(configuration: KubernetesAPIConfiguration, http: any HTTPClient) {
        api = KubernetesAPIClient(configuration: configuration, http: http)
    }

    public func read(namespace: String, name: String) async throws(VolumeError) -> SecretProviderClassObject {
        let reference = "\(namespace)/\(name)"
        guard Self.isObjectName(namespace), Self.isObjectName(name) else {
            throw VolumeError(
                .invalidArgument,
                "secretProviderClass \(reference) is not a valid Kubernetes object name: names are lower-case letters, digits, "
                    + "'-' and '.', at most 253 characters")
        }
        let response = try await api.get(
            "/apis/secrets-store.csi.x-k8s.io/v1/namespaces/\(namespace)/secretproviderclasses/\(name)",
            what: "secretproviderclass \(reference)")
        switch response.head.status.code {
        case 200:
            return try Self.decode(response.body, namespace: namespace, name: name)
        case 404:
            throw VolumeError(
                .notFound,
                "failed to get secretproviderclass \(reference): not found; create it in the pod's namespace "
                    + "(kubectl get secretproviderclass -n \(namespace)), and check that the \(Self.resource) CRD is installed"
            )
        case 401:
            throw VolumeError(
                .unavailable,
                "failed to get secretproviderclass \(reference): the Kubernetes API refused the plugin's service-account token "
                    + "(401); check the plugin's service account and \(configuration.tokenFile)")
        case 403:
            throw VolumeError(
                .permissionDenied,
                "failed to get secretproviderclass \(reference): the plugin's service account may not read it (403); grant get "
                    + "on \(Self.resource) (deploy/kubernetes/rbac.yaml)")
        case let status:
            throw VolumeError(
                .unavailable,
                "failed to get secretproviderclass \(reference): the Kubernetes API answered HTTP \(status); retry later"
            )
        }
    }

    /// `spec.provider` and `spec.parameters` of the object; the other fields are not ours to check.
    /// `package` for akvfs-fuzz.
    package static func decode(_ body: [UInt8], namespace: String, name: String) throws(VolumeError)
        -> SecretProviderClassObject
    {
        struct Object: Decodable {
            struct Spec: Decodable {
                var provider: String?
                var parameters: [String: String]?
                var secretObjects: [SecretObject]?
            }
            struct SecretObject: Decodable {
                struct DataEntry: Decodable {
                    var objectName: String?
                    var key: String?
                }
                var secretName: String?
                var type: String?
                var labels: [String: String]?
                var annotations: [String: String]?
                var data: [DataEntry]?
            }
            var spec: Spec?
        }
        let reference = "\(namespace)/\(name)"
        let object: Object
        do {
            object = try JSONDecoder().decode(Object.self, from: Data(body))
        } catch {
            throw VolumeError(
                .invalidArgument,
                "secretproviderclass \(reference) is not a valid SecretProviderClass: spec.parameters must map names to strings, "
                    + "and spec.secretObjects list secretName, type, labels, annotations and data (objectName, key), all strings"
            )
        }
        guard let provider = object.spec?.provider, !provider.isEmpty else {
            throw VolumeError(.invalidArgument, "provider not set in \(reference): set spec.provider to azure")
        }
        guard providers.contains(provider.lowercased()) else {
            throw VolumeError(
                .invalidArgument,
                "secretproviderclass \(reference) is for provider \(provider); akvfs serves SecretProviderClasses of provider "
                    + "\(providers.joined(separator: " or "))")
        }
        guard let parameters = object.spec?.parameters, !parameters.isEmpty else {
            throw VolumeError(
                .invalidArgument,
                "parameters not set in \(reference): set spec.parameters (keyvaultName, tenantId, objects, …)")
        }
        // The driver trims names and keys of data entries; the rest is taken as written.
        let secretObjects = (object.spec?.secretObjects ?? []).map { entry in
            SecretProviderClass.SecretObject(
                secretName: entry.secretName ?? "", type: entry.type ?? "", labels: entry.labels ?? [:],
                annotations: entry.annotations ?? [:],
                data: (entry.data ?? []).map {
                    .init(objectName: trimmed($0.objectName ?? ""), key: trimmed($0.key ?? ""))
                })
        }
        return SecretProviderClassObject(
            namespace: namespace, name: name, provider: provider, parameters: parameters, secretObjects: secretObjects)
    }

    private static func trimmed(_ text: String) -> String {
        String(text.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }

    /// A DNS-1123 subdomain, which namespaces and object names are; nothing else may reach the URL path.
    static func isObjectName(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 253 && text.first != "-" && text.first != "."
            && text.utf8.allSatisfy {
                ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x2E
            }
    }
}
