import FoundationEssentials
import HTTPTransport
import HTTPTypes
import Logging
import ObjectFormats
import PKI
import SecretProviderClass

/// Fills the Kubernetes Secrets of a SecretProviderClass's `secretObjects` from a volume's files,
/// as the Secrets Store CSI driver does, and lets them go with the pods that use them.
///
/// Ownership: a Secret akvfs creates carries the annotation `csi.akvfs.io/synced-by: akvfs` and
/// the driver's label `secrets-store.csi.k8s.io/managed: "true"`, and an owner reference to every
/// pod that mounts a volume filling it (on any node). Kubernetes' garbage collector deletes it once
/// all those pods are gone, even while no plugin runs; the plugin also deletes it itself when it
/// unpublishes the last such pod's volume. A Secret without the annotation is never changed or
/// deleted. Updates are whole-object PUTs of what was read, with its resourceVersion, so fields
/// akvfs does not know survive and concurrent writers (other nodes) retry instead of overwriting.
struct SecretSync: Sendable {
    static let ownerAnnotation = "csi.akvfs.io/synced-by"
    static let ownerAnnotationValue = "akvfs"

    let api: KubernetesAPIClient
    let logger: Logger

    /// Creates or updates the Secret so it holds `data` and names `pod` among its owners.
    func sync(_ object: SecretObject, data: [String: SecretBytes], for pod: PodReference) async throws(VolumeError) {
        let reference = "\(pod.namespace)/\(object.secretName)"
        for _ in 0..<5 {
            guard var stored = try await read(object.secretName, namespace: pod.namespace) else {
                if try await create(object, data: data, for: pod) { return }
                continue  // created meanwhile by another node: update that one
            }
            defer { stored.wipe() }
            var current = stored.object
            guard Self.isOurs(current) else {
                throw VolumeError(
                    .failedPrecondition,
                    "Secret \(reference) exists and akvfs did not create it (it lacks the annotation \(Self.ownerAnnotation)); "
                        + "akvfs never changes or deletes a Secret it did not create: rename secretName \(object.secretName) in the "
                        + "SecretProviderClass, or delete the Secret")
            }
            guard current["type"]?.string ?? "Opaque" == object.type else {
                throw VolumeError(
                    .failedPrecondition,
                    "Secret \(reference) has type \(current["type"]?.string ?? "Opaque") but secretObjects asks for \(object.type); "
                        + "a Secret's type cannot change: delete the Secret and akvfs creates it again")
            }
            // The data never goes into the JSON tree as strings (they could not be zeroed): it is
            // compared as base64 bytes here and written straight into the request body.
            let sameData = Self.holds(stored.data, data)
            let before = current
            Self.apply(object, for: pod, to: &current)
            guard current != before || !sameData else { return }
            var body = Self.body(current, data: data)
            defer { body.wipe() }
            if try await update(body, name: object.secretName, namespace: pod.namespace) { return }
        }
        throw VolumeError(
            .aborted,
            "failed to update Secret \(reference): it kept changing under concurrent updates; kubelet's retry will try again"
        )
    }

    /// Takes `pod` off the Secret's owners, and deletes the Secret when it was the last.
    func release(_ secretName: String, for pod: PodReference) async throws(VolumeError) {
        for _ in 0..<5 {
            guard var stored = try await read(secretName, namespace: pod.namespace) else { return }
            defer { stored.wipe() }
            var current = stored.object
            guard Self.isOurs(current) else { return }
            var metadata = current["metadata"]?.object ?? [:]
            let owners = metadata["ownerReferences"]?.array ?? []
            let remaining = owners.filter { $0.object?["uid"]?.string != pod.uid }
            if remaining.isEmpty {
                if try await delete(
                    secretName, namespace: pod.namespace, resourceVersion: metadata["resourceVersion"]?.string)
                {
                    return
                }
                continue
            }
            guard remaining.count != owners.count else { return }
            metadata["ownerReferences"] = .array(remaining)
            current["metadata"] = .object(metadata)
            // The data goes back as the Secret holds it, base64 bytes copied into the body.
            var body = Self.body(current, base64: stored.data)
            defer { body.wipe() }
            if try await update(body, name: secretName, namespace: pod.namespace) { return }
        }
        throw VolumeError(
            .aborted,
            "failed to release Secret \(pod.namespace)/\(secretName): it kept changing under concurrent updates")
    }

    // MARK: The object

    static func isOurs(_ secret: [String: JSONValue]) -> Bool {
        secret["metadata"]?.object?["annotations"]?.object?[ownerAnnotation]?.string == ownerAnnotationValue
    }

