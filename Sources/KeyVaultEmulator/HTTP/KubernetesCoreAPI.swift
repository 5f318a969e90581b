import FoundationEssentials
import Hummingbird
import PKI

/// Core v1 Events, as the CSI plugin records them on pods: create (POST) and list (GET), kept in
/// order; enough for tests to see what a pod's `kubectl describe` would show.
struct KubernetesEventsAPI: Sendable {
    let state: EmulatorState

    /// `/api/v1/namespaces/<ns>/events`: the namespace.
    static func route(_ path: String) -> String? {
        guard path.hasPrefix(KubernetesSecretsAPI.prefix) else { return nil }
        let parts = path.dropFirst(KubernetesSecretsAPI.prefix.count).split(
            separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[1] == "events", !parts[0].isEmpty else { return nil }
        return String(parts[0])
    }

    func handle(_ request: IncomingRequest, namespace: String) async -> Response {
        switch request.method {
        case "POST":
            guard case .object(var event)? = try? JSONDecoder().decode(JSONValue.self, from: Data(request.body)),
                let involved = event["involvedObject"]?.object, involved["kind"]?.string != nil,
                involved["name"]?.string != nil,
                let reason = event["reason"]?.string, !reason.isEmpty, event["metadata"]?.object?["name"]?.string != nil
            else {
                return KubernetesAPI.status(
                    422, reason: "Invalid",
                    message: "Event is invalid: metadata.name, involvedObject and reason are required")
            }
            guard ["Normal", "Warning"].contains(event["type"]?.string ?? "") else {
                return KubernetesAPI.status(
                    422, reason: "Invalid",
                    message: "Event is invalid: type: Unsupported value: must be Normal or Warning")
            }
            var metadata = event["metadata"]?.object ?? [:]
            metadata["namespace"] = .string(namespace)
            event["metadata"] = .object(metadata)
            await state.kubernetes.addEvent(.object(event), namespace: namespace)
            return .json(JSONValue.object(event), status: 201)
        case "GET":
            let items = await state.kubernetes.events(namespace: namespace)
            return .json(
                JSONValue.object(["apiVersion": .string("v1"), "kind": .string("EventList"), "items": .array(items)]))
        default:
            return KubernetesAPI.status(
                405, reason: "MethodNotAllowed", message: "the emulator serves create and list of events only")
        }
    }
}

/// Core v1 Secrets, as much as the CSI plugin's Secret sync uses: create (POST), get, update
/// (PUT, with resourceVersion conflicts) and delete (with preconditions), in the API server's
/// shapes and codes. No list, watch, patch or RBAC; any token this emulator minted may do all.
struct KubernetesSecretsAPI: Sendable {
    static let prefix = "/api/v1/namespaces/"

    let state: EmulatorState

    /// `/api/v1/namespaces/<ns>/secrets` or `…/secrets/<name>`: the namespace and the name, if any.
    static func route(_ path: String) -> (namespace: String, name: String?)? {
        guard path.hasPrefix(prefix) else { return nil }
        let parts = path.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false).map(
            String.init)
        guard parts.count == 2 || parts.count == 3, parts[1] == "secrets", !parts[0].isEmpty else { return nil }
        if parts.count == 3 { return parts[2].isEmpty ? nil : (parts[0], parts[2]) }
        return (parts[0], nil)
    }

    func handle(_ request: IncomingRequest, namespace: String, name: String?) async -> Response {
        switch (request.method, name) {
        case ("POST", nil): return await create(request, namespace: namespace)
        case ("GET", let name?): return await get(namespace: namespace, name: name)
        case ("PUT", let name?): return await update(request, namespace: namespace, name: name)
        case ("DELETE", let name?): return await delete(request, namespace: namespace, name: name)
        default:
            return KubernetesAPI.status(
                405, reason: "MethodNotAllowed",
                message: "the emulator serves create, get, update and delete of secrets only")
        }
    }

    private func create(_ request: IncomingRequest, namespace: String) async -> Response {
        guard var secret = try? JSONDecoder().decode(KubernetesSecret.self, from: Data(request.body)) else {
            return KubernetesAPI.status(
                400, reason: "BadRequest", message: "the body of the request is not a v1 Secret")
        }
        if let failure = Self.check(&secret, namespace: namespace) { return failure }
        let name = secret.metadata.name ?? ""
        return await state.kubernetes.createSecret(secret, namespace: namespace).map { .json($0, status: 201) }
            ?? KubernetesAPI.status(409, reason: "AlreadyExists", message: "secrets \"\(name)\" already exists")
    }

    private func get(namespace: String, name: String) async -> Response {
        guard let secret = await state.kubernetes.secret(namespace: namespace, name: name) else {
            return Self.notFound(name)
        }
        return .json(secret)
    }

    private func update(_ request: IncomingRequest, namespace: String, name: String) async -> Response {
        guard var secret = try? JSONDecoder().decode(KubernetesSecret.self, from: Data(request.body)) else {
            return KubernetesAPI.status(
                400, reason: "BadRequest", message: "the body of the request is not a v1 Secret")
        }
        guard secret.metadata.name == name else {
            return KubernetesAPI.status(
                400, reason: "BadRequest",
                message:
                    "the name of the object (\(secret.metadata.name ?? "")) does not match the name on the URL (\(name))"
            )
        }
        if let failure = Self.check(&secret, namespace: namespace) { return failure }
        switch await state.kubernetes.updateSecret(secret, namespace: namespace) {
        case .updated(let stored): return .json(stored)
        case .notFound: return Self.notFound(name)
        case .conflict: return Self.modified(name)
        case .typeChanged:
            return KubernetesAPI.status(
                422, reason: "Invalid",
                message:
                    "Secret \"\(name)\" is invalid: type: Invalid value: \"\(secret.type ?? "")\": field is immutable")
        }
    }

