import ArgumentParser
import AzureIdentity
import CSINode
import CommandLineSupport
import FoundationEssentials
import GRPCCore
import Glibc
import Logging
import ObjectCache
import PKI
import Telemetry

/// `akvfs csi`: the Kubernetes CSI node plugin, and a CSI client of it for debugging.
struct CSICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "akvfs csi",
        abstract: "Serve Key Vault objects to Kubernetes pods as a CSI node plugin.",
        discussion: """
            'akvfs csi' (or 'akvfs csi serve') runs the plugin: one FUSE mount with a directory per published \
            volume, served over CSI v1 on a unix socket. Volumes take the Azure provider's SecretProviderClass \
            parameters; see docs/kubernetes.md. 'akvfs csi publish' and 'akvfs csi unpublish' call a running \
            plugin as kubelet would.
            """,
        subcommands: [CSIServeCommand.self, CSIPublishCommand.self, CSIUnpublishCommand.self, CSIReadyCommand.self],
        defaultSubcommand: CSIServeCommand.self
    )
}

struct CSIServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the CSI node plugin in the foreground.",
        discussion: """
            Example (the DaemonSet in deploy/kubernetes runs this): \
            akvfs csi --endpoint unix:///csi/csi.sock --node-id "$NODE_NAME"
            """
    )

    @Option(help: ArgumentHelp("The CSI socket, unix:///path.", valueName: "endpoint"))
    var endpoint = "unix:///csi/csi.sock"

    @Option(
        help: ArgumentHelp("This node's name, as kubelet knows it. Env: NODE_NAME.", valueName: "name"))
    var nodeID: String?

    @Option(
        name: .customLong("state-dir"),
        help: ArgumentHelp("Directory for the shared FUSE mount; nothing is written to disk.", valueName: "dir"))
    var stateDirectory = NodePluginConfiguration.defaultStateDirectory

    @Option(
        name: .customLong("kubelet-dir"),
        help: ArgumentHelp(
            "Kubelet's root directory (its --root-dir): volumes are mounted only beneath its pods directory.",
            valueName: "dir"))
    var kubeletDirectory = KubeletDirectory.defaultPath

    @Option(help: "The CSI driver name; the CSIDriver object and pods use the same.")
    var driverName = NodePluginConfiguration.defaultDriverName

    @Flag(
        help:
            "Let volumes use the node's managed identity (useVMManagedIdentity): any pod on the node could then read what it can. Env: AKVFS_ALLOW_NODE_IDENTITY=true."
    )
    var allowNodeIdentity = false

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "A first publish fails if its objects are not all fetched by then (kubelet waits about 120 s).",
            valueName: "seconds"))
    var publishTimeout = 90

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Files one volume may have (each version of an objectVersionHistory is one).", valueName: "n"))
    var maxObjectsPerVolume = 1000

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Bytes of volume attributes and secrets in a publish, and of a SecretProviderClass's parameters.",
            valueName: "bytes"))
    var maxRequestBytes = 1 << 20

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "First publishes in progress at once; more are refused and kubelet retries them.", valueName: "n"))
    var maxConcurrentPublishes = 16

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Memory for the content of published volumes, which is never evicted: a volume that would not fit is refused.",
            valueName: "MiB"))
    var maxPublishedMemory = 128

    @Option(
        help: ArgumentHelp(
            "Kubernetes API URL for reading SecretProviderClasses (default: the in-cluster service, from KUBERNETES_SERVICE_HOST).",
            valueName: "url"))
    var kubernetesAPI: String?

    @Option(
        help: ArgumentHelp(
            "Bearer token for the Kubernetes API (default: the pod's service-account token).", valueName: "file"))
    var kubernetesTokenFile: String?

    @Option(
        help: ArgumentHelp(
            "CA bundle of the Kubernetes API (default: the pod's service-account ca.crt).", valueName: "file"))
    var kubernetesCAFile: String?

    @Option(
        help: ArgumentHelp(
            "Instance Metadata Service base URL for the node's identity. Env: AKVFS_IMDS_ENDPOINT.", valueName: "url"))
    var imdsEndpoint: String?

    @Option(
        name: .customLong("keeper"),
        help: ArgumentHelp(
            "The socket of an akvfs-keeper that holds the shared mount while the plugin restarts: volumes survive a crash, and a stop leaves them for the next start.",
            valueName: "socket"))
    var keeperSocket: String?

    @Option(
        help: ArgumentHelp(
            "A file that exists while this process serves CSI, for the container's readiness probe (a rolling update must wait for it).",
            valueName: "path"))
    var readyFile: String?

    @OptionGroup(title: "Cache") var cache: CacheOptions
    @OptionGroup(title: "Vault") var connection: ConnectionOptions
    @OptionGroup(title: "Metrics") var metrics: MetricsOptions

    func validate() throws {
        guard CSIEndpoint.socketPath(endpoint) != nil else {
            throw ValidationError(
                "--endpoint \(endpoint) is not a unix socket endpoint such as unix:///csi/csi.sock (an absolute path under 108 bytes)."
            )
        }
        try requireOption("publish-timeout", publishTimeout, in: 5...600, unit: "seconds")
        try requireOption("max-objects-per-volume", maxObjectsPerVolume, in: 1...100_000)
        try requireOption("max-request-bytes", maxRequestBytes, in: 4096...(64 << 20))
        try requireOption("max-concurrent-publishes", maxConcurrentPublishes, in: 1...1024)
        try requireOption("max-published-memory", maxPublishedMemory, in: 1...65_536, unit: "MiB")
        if let keeperSocket, !keeperSocket.hasPrefix("/") || keeperSocket.utf8.count >= 108 {
            throw ValidationError("--keeper must be an absolute socket path under 108 bytes; got \(keeperSocket).")
        }
        _ = try Self.nodeIdentityAllowed(flag: allowNodeIdentity, environment: ProcessInfo.processInfo.environment)
        if let readyFile, !readyFile.hasPrefix("/") {
            throw ValidationError("--ready-file must be an absolute path; got \(readyFile).")
        }
        guard kubeletDirectory.hasPrefix("/") else {
            throw ValidationError("--kubelet-dir must be an absolute path; got \(kubeletDirectory).")
        }
        if let kubernetesAPI, !kubernetesAPI.hasPrefix("https://") {
            throw ValidationError(
                "--kubernetes-api \(kubernetesAPI) must be an https URL such as https://10.0.0.1:443.")
        }
    }

    func run() async throws {
        LogSetup.bootstrap(defaultLevel: .info)
        let logger = Logger(label: "akvfs.csi")
        let environment = ProcessInfo.processInfo.environment
        guard let nodeID = nodeID ?? environment["NODE_NAME"], !nodeID.isEmpty else {
            throw ValidationError("--node-id is required (or NODE_NAME): the name of this node, as kubelet knows it.")
        }
        var configuration = NodePluginConfiguration(nodeID: nodeID, socketPath: CSIEndpoint.socketPath(endpoint)!)
        configuration.driverName = driverName
        configuration.version = AKVFSVersion.current
        configuration.stateDirectory = stateDirectory
        configuration.kubeletDirectory = kubeletDirectory
        configuration.allowNodeIdentity = try Self.nodeIdentityAllowed(
            flag: allowNodeIdentity, environment: environment)
        configuration.publishTimeout = .seconds(publishTimeout)
        configuration.metadataTimeout = cache.metadataTTL
        configuration.negativeTimeout = Double(cache.negativeTTL)
        // Published volumes pin their content, so it survives idleness and Key Vault outages; what
        // nothing pins (listings, versions replaced by a rotation) goes when idle, as for a mount.
        configuration.cache = cache.configuration(defaultIdleTimeout: .seconds(600))
        configuration.cache.maxPublishedBytes = maxPublishedMemory << 20
        configuration.limits.objectsPerVolume = maxObjectsPerVolume
        configuration.limits.requestBytes = maxRequestBytes
        configuration.limits.concurrentPublishes = maxConcurrentPublishes
        configuration.http = connection.httpConfiguration(environment, concurrency: cache.maxConcurrency)
        configuration.sources.defaultCloud = try connection.resolvedCloud(environment)
        configuration.sources.clientOptions = connection.clientOptions(environment, concurrency: cache.maxConcurrency)
        configuration.sources.managedIdentitySource = .detect(environment: environment, imdsOverride: imdsEndpoint)
        configuration.kubernetes = kubernetesConfiguration(environment)
        configuration.keeperSocket = keeperSocket
        configuration.readyFile = readyFile

        // Before the plugin mounts anything: a bad --metrics-address must leave nothing mounted.
        let endpoint = try metrics.start()
        defer { endpoint?.stop() }  // the group stops it too; this is for a failure before the group runs
        let plugin: NodePlugin
        do {
            plugin = try await NodePlugin(configuration: configuration)
        } catch {
            Terminal.error("akvfs csi: \(error)")
            throw ExitCode.failure
        }
        if configuration.kubernetes == nil {
            logger.notice("no Kubernetes API configured: volumes must carry their parameters as volumeAttributes")
        }
        try await Daemon.run(plugin.services, metrics: endpoint)
    }

    /// The manifests' one switch for node identity is the environment variable; the flag says the same.
    static func nodeIdentityAllowed(flag: Bool, environment: [String: String]) throws -> Bool {
        switch environment["AKVFS_ALLOW_NODE_IDENTITY"]?.lowercased() {
        case nil, "", "false", "0": return flag
        case "true", "1": return true
        case let other?: throw ValidationError("AKVFS_ALLOW_NODE_IDENTITY must be true or false; got \(other).")
        }
    }

    private func kubernetesConfiguration(_ environment: [String: String]) -> KubernetesAPIConfiguration? {
        let directory = KubernetesAPIConfiguration.serviceAccountDirectory
        guard let kubernetesAPI else {
            guard var inCluster = KubernetesAPIConfiguration.inCluster(environment: environment) else { return nil }
            if let kubernetesTokenFile { inCluster.tokenFile = kubernetesTokenFile }
            if let kubernetesCAFile { inCluster.caFile = kubernetesCAFile }
            return inCluster
        }
        return KubernetesAPIConfiguration(
            url: kubernetesAPI, tokenFile: kubernetesTokenFile ?? "\(directory)/token",
            caFile: kubernetesCAFile
                ?? (FileManager.default.fileExists(atPath: "\(directory)/ca.crt") ? "\(directory)/ca.crt" : nil))
    }
}

