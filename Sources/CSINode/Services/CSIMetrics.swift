import GRPCCore
import Metrics

/// The plugin's metrics, under the Secrets Store CSI driver's names and labels where it has the
/// same measure, so its dashboards and alerts keep working (docs/metrics.md).
enum CSIMetrics {
    private static let os = ("os_type", "linux")
    /// The driver labels by provider; akvfs serves the Azure provider's classes.
    private static let provider = ("provider", "azure")

    static func published(after duration: Duration) {
        counter("total_node_publish", dimensions: [os, provider])
        record(duration, "akvfs_publish_duration_seconds", [("outcome", "success")])
    }

    static func publishFailed(_ code: RPCError.Code, after duration: Duration) {
        counter("total_node_publish_error", dimensions: [os, provider, ("error_type", name(of: code))])
        record(duration, "akvfs_publish_duration_seconds", [("outcome", "failure")])
    }

    static func unpublished() {
        counter("total_node_unpublish", dimensions: [os])
    }

    static func unpublishFailed() {
        counter("total_node_unpublish_error", dimensions: [os])
    }

    static func secretSynced(after duration: Duration) {
        counter("total_sync_k8s_secret", dimensions: [os, provider])
        record(duration, "sync_k8s_secret_duration_sec", [os])
    }

    /// A volume's object changed version (`rotated`), or the change could not be taken.
    static func rotation(failed errorType: String? = nil) {
        if let errorType {
            counter(
                "total_rotation_reconcile_error", dimensions: [os, ("rotated", "false"), ("error_type", errorType)])
        } else {
            counter("total_rotation_reconcile", dimensions: [os, ("rotated", "true")])
        }
    }

    /// Labels in name order, as the driver's OpenTelemetry exporter writes them.
    private static func counter(_ label: String, dimensions: [(String, String)]) {
        Counter(label: label, dimensions: dimensions.sorted { $0.0 < $1.0 }).increment()
    }

    private static func record(_ duration: Duration, _ label: String, _ dimensions: [(String, String)]) {
        Metrics.Timer(label: label, dimensions: dimensions.sorted { $0.0 < $1.0 }).recordNanoseconds(
            Int64(duration / .nanoseconds(1)))
    }

    /// gRPC's name for the code, as kubelet's events show it.
    static func name(of code: RPCError.Code) -> String {
        switch code {
        case .invalidArgument: "InvalidArgument"
        case .failedPrecondition: "FailedPrecondition"
        case .unauthenticated: "Unauthenticated"
        case .notFound: "NotFound"
        case .alreadyExists: "AlreadyExists"
        case .permissionDenied: "PermissionDenied"
        case .aborted: "Aborted"
        case .resourceExhausted: "ResourceExhausted"
        case .deadlineExceeded: "DeadlineExceeded"
        case .unavailable: "Unavailable"
        case .internalError: "Internal"
        default: "Unknown"
        }
    }
}
