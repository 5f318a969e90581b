import DescriptorPassing
import FuseBridge
import Glibc
import Logging
import ObjectCache
import PKI
import Synchronization
import VaultFS

/// A FUSE mount that outlives the process serving it: it is mounted afresh, or taken over from
/// the process that served it before (`MountContinuity`), and it can be handed to the next one.
/// The inode table is journaled into a state log the whole time, so a crash loses nothing the
/// kernel knows.
public final class ContinuousMount: Sendable {
    public let mount: FuseMount
    public let log: StateLog
    /// The keyed values of the previous process's log (its own state beyond the inode table).
    public let inheritedValues: [String: [UInt8]]
    public let wasTakenOver: Bool
    private let filesystem: VaultFileSystem
    private let cache: ObjectCache
    private let continuity: MountContinuity
    private let version: String
    private let handoff: HandoffCoordinator
    private let inheritance: Mutex<Inheritance?>
    private let logger = Logger(label: "akvfs.continuity")

    /// How `serve()` ended.
    public enum Ending: Sendable, Equatable {
        case unmounted
        /// The next process serves the mount; this one must leave it mounted and exit.
        case handedOver
        /// An incompatible next process asked this one to unmount; it mounts afresh.
        case steppedAside
    }

    /// What the owner of the mount does around a planned handoff, beyond the mount itself.
    public struct HandoffHooks: Sendable {
        /// Before the mount stops serving: settle what the keyed values describe (the CSI
        /// plugin's volumes stop changing).
        public var prepare: @Sendable () async -> Void
        /// The handoff failed and this process serves again.
        public var abandoned: @Sendable () async -> Void

        public init(prepare: @escaping @Sendable () async -> Void, abandoned: @escaping @Sendable () async -> Void) {
            self.prepare = prepare
            self.abandoned = abandoned
        }

        public static let none = HandoffHooks(prepare: {}, abandoned: {})
    }

    /// Mounts `filesystem` at `continuity.mountpoint`, or takes the mount over. `restore` runs
    /// before anything is served, with the previous process's keyed values, for state beyond the
    /// inode table (the CSI plugin's volumes).
    public init(
        filesystem: VaultFileSystem, cache: ObjectCache, options: MountOptions, continuity: MountContinuity,
        version: String,
        hooks: HandoffHooks = .none, restore: ([String: [UInt8]]) async throws -> Void = { _ in }
    ) async throws {
        self.filesystem = filesystem
        self.cache = cache
        self.continuity = continuity
        self.version = version
        handoff = HandoffCoordinator(hooks: hooks)
        var inherited: Inheritance?
        do {
            inherited = try continuity.inherit(version: version)
        } catch {
            logger.warning(
                "cannot take the mount over, mounting afresh: \(error)",
                metadata: ["mountpoint": "\(continuity.mountpoint)"])
        }
        // The handed-over cache leaves the inheritance (kept below) so that the buffer wiped here is
        // its only copy: wiping a shared array would zero a copy and free the original as it was.
        var handedCache = inherited?.cachedContent
        inherited?.cachedContent = nil
        if let inheritance = inherited {
            try await restore(inheritance.contents.values)
            try filesystem.restoreInodes(from: inheritance.contents.records)
            if var cached = handedCache {
                handedCache = nil
                try? await cache.importContent(cached)
                cached.wipe()
            }
            mount = try FuseMount(
                filesystem: filesystem, adopting: inheritance.connection, mountpoint: continuity.mountpoint)
            log = inheritance.log
            inheritedValues = inheritance.contents.values
            wasTakenOver = true
            // What a store keeps is there already; a handoff came from a process with its own.
            if !inheritance.reclaimedFromStore { continuity.keep(fuse: mount.descriptor, log: log) }
        } else {
            mount = try FuseMount(filesystem: filesystem, mountpoint: continuity.mountpoint, options: options)
            log = try StateLog()
            inheritedValues = [:]
            wasTakenOver = false
            let (log, continuity) = (self.log, self.continuity)
            mount.onInit { request in
                log.set(MountContinuity.initKey, request)
                continuity.recordMount(in: log)
            }
            continuity.keep(fuse: mount.descriptor, log: log)
        }
        filesystem.journalInodes(to: log)
        self.inheritance = Mutex(inherited)
        continuity.listenForHandoffs()
    }

