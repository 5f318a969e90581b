import ArgumentParser
import AzureIdentity
import CommandLineSupport
import Continuity
import DescriptorPassing
import FuseBridge
import Glibc
import HTTPTransport
import KeyVault
import Logging
import ObjectCache
import ServiceLifecycle
import Synchronization
import Telemetry
import VaultFS

/// `akvfs mount`: serve one vault at a mountpoint, in the foreground, until unmounted.
struct MountCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mount",
        abstract: "Mount a vault read-only and serve it in the foreground until unmounted.",
        discussion: """
            Layout: secrets/NAME, keys/NAME and certs/NAME hold the latest version of each enabled object; \
            secrets/.versions/NAME/VERSION (and keys/…, certs/…) hold every version; tls/NAME/{key,cert,chain,fullchain}.pem \
            split a certificate's secret into files for web servers. Values are fetched when a file is first looked up, \
            kept in memory only, refreshed every --ttl while being read, and served stale (up to --max-stale) when \
            Key Vault fails. SIGTERM or SIGINT unmount cleanly; 'akvfs unmount MOUNTPOINT' does too. Under systemd \
            (Type=notify) readiness is reported once mounted.

            Example: akvfs mount myvault /mnt/kv --allow-other --uid 33 --gid 33
            """
    )

    @Argument(help: "Vault name (with --cloud) or URL.")
    var vault: String

    @Argument(help: "An existing, empty directory.")
    var mountpoint: String

    @Flag(help: "Let other users reach the mount (modes still apply).")
    var allowOther = false

    @Option(help: "Owner of files and directories (default: the user running akvfs).")
    var uid: UInt32?

    @Option(help: "Group of files and directories (default: the group running akvfs).")
    var gid: UInt32?

    @Option(help: ArgumentHelp("Permissions of files, octal.", valueName: "mode"))
    var fileMode = "0440"

    @Option(name: .customLong("dir-mode"), help: ArgumentHelp("Permissions of directories, octal.", valueName: "mode"))
    var directoryMode = "0550"

    @Flag(
        help: "Mount without first checking that the vault answers and the identity gets a token.")
    var noPreflight = false

    @Option(
        name: .customLong("keeper"),
        help: ArgumentHelp(
            "The socket of an akvfs-keeper that keeps the mount alive while this daemon restarts after a crash (see docs/mounting.md).",
            valueName: "socket"))
    var keeperSocket: String?

    @Flag(
        help:
            "Keep the mount alive across restarts of the systemd unit in its descriptor store (FileDescriptorStoreMax=); on SIGTERM leave it mounted for the next start."
    )
    var systemdDescriptorStore = false

    @Option(name: .customLong("ready-fd"), help: .hidden)
    var readyDescriptor: Int32?

    /// Where a running akvfs mount listens for the next process to take over (root only).
    static let handoffDirectory = "/run/akvfs/handoff"

    @OptionGroup(title: "Cache") var cache: CacheOptions
    @OptionGroup(title: "Vault") var connection: ConnectionOptions
    @OptionGroup(title: "Identity") var identity: IdentityOptions
    @OptionGroup(title: "Metrics") var metrics: MetricsOptions

    func validate() throws {
        _ = try Self.mode(fileMode, option: "--file-mode")
        _ = try Self.mode(directoryMode, option: "--dir-mode")
        if keeperSocket != nil, systemdDescriptorStore {
            throw ValidationError(
                "--keeper and --systemd-descriptor-store both keep the mount across restarts: choose one.")
        }
        if let keeperSocket, !keeperSocket.hasPrefix("/") {
            throw ValidationError("--keeper must be an absolute socket path; got \(keeperSocket).")
        }
    }

    static func mode(_ text: String, option: String) throws -> UInt16 {
        guard let value = UInt16(text, radix: 8), value <= 0o7777 else {
            throw ValidationError("\(option) '\(text)' is not an octal mode such as 0440.")
        }
        return value
    }

    func run() async throws {
        LogSetup.bootstrap(defaultLevel: .info)
        let logger = Logger(label: "akvfs")
        let ready = ReadinessReporter(descriptor: readyDescriptor)
        do {
            let endpoint = try metrics.start()
            defer { endpoint?.stop() }  // the group stops it too; this is for a failure before the group runs
            try await serve(logger: logger, ready: ready, metrics: endpoint)
        } catch {
            let message = "\(error)"
            // A waiting mount.akvfs prints the report itself, on the same stderr: once is enough.
            if !ready.failed(message) { Terminal.error("akvfs: \(message)") }
            throw ExitCode.failure
        }
    }

    private func serve(logger: Logger, ready: ReadinessReporter, metrics: MetricsEndpoint?) async throws {
        let session = try VaultSession(
            vault: vault, connection: connection, identity: identity, concurrency: cache.maxConcurrency)
        defer { session.shutdown() }
        if !noPreflight {
            _ = try await session.client.authenticate()
            logger.info(
                "authenticated",
                metadata: ["vault": "\(session.client.vault.url)", "credential": "\(session.credentialInUse.name)"])
        }

        let objectCache = ObjectCache(configuration: cache.configuration(defaultIdleTimeout: .seconds(600)))
        let source = SourceID(vault: session.client.vault.url, identity: "mount")
        await objectCache.register(KeyVaultSource(client: session.client), as: source)
        let configuration = FileSystemConfiguration(
            root: .singleView("vault"), metadataTTL: cache.metadataTTL, negativeTTL: Double(cache.negativeTTL))
        let ownership = Ownership(
            uid: uid ?? getuid(), gid: gid ?? getgid(),
            fileMode: try Self.mode(fileMode, option: "--file-mode"),
            directoryMode: try Self.mode(directoryMode, option: "--dir-mode"))
        let filesystem = VaultFileSystem(
            cache: objectCache, configuration: configuration,
            views: [ViewDefinition(id: "vault", source: source, layout: .vault, ownership: ownership)])

        var options = MountOptions()
        options.allowOther = allowOther
        options.fsName = "akvfs:\(session.client.vault.name)"
        let store: (any DescriptorStore)? =
            keeperSocket.map { KeeperDescriptorStore(socketPath: $0) }
            ?? (systemdDescriptorStore ? SystemdDescriptorStore() : nil)
        let continuity = MountContinuity(
            mountpoint: MountTable.canonical(mountpoint), kind: "mount", store: store,
            handoffDirectory: geteuid() == 0 ? Self.handoffDirectory : nil)
        let mount = try await ContinuousMount(
            filesystem: filesystem, cache: objectCache, options: options, continuity: continuity,
            version: AKVFSVersion.current)
        let (url, mountpoint) = (session.client.vault.url, self.mountpoint)
        let service = MountService(mount: mount, leaveOnStop: systemdDescriptorStore, logger: logger) {
            ready.succeeded()
            SystemdNotifier.notify("READY=1\nSTATUS=Serving \(url) at \(mountpoint)")
            logger.info(
                mount.wasTakenOver ? "serving the mount taken over" : "serving",
                metadata: ["vault": "\(url)", "mountpoint": "\(mountpoint)"])
        }
        // A stop ends the mount first, then the cache it served.
        try await Daemon.run(
            [
                .init(service: CacheUpkeep(filesystem: filesystem), serviceName: "cache"),
                .init(service: service, successTerminationBehavior: .gracefullyShutdownGroup, serviceName: "mount"),
            ], metrics: metrics)
    }
}

