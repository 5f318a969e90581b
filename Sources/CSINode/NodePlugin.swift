import CLinux
import Continuity
// `struct stat` comes from Glibc and again from CoreFoundation's headers (Foundation is loaded
// through SwiftProtobuf, GRPCCore and Subprocess). Which of the two owns its members depends on
// the order the compiler happens to load them, so MemberImportVisibility needs both imported.
internal import CoreFoundation
import DescriptorPassing
import FuseBridge
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Glibc
import HTTPTransport
import Logging
import ObjectCache
import SecretProviderClass
import ServiceLifecycle
import Synchronization
import VaultFS

public struct NodePluginConfiguration: Sendable {
    /// The CSI driver name; the CSIDriver object and pods' `csi.driver` use the same.
    public var driverName = NodePluginConfiguration.defaultDriverName
    public var version = "0.0.0"
    public var nodeID: String
    /// The unix socket kubelet (through node-driver-registrar) connects to.
    public var socketPath: String
    /// Holds the shared FUSE mount (`<stateDirectory>/mount`); nothing is written there.
    public var stateDirectory = NodePluginConfiguration.defaultStateDirectory
    /// Kubelet's root directory: target paths must be beneath its `pods` directory.
    public var kubeletDirectory = KubeletDirectory.defaultPath
    /// Allow useVMManagedIdentity: any pod on the node could then read what the node's identity can.
    public var allowNodeIdentity = false
    public var sources = SourceSettings()
    public var cache = CacheConfiguration()
    public var http = HTTPClientConfiguration()
    /// Where SecretProviderClass objects are read; nil when volumes carry their parameters as attributes.
    public var kubernetes: KubernetesAPIConfiguration?
    public var publishTimeout: Duration = .seconds(90)
    /// Limits checked before any call (docs/kubernetes.md, Security).
    public var limits = Limits()

    public struct Limits: Sendable {
        /// Files one volume may have.
        public var objectsPerVolume = 1000
        /// Bytes of volume attributes and secrets in a publish, and of a SecretProviderClass's parameters.
        public var requestBytes = 1 << 20
        /// First publishes in progress at once.
        public var concurrentPublishes = 16

        public init() {}
    }
    /// How long the kernel trusts names and attributes, and remembers missing names (see
    /// FileSystemConfiguration.init(root:metadataTTL:negativeTTL:)).
    public var metadataTimeout: Double = 1
    public var negativeTimeout: Double = 10
    /// An akvfs-keeper's socket: the shared mount and the volumes outlive a crash of the plugin,
    /// and a stop leaves them to the next start (docs/kubernetes.md, Restarts and upgrades).
    public var keeperSocket: String?
    /// A file that exists while this process serves CSI: the plugin container's readiness probe
    /// (during a rolling update the socket answers for whichever process serves it).
    public var readyFile: String?
    /// How long a plugin that took the volumes over waits for the previous one to close the socket.
    public var socketReleaseTimeout: Duration = .seconds(30)

    public static let defaultDriverName = "csi.akvfs.io"
    public static let defaultStateDirectory = "/run/akvfs/csi"

    public init(nodeID: String, socketPath: String) {
        self.nodeID = nodeID
        self.socketPath = socketPath
    }
}

/// Kubelet speaks to it as `unix:///path`; the transport wants the path.
public enum CSIEndpoint {
    public static func socketPath(_ endpoint: String) -> String? {
        let scheme = "unix://"
        let path = endpoint.hasPrefix(scheme) ? String(endpoint.dropFirst(scheme.count)) : endpoint
        guard path.hasPrefix("/"), path.utf8.count < 108 else { return nil }
        return path
    }
}

public struct NodePluginError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// `akvfs csi`: one FUSE mount whose root holds a directory per published volume, and the CSI
/// Identity and Node services on a unix socket that publish those directories onto pods'
/// volume paths.
///
/// The mount and its volumes outlive the process: a new plugin process takes them over from the
/// running one (a rolling update), or reclaims them from an akvfs-keeper after a crash, and pods'
/// bind mounts never notice (`ContinuousMount`).
public final class NodePlugin: Sendable {
    public let configuration: NodePluginConfiguration
    private let http: CurlHTTPClient
    private let kubernetesHTTP: CurlHTTPClient?
    private let filesystem: VaultFileSystem
    private let mount: ContinuousMount
    private let volumes: VolumeManager
    private let server: GRPCServer<HTTP2ServerTransport.Posix>
    private let state = RunState()
    private let logger = Logger(label: "akvfs.csi")

    public var mountpoint: String { "\(configuration.stateDirectory)/mount" }
    /// The volumes were taken over from a previous plugin process.
    public var tookOver: Bool { mount.wasTakenOver }

