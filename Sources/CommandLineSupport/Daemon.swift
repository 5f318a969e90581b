import Glibc
import Logging
import ServiceLifecycle
import Telemetry
import UnixSignals

/// How both daemons run: their long-running pieces as the services of one `ServiceGroup`.
public enum Daemon {
    /// Runs `services` until they end. SIGTERM, SIGINT and SIGHUP shut them down gracefully, the
    /// last one first, so that each stops after what depends on it (a second signal changes
    /// nothing). The metrics endpoint, if any, runs first and stops last.
    public static func run(
        _ services: [ServiceGroupConfiguration.ServiceConfiguration], metrics: MetricsEndpoint?
    ) async throws {
        // A closed pipe is an error to handle, not a reason to exit.
        signal(SIGPIPE, SIG_IGN)
        var all = services
        if let metrics {
            all.insert(.init(service: MetricsService(endpoint: metrics), serviceName: "metrics"), at: 0)
        }
        let configuration = ServiceGroupConfiguration(
            services: all,
            gracefulShutdownSignals: [.sigterm, .sigint, .sighup],
            // The group logs only at debug level.
            logger: Logger(label: "akvfs.services"))
        try await ServiceGroup(configuration: configuration).run()
    }
}

/// Stops the endpoint when the group stops; it serves from the start, before the group runs.
private struct MetricsService: Service {
    let endpoint: MetricsEndpoint

    func run() async {
        try? await gracefulShutdown()
        endpoint.stop()
    }
}