/// Serves the mount until it is unmounted (`umount`, or a stop signal) or handed to the next
/// process; either way the daemon then stops.
private struct MountService: Service {
    let mount: ContinuousMount
    /// Under systemd's descriptor store a stop leaves the mount for the next start of the unit.
    let leaveOnStop: Bool
    let logger: Logger
    /// Reports readiness: first thing in `run()`, when the group already traps the stop signals,
    /// so that a stop right after readiness unmounts.
    let serving: @Sendable () -> Void

    func run() async throws {
        serving()
        let (mount, leaveOnStop, logger) = (self.mount, self.leaveOnStop, self.logger)
        let ending = try await withGracefulShutdownHandler {
            try await mount.serve()
        } onGracefulShutdown: {
            SystemdNotifier.notify("STOPPING=1")
            if leaveOnStop {
                // systemd decides after this exits: ExecStopPost unmounts unless the unit restarts.
                logger.info("stopping on a signal; the mount stays for the next start of the unit")
                Task { await mount.leaveForNextProcess() }
            } else {
                logger.info("unmounting on a signal")
                mount.unmount()
            }
        }
        if ending == .handedOver { logger.info("exiting; the mount is served by the next process") }
    }
}

/// Tells a waiting `mount.akvfs` (through an inherited pipe) whether the mount is up, once: the
/// first report closes the pipe, and a later one (a failure after readiness) is dropped rather
/// than written to a descriptor number the process may have reused for something else.
final class ReadinessReporter: Sendable {
    private let descriptor: Mutex<Int32?>

    init(descriptor: Int32?) { self.descriptor = Mutex(descriptor) }

    func succeeded() { send("ready\n") }
    /// True when a waiting mount.akvfs was told. The report is one line (the helper reads up to the
    /// first newline), whatever the message quotes.
    func failed(_ message: String) -> Bool { send("error: \(OutsideText.escaped(message, limit: .max))\n") }

    @discardableResult
    private func send(_ text: String) -> Bool {
        guard let descriptor = descriptor.withLock({ $0.take() }) else { return false }
        defer { close(descriptor) }
        do {
            try Terminal.write(Array(text.utf8), to: descriptor)
            return true
        } catch {
            return false
        }
    }
}
