import FoundationEssentials
import Glibc
import KeyVault
import Logging
import ObjectCache
import ObjectFormats
import PKI
import SecretProviderClass
import Synchronization
import VaultFS

/// What kubelet asked for in one NodePublishVolume, validated.
struct Publication: Sendable, Equatable, Codable {
    var volumeID: String
    var targetPath: String
    var readOnly: Bool
    /// The pod's fsGroup (VolumeCapability.mount.volume_mount_group).
    var mountGroup: UInt32?
    var volumeContext: [String: String]

    /// A repeat with these equal is the same publish (secrets and the rotating token excluded).
    var identityForComparison: Publication {
        var copy = self
        copy.volumeContext[SecretProviderClassParser.serviceAccountTokensKey] = nil
        return copy
    }
}

/// Published volumes: each a view of the shared filesystem, read with its pod's identity and
/// bind-mounted on its target path. Operations on one volume never overlap (a second one
/// answers ABORTED, and kubelet retries); different volumes proceed concurrently.
actor VolumeManager {
    struct Settings: Sendable {
        /// Where the shared FUSE mount is; a volume's view is the directory `<mountRoot>/<view id>`.
        var mountRoot: String
        /// Target paths must be beneath its `pods` directory.
        var kubeletDirectory: KubeletDirectory
        var parserOptions = ParserOptions()
        /// A first publish that has not fetched everything by then fails (kubelet gives up after about 2 minutes).
        var publishTimeout: Duration = .seconds(90)
        /// A republish answers within this even when a changed volume's new objects are slow to
        /// fetch; it then keeps the old content and tries again at the next republish.
        var republishTimeout: Duration = .seconds(10)
        /// How long the content of a volume that failed to publish stays cached for kubelet's retry.
        var failedPublishLinger: Duration = .seconds(120)
        /// First publishes in progress at once; more are refused at once (kubelet retries them).
        var maxConcurrentPublishes = 16
        /// Bytes of parameters a SecretProviderClass may carry (NodeService checks the request's own).
        var maxParameterBytes = 1 << 20
        /// This node's name, as events on pods give it.
        var nodeID = ""
    }

    private struct Volume {
        var publication: Publication
        var viewID: String
        var lease: VolumeSources.Lease
        var files: [VolumeFile]
        var ownership: Ownership
        var request: VolumeRequest
        /// The workload-identity token its identity was proven with.
        var token: VerifiedServiceAccountToken?

        /// What the next plugin process needs to serve it again without asking anyone.
        var record: VolumeRecord {
            VolumeRecord(
                publication: publication, viewID: viewID, files: files, ownership: ownership, request: request,
                token: token)
        }
    }

    /// A published volume in the state log (a keyed value, `volume:<id>`), so the next plugin
    /// process, after a handoff or a crash, serves it without a republish. It holds the
    /// volume's credentials (the service-account token, a service principal's secret): the log
    /// is memory only.
    struct VolumeRecord: Codable {
        var publication: Publication
        var viewID: String
        var files: [VolumeFile]
        var ownership: Ownership
        var request: VolumeRequest
        var token: VerifiedServiceAccountToken?
    }

    static let recordPrefix = "volume:"
    static let fingerprintKeyName = "csi-fingerprint-key"

    private let settings: Settings
    private let filesystem: VaultFileSystem
    private let cache: ObjectCache
    private let sources: VolumeSources
    private let tokens: ServiceAccountTokenVerifier
    private let classes: SecretProviderClassReader?
    private let secretSync: SecretSync?
    private let events: PodEvents?
    private let logger = Logger(label: "akvfs.csi")
    /// Per volume, a digest of what each of its Secrets was last filled with, so a republish
    /// that changes nothing makes no Kubernetes API call. Lost at a restart: the next republish
    /// reads the Secrets once.
    private var syncedSecrets: [String: [String: [UInt8]]] = [:]
    private var volumes: [String: Volume] = [:]
    private var busy: Set<String> = []
    /// Volumes a rotation is applying to, each with the operations waiting for it: a republish
    /// or unpublish waits for the rotation instead of failing (its fetch is bounded by
    /// --republish-timeout, its Secret and event calls by the Kubernetes client's timeout).
    private var rotating: [String: [CheckedContinuation<Void, Never>]] = [:]
    /// First publishes in progress.
    private var publishing = 0
    /// Where volume records go (the state log), once the mount has one.
    private var journal: (@Sendable (String, [UInt8]?) -> Void)?
    /// A handoff to the next plugin process is under way: volumes must not change.
    private var frozen = false

    init(
        settings: Settings, filesystem: VaultFileSystem, cache: ObjectCache, sources: VolumeSources,
        tokens: ServiceAccountTokenVerifier,
        classes: SecretProviderClassReader?
    ) {
        self.settings = settings
        self.filesystem = filesystem
        self.cache = cache
        self.sources = sources
        self.tokens = tokens
        self.classes = classes
        secretSync = classes.map { SecretSync(api: $0.api, logger: Logger(label: "akvfs.csi")) }
        events = classes.map { PodEvents(api: $0.api, node: settings.nodeID, logger: Logger(label: "akvfs.csi")) }
    }

    var publishedCount: Int { volumes.count }

    // MARK: Publish

    func publish(_ publication: Publication, secrets: [String: String]) async throws(VolumeError) {
        try checkNotFrozen()
        try await claim(publication.volumeID)
        defer { busy.remove(publication.volumeID) }

        if let volume = volumes[publication.volumeID] {
            guard volume.publication.targetPath == publication.targetPath else {
                throw VolumeError(
                    .alreadyExists,
                    "volume \(publication.volumeID) is already published at \(volume.publication.targetPath); one volume has one target path"
                )
            }
            guard volume.publication.identityForComparison == publication.identityForComparison else {
                throw VolumeError(
                    .alreadyExists,
                    "volume \(publication.volumeID) is already published at \(publication.targetPath) with other arguments; unpublish it first"
                )
            }
            await republish(volume, publication, secrets: secrets)
            return
        }

        let target = try TargetPath(publication.targetPath, in: settings.kubeletDirectory)
        let state = target.state
        try checkTargetIsFree(target, state)
        let leftByEarlierPlugin = state == .deadMount
        // Republishes after a plugin restart bring running pods back; only new volumes queue.
        if !leftByEarlierPlugin { try admitPublish() }
        defer { if !leftByEarlierPlugin { publishing -= 1 } }
        do {
            let limit = leftByEarlierPlugin ? settings.republishTimeout : settings.publishTimeout
            try await publishNew(publication, secrets: secrets, target: target, within: limit)
        } catch  where leftByEarlierPlugin {
            // The target was published by a plugin that stopped: this is kubelet's republish, and
            // an error would make kubelet delete the volume under the running pod (kubernetes#121271).
            // Keep answering OK; the next republish tries again.
            logger.error(
                "republishing a volume left by a previous plugin failed; retrying at the next republish",
                metadata: ["volume": "\(publication.volumeID)", "error": "\(error.message)"])
        }
    }

    private func publishNew(
        _ publication: Publication, secrets: [String: String], target: TargetPath, within limit: Duration
    ) async throws(VolumeError) {
        let started = ContinuousClock.now
        let request = try await parse(publication, secrets: secrets, republish: false)
        try await checkPublishedRoom(for: request)
        let (lease, files, token) = try await plan(request, volumeID: publication.volumeID)
        do {
            try checkSecretObjects(request, files: files)
            try await pin(files, lease: lease, volumeID: publication.volumeID)
            try await load(files, lease: lease, request: request, within: limit)
            try await syncSecrets(
                request, files: files, source: lease.source, volumeID: publication.volumeID, force: true)
        } catch {
            await cache.unpin(volume: publication.volumeID)
            await sources.release(lease, volumeID: publication.volumeID, linger: settings.failedPublishLinger)
            throw error
        }

        // From here to the record nothing awaits, so a handoff sees the volume whole or not at all.
        do {
            try checkNotFrozen()
        } catch {
            await cache.unpin(volume: publication.volumeID)
            await sources.release(lease, volumeID: publication.volumeID, linger: settings.failedPublishLinger)
            throw error
        }
        let volume = Volume(
            publication: publication, viewID: Self.viewID(publication.volumeID), lease: lease, files: files,
            ownership: ownership(request, publication), request: request, token: token)
        filesystem.setView(
            ViewDefinition(id: volume.viewID, source: lease.source, layout: .volume(files), ownership: volume.ownership)
        )
        do {
            try prepareTarget(target)
            try target.bindReadOnly(from: "\(settings.mountRoot)/\(volume.viewID)")
        } catch {
            filesystem.removeView(volume.viewID)
            await cache.unpin(volume: publication.volumeID)
            await sources.release(lease, volumeID: publication.volumeID, linger: settings.failedPublishLinger)
            throw VolumeError(.internalError, "failed to mount the volume at \(publication.targetPath): \(error)")
        }
        volumes[publication.volumeID] = volume
        write(volume)
        logger.info(
            "published",
            metadata: [
                "volume": "\(publication.volumeID)", "pod": "\(request.podNamespace)/\(request.podName)",
                "vault": "\(lease.source.vault)", "identity": "\(Self.identityKind(request.identity))",
                "files": "\(files.count)",
                "milliseconds": "\((ContinuousClock.now - started).milliseconds)",
            ])
    }

    /// kubelet's periodic NodePublish for a mounted volume (requiresRepublish): takes the fresh
    /// service-account token (once verified, like a first publish's), picks up SecretProviderClass
    /// changes, and mounts the view again if the target lost it. It never fails: a working volume
    /// keeps its last good content, and a refused token is dropped.
    private func republish(_ volume: Volume, _ publication: Publication, secrets: [String: String]) async {
        var volume = volume
        do throws(VolumeError) {
            let request = try await parse(publication, secrets: secrets, republish: true)
            let (lease, files, token) = try await plan(request, volumeID: publication.volumeID)
            let ownership = ownership(request, publication)
            try checkSecretObjects(request, files: files)
            if lease != volume.lease || files != volume.files || ownership != volume.ownership {
                do {
                    try await pin(files, lease: lease, volumeID: publication.volumeID)
                    try await load(files, lease: lease, request: request, within: settings.republishTimeout)
                    try checkNotFrozen()
                } catch {
                    _ = await cache.pin(
                        volume.files.map(\.reference), in: volume.lease.source, for: publication.volumeID)
                    if lease != volume.lease {
                        await sources.release(lease, volumeID: publication.volumeID, linger: .zero)
                    }
                    throw error
                }
            }
            // From here to the record nothing awaits, so a handoff sees the volume whole or not at all.
            try checkNotFrozen()
            let previousLease = volume.lease
            if lease != volume.lease || files != volume.files || ownership != volume.ownership {
                filesystem.setView(
                    ViewDefinition(
                        id: volume.viewID, source: lease.source, layout: .volume(files), ownership: ownership))
                logger.info(
                    "volume changed on republish",
                    metadata: ["volume": "\(publication.volumeID)", "files": "\(files.count)"])
                (volume.lease, volume.files, volume.ownership) = (lease, files, ownership)
            }
            volume.request = request
            volume.publication = publication
            volume.token = token ?? volume.token
            volumes[publication.volumeID] = volume
            write(volume)
            if lease != previousLease {
                await sources.release(previousLease, volumeID: publication.volumeID, linger: .zero)
            }
            // Rotated content reaches the Secrets here, at kubelet's periodic republish.
            try await syncSecrets(
                request, files: volume.files, source: volume.lease.source, volumeID: publication.volumeID, force: false)
        } catch {
            logger.warning(
                "republish could not refresh the volume; it keeps serving its last good content",
                metadata: ["volume": "\(publication.volumeID)", "error": "\(error.message)"])
        }
        remountIfLost(volume)
    }

    private func remountIfLost(_ volume: Volume) {
        guard !frozen else { return }
        do {
            let target = try TargetPath(volume.publication.targetPath, in: settings.kubeletDirectory)
            guard target.state != .mounted else { return }
            try prepareTarget(target)
            try target.bindReadOnly(from: "\(settings.mountRoot)/\(volume.viewID)")
            logger.warning(
                "the volume's target had lost its mount; mounted it again",
                metadata: ["volume": "\(volume.publication.volumeID)"])
        } catch {
            logger.error(
                "cannot mount the volume at its target again",
                metadata: ["volume": "\(volume.publication.volumeID)", "error": "\(error)"])
        }
    }

    // MARK: Unpublish

    func unpublish(volumeID: String, targetPath: String) async throws(VolumeError) {
        try checkNotFrozen()
        try await claim(volumeID)
        defer { busy.remove(volumeID) }
        try clearTarget(targetPath, of: volumeID)
        guard let volume = volumes[volumeID] else { return }
        guard volume.publication.targetPath == targetPath else {
            // Another target was cleared on request (only if it held none of this plugin's other
            // volumes); the volume itself stays where it is.
            logger.warning(
                "unpublish named another target than the volume's",
                metadata: ["volume": "\(volumeID)", "target": "\(targetPath)"])
            return
        }
        volumes[volumeID] = nil
        journal?(Self.recordPrefix + volumeID, nil)
        filesystem.removeView(volume.viewID)
        await cache.unpin(volume: volumeID)
        await sources.release(volume.lease, volumeID: volumeID, linger: .zero)
        await releaseSecrets(of: volume)
        logger.info("unpublished", metadata: ["volume": "\(volumeID)"])
    }

    /// Unmounts the target and removes its directory. A target whose pod directory is gone
    /// already has nothing mounted on it. Only this plugin's mounts are taken off: a view of its
    /// own filesystem, or a FUSE mount whose daemon is gone (an earlier plugin's); anything else
    /// mounted there is left alone, whatever the request says.
    private func clearTarget(_ path: String, of volumeID: String) throws(VolumeError) {
        let target: TargetPath
        do {
            target = try TargetPath(path, in: settings.kubeletDirectory)
        } catch  where error.code == .notFound {
            return
        }
        do throws(MountError) {
            switch target.state {
            case .deadMount:
                try target.unmount()
            case .mounted:
                let owner = volumes.values.first { $0.publication.targetPath == path }?.publication.volumeID
                guard let device = target.device, device == ownDevice, owner == nil || owner == volumeID else {
                    logger.warning(
                        "unpublish left the target alone: what is mounted there is not this volume",
                        metadata: [
                            "volume": "\(volumeID)", "target": "\(path)", "mounted": "\(owner ?? "not this plugin's")",
                        ])
                    return
                }
                try target.unmount()
            case .directory, .missing, .notDirectory:
                break
            }
            guard target.state == .directory else { return }
            guard target.isEmptyDirectory else {
                logger.warning(
                    "unpublish left the target directory in place: something else wrote into it",
                    metadata: ["volume": "\(volumeID)", "target": "\(path)"])
                return
            }
            try target.removeDirectory()
        } catch {
            throw VolumeError(.internalError, "failed to unpublish volume \(volumeID): \(error)")
        }
    }

    /// The device of the plugin's own FUSE mount, which its views' bind mounts share.
    private var ownDevice: dev_t? { TargetPath.device(ofPath: settings.mountRoot) }

    /// A first publish mounts only on an empty directory (or where nothing is yet, or on what an
    /// earlier plugin left): a mount would hide a directory's files, and a target with a mount
    /// already holds another volume or another filesystem. Checked before anything is fetched.
    private func checkTargetIsFree(_ target: TargetPath, _ state: TargetState) throws(VolumeError) {
        switch state {
        case .missing, .deadMount:
            return
        case .notDirectory:
            throw VolumeError(
                .invalidArgument,
                "target path \(target.path) exists and is not a directory; kubelet's targets are directories")
        case .mounted:
            if let other = volumes.values.first(where: { $0.publication.targetPath == target.path }) {
                throw VolumeError(
                    .alreadyExists,
                    "target path \(target.path) already has volume \(other.publication.volumeID) mounted; unpublish it first"
                )
            }
            throw VolumeError(
                .alreadyExists,
                "target path \(target.path) already has a mount that is not a volume of this plugin; it is left alone")
        case .directory:
            guard target.isEmptyDirectory else {
                throw VolumeError(
                    .failedPrecondition,
                    "target path \(target.path) is a directory that is not empty; a volume is mounted only on an empty "
                        + "directory, so that it hides nothing")
            }
        }
    }

    // MARK: Kubernetes Secrets (secretObjects)

    /// Every entry must be sound before anything is fetched or written.
    private func checkSecretObjects(_ request: VolumeRequest, files: [VolumeFile]) throws(VolumeError) {
        guard let objects = request.secretObjects, !objects.isEmpty else { return }
        let reference = "\(request.podNamespace)/\(request.secretProviderClass ?? "")"
        try SecretObject.validate(
            objects, files: Set(files.map { $0.path.joined(separator: "/") }), reference: reference)
        guard secretSync != nil else {
            throw VolumeError(
                .failedPrecondition,
                "secretproviderclass \(reference) sets secretObjects, but the plugin has no Kubernetes API")
        }
        guard let uid = request.podUID, !uid.isEmpty else {
            throw VolumeError(
                .invalidArgument,
                "secretproviderclass \(reference) sets secretObjects, but kubelet gave no pod UID to own the Secrets: the CSIDriver "
                    + "object must set podInfoOnMount: true")
        }
    }

    /// Fills the volume's Secrets from its files. `force` writes even when this process filled
    /// them with the same content before (a first publish: someone may have changed them).
    @discardableResult
    private func syncSecrets(
        _ request: VolumeRequest, files: [VolumeFile], source: SourceID, volumeID: String, force: Bool
    ) async throws(VolumeError) -> [String] {
        guard let objects = request.secretObjects, !objects.isEmpty, let secretSync, let uid = request.podUID else {
            return []
        }
        let pod = PodReference(namespace: request.podNamespace, name: request.podName, uid: uid)
        let byPath = Dictionary(files.map { ($0.path.joined(separator: "/"), $0) }) { first, _ in first }
        var digests: [String: [UInt8]] = [:]
        var written: [String] = []
        for object in objects {
            var data: [String: SecretBytes] = [:]
            for entry in object.data {
                guard let file = byPath[entry.objectName] else { continue }
                let content: SecretBytes
                do {
                    content = try await filesystem.content(of: file, from: source, wait: settings.republishTimeout)
                } catch {
                    throw VolumeError(
                        VolumePlanner.code(for: error.kind),
                        "failed to fill Secret \(object.secretName) key \(entry.key): \(error.message)")
                }
                data[entry.key] = try Self.secretValue(content, key: entry.key, of: object)
            }
            let digest = Self.digest(object, data)
            digests[object.secretName] = digest
            if !force, syncedSecrets[volumeID]?[object.secretName] == digest { continue }
            let started = ContinuousClock.now
            try await secretSync.sync(object, data: data, for: pod)
            CSIMetrics.secretSynced(after: ContinuousClock.now - started)
            syncedSecrets[volumeID, default: [:]][object.secretName] = digest
            written.append(object.secretName)
        }
        syncedSecrets[volumeID] = digests
        return written
    }

    // MARK: Rotations

    /// A cache event, for the volumes that show the object: events on their pods, and their
    /// Secrets filled again at once rather than at the next republish.
    func cacheEvent(_ event: CacheEvent) async {
        switch event {
        case .contentChanged(let source, let reference): await rotated(reference, in: source)
        case .refreshFailed(let source, let reference, let reason):
            await refreshFailed(reference, in: source, reason: reason)
        case .listingChanged: return
        }
    }

    private func showing(_ reference: ObjectReference, in source: SourceID) -> [Volume] {
        volumes.values.filter { $0.lease.source == source && $0.files.contains { $0.reference == reference } }
    }

    private func rotationFinished(_ volumeID: String) {
        for waiter in rotating.removeValue(forKey: volumeID) ?? [] { waiter.resume() }
    }

    private func rotated(_ reference: ObjectReference, in source: SourceID) async {
        for volume in showing(reference, in: source) {
            let volumeID = volume.publication.volumeID
            // Busy: the publish or unpublish under way sees the new content itself.
            guard !frozen, !busy.contains(volumeID), rotating[volumeID] == nil else { continue }
            rotating[volumeID] = []
            defer { rotationFinished(volumeID) }
            guard let pod = Self.pod(volume.request) else { continue }
            let what = "\(VolumePlanner.type(of: reference.kind).rawValue) \(reference.name)"
            do {
                for file in volume.files where file.reference == reference {
                    _ = try await filesystem.content(of: file, from: source, wait: settings.republishTimeout)
                }
                CSIMetrics.rotation()
                await events?.record(
                    pod, .normal, .mountRotationComplete,
                    "successfully rotated mounted contents for \(Self.describe(volume.request))")
            } catch {
                CSIMetrics.rotation(failed: PodEvents.Reason.mountRotationFailed.rawValue)
                await events?.record(
                    pod, .warning, .mountRotationFailed,
                    "failed to rotate \(what) of \(Self.describe(volume.request)): \(error.message)")
                continue
            }
            do {
                for name in try await syncSecrets(
                    volume.request, files: volume.files, source: source, volumeID: volumeID, force: false)
                {
                    await events?.record(
                        pod, .normal, .secretRotationComplete, "successfully rotated K8s secret \(name)")
                }
            } catch {
                CSIMetrics.rotation(failed: PodEvents.Reason.secretRotationFailed.rawValue)
                await events?.record(
                    pod, .warning, .secretRotationFailed,
                    "failed to rotate K8s secrets of \(Self.describe(volume.request)): \(error.message)")
            }
        }
    }

    private func refreshFailed(_ reference: ObjectReference, in source: SourceID, reason: String) async {
        let what = "\(VolumePlanner.type(of: reference.kind).rawValue) \(reference.name)"
        for volume in showing(reference, in: source) {
            CSIMetrics.rotation(failed: PodEvents.Reason.mountRotationFailed.rawValue)
            guard let pod = Self.pod(volume.request) else { continue }
            await events?.record(
                pod, .warning, .mountRotationFailed,
                "failed to refresh \(what) of \(Self.describe(volume.request)): \(reason); the last good content is served meanwhile"
            )
        }
    }

    private static func pod(_ request: VolumeRequest) -> PodReference? {
        guard let uid = request.podUID, !uid.isEmpty else { return nil }
        return PodReference(namespace: request.podNamespace, name: request.podName, uid: uid)
    }

    private static func describe(_ request: VolumeRequest) -> String {
        request.secretProviderClass.map { "spc \(request.podNamespace)/\($0)" } ?? "vault \(request.keyVaultName)"
    }

    /// A file's bytes as the Secret holds them: as they are, or for kubernetes.io/tls the
    /// certificates or the private key alone, as the driver puts them there.
    private static func secretValue(_ content: SecretBytes, key: String, of object: SecretObject) throws(VolumeError)
        -> SecretBytes
    {
        guard object.type == SecretObject.tlsType else { return content }
        var file = content.withUnsafeBufferPointer { Array($0) }
        defer { file.wipe() }
        do throws(KubernetesTLSData.Failure) {
            var bytes =
                key == "tls.key"
                ? try KubernetesTLSData.privateKey(from: file) : try KubernetesTLSData.certificates(from: file)
            return SecretBytes(taking: &bytes)
        } catch {
            throw VolumeError(
                .invalidArgument,
                "failed to fill Secret \(object.secretName) key \(key) (kubernetes.io/tls): \(error.description)")
        }
    }

    private static func digest(_ object: SecretObject, _ data: [String: SecretBytes]) -> [UInt8] {
        var input = Array(
            "\(object.type)\u{0}\(object.labels.sorted { $0.key < $1.key })\u{0}\(object.annotations.sorted { $0.key < $1.key })"
                .utf8)
        for (key, value) in data.sorted(by: { $0.key < $1.key }) {
            input += Array("\u{0}\(key)\u{0}\(value.count)\u{0}".utf8)
            value.withUnsafeBufferPointer { input += $0 }
        }
        defer { input.wipe() }
        return Digest.sha256(input)
    }

    /// The pod no longer owns the volume's Secrets; the last pod's unpublish deletes them.
    private func releaseSecrets(of volume: Volume) async {
        syncedSecrets[volume.publication.volumeID] = nil
        guard let objects = volume.request.secretObjects, let secretSync, let uid = volume.request.podUID else {
            return
        }
        let pod = PodReference(namespace: volume.request.podNamespace, name: volume.request.podName, uid: uid)
        for object in objects {
            // Another volume of the same pod may fill the same Secret.
            let stillUsed = volumes.values.contains { other in
                other.request.podUID == uid
                    && (other.request.secretObjects ?? []).contains { $0.secretName == object.secretName }
            }
            guard !stillUsed else { continue }
            do {
                try await secretSync.release(object.secretName, for: pod)
            } catch {
                // Kubernetes' garbage collector deletes it once its owner pods are gone.
                logger.warning(
                    "could not release a synced Secret; the garbage collector removes it with its pods",
                    metadata: ["secret": "\(pod.namespace)/\(object.secretName)", "error": "\(error.message)"])
            }
        }
    }

    // MARK: Steps

    // MARK: The next plugin process

    /// Writes every volume to `journal` from now on, starting with those published already.
    func attach(journal: @escaping @Sendable (String, [UInt8]?) -> Void) async {
        self.journal = journal
        journal(Self.fingerprintKeyName, await sources.fingerprintKey)
        for volume in volumes.values { write(volume) }
    }

    private func write(_ volume: Volume) {
        guard let journal else { return }
        var encoded = (try? JSONEncoder().encode(volume.record)).map { Array($0) }
        journal(Self.recordPrefix + volume.publication.volumeID, encoded)
        encoded?.wipe()
    }

    /// Serves again the volumes a previous plugin process published (their records in its state
    /// log): identities, views and pinned content, with no call to anyone. A volume that cannot
    /// be brought back is left to kubelet's next republish.
    func restore(from values: [String: [UInt8]]) async {
        if let key = values[Self.fingerprintKeyName], key.count == 32 { await sources.adoptFingerprintKey(key) }
        for (key, value) in values where key.hasPrefix(Self.recordPrefix) {
            guard let record = try? JSONDecoder().decode(VolumeRecord.self, from: Data(value)) else {
                logger.error(
                    "a volume record from the previous plugin process cannot be read; kubelet's next republish brings it back",
                    metadata: ["key": "\(key)"])
                continue
            }
            let volumeID = record.publication.volumeID
            do throws(VolumeError) {
                let cloud =
                    record.request.cloudName == nil && record.request.cloudEnvironmentFile == nil
                    ? await sources.defaultCloud : try record.request.resolveCloud()
                let endpoint: VaultEndpoint
                do {
                    endpoint = try VaultEndpoint.resolve(record.request.keyVaultName, cloud: cloud)
                } catch {
                    throw VolumeError(.invalidArgument, "failed to get vault: \(error.detail)")
                }
                let lease = try await sources.acquire(
                    record.request.identity, verifiedToken: record.token, tenant: record.request.tenantId, cloud: cloud,
                    endpoint: endpoint,
                    volumeID: volumeID)
                filesystem.setView(
                    ViewDefinition(
                        id: record.viewID, source: lease.source, layout: .volume(record.files),
                        ownership: record.ownership))
                _ = await cache.pin(record.files.map(\.reference), in: lease.source, for: volumeID, admitting: false)
                volumes[volumeID] = Volume(
                    publication: record.publication, viewID: record.viewID, lease: lease, files: record.files,
                    ownership: record.ownership,
                    request: record.request, token: record.token)
            } catch {
                logger.error(
                    "a volume of the previous plugin process cannot be served again; kubelet's next republish brings it back",
                    metadata: ["volume": "\(volumeID)", "error": "\(error.message)"])
            }
        }
        if !volumes.isEmpty { logger.info("took over \(volumes.count) published volumes") }
    }

    /// Refuses changes from now on: the volumes are being handed to the next plugin process.
    /// Calls under way fail at their next step (kubelet retries them with the next process):
    /// each checks before it changes a view, a target or a record, with no await in between.
    func freeze() {
        frozen = true
    }

    func thaw() {
        frozen = false
    }

    private func checkNotFrozen() throws(VolumeError) {
        guard !frozen else {
            throw VolumeError(
                .unavailable,
                "the plugin is handing its volumes over to a new version of itself; kubelet retries shortly")
        }
    }

    private func admitPublish() throws(VolumeError) {
        guard publishing < settings.maxConcurrentPublishes else {
            throw VolumeError(
                .resourceExhausted,
                "\(publishing) volumes are being published already, the most at once (--max-concurrent-publishes "
                    + "\(settings.maxConcurrentPublishes)); kubelet retries this one shortly")
        }
        publishing += 1
    }

    /// Before any call to Azure: a volume that could not fit in the memory for published content,
    /// even if all its objects were as large as they may be, is refused.
    private func checkPublishedRoom(for request: VolumeRequest) async throws(VolumeError) {
        let used = await cache.publishedBytes
        let (limit, objectBytes) = (cache.configuration.maxPublishedBytes, cache.configuration.maxObjectBytes)
        let files = request.fileCountAtMost
        guard used + files * objectBytes > limit else { return }
        throw Self.memoryRefusal(
            PublishedMemory(used: used, needed: files * objectBytes, newObjects: files, limit: limit),
            objectBytes: objectBytes)
    }

    /// Published content is never evicted, so it is admitted only when it fits; objects other
    /// volumes of the same identity show already cost nothing more.
    private func pin(_ files: [VolumeFile], lease: VolumeSources.Lease, volumeID: String) async throws(VolumeError) {
        guard let refused = await cache.pin(files.map(\.reference), in: lease.source, for: volumeID) else { return }
        throw Self.memoryRefusal(refused, objectBytes: cache.configuration.maxObjectBytes)
    }

    private static func memoryRefusal(_ memory: PublishedMemory, objectBytes: Int) -> VolumeError {
        func mebibytes(_ bytes: Int) -> String {
            let tenths = (bytes * 10 + (1 << 20) / 2) >> 20
            return tenths % 10 == 0 ? "\(tenths / 10) MiB" : "\(tenths / 10).\(tenths % 10) MiB"
        }
        return VolumeError(
            .resourceExhausted,
            "the volume's content would not fit in the memory kept for published volumes: they hold \(mebibytes(memory.used)), this "
                + "one needs up to \(mebibytes(memory.needed)) more (\(memory.newObjects) objects, counted at \(objectBytes >> 10) KiB each "
                + "until fetched), and at most \(mebibytes(memory.limit)) is kept (--max-published-memory); raise it, or publish fewer objects"
        )
    }

    /// Claims a volume for a publish or unpublish, first waiting for a rotation applying to it.
    private func claim(_ volumeID: String) async throws(VolumeError) {
        while rotating[volumeID] != nil {
            await withCheckedContinuation { rotating[volumeID, default: []].append($0) }
        }
        guard !busy.contains(volumeID) else {
            throw VolumeError(
                .aborted, "an operation on volume \(volumeID) is already in progress; retry when it has finished")
        }
        busy.insert(volumeID)
    }

    /// The SecretProviderClass parameters (from the object the attributes name, or the attributes
    /// themselves), validated before any call to Azure.
    private func parse(_ publication: Publication, secrets: [String: String], republish: Bool) async throws(VolumeError)
        -> VolumeRequest
    {
        let context = publication.volumeContext
        guard let className = context["secretProviderClass"].flatMap({ $0.isEmpty ? nil : $0 }) else {
            return try SecretProviderClassParser.parse(
                parameters: context, podAttributes: [:], secrets: secrets, options: settings.parserOptions)
        }
        guard let classes else {
            throw VolumeError(
                .failedPrecondition,
                "the volume names secretProviderClass \(className), but the plugin cannot read the Kubernetes API: run it in the "
                    + "cluster with its service account, or pass --kubernetes-api; or give the parameters as volumeAttributes"
            )
        }
        // The class is read from the pod's namespace, so kubelet's pod info is checked first.
        guard !(context["csi.storage.k8s.io/pod.name"] ?? "").isEmpty else {
            throw VolumeError(
                .invalidArgument, "pod name is not provided: the CSIDriver object must set podInfoOnMount: true")
        }
        guard let namespace = context["csi.storage.k8s.io/pod.namespace"], !namespace.isEmpty else {
            throw VolumeError(
                .invalidArgument, "pod namespace is not provided: the CSIDriver object must set podInfoOnMount: true")
        }
        let object = try await classes.read(namespace: namespace, name: className)
        let parameterBytes = object.parameters.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
        guard parameterBytes <= settings.maxParameterBytes else {
            throw VolumeError(
                .invalidArgument,
                "secretproviderclass \(namespace)/\(className) has \(parameterBytes) bytes of parameters; the plugin takes at most "
                    + "\(settings.maxParameterBytes) (--max-request-bytes)")
        }
        var request = try SecretProviderClassParser.parse(
            parameters: object.parameters, podAttributes: context, secrets: secrets, options: settings.parserOptions)
        request.secretObjects = object.secretObjects.isEmpty ? nil : object.secretObjects
        return request
    }

    private func plan(
        _ request: VolumeRequest, volumeID: String
    ) async throws(VolumeError) -> (VolumeSources.Lease, [VolumeFile], VerifiedServiceAccountToken?) {
        let cloud =
            request.cloudName == nil && request.cloudEnvironmentFile == nil
            ? await sources.defaultCloud : try request.resolveCloud()
        let endpoint: VaultEndpoint
        do {
            endpoint = try VaultEndpoint.resolve(request.keyVaultName, cloud: cloud)
        } catch {
            throw VolumeError(.invalidArgument, "failed to get vault: \(error.detail)")
        }
        // Proof of the identity comes before anything held for it (cache, token box) is touched.
        var verifiedToken: VerifiedServiceAccountToken?
        if case .workloadIdentity(let clientId, let token, _) = request.identity {
            verifiedToken = try await tokens.verify(
                token, pod: PodIdentity(request),
                target: ExchangeTarget(clientId: clientId, tenant: request.tenantId, cloud: cloud))
        }
        let lease = try await sources.acquire(
            request.identity, verifiedToken: verifiedToken, tenant: request.tenantId, cloud: cloud, endpoint: endpoint,
            volumeID: volumeID)
        do {
            return (
                lease, try await VolumePlanner.files(for: request, source: lease.source, cache: cache), verifiedToken
            )
        } catch {
            await sources.release(lease, volumeID: volumeID, linger: settings.failedPublishLinger)
            throw error
        }
    }

    /// Fetches every file in parallel, each waiting at most `limit` for Key Vault; fails naming
    /// each object that could not be fetched and why. Fetches nobody else waits for are called
    /// off when this gives up.
    private func load(_ files: [VolumeFile], lease: VolumeSources.Lease, request: VolumeRequest, within limit: Duration)
        async throws(VolumeError)
    {
        let failures = await filesystem.load(files, from: lease.source, wait: limit)
        guard !failures.isEmpty else { return }
        let sorted = failures.sorted { $0.file.path.lexicographicallyPrecedes($1.file.path) }
        let messages = sorted.map { failure in
            let reference = failure.file.reference
            let object = VolumeObject(
                name: reference.name, type: VolumePlanner.type(of: reference.kind), version: reference.version)
            return object.failure(VolumePlanner.code(for: failure.error.kind), failure.error.message).message
        }
        // The most actionable code: outages are retried, refusals and absences need a fix.
        let codes = sorted.map { VolumePlanner.code(for: $0.error.kind) }
        let code =
            [.unavailable, .deadlineExceeded, .permissionDenied, .notFound, .invalidArgument].first(
                where: codes.contains) ?? .internalError
        throw VolumeError(
            code,
            "\(failures.count) of \(files.count) objects could not be mounted: \(messages.joined(separator: "; "))")
    }

    private func ownership(_ request: VolumeRequest, _ publication: Publication) -> Ownership {
        Ownership(
            uid: request.uid ?? 0, gid: publication.mountGroup ?? request.gid ?? 0,
            fileMode: VolumePlanner.defaultFileMode, directoryMode: 0o755)
    }

    /// Makes the target an empty directory to mount on: creates it, or clears a dead mount left
    /// by a plugin that stopped.
    private func prepareTarget(_ target: TargetPath) throws(MountError) {
        switch target.state {
        case .deadMount:
            try target.unmount()
            if target.state == .missing { try target.makeDirectory() }
        case .missing:
            try target.makeDirectory()
        case .mounted:
            throw MountError(operation: "mount on", path: target.path, code: EBUSY)
        case .notDirectory:
            throw MountError(operation: "mount on", path: target.path, code: ENOTDIR)
        case .directory:
            break
        }
    }

    /// Volume IDs are kubelet's (`csi-<hash>`) but may hold any character; view directories must not.
    static func viewID(_ volumeID: String) -> String {
        "v-"
            + Digest.sha256(Array(volumeID.utf8)).prefix(16).map { byte in
                let hex = String(byte, radix: 16)
                return hex.count == 1 ? "0" + hex : hex
            }.joined()
    }

    static func identityKind(_ identity: VolumeIdentity) -> String {
        switch identity {
        case .workloadIdentity(let clientId, _, _): "workload identity \(clientId)"
        case .servicePrincipal(let clientId, _): "service principal \(clientId)"
        case .nodeManagedIdentity(let clientId): "node managed identity \(clientId ?? "system-assigned")"
        }
    }
}

extension Duration {
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
    var seconds: Int64 { components.seconds }
}
