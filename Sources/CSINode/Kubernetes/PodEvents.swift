import FoundationEssentials
import HTTPTransport
import HTTPTypes
import Logging
import PKI
import SecretProviderClass

/// A pod, as the Kubernetes objects the plugin writes name it (owner references, events).
struct PodReference: Sendable, Equatable {
    var namespace: String
    var name: String
    var uid: String
}

/// Events on pods, where `kubectl describe pod` shows them: rotations applied and failed, with
/// the driver's reasons. Best effort: an event that cannot be recorded is logged and dropped.
struct PodEvents: Sendable {
    enum Kind: String, Sendable {
        case normal = "Normal"
        case warning = "Warning"
    }

    /// The Secrets Store CSI driver's reasons, so alerts written for it keep working.
    enum Reason: String, Sendable {
        case mountRotationComplete = "MountRotationComplete"
        case mountRotationFailed = "MountRotationFailed"
        case secretRotationComplete = "SecretRotationComplete"
        case secretRotationFailed = "SecretRotationFailed"
    }

    let api: KubernetesAPIClient
    /// The node this plugin runs on (the event's source host).
    let node: String
    let logger: Logger

    func record(_ pod: PodReference, _ kind: Kind, _ reason: Reason, _ message: String) async {
        let now = Date()
        let timestamp = JSONValue.string(now.formatted(.iso8601))
        // client-go's event names: the object's name and the time in hex nanoseconds.
        let name = "\(pod.name).\(String(UInt64(now.timeIntervalSince1970 * 1e9), radix: 16))"
        let event: JSONValue = .object([
            "apiVersion": .string("v1"), "kind": .string("Event"),
            "metadata": .object(["name": .string(name), "namespace": .string(pod.namespace)]),
            "involvedObject": .object([
                "apiVersion": .string("v1"), "kind": .string("Pod"), "name": .string(pod.name),
                "namespace": .string(pod.namespace),
                "uid": .string(pod.uid),
            ]),
            "reason": .string(reason.rawValue), "message": .string(message), "type": .string(kind.rawValue),
            "source": .object(["component": .string("akvfs-csi"), "host": .string(node)]),
            "reportingComponent": .string("akvfs-csi"), "reportingInstance": .string(node),
            "firstTimestamp": timestamp, "lastTimestamp": timestamp, "count": .number(1),
        ])
        guard let body = try? JSONEncoder().encode(event) else { return }
        do {
            let response = try await api.send(
                .post, "/api/v1/namespaces/\(pod.namespace)/events", body: Array(body),
                action: "record event \(reason.rawValue) on pod \(pod.namespace)/\(pod.name)")
            guard (200..<300).contains(response.head.status.code) else {
                logger.warning(
                    "the Kubernetes API refused an event; grant create on events (deploy/kubernetes/rbac.yaml)",
                    metadata: [
                        "pod": "\(pod.namespace)/\(pod.name)", "reason": "\(reason.rawValue)",
                        "status": "\(response.head.status.code)",
                    ])
                return
            }
        } catch {
            logger.warning(
                "could not record an event",
                metadata: ["pod": "\(pod.namespace)/\(pod.name)", "error": "\(error.message)"])
        }
    }
}
