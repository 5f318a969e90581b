import CLinux
import DescriptorPassing
import FuseBridge
import Glibc
import Logging
import PKI
import Synchronization

/// What a process takes over from the one that served a mount before it.
public struct Inheritance: @unchecked Sendable {
    // @unchecked: `log` is a class that the new process owns from here on.
    public var connection: FuseConnection
    public var log: StateLog
    public var contents: StateLog.Contents
    /// The previous process's cache, at a planned handoff (zero it once taken in).
    public var cachedContent: [UInt8]?
    /// Requests it read but never answered (it died, or a handoff could not wait for them):
    /// the kernel must resend them.
    public var requestsLost: Bool
    /// At a planned handoff, the connection to the previous process, which waits to hear that
    /// this one serves before it exits.
    var handoff: LocalSocket?
    /// Reclaimed from the descriptor store, which keeps the mount still.
    public var reclaimedFromStore: Bool { handoff == nil }

    /// Tells the previous process, at a planned handoff, that this one serves now: it exits.
    public func confirmServing() {
        try? handoff?.send(LocalSocket.Message("SERVING"))
    }
}

/// What the running process gives up at a planned handoff: duplicates of its descriptors and its
/// cache, once it has stopped serving and answered every request it read.
public struct HandoffOffer: Sendable {
    public var fuseDescriptor: Int32
    public var logDescriptor: Int32
    public var cachedContent: [UInt8]
    /// Every request read was answered before the offer was made.
    public var drained: Bool

    public init(fuseDescriptor: Int32, logDescriptor: Int32, cachedContent: [UInt8], drained: Bool) {
        self.fuseDescriptor = fuseDescriptor
        self.logDescriptor = logDescriptor
        self.cachedContent = cachedContent
        self.drained = drained
    }
}

/// What the running process does at each step of a planned handoff.
public protocol HandoffParticipant: Sendable {
    /// Stops serving and says what to hand over; nil when it cannot (the taker then gets a refusal).
    func prepareHandoff() async -> HandoffOffer?
    /// The taker serves now: let go of the mount without unmounting it, and exit.
    func completeHandoff() async
    /// The taker failed or went away: serve again.
    func abandonHandoff() async
    /// An incompatible taker asked this process to unmount, so it can mount afresh.
    func stepAside() async
    /// The taker knows the mount is gone: this process may exit.
    func steppedAside() async
}

/// Carries one FUSE mount from one akvfs process to the next.
///
/// - A crash: the previous process left its /dev/fuse descriptor and its state log in a
///   descriptor store (systemd's, or an akvfs-keeper); the next one reclaims both, takes the
///   inode table from the log and asks the kernel to resend what was lost.
/// - A planned handoff: the running process listens on a root-only socket; the next one
///   connects, the running one stops serving, answers what it had read, and passes the
///   descriptors and its cache; the next one serves, and the other exits. The mount is never
///   unmounted. Between incompatible versions the handoff is refused: the running process
///   unmounts and exits, and the next one mounts afresh.
public final class MountContinuity: Sendable {
    /// The wire protocol of handoffs; a different one is refused.
    public static let protocolVersion = 1

    public let mountpoint: String
    /// Names the mount in the store and on the handoff socket.
    public let identifier: String
    public let store: (any DescriptorStore)?
    public let handoffSocketPath: String?
    private let handoffListener = Mutex<LocalSocket?>(nil)
    private let logger = Logger(label: "akvfs.continuity")

    var fuseName: String { "akvfs-fuse-\(identifier)" }
    var logName: String { "akvfs-state-\(identifier)" }
    static let deviceKey = "mount-device"
    public static let initKey = "fuse-init"

    /// `mountpoint` canonical; `handoffDirectory` nil when this process may not hand over (not root).
    public init(mountpoint: String, kind: String, store: (any DescriptorStore)?, handoffDirectory: String?) {
        self.mountpoint = mountpoint
        let digest = Digest.sha256(Array(mountpoint.utf8)).prefix(8).map {
            ($0 < 16 ? "0" : "") + String($0, radix: 16)
        }.joined()
        let identifier = "\(kind)-\(digest)"
        self.identifier = identifier
        self.store = store
        handoffSocketPath = handoffDirectory.map { "\($0)/\(identifier).sock" }
    }

    // MARK: Starting

    /// What a previous process left for this mount: from the store after a crash or a restart,
    /// or by a planned handoff from a process serving it now. Nil when there is nothing to take
    /// over (mount afresh).
    public func inherit(version: String) throws(ContinuityError) -> Inheritance? {
        // A process still serving the mount hands it over; only when none answers is what the
        // store kept reclaimed (two processes must never serve one connection).
        if let handedOver = try takeOverRunningProcess(version: version) { return handedOver }
        return try reclaimFromStore()
    }