    /// The class's labels and annotations over what is there, akvfs's marks, and the pod among the
    /// owners. The data is not part of it: `body(_:data:)` writes it.
    static func apply(_ object: SecretObject, for pod: PodReference, to secret: inout [String: JSONValue]) {
        var metadata = secret["metadata"]?.object ?? [:]
        var labels = metadata["labels"]?.object ?? [:]
        for (key, value) in object.labels { labels[key] = .string(value) }
        labels[SecretObject.managedLabel] = .string("true")
        metadata["labels"] = .object(labels)
        var annotations = metadata["annotations"]?.object ?? [:]
        for (key, value) in object.annotations { annotations[key] = .string(value) }
        annotations[ownerAnnotation] = .string(ownerAnnotationValue)
        metadata["annotations"] = .object(annotations)
        var owners = metadata["ownerReferences"]?.array ?? []
        if !owners.contains(where: { $0.object?["uid"]?.string == pod.uid }) {
            owners.append(
                .object([
                    "apiVersion": .string("v1"), "kind": .string("Pod"), "name": .string(pod.name),
                    "uid": .string(pod.uid),
                ]))
        }
        metadata["ownerReferences"] = .array(owners)
        secret["metadata"] = .object(metadata)
        secret["type"] = .string(object.type)
    }

    /// Whether the Secret's data (`held`, base64 as stored) is exactly `data`, compared in base64
    /// without making a string of either.
    static func holds(_ held: [String: [UInt8]], _ data: [String: SecretBytes]) -> Bool {
        guard held.count == data.count else { return false }
        return data.allSatisfy { key, bytes in
            guard let stored = held[key], stored.count == Base64Writer.encodedCount(bytes.count) else { return false }
            var encoded = base64(bytes)
            defer { encoded.wipe() }
            return stored == encoded
        }
    }