    /// Mounts the shared filesystem, or takes it and its volumes over from the previous plugin
    /// process; nothing is served until its `services` run.
    public init(configuration: NodePluginConfiguration) async throws {
        self.configuration = configuration
        let mountpoint = "\(configuration.stateDirectory)/mount"
        for directory in [configuration.stateDirectory, mountpoint] {
            do {
                try Self.makeDirectories(directory)
            } catch {
                throw NodePluginError("cannot create \(directory): \(error)")
            }
        }
        let kubeletDirectory: KubeletDirectory
        do {
            kubeletDirectory = try KubeletDirectory(path: configuration.kubeletDirectory)
        } catch {
            throw NodePluginError(
                "\(error); --kubelet-dir must name kubelet's root directory (its --root-dir, /var/lib/kubelet by default)"
            )
        }
        guard clinux_check_mount_api() == 0 else {
            throw NodePluginError(
                "this kernel lacks the mount API akvfs csi mounts volumes with (open_tree, mount_setattr): Linux 5.12 or later is needed"
            )
        }
        let continuity = MountContinuity(
            mountpoint: MountTable.canonical(mountpoint), kind: "csi",
            store: configuration.keeperSocket.map { KeeperDescriptorStore(socketPath: $0) },
            handoffDirectory: geteuid() == 0 ? configuration.stateDirectory : nil)
        if let socket = continuity.handoffSocketPath, socket.utf8.count >= 108 {
            throw NodePluginError(
                "--state-dir \(configuration.stateDirectory) is too long: the handoff socket in it, \(socket), must be under 108 bytes"
            )
        }
        // Before anything changes: a socket another process serves is not ours to take, unless
        // that process is a plugin that hands over.
        try Self.checkEndpoint(
            configuration.socketPath, handoffSocket: continuity.handoffSocketPath,
            stateDirectory: configuration.stateDirectory)

        http = try CurlHTTPClient(configuration: configuration.http)
        var classes: SecretProviderClassReader?
        var issuer: KubernetesIssuerDiscovery?
        if let kubernetes = configuration.kubernetes {
            var settings = configuration.http
            settings.extraCAFile = kubernetes.caFile
            let client = try CurlHTTPClient(configuration: settings)
            kubernetesHTTP = client
            classes = SecretProviderClassReader(configuration: kubernetes, http: client)
            issuer = KubernetesIssuerDiscovery(api: KubernetesAPIClient(configuration: kubernetes, http: client))
        } else {
            kubernetesHTTP = nil
        }
        let tokens = ServiceAccountTokenVerifier(issuerSource: issuer, exchange: EntraTokenExchange(http: http))

        let cache = ObjectCache(configuration: configuration.cache)
        let fileSystemConfiguration = FileSystemConfiguration(
            root: .viewDirectories, metadataTTL: configuration.metadataTimeout,
            negativeTTL: configuration.negativeTimeout)
        let filesystem = VaultFileSystem(cache: cache, configuration: fileSystemConfiguration)
        self.filesystem = filesystem

        let sources = VolumeSources(cache: cache, http: http, settings: configuration.sources)
        var settings = VolumeManager.Settings(mountRoot: mountpoint, kubeletDirectory: kubeletDirectory)
        settings.parserOptions = ParserOptions(allowNodeManagedIdentity: configuration.allowNodeIdentity)
        settings.publishTimeout = configuration.publishTimeout
        settings.parserOptions.maxFilesPerVolume = configuration.limits.objectsPerVolume
        settings.maxParameterBytes = configuration.limits.requestBytes
        settings.maxConcurrentPublishes = configuration.limits.concurrentPublishes
        settings.nodeID = configuration.nodeID
        let volumes = VolumeManager(
            settings: settings, filesystem: filesystem, cache: cache, sources: sources, tokens: tokens, classes: classes
        )
        self.volumes = volumes
        filesystem.observeCacheEvents { event in
            if case .listingChanged = event { return }
            Task { await volumes.cacheEvent(event) }
        }

        var options = MountOptions()
        options.allowOther = true
        options.fsName = "akvfs-csi"
        mount = try await ContinuousMount(
            filesystem: filesystem, cache: cache, options: options, continuity: continuity,
            version: configuration.version,
            hooks: ContinuousMount.HandoffHooks(
                prepare: { await volumes.freeze() }, abandoned: { await volumes.thaw() }),
            restore: { await volumes.restore(from: $0) })
        let log = mount.log
        await volumes.attach { key, value in
            if !log.set(key, value) { filesystem.compactJournal() }
        }

        let state = self.state
        server = GRPCServer(
            transport: HTTP2ServerTransport.Posix(
                address: .unixDomainSocket(path: configuration.socketPath), transportSecurity: .plaintext,
                // Room above the plugin's own limit, so a request over it gets a message saying so
                // rather than gRPC's bare refusal.
                config: .defaults { $0.rpc.maxRequestPayloadSize = max(4 << 20, 4 * configuration.limits.requestBytes) }
            ),
            services: [
                IdentityService(
                    driverName: configuration.driverName, version: configuration.version,
                    isReady: { state.ready.load(ordering: .relaxed) }),
                NodeService(
                    nodeID: configuration.nodeID, volumes: volumes, maxRequestBytes: configuration.limits.requestBytes),
            ])
    }