/// Options shared by the CSI client commands.
struct CSIClientOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The plugin's socket, unix:///path.", valueName: "endpoint"))
    var endpoint = "unix:///csi/csi.sock"

    @Option(
        help: ArgumentHelp("Where the volume is (to be) mounted.", valueName: "dir"))
    var targetPath: String

    @Option(
        help: ArgumentHelp("The volume's ID (default: derived from the target path).", valueName: "id"))
    var volumeID: String?

    func validate() throws {
        guard CSIEndpoint.socketPath(endpoint) != nil else {
            throw ValidationError("--endpoint \(endpoint) is not a unix socket endpoint such as unix:///csi/csi.sock.")
        }
        guard targetPath.hasPrefix("/") else {
            throw ValidationError("--target-path must be an absolute path; got \(targetPath).")
        }
    }

    var socketPath: String { CSIEndpoint.socketPath(endpoint)! }

    var resolvedVolumeID: String {
        volumeID ?? "akvfs-"
            + Digest.sha256(Array(targetPath.utf8)).prefix(8).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }
            .joined()
    }

    /// Prints the plugin's refusal as kubelet would log it, and fails.
    func report(_ error: any Error, doing action: String) -> ExitCode {
        if let error = error as? RPCError {
            Terminal.error("akvfs csi \(action): \(error.code): \(error.message)")
        } else {
            Terminal.error("akvfs csi \(action): \(error)")
        }
        return ExitCode.failure
    }
}