    private func reclaimFromStore() throws(ContinuityError) -> Inheritance? {
        guard let store else { return nil }
        var kept = try store.retrieve()
        defer { kept.values.forEach { close($0) } }
        guard let fuse = kept.removeValue(forKey: fuseName), let logDescriptor = kept.removeValue(forKey: logName)
        else { return nil }
        do throws(ContinuityError) {
            guard clinux_is_fuse_device(fuse) != 0 else {
                throw ContinuityError("the descriptor kept as \(fuseName) is not /dev/fuse")
            }
            let log = try StateLog(adopting: logDescriptor)
            let contents = try log.contents()
            guard let device = contents.values[Self.deviceKey].map({ String(decoding: $0, as: UTF8.self) }),
                let initRequest = contents.values[Self.initKey]
            else { throw ContinuityError("the kept state names no mount") }
            guard let mounted = MountTable.read().last(where: { $0.mountpoint == mountpoint }), mounted.device == device
            else {
                throw ContinuityError("\(mountpoint) is no longer the mount the kept connection serves")
            }
            logger.info("reclaiming the mount from the descriptor store", metadata: ["mountpoint": "\(mountpoint)"])
            return Inheritance(
                connection: FuseConnection(descriptor: fuse, initRequest: initRequest), log: log, contents: contents,
                cachedContent: nil,
                requestsLost: true)
        } catch {
            close(fuse)
            store.remove(fuseName)
            store.remove(logName)
            logger.warning(
                "not reclaiming what the descriptor store kept: \(error)", metadata: ["mountpoint": "\(mountpoint)"])
            return nil
        }
    }

    private func takeOverRunningProcess(version: String) throws(ContinuityError) -> Inheritance? {
        guard let path = handoffSocketPath, let socket = try LocalSocket.connect(to: path) else { return nil }
        socket.setTimeout(seconds: 60)
        try socket.send(LocalSocket.Message("TAKEOVER \(Self.protocolVersion) \(StateLog.formatVersion) \(version)"))
        guard let answer = try socket.receive() else {
            throw ContinuityError("the running akvfs closed the handoff connection")
        }
        let words = answer.text.split(separator: " ", maxSplits: 1).map(String.init)
        switch words.first {
        case "HANDOVER" where answer.descriptors.count == 3 && words.count == 2:
            let (fuse, logDescriptor, cacheDescriptor) = (
                answer.descriptors[0], answer.descriptors[1], answer.descriptors[2]
            )
            defer { close(cacheDescriptor) }
            do throws(ContinuityError) {
                guard clinux_is_fuse_device(fuse) != 0 else {
                    throw ContinuityError("the descriptor handed over is not /dev/fuse")
                }
                let log = try StateLog(adopting: logDescriptor)
                let contents = try log.contents()
                guard let initRequest = contents.values[Self.initKey] else {
                    throw ContinuityError("the state handed over has no FUSE INIT")
                }
                let cached = SealedMemory.read(cacheDescriptor)
                logger.info("taking the mount over from the running akvfs", metadata: ["mountpoint": "\(mountpoint)"])
                return Inheritance(
                    connection: FuseConnection(descriptor: fuse, initRequest: initRequest), log: log,
                    contents: contents,
                    cachedContent: cached, requestsLost: words[1] != "drained", handoff: socket)
            } catch {
                close(fuse)
                throw error
            }
        case "REFUSE":
            answer.descriptors.forEach { close($0) }
            let reason = words.count > 1 ? words[1] : "no reason given"
            logger.warning(
                "the running akvfs refused the handoff (\(reason)); it unmounts and this process mounts afresh")
            try socket.send(LocalSocket.Message("STEPASIDE"))
            _ = try? socket.receive()
            return nil
        default:
            answer.descriptors.forEach { close($0) }
            throw ContinuityError("the running akvfs answered the handoff with \(answer.text)")
        }
    }

    // MARK: Serving

    /// Registers a fresh mount with the store: its connection and its log outlive this process.
    public func keep(fuse: Int32, log: StateLog) {
        guard let store else { return }
        do {
            try store.store(fuse, as: fuseName)
            try store.store(log.descriptor, as: logName)
        } catch {
            logger.warning(
                "the mount will not outlive this process: \(error)", metadata: ["mountpoint": "\(mountpoint)"])
        }
    }

    /// How often a serving process checks the store still keeps its mount.
    static let storeCheckInterval: Duration = .seconds(10)

    /// Keeps the mount again if the store lost it (an akvfs-keeper restarted). systemd's store
    /// cannot be asked and never loses anything while the unit lives.
    public func keepIfLost(fuse: Int32, log: StateLog) {
        guard let store, store.canList, let kept = try? store.retrieve() else { return }
        defer { kept.values.forEach { close($0) } }
        guard kept[fuseName] == nil || kept[logName] == nil else { return }
        logger.notice(
            "the descriptor store lost the mount (the keeper restarted?); keeping it there again",
            metadata: ["mountpoint": "\(mountpoint)"])
        keep(fuse: fuse, log: log)
    }