    private func delete(_ request: IncomingRequest, namespace: String, name: String) async -> Response {
        struct DeleteOptions: Decodable {
            struct Preconditions: Decodable {
                var resourceVersion: String?
                var uid: String?
            }
            var preconditions: Preconditions?
        }
        let options =
            request.body.isEmpty ? nil : try? JSONDecoder().decode(DeleteOptions.self, from: Data(request.body))
        guard let secret = await state.kubernetes.secret(namespace: namespace, name: name) else {
            return Self.notFound(name)
        }
        if let expected = options?.preconditions?.resourceVersion, expected != secret.metadata.resourceVersion {
            return KubernetesAPI.status(
                409, reason: "Conflict",
                message:
                    "Operation cannot be fulfilled on secrets \"\(name)\": Precondition failed: ResourceVersion in precondition: "
                    + "\(expected), ResourceVersion in object meta: \(secret.metadata.resourceVersion ?? "")")
        }
        guard
            await state.kubernetes.deleteSecret(
                namespace: namespace, name: name, resourceVersion: secret.metadata.resourceVersion)
        else {
            return Self.modified(name)
        }
        struct Deleted: Encodable {
            struct Details: Encodable {
                var name: String
                var kind = "secrets"
                var uid: String?
            }
            var kind = "Status"
            var apiVersion = "v1"
            var status = "Success"
            var details: Details
        }
        return .json(Deleted(details: .init(name: name, uid: secret.metadata.uid)))
    }

    /// The API server's validation of what the plugin sends; nil when the Secret may be stored.
    private static func check(_ secret: inout KubernetesSecret, namespace: String) -> Response? {
        if let given = secret.metadata.namespace, given != namespace {
            return KubernetesAPI.status(
                400, reason: "BadRequest",
                message: "the namespace of the provided object does not match the namespace sent on the request")
        }
        secret.metadata.namespace = namespace
        let name = secret.metadata.name ?? ""
        func invalid(_ detail: String) -> Response {
            KubernetesAPI.status(422, reason: "Invalid", message: "Secret \"\(name)\" is invalid: \(detail)")
        }
        guard isSubdomain(name) else {
            return invalid(
                "metadata.name: Invalid value: \"\(name)\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'"
            )
        }
        for (key, value) in secret.stringData ?? [:] { secret.data?[key] = Data(value.utf8).base64EncodedString() }
        if secret.data == nil, let strings = secret.stringData {
            secret.data = strings.mapValues { Data($0.utf8).base64EncodedString() }
        }
        secret.stringData = nil
        for (key, value) in secret.data ?? [:] {
            guard !key.isEmpty, key.utf8.count <= 253,
                key.utf8.allSatisfy({ isAlphanumeric($0) || $0 == 0x2D || $0 == 0x2E || $0 == 0x5F })
            else {
                return invalid(
                    "data[\(key)]: Invalid value: \"\(key)\": a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
                )
            }
            guard Data(base64Encoded: value) != nil else { return invalid("data[\(key)]: Invalid value: not base64") }
        }
        let type = secret.type ?? "Opaque"
        secret.type = type
        let keys = Set((secret.data ?? [:]).keys)
        let required: [String] =
            switch type {
            case "kubernetes.io/tls": ["tls.crt", "tls.key"]
            case "kubernetes.io/dockerconfigjson": [".dockerconfigjson"]
            case "kubernetes.io/dockercfg": [".dockercfg"]
            case "kubernetes.io/ssh-auth": ["ssh-privatekey"]
            default: []
            }
        for key in required where !keys.contains(key) { return invalid("data[\(key)]: Required value") }
        if type == "kubernetes.io/basic-auth", !keys.contains("username"), !keys.contains("password") {
            return invalid("data[username]: Required value")
        }
        return nil
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39)
    }

    private static func isSubdomain(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 253 && text.first != "-" && text.first != "." && text.last != "-"
            && text.last != "."
            && text.utf8.allSatisfy {
                ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x2E
            }
    }

    private static func notFound(_ name: String) -> Response {
        KubernetesAPI.status(404, reason: "NotFound", message: "secrets \"\(name)\" not found")
    }

    private static func modified(_ name: String) -> Response {
        KubernetesAPI.status(
            409, reason: "Conflict",
            message:
                "Operation cannot be fulfilled on secrets \"\(name)\": the object has been modified; please apply your changes to the latest version and try again"
        )
    }
}

/// A v1 Secret as stored: what the API server keeps of one.
struct KubernetesSecret: Codable, Sendable {
    struct OwnerReference: Codable, Sendable, Equatable {
        var apiVersion: String
        var kind: String
        var name: String
        var uid: String
        var controller: Bool?
        var blockOwnerDeletion: Bool?
    }

    struct Metadata: Codable, Sendable {
        var name: String?
        var namespace: String?
        var uid: String?
        var resourceVersion: String?
        var creationTimestamp: String?
        var labels: [String: String]?
        var annotations: [String: String]?
        var ownerReferences: [OwnerReference]?
    }

    var apiVersion: String? = "v1"
    var kind: String? = "Secret"
    var metadata: Metadata
    var type: String?
    var data: [String: String]?
    var stringData: [String: String]?
}

enum SecretUpdate {
    case updated(KubernetesSecret)
    case notFound
    case conflict
    case typeChanged
}