/// The readiness probe's check. The image has no shell or `test`, so the probe runs this.
struct CSIReadyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ready",
        abstract: "Exit 0 if the plugin that was given this --ready-file serves CSI, 1 if not.",
        discussion: "For the container's readiness probe: akvfs-csi ready --ready-file /run/akvfs/pod/ready"
    )

    @Option(help: ArgumentHelp("The plugin's --ready-file.", valueName: "path"))
    var readyFile: String

    func validate() throws {
        guard readyFile.hasPrefix("/") else {
            throw ValidationError("--ready-file must be an absolute path; got \(readyFile).")
        }
    }

    func run() throws {
        var status = stat()
        guard lstat(readyFile, &status) == 0 else {
            Terminal.error(
                "akvfs csi: not ready: \(readyFile) does not exist (the plugin has not started serving, or is handing over)."
            )
            throw ExitCode(1)
        }
    }
}

struct CSIPublishCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Ask a running plugin to publish a volume (NodePublishVolume), as kubelet does.",
        discussion: """
            --attributes is the volume context: a JSON object of strings, inline or in a file, e.g. \
            '{"keyvaultName":"kv1","tenantId":"…","clientID":"…","objects":"array:\\n  - |\\n    objectName: s1\\n    objectType: secret\\n",\
            "csi.storage.k8s.io/pod.name":"p","csi.storage.k8s.io/pod.namespace":"ns"}'. \
            --secrets names a JSON file of the node-publish secrets (e.g. clientid, clientsecret); secrets are never taken on the command line.
            """
    )

    @OptionGroup var options: CSIClientOptions

    @Option(help: ArgumentHelp("The volume context: a JSON object, or a file holding one.", valueName: "json|file"))
    var attributes: String

    @Option(help: ArgumentHelp("A JSON file of node-publish secrets.", valueName: "file"))
    var secrets: String?

    @Option(
        help: ArgumentHelp("The pod's fsGroup (volume_mount_group).", valueName: "gid"))
    var fsGroup: String?

    func run() async throws {
        LogSetup.bootstrap()
        let attributes = try Self.stringMap(
            attributes.hasPrefix("{") ? Data(attributes.utf8) : Self.contents(attributes, option: "--attributes"),
            option: "--attributes")
        let secrets =
            try secrets.map { try Self.stringMap(Self.contents($0, option: "--secrets"), option: "--secrets") } ?? [:]
        do {
            try await CSIClient.with(socketPath: options.socketPath) { client in
                try await client.publish(
                    volumeID: options.resolvedVolumeID, targetPath: options.targetPath, attributes: attributes,
                    secrets: secrets, mountGroup: fsGroup)
            }
        } catch {
            throw options.report(error, doing: "publish")
        }
        Terminal.line("published \(options.resolvedVolumeID) at \(options.targetPath)")
    }

    static func contents(_ path: String, option: String) throws -> Data {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read \(option) file \(path).")
        }
        return data
    }

    /// A JSON object whose values are all strings; the message never quotes values (they may be secrets).
    static func stringMap(_ data: Data, option: String) throws -> [String: String] {
        guard let map = try? JSONDecoder().decode([String: String].self, from: data) else {
            throw ValidationError(
                "\(option) must be a JSON object whose values are all strings, e.g. {\"keyvaultName\": \"kv1\"}.")
        }
        return map
    }
}

struct CSIUnpublishCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unpublish",
        abstract: "Ask a running plugin to unpublish a volume (NodeUnpublishVolume), as kubelet does."
    )

    @OptionGroup var options: CSIClientOptions

    func run() async throws {
        LogSetup.bootstrap()
        do {
            try await CSIClient.with(socketPath: options.socketPath) { client in
                try await client.unpublish(volumeID: options.resolvedVolumeID, targetPath: options.targetPath)
            }
        } catch {
            throw options.report(error, doing: "unpublish")
        }
        Terminal.line("unpublished \(options.resolvedVolumeID) from \(options.targetPath)")
    }
}
