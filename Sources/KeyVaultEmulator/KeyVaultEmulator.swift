import FoundationEssentials
import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
import Logging
import NIOCore
import NIOSSL
import PKI
import ServiceLifecycle
import Synchronization

/// Where a running emulator can be reached; printed as the ready line of `akvfs-emulator` and
/// served at `GET /_emulator/info`.
public struct EmulatorEndpoints: Sendable, Codable, Equatable {
    public var port: Int
    public var imdsPort: Int
    /// Entra authority host: `https://localhost:<port>`.
    public var authorityHost: String
    public var tenantId: String
    public var caFile: String?
    /// `https://{vault}.vault.localhost:<port>/`
    public var vaultURLTemplate: String
    /// The resource (audience) vault tokens must be issued for: `https://vault.localhost:<port>`.
    public var resource: String
    /// Base URL for IMDS (`AZURE_POD_IDENTITY_AUTHORITY_HOST`, akvfs `--imds-endpoint`).
    public var imdsEndpoint: String
    /// `IDENTITY_ENDPOINT` for the App Service managed-identity protocol.
    public var appServiceEndpoint: String
    public var adminURL: String
    public var serviceAccountIssuer: String

    public func vaultURL(_ vault: String) -> String {
        "https://\(vault).vault.localhost:\(port)/"
    }
}

/// A local Azure Key Vault with Entra ID token and IMDS endpoints, for tests, demos and
/// benchmarks. Start it in-process with `start(_:)` (port 0 picks free ports), or run the
/// `akvfs-emulator` executable.
public final class KeyVaultEmulator: Sendable {
    public struct Configuration: Sendable {
        /// Address both ports listen on.
        public var bindHost = "127.0.0.1"
        public var port = 0
        public var imdsPort = 0
        /// Where to write the CA certificate (PEM) that clients must trust.
        public var caOutputPath: String?
        public var seed = Seed()
        /// When set, App Service identity requests must send this `X-IDENTITY-HEADER`.
        public var appServiceIdentityHeader: String?
        public var logger = Logger(label: "akvfs-emulator")
        /// The emulator's notion of now, for token lifetimes and timestamps.
        public var clock: @Sendable () -> Date = { Date() }

        public init() {}
    }

    public let endpoints: EmulatorEndpoints
    /// The CA certificate (PEM) that signed the emulator's TLS certificate.
    public let caPEM: String
    private let state: EmulatorState
    private let servers: Mutex<[RunningServer]>

    /// A listener running in its own service group, so it can be shut down gracefully.
    private struct RunningServer: Sendable {
        var group: ServiceGroup
        var task: Task<Void, any Error>
        var port: Int
    }

    private init(endpoints: EmulatorEndpoints, caPEM: String, state: EmulatorState, servers: [RunningServer]) {
        self.endpoints = endpoints
        self.caPEM = caPEM
        self.state = state
        self.servers = Mutex(servers)
    }

    public static func start(_ configuration: Configuration) async throws(EmulatorError) -> KeyVaultEmulator {
        let state = try EmulatorState(
            seed: configuration.seed,
            appServiceIdentityHeader: configuration.appServiceIdentityHeader,
            clock: configuration.clock
        )
        try await SeedLoader.apply(configuration.seed, to: state.store, now: configuration.clock())

        let tls: TLSMaterial
        let tlsConfiguration: TLSConfiguration
        do {
            tls = try TLSMaterial.generate(now: configuration.clock())
            tlsConfiguration = TLSConfiguration.makeServerConfiguration(
                certificateChain: [
                    .certificate(try NIOSSLCertificate(bytes: Array(tls.serverCertificate.pem().utf8), format: .pem))
                ],
                privateKey: .privateKey(
                    try NIOSSLPrivateKey(bytes: Array(try tls.serverKey.pkcs8PEM().utf8), format: .pem))
            )
        } catch {
            throw .cryptography("\(error)")
        }
        if let path = configuration.caOutputPath { try tls.writeCA(to: path) }

        let https = try await serve(
            EmulatorResponder(state: state, listener: .https),
            server: try tlsServer(tlsConfiguration),
            host: configuration.bindHost,
            port: configuration.port,
            logger: configuration.logger
        )
        let http: RunningServer
        do throws(EmulatorError) {
            http = try await serve(
                EmulatorResponder(state: state, listener: .http),
                server: .http1(),
                host: configuration.bindHost,
                port: configuration.imdsPort,
                logger: configuration.logger
            )
        } catch {
            https.task.cancel()
            throw error
        }

        let port = https.port
        let imdsHost = configuration.bindHost.contains(":") ? "[\(configuration.bindHost)]" : configuration.bindHost
        let endpoints = EmulatorEndpoints(
            port: port,
            imdsPort: http.port,
            authorityHost: "https://localhost:\(port)",
            tenantId: state.tenantId,
            caFile: configuration.caOutputPath,
            vaultURLTemplate: "https://{vault}.vault.localhost:\(port)/",
            resource: "https://vault.localhost:\(port)",
            imdsEndpoint: "http://\(imdsHost):\(http.port)",
            appServiceEndpoint: "http://\(imdsHost):\(http.port)/msi/token",
            adminURL: "https://localhost:\(port)\(AdminAPI.prefix)",
            serviceAccountIssuer: TokenService.serviceAccountIssuer
        )
        state.endpoints = endpoints
        return KeyVaultEmulator(
            endpoints: endpoints, caPEM: tls.caCertificate.pem(), state: state, servers: [https, http])
    }