    /// Serves until the filesystem is unmounted or handed to the next process.
    public func serve() async throws -> Ending {
        var first = true
        continuity.serveHandoffs(version: version, participant: handoff)
        let storeWatch = watchStore()
        defer {
            storeWatch.cancel()
            continuity.stopServingHandoffs()
        }
        while true {
            let inherited = first ? inheritance.withLock({ $0.take() }) : nil
            first = false
            if let inherited {
                // Before this process reads anything, whatever the previous one read and did not
                // answer is queued again: after a crash, and after a handoff too, where a request
                // read just as it stopped would otherwise wait forever (seen once in tests).
                let resent = mount.resendLostRequests()
                if inherited.requestsLost {
                    logger.info(
                        resent
                            ? "asked the kernel to resend requests the previous process did not answer"
                            : "this kernel cannot resend requests the previous process did not answer (Linux 6.9 can); their callers may wait"
                    )
                }
            }
            let running = Task { try await mount.run() }
            // The previous process waits for this before it exits.
            inherited?.confirmServing()
            handoff.serving(self)
            switch try await running.value {
            case .unmounted:
                continuity.forget()
                guard handoff.isSteppingAside else { return .unmounted }
                // The taker waits for word that the mount is gone; this process must not exit first.
                _ = await handoff.outcome()
                return .steppedAside
            case .stopped:
                switch await handoff.outcome() {
                case .completed: return .handedOver
                case .abandoned: continue
                case .steppedAside:
                    continuity.forget()
                    return .steppedAside
                }
            }
        }
    }

    public func unmount() {
        mount.unmount()
    }

    /// A keeper that restarted lost what it kept: keep the mount there again.
    private func watchStore() -> Task<Void, Never> {
        let (continuity, mount, log) = (self.continuity, self.mount, self.log)
        return Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: MountContinuity.storeCheckInterval)
                guard !Task.isCancelled else { return }
                continuity.keepIfLost(fuse: mount.descriptor, log: log)
            }
        }
    }

    /// Stops serving and leaves the mount to the next start of this daemon, which reclaims it
    /// from the descriptor store (systemd restarting the unit); `serve()` returns `.handedOver`.
    public func leaveForNextProcess() async {
        handoff.leave()
        _ = await mount.stopServing(within: .seconds(10))
    }

    // MARK: Handoff steps, called by the handoff thread

    fileprivate func prepareHandoff() async -> HandoffOffer? {
        await handoff.hooks.prepare()
        let drained = await mount.stopServing(within: .seconds(10))
        filesystem.stopJournal()
        let cached = await cache.exportContent()
        return HandoffOffer(
            fuseDescriptor: dup(mount.descriptor), logDescriptor: dup(log.descriptor), cachedContent: cached,
            drained: drained)
    }

    fileprivate func resume() {
        filesystem.journalInodes(to: log)
        mount.resumeServing()
    }
}

/// Hands steps of a handoff between the handoff thread and `serve()`.
private final class HandoffCoordinator: HandoffParticipant {
    enum Outcome: Sendable { case completed, abandoned, steppedAside }

    let hooks: ContinuousMount.HandoffHooks

    init(hooks: ContinuousMount.HandoffHooks) {
        self.hooks = hooks
    }

    private struct State {
        var mount: ContinuousMount?
        var outcome: Outcome?
        var waiter: CheckedContinuation<Outcome, Never>?
        var steppingAside = false
    }

    private let state = Mutex(State())

    func serving(_ mount: ContinuousMount) {
        state.withLock { $0.mount = mount }
    }

    /// What became of the handoff that stopped the mount.
    func outcome() async -> Outcome {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Outcome? in
                guard let outcome = state.outcome else {
                    state.waiter = continuation
                    return nil
                }
                state.outcome = nil
                return outcome
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    private func decide(_ outcome: Outcome) {
        let waiter = state.withLock { state -> CheckedContinuation<Outcome, Never>? in
            guard let waiter = state.waiter else {
                state.outcome = outcome
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume(returning: outcome)
    }

    func prepareHandoff() async -> HandoffOffer? {
        guard let mount = state.withLock({ $0.mount }) else { return nil }
        return await mount.prepareHandoff()
    }

    func completeHandoff() async { decide(.completed) }

    /// The mount is left for the next start: the stop that follows is not a handoff to abandon.
    func leave() { decide(.completed) }

    func abandonHandoff() async {
        state.withLock { $0.mount }?.resume()
        await hooks.abandoned()
        decide(.abandoned)
    }

    var isSteppingAside: Bool { state.withLock { $0.steppingAside } }

    /// Unmounts; `steppedAside` follows once the taker has been told.
    func stepAside() async {
        let mount = state.withLock { state in
            state.steppingAside = true
            return state.mount
        }
        mount?.unmount()
    }

    func steppedAside() async {
        decide(.steppedAside)
    }
}