    /// The plugin's long-running pieces. A `ServiceGroup` starts them in this order and shuts
    /// them down in reverse: the CSI socket stops taking calls, the shared mount is left to the
    /// keeper or unmounted, the cache is emptied, and the HTTP clients stop.
    public var services: [ServiceGroupConfiguration.ServiceConfiguration] {
        let (http, kubernetesHTTP) = (self.http, self.kubernetesHTTP)
        return [
            .init(
                service: ClosureService {
                    try await gracefulShutdown()
                    http.shutdown()
                    kubernetesHTTP?.shutdown()
                }, serviceName: "http"),
            .init(service: CacheUpkeep(filesystem: filesystem), serviceName: "cache"),
            .init(service: ClosureService { try await self.serveMount() }, serviceName: "mount"),
            // The socket stops by itself only when the mount was lost: the plugin then stops.
            .init(
                service: ClosureService { try await self.serveCSI() },
                successTerminationBehavior: .gracefullyShutdownGroup, serviceName: "csi"),
        ]
    }

    /// Serves the shared mount until the plugin stops, then leaves it to the keeper or unmounts it.
    /// The mount ends first only when the next plugin process took it, or when it was lost: either
    /// way CSI stops. After a handoff the plugin idles until stopped, so that a container restart
    /// does not take the volumes back.
    private func serveMount() async throws {
        let mount = self.mount
        let serving = Task { try await mount.serve() }
        if let ending = await Self.ending(of: serving), !state.stopping.load(ordering: .relaxed) {
            switch ending {
            case .success(.handedOver), .success(.steppedAside):
                state.handedOver.store(true, ordering: .relaxed)
                logger.info(
                    "the next plugin process serves the volumes now; this one stops serving CSI and waits to be stopped"
                )
                // Calls under way fail (the volumes are frozen); kubelet retries them with the next process.
                // A graceful shutdown closes the listener first: cancelling the server instead crashes
                // grpc-swift's transport when a connection arrives mid-cancel (NIOAsyncWriter not finished).
                server.beginGracefulShutdown()
                try await gracefulShutdown()
                return
            case .success(.unmounted), .failure:
                logger.critical(
                    "the shared FUSE mount ended unexpectedly; stopping the plugin", metadata: ["result": "\(ending)"])
                server.beginGracefulShutdown()
            }
        }
        try await gracefulShutdown()
        await leaveOrUnmount(serving)
    }

    /// How the mount ended, or nil when the plugin stops first.
    private static func ending(
        of serving: Task<ContinuousMount.Ending, any Error>
    ) async -> Result<ContinuousMount.Ending, any Error>? {
        let (endings, ended) = AsyncStream.makeStream(of: Result<ContinuousMount.Ending, any Error>.self)
        Task { ended.yield(await serving.result) }
        return await cancelWhenGracefulShutdown { await endings.first { _ in true } }
    }

    /// At a stop: with a keeper, the mount and volumes stay for the next start; without one, the
    /// mount goes (pods' bind mounts then fail until kubelet republishes them).
    private func leaveOrUnmount(_ serving: Task<ContinuousMount.Ending, any Error>) async {
        let published = await volumes.publishedCount
        if configuration.keeperSocket != nil {
            await volumes.freeze()
            await mount.leaveForNextProcess()
            _ = await serving.result
            logger.info(
                "stopping; the keeper holds the mount and \(published) volumes for the next start of the plugin")
        } else if published == 0 {
            mount.unmount()
            _ = await serving.result
        } else {
            // Their bind mounts keep the FUSE connection open, so the loop would wait forever.
            logger.warning(
                "stopping with \(published) volumes published and no keeper: pods see 'Transport endpoint is not connected' until the plugin runs again and kubelet republishes them"
            )
        }
    }