    /// HTTP/1.1 and HTTP/2 (chosen by ALPN) over TLS.
    private static func tlsServer(_ tlsConfiguration: TLSConfiguration) throws(EmulatorError) -> HTTPServerBuilder {
        do {
            return try .http2Upgrade(tlsConfiguration: tlsConfiguration)
        } catch {
            throw .cryptography("configuring TLS failed: \(error)")
        }
    }

    private final class StartFailure: Sendable {
        let reason = Mutex<String?>(nil)
    }

    /// Runs a Hummingbird application in a task and returns once it listens (with the bound
    /// port), or throws why it could not.
    private static func serve(
        _ responder: EmulatorResponder,
        server: HTTPServerBuilder,
        host: String,
        port: Int,
        logger: Logger
    ) async throws(EmulatorError) -> RunningServer {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let failure = StartFailure()
        let application = Application(
            responder: responder,
            server: server,
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) },
            logger: logger
        )
        let group = ServiceGroup(
            services: [application], gracefulShutdownSignals: [], cancellationSignals: [], logger: logger)
        let task = Task {
            defer { continuation.finish() }
            do {
                try await group.run()
            } catch {
                failure.reason.withLock { $0 = String(describing: error) }
                throw error
            }
        }
        for await bound in ports { return RunningServer(group: group, task: task, port: bound) }
        throw .cannotListen(
            port: port, reason: failure.reason.withLock { $0 } ?? "the server stopped before it was listening")
    }

    /// Stops both listeners: new connections are refused, open requests get a moment to finish,
    /// then whatever is left (a hung request, say) is cancelled.
    public func stop() async {
        let running = servers.withLock { servers in
            defer { servers.removeAll() }
            return servers
        }
        for server in running { await server.group.triggerGracefulShutdown() }
        let deadline = Task {
            try await Task.sleep(for: .seconds(3))
            for server in running { server.task.cancel() }
        }
        for server in running { _ = try? await server.task.value }
        deadline.cancel()
    }

    public func vaultURL(_ vault: String) -> String { endpoints.vaultURL(vault) }

    // MARK: Test controls (also available over HTTP under /_emulator/)

    public func requests() async -> [LoggedRequest] { await state.log.all() }
    public func resetRequests() async { await state.log.reset() }
    public func inject(_ rule: FaultRule) async { await state.faults.add(rule) }
    public func clearFaults() async { await state.faults.clear() }
    public func setLatency(milliseconds: Int) async { await state.faults.setLatency(milliseconds: milliseconds) }
    /// The service's timing in `vault` (deletes and recoveries that take time, throttling, empty middle pages).
    public func setTiming(_ timing: VaultTiming, for vault: String) async throws(EmulatorError) {
        if let problem = timing.problem { throw .invalidTiming(problem) }
        await state.timing.set(timing, for: vault)
    }

    /// A service-account token from the emulator's issuer, as kubelet would project it. `issuedAt`
    /// (unix seconds, default now) in the past makes an expired token; `pod` binds it to a pod.
    public func serviceAccountToken(
        subject: String,
        audience: String = "api://AzureADTokenExchange",
        lifetimeSeconds: Int64 = 3600,
        issuedAt: Int64? = nil,
        pod: (name: String, uid: String)? = nil
    ) -> String {
        state.tokens.issueServiceAccountToken(
            subject: subject, audience: audience, lifetimeSeconds: lifetimeSeconds,
            options: .init(issuedAt: issuedAt, pod: pod))
    }

    /// The identities the emulator knows (from the seed, plus the system-assigned one).
    public var identities: [(name: String?, clientId: String, objectId: String)] {
        (state.identities.identities + [state.identities.systemAssigned]).map {
            ($0.principal.name, $0.principal.clientId, $0.principal.objectId)
        }
    }
}
