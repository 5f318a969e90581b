import Metrics
import Prometheus

/// Prometheus metrics for a daemon: swift-metrics bootstrapped into a registry that
/// `MetricsEndpoint` serves. Names and labels are listed in docs/metrics.md.
public enum MetricsSetup {
    /// Bootstraps the process's metrics system (once per process) and answers the registry.
    public static func bootstrap() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Key Vault answers in milliseconds to seconds; publishes and Secret syncs take longer.
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250),
            .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
        ]
        // The Secrets Store CSI driver's buckets for its histogram of the same name.
        factory.durationHistogramBuckets["sync_k8s_secret_duration_sec"] = [
            0.1, 0.2, 0.3, 0.4, 0.5, 1, 1.5, 2, 2.5, 3, 5, 10, 15, 30,
        ].map {
            .milliseconds(Int64($0 * 1000))
        }
        MetricsSystem.bootstrap(factory)
        return registry
    }
}
