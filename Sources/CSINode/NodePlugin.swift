import CLinux
import FuseBridge
import GRPCCore
import GRPCNIOTransportHTTP2Posix
// `struct stat` comes from Glibc and again from CoreFoundation's headers (Foundation is loaded
// through SwiftProtobuf, GRPCCore and Subprocess). Which of the two owns its members depends on
// the order the compiler happens to load them, so MemberImportVisibility needs both imported.
internal import CoreFoundation
import Glibc
import HTTPTransport
import Logging
import ObjectCache
import SecretProviderClass
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
    /// How long the kernel trusts names and attributes (see FileSystemConfiguration).
    public var metadataTimeout: Double = 1

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
public final class NodePlugin: Sendable {
    public let configuration: NodePluginConfiguration
    private let http: CurlHTTPClient
    private let kubernetesHTTP: CurlHTTPClient?
    private let cache: ObjectCache
    private let filesystem: VaultFileSystem
    private let fuse: FuseMount
    private let volumes: VolumeManager
    private let server: GRPCServer<HTTP2ServerTransport.Posix>
    private let state = RunState()
    private let logger = Logger(label: "akvfs.csi")

    public var mountpoint: String { "\(configuration.stateDirectory)/mount" }

    /// Mounts the shared filesystem and binds the socket; nothing is served until `run()`.
    public init(configuration: NodePluginConfiguration) throws {
        self.configuration = configuration
        let mountpoint = "\(configuration.stateDirectory)/mount"
        for directory in [configuration.stateDirectory, mountpoint] {
            do {
                try Self.makeDirectories(directory)
            } catch {
                throw NodePluginError("cannot create \(directory): \(error)")
            }
        }
        try Self.clearStaleSocket(configuration.socketPath)
        let kubeletDirectory: KubeletDirectory
        do {
            kubeletDirectory = try KubeletDirectory(path: configuration.kubeletDirectory)
        } catch {
            throw NodePluginError("\(error); --kubelet-dir must name kubelet's root directory (its --root-dir, /var/lib/kubelet by default)")
        }
        guard clinux_check_mount_api() == 0 else {
            throw NodePluginError("this kernel lacks the mount API akvfs csi mounts volumes with (open_tree, mount_setattr): Linux 5.12 or later is needed")
        }

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

        cache = ObjectCache(configuration: configuration.cache)
        var fileSystemConfiguration = FileSystemConfiguration(root: .viewDirectories)
        fileSystemConfiguration.metadataTimeout = configuration.metadataTimeout
        fileSystemConfiguration.negativeTimeout = configuration.metadataTimeout
        filesystem = VaultFileSystem(cache: cache, configuration: fileSystemConfiguration)
        var options = MountOptions()
        options.allowOther = true
        options.fsName = "akvfs-csi"
        fuse = try FuseMount(filesystem: filesystem, mountpoint: mountpoint, options: options)

        let sources = VolumeSources(cache: cache, http: http, settings: configuration.sources)
        var settings = VolumeManager.Settings(mountRoot: mountpoint, kubeletDirectory: kubeletDirectory)
        settings.parserOptions = ParserOptions(allowNodeManagedIdentity: configuration.allowNodeIdentity)
        settings.publishTimeout = configuration.publishTimeout
        settings.parserOptions.maxFilesPerVolume = configuration.limits.objectsPerVolume
        settings.maxParameterBytes = configuration.limits.requestBytes
        settings.maxConcurrentPublishes = configuration.limits.concurrentPublishes
        volumes = VolumeManager(settings: settings, filesystem: filesystem, cache: cache, sources: sources, tokens: tokens, classes: classes)

        let state = self.state
        server = GRPCServer(
            transport: HTTP2ServerTransport.Posix(
                address: .unixDomainSocket(path: configuration.socketPath), transportSecurity: .plaintext,
                // Room above the plugin's own limit, so a request over it gets a message saying so
                // rather than gRPC's bare refusal.
                config: .defaults { $0.rpc.maxRequestPayloadSize = max(4 << 20, 4 * configuration.limits.requestBytes) }),
            services: [
                IdentityService(driverName: configuration.driverName, version: configuration.version, isReady: { state.ready.load(ordering: .relaxed) }),
                NodeService(nodeID: configuration.nodeID, volumes: volumes, maxRequestBytes: configuration.limits.requestBytes),
            ])
    }

    /// Serves until `stop()`; `onReady` runs once the socket listens.
    public func run(onReady: @escaping @Sendable () -> Void = {}) async throws {
        let fuse = self.fuse
        let server = self.server
        let fuseLoop = Task { try await fuse.run() }
        let watcher = filesystem.watchCache()
        await cache.startMaintenance()
        // The FUSE loop ends only at unmount; ending early means the mount is gone.
        let fuseWatch = Task { [state, logger] in
            let result = await fuseLoop.result
            guard !state.stopping.load(ordering: .relaxed) else { return }
            logger.critical("the shared FUSE mount ended unexpectedly; stopping the plugin", metadata: ["result": "\(result)"])
            server.beginGracefulShutdown()
        }
        defer {
            watcher.cancel()
            fuseWatch.cancel()
        }

        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await server.serve() }
            guard try await server.listeningAddress != nil else { return }
            state.ready.store(true, ordering: .relaxed)
            logger.info(
                "serving CSI",
                metadata: ["socket": "\(configuration.socketPath)", "driver": "\(configuration.driverName)", "mount": "\(mountpoint)"])
            onReady()
        }

        state.stopping.store(true, ordering: .relaxed)
        state.ready.store(false, ordering: .relaxed)
        fuse.unmount()
        let published = await volumes.publishedCount
        if published == 0 {
            _ = await fuseLoop.result
        } else {
            // Their bind mounts keep the FUSE connection open, so the loop would wait forever.
            logger.warning(
                "stopping with \(published) volumes published: pods see 'Transport endpoint is not connected' until the plugin runs again and kubelet republishes them")
        }
        await cache.shutdown()
        http.shutdown()
        kubernetesHTTP?.shutdown()
        unlink(configuration.socketPath)
    }

    /// Stops accepting calls; `run()` then returns. Safe from a signal-watching thread.
    public func stop() {
        state.stopping.store(true, ordering: .relaxed)
        server.beginGracefulShutdown()
    }

    private final class RunState: Sendable {
        /// The socket listens and the mount serves (Probe).
        let ready = Atomic(false)
        /// `stop()` was called: the FUSE loop ending is expected.
        let stopping = Atomic(false)
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

    /// A socket file left by a plugin that stopped would make bind(2) fail; anything else there is not ours to remove.
    private static func clearStaleSocket(_ path: String) throws {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        guard status.st_mode & S_IFMT == S_IFSOCK else {
            throw NodePluginError("\(path) exists and is not a socket; remove it or choose another --endpoint")
        }
        unlink(path)
    }
}