    /// Standard base64 with padding, as a Secret's data holds it, in a buffer the caller wipes.
    static func base64(_ bytes: SecretBytes) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(Base64Writer.encodedCount(bytes.count))
        bytes.withUnsafeBufferPointer { Base64Writer.append($0, to: &output) }
        return output
    }

    // MARK: Calls

    private func path(_ namespace: String, _ name: String? = nil) -> String {
        "/api/v1/namespaces/\(namespace)/secrets" + (name.map { "/\($0)" } ?? "")
    }

    /// nil when there is no such Secret. The answer holds the Secret's data: it is zeroed once
    /// split, and the data stays bytes (`StoredSecret`) that the caller wipes.
    private func read(_ name: String, namespace: String) async throws(VolumeError) -> StoredSecret? {
        var response = try await api.send(.get, path(namespace, name), action: "get Secret \(namespace)/\(name)")
        var body = response.body
        response.body = []
        defer { body.wipe() }
        switch response.head.status.code {
        case 200:
            guard let object = StoredSecret(json: body) else {
                throw VolumeError(
                    .unavailable,
                    "failed to get Secret \(namespace)/\(name): the Kubernetes API's answer is not a Secret")
            }
            return object
        case 404: return nil
        case let status: throw failure(status, body, "get Secret \(namespace)/\(name)")
        }
    }

    /// false when a Secret of that name appeared meanwhile.
    private func create(_ object: SecretObject, data: [String: SecretBytes], for pod: PodReference)
        async throws(VolumeError) -> Bool
    {
        var secret: [String: JSONValue] = [
            "apiVersion": .string("v1"), "kind": .string("Secret"),
            "metadata": .object(["name": .string(object.secretName), "namespace": .string(pod.namespace)]),
        ]
        Self.apply(object, for: pod, to: &secret)
        var body = Self.body(secret, data: data)
        defer { body.wipe() }
        let action = "create Secret \(pod.namespace)/\(object.secretName)"
        let response = try await api.send(.post, path(pod.namespace), body: body.array, action: action)
        switch response.head.status.code {
        case 200, 201:
            logger.info(
                "created Secret", metadata: ["secret": "\(pod.namespace)/\(object.secretName)", "pod": "\(pod.name)"])
            return true
        case 409: return false
        case let status: throw failure(status, response.body, action)
        }
    }

    /// PUTs `body`, a whole Secret with its resourceVersion; false on a conflict (someone else
    /// wrote it since it was read).
    private func update(_ body: SecretBuffer, name: String, namespace: String) async throws(VolumeError) -> Bool {
        let action = "update Secret \(namespace)/\(name)"
        let response = try await api.send(.put, path(namespace, name), body: body.array, action: action)
        switch response.head.status.code {
        case 200, 201:
            logger.info("updated Secret", metadata: ["secret": "\(namespace)/\(name)"])
            return true
        case 409, 404: return false
        case let status: throw failure(status, response.body, action)
        }
    }

    private func delete(_ name: String, namespace: String, resourceVersion: String?) async throws(VolumeError) -> Bool {
        let options: [String: JSONValue] = [
            "apiVersion": .string("v1"), "kind": .string("DeleteOptions"),
            "preconditions": .object(resourceVersion.map { ["resourceVersion": .string($0)] } ?? [:]),
        ]
        let action = "delete Secret \(namespace)/\(name)"
        let response = try await api.send(
            .delete, path(namespace, name), body: Array((try? JSONEncoder().encode(options)) ?? Data("{}".utf8)),
            action: action)
        switch response.head.status.code {
        case 200, 202, 404:
            logger.info("deleted Secret: its last pod is gone", metadata: ["secret": "\(namespace)/\(name)"])
            return true
        case 409: return false
        case let status: throw failure(status, response.body, action)
        }
    }

    /// What the API server said, in words a person can act on. Its message never holds Secret data.
    private func failure(_ status: Int, _ body: [UInt8], _ action: String) -> VolumeError {
        let message = (try? JSONDecoder().decode([String: JSONValue].self, from: Data(body)))?["message"]?.string
        let said = message.map { ": \($0)" } ?? ""
        switch status {
        case 401:
            return VolumeError(
                .unavailable, "failed to \(action): the Kubernetes API refused the plugin's service-account token (401)"
            )
        case 403:
            return VolumeError(
                .permissionDenied,
                "failed to \(action): the plugin's service account may not (403); grant get, create, update and delete on secrets "
                    + "(deploy/kubernetes/rbac.yaml)\(said)")
        case 422, 400:
            return VolumeError(
                .invalidArgument, "failed to \(action): the Kubernetes API refused it (\(status))\(said)")
        default:
            return VolumeError(
                .unavailable, "failed to \(action): the Kubernetes API answered HTTP \(status)\(said); retry later")
        }
    }

    /// The JSON of `secret` (which has no data) with `data` as its data: the object without it,
    /// then `"data":{...}` written into the buffer directly, so the only copy of the base64 is one
    /// that is zeroed.
    static func body(_ secret: [String: JSONValue], data: [String: SecretBytes]) -> SecretBuffer {
        body(secret, sizes: data.mapValues { Base64Writer.encodedCount($0.count) }) { name, output in
            data[name]?.withUnsafeBufferPointer { Base64Writer.append($0, to: &output) }
        }
    }

    /// The same with data that is base64 already, as a Secret holds it.
    static func body(_ secret: [String: JSONValue], base64 data: [String: [UInt8]]) -> SecretBuffer {
        body(secret, sizes: data.mapValues(\.count)) { name, output in
            output.append(contentsOf: data[name] ?? [])
        }
    }

    /// `sizes`: each data key and the length of its base64; `writeValue` appends that base64.
    private static func body(
        _ secret: [String: JSONValue], sizes: [String: Int], writeValue: (String, inout [UInt8]) -> Void
    ) -> SecretBuffer {
        var rest = secret
        rest["data"] = nil
        let object = Array((try? JSONEncoder().encode(rest)) ?? Data("{}".utf8))
        guard object.last == UInt8(ascii: "}") else { return SecretBuffer(object) }
        let names = sizes.keys.sorted()
        // Names are not secrets; the encoder escapes them.
        let encodedNames = names.map { Array((try? JSONEncoder().encode($0)) ?? Data(#""""#.utf8)) }
        // Room for all of it up front: an array that grows leaves its old buffer unzeroed.
        var output: [UInt8] = []
        output.reserveCapacity(
            zip(names, encodedNames).reduce(object.count + 10) { total, entry in
                total + entry.1.count + 4 + (sizes[entry.0] ?? 0)
            })
        output.append(contentsOf: object.dropLast())
        if output.count > 1 { output.append(UInt8(ascii: ",")) }
        output.append(contentsOf: #""data":{"#.utf8)
        for (index, (name, encodedName)) in zip(names, encodedNames).enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            output.append(contentsOf: encodedName)
            output.append(contentsOf: #":""#.utf8)
            writeValue(name, &output)
            output.append(UInt8(ascii: "\""))
        }
        output.append(contentsOf: "}}".utf8)
        return SecretBuffer(output)
    }
}

/// A request body with Secret data in it, zeroed once sent.
struct SecretBuffer {
    private(set) var array: [UInt8]

    init(_ array: [UInt8]) { self.array = array }

    mutating func wipe() {
        array.wipe()
    }
}