    /// Serves CSI on the socket until a stop signal, or until the mount ends.
    private func serveCSI() async throws {
        try await withGracefulShutdownHandler {
            // The process that handed over closes the socket once this one serves the mount.
            if mount.wasTakenOver {
                await Self.waitForRelease(
                    of: configuration.socketPath, within: configuration.socketReleaseTimeout, logger: logger)
            }
            Self.removeStaleSocket(configuration.socketPath)
            do {
                try await listen()
            } catch {
                // After a handoff the socket's end is expected, however it came.
                guard state.handedOver.load(ordering: .relaxed) else { throw error }
            }
            if state.handedOver.load(ordering: .relaxed) {
                try await gracefulShutdown()
                logger.info("stopping; the volumes are served by the next plugin process")
            } else if let bound = state.socketIdentity.withLock({ $0 }),
                Self.identity(of: configuration.socketPath) == bound
            {
                // A plugin that took over after this one replaced the socket file: leave theirs.
                unlink(configuration.socketPath)
            }
        } onGracefulShutdown: {
            self.stop()
        }
    }

    /// A stop signal: the socket stops taking calls, and the mount ending is expected from now on.
    private func stop() {
        logger.info("stopping on a signal")
        state.stopping.store(true, ordering: .relaxed)
        server.beginGracefulShutdown()
    }

    /// Serves the socket until the server stops; the plugin is ready meanwhile.
    private func listen() async throws {
        let (mount, server, state, logger, configuration) = (
            self.mount, self.server, self.state, self.logger, self.configuration
        )
        defer {
            state.ready.store(false, ordering: .relaxed)
            if let readyFile = configuration.readyFile { unlink(readyFile) }
        }
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await server.serve() }
            guard try await server.listeningAddress != nil else { return }
            state.socketIdentity.withLock { $0 = Self.identity(of: configuration.socketPath) }
            state.ready.store(true, ordering: .relaxed)
            if let readyFile = configuration.readyFile { Self.createReadyFile(readyFile, logger: logger) }
            logger.info(
                mount.wasTakenOver ? "serving CSI with the volumes taken over" : "serving CSI",
                metadata: [
                    "socket": "\(configuration.socketPath)", "driver": "\(configuration.driverName)",
                    "mount": "\(configuration.stateDirectory)/mount",
                ])
        }
    }

    private final class RunState: Sendable {
        /// The socket listens and the mount serves (Probe).
        let ready = Atomic(false)
        /// The plugin stops: the mount ending is expected.
        let stopping = Atomic(false)
        /// The next plugin process took the mount and volumes over.
        let handedOver = Atomic(false)
        /// The socket file this process bound (device, inode).
        let socketIdentity = Mutex<FileIdentity?>(nil)
    }

    // MARK: Setup

    private static func makeDirectories(_ path: String) throws(MountError) {
        var current = ""
        for component in path.split(separator: "/") {
            current += "/\(component)"
            guard mkdir(current, 0o700) == 0 || errno == EEXIST else {
                throw MountError(operation: "create directory", path: current, code: errno)
            }
        }
    }

    /// Refuses a socket path another program serves, or that is not a socket at all.
    private static func checkEndpoint(_ path: String, handoffSocket: String?, stateDirectory: String) throws {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        guard status.st_mode & S_IFMT == S_IFSOCK else {
            throw NodePluginError("\(path) exists and is not a socket; remove it or choose another --endpoint")
        }
        guard clinux_stream_socket_is_live(path) == 1 else { return }
        var handoff = stat()
        guard let handoffSocket, lstat(handoffSocket, &handoff) == 0, handoff.st_mode & S_IFMT == S_IFSOCK else {
            throw NodePluginError(
                "another process serves \(path) and offers no handoff in \(stateDirectory) (another driver, or an akvfs csi with another --state-dir); stop it or choose another --endpoint"
            )
        }
    }

    private static func waitForRelease(of path: String, within limit: Duration, logger: Logger) async {
        let deadline = ContinuousClock.now + limit
        while clinux_stream_socket_is_live(path) == 1 {
            guard ContinuousClock.now < deadline else {
                logger.warning(
                    "the previous plugin process still listens on \(path) after handing over; replacing its socket")
                return
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// A socket file left by a plugin that stopped would make bind(2) fail.
    private static func removeStaleSocket(_ path: String) {
        var status = stat()
        guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFSOCK else { return }
        unlink(path)
    }

    struct FileIdentity: Equatable, Sendable {
        var device: UInt64
        var inode: UInt64
    }

    private static func identity(of path: String) -> FileIdentity? {
        var status = stat()
        guard lstat(path, &status) == 0 else { return nil }
        return FileIdentity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
    }

    private static func createReadyFile(_ path: String, logger: Logger) {
        let descriptor = open(path, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard descriptor >= 0 else {
            logger.error("cannot create the ready file \(path): \(String(cString: strerror(errno)))")
            return
        }
        close(descriptor)
    }
}
