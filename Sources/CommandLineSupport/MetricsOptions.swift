import ArgumentParser
import Logging
import Telemetry

/// `--metrics-address`, shared by `akvfs mount` and `akvfs csi`.
public struct MetricsOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Serve Prometheus metrics at http://<address>/metrics (e.g. 127.0.0.1:9090, :9090); off by default. See docs/metrics.md.",
            valueName: "host:port"))
    public var metricsAddress: String?

    public init() {}

    /// Bootstraps metrics and starts the endpoint, or fails before anything else starts; nil when off.
    public func start() throws -> MetricsEndpoint? {
        guard let metricsAddress else { return nil }
        do {
            let endpoint = try MetricsEndpoint(address: metricsAddress, registry: MetricsSetup.bootstrap())
            endpoint.start()
            Logger(label: "akvfs.metrics").info("serving Prometheus metrics at http://\(endpoint.boundAddress)/metrics")
            return endpoint
        } catch {
            throw ValidationError(error.description)
        }
    }
}