    /// Forgets the mount in the store (it is being unmounted for good).
    public func forget() {
        store?.remove(fuseName)
        store?.remove(logName)
    }

    /// Opens the handoff socket, before the mount is reported ready: a next process started the
    /// moment it is finds the socket, and its connection waits in the backlog until
    /// `serveHandoffs` accepts it. Does nothing when already open or when this process may not
    /// hand over.
    public func listenForHandoffs() {
        guard let path = handoffSocketPath else { return }
        handoffListener.withLock { listener in
            guard listener == nil else { return }
            do {
                listener = try LocalSocket.listen(at: path)
            } catch {
                logger.warning("no handoff socket: a restart will not take this mount over smoothly (\(error))")
            }
        }
    }

    /// Serves handoffs to the next akvfs process on `handoffSocketPath`, on a thread of its own,
    /// until one completes or `stopServingHandoffs` is called.
    public func serveHandoffs(version: String, participant: any HandoffParticipant) {
        listenForHandoffs()
        guard let path = handoffSocketPath, let listener = handoffListener.withLock({ $0 }) else { return }
        let logger = self.logger
        Thread.detached { [self] in
            while let connection = listener.accept() {
                // Once the next process serves, the socket file is its own.
                let handedOver = Self.handOff(
                    over: connection, at: path, version: version, participant: participant, logger: logger,
                    givingAwayTheSocket: { handoffListener.withLock { $0 = nil } })
                if handedOver { return }
            }
        }
    }

    /// Closes the handoff socket and removes its file, unless a handoff gave the path away.
    public func stopServingHandoffs() {
        guard let listener = handoffListener.withLock({ $0.take() }) else { return }
        listener.shutDown()
        if let handoffSocketPath { unlink(handoffSocketPath) }
    }

    /// One handoff; true when the taker serves now (this process is done).
    private static func handOff(
        over connection: LocalSocket, at path: String, version: String, participant: any HandoffParticipant,
        logger: Logger,
        givingAwayTheSocket: () -> Void
    ) -> Bool {
        connection.setTimeout(seconds: 60)
        guard let request = try? connection.receive(), request.descriptors.isEmpty else { return false }
        let words = request.text.split(separator: " ").map(String.init)
        guard words.first == "TAKEOVER", words.count >= 3 else {
            try? connection.send(LocalSocket.Message("REFUSE unknown request"))
            return false
        }
        guard words[1] == String(protocolVersion), words[2] == String(StateLog.formatVersion) else {
            logger.notice(
                "a handoff from an incompatible akvfs (\(words.dropFirst().joined(separator: " "))) is refused")
            try? connection.send(
                LocalSocket.Message(
                    "REFUSE incompatible: akvfs \(version) hands over with protocol \(protocolVersion), state format \(StateLog.formatVersion)"
                ))
            guard (try? connection.receive())?.text == "STEPASIDE" else { return false }
            givingAwayTheSocket()
            unlink(path)
            blockOn { await participant.stepAside() }
            try? connection.send(LocalSocket.Message("OK"))
            blockOn { await participant.steppedAside() }
            return true
        }
        guard var offer = blockOn({ await participant.prepareHandoff() }) else {
            try? connection.send(LocalSocket.Message("REFUSE this akvfs cannot stop serving now"))
            return false
        }
        // Moved out of the offer, so the wipe below zeroes the only copy rather than a copy of it.
        var cached = offer.cachedContent
        offer.cachedContent = []
        let cacheDescriptor =
            SealedMemory.make(cached, name: "akvfs-cache") ?? SealedMemory.make([], name: "akvfs-cache")
        cached.wipe()
        unlink(path)
        let descriptors = [offer.fuseDescriptor, offer.logDescriptor, cacheDescriptor ?? -1]
        defer { descriptors.forEach { close($0) } }
        let handedOver =
            (try? connection.send(
                LocalSocket.Message("HANDOVER \(offer.drained ? "drained" : "undrained")", descriptors: descriptors)))
            != nil
            && (try? connection.receive())?.text == "SERVING"
        if handedOver {
            givingAwayTheSocket()
            logger.info("handed the mount over to the next akvfs")
            blockOn { await participant.completeHandoff() }
            return true
        }
        logger.warning("the next akvfs did not take the mount over; serving it again")
        blockOn { await participant.abandonHandoff() }
        return false
    }

    /// Records which mount the log describes, so a reclaim checks it finds the same one.
    public func recordMount(in log: StateLog) {
        guard let entry = MountTable.read().last(where: { $0.mountpoint == mountpoint }) else { return }
        log.set(Self.deviceKey, Array(entry.device.utf8))
    }
}
