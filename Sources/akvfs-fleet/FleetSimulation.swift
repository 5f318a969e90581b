import ArgumentParser
import KeyVault
import ObjectCache
import Synchronization

/// `akvfs-fleet`: Key Vault calls per 10 s that a cluster of akvfs CSI plugins makes against one
/// vault, next to the Azure provider's rotation polling, on a virtual clock. Each node is a real
/// ObjectCache with akvfs's refresh logic (revalidate what is read, once per --ttl, per vault and
/// identity); time jumps from step to step, so a day of a thousand nodes takes seconds.
/// benchmarks/fleet runs it for 10, 100 and 1,000 nodes.
@main
struct FleetSimulation: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "akvfs-fleet",
        abstract:
            "Simulate Key Vault calls per 10 s for a cluster of akvfs CSI plugins and for the Azure provider's rotation polling."
    )

    enum ReadPattern: String, ExpressibleByArgument, CaseIterable {
        /// Every pod reads its objects once, when it starts.
        case start
        /// Every pod reads its objects when it starts and then every minute.
        case minute
        /// Every pod reads its objects all the time (every step).
        case continuous
    }

    @Option(help: "Nodes in the cluster.") var nodes = 10
    @Option(help: "Pods per node that mount the vault.") var podsPerNode = 20
    @Option(help: "Identities the pods use, spread evenly (workload identities, or clientIDs).") var identities = 4
    @Option(help: "Objects each pod's volume holds.") var objects = 10
    @Option(help: "How pods read their files.") var pattern = ReadPattern.minute
    @Option(help: ArgumentHelp("akvfs's --ttl.", valueName: "seconds")) var ttl = 120
    @Option(
        help: ArgumentHelp(
            "The provider's rotation poll interval (the driver's --rotation-poll-interval).", valueName: "seconds"))
    var pollInterval = 120
    @Option(
        help: ArgumentHelp("Pods start evenly over this long (a rollout).", valueName: "seconds"))
    var startSpread = 60
    @Option(help: ArgumentHelp("Simulated time.", valueName: "seconds")) var duration = 1800
    @Option(help: ArgumentHelp("Simulation step: reads and refreshes happen on step boundaries.", valueName: "seconds"))
    var step = 5
    @Flag(help: "Print one row of the README's table instead of a report.")
    var markdownRow = false

    /// Key Vault's limit for secret reads, per vault per 10 s.
    static let vaultLimit = 4000

    func validate() throws {
        guard nodes > 0, podsPerNode > 0, identities > 0, objects > 0 else {
            throw ValidationError("nodes, pods, identities and objects must be positive.")
        }
        guard step > 0, duration >= 600, duration % 10 == 0, 10 % step == 0 || step % 10 == 0 else {
            throw ValidationError(
                "--duration must be a multiple of 10 of at least 600 s, and --step must divide 10 or be a multiple of it."
            )
        }
        guard ttl > 0, pollInterval > 0, startSpread >= 0 else {
            throw ValidationError("--ttl and --poll-interval must be positive.")
        }
    }

    func run() async throws {
        let akvfs = await simulateAkvfs()
        let provider = providerCalls()
        let limit = Self.vaultLimit
        if markdownRow {
            print(
                "| \(nodes) | \(podsPerNode) | \(identities) | \(objects) | \(pattern.rawValue) | \(akvfs.peak) | \(akvfs.steady) | \(provider.peak) | \(provider.steady) |"
            )
            return
        }
        print(
            "cluster: \(nodes) nodes x \(podsPerNode) pods, \(identities) identities, \(objects) objects per volume, reads: \(pattern.rawValue)"
        )
        print("Key Vault calls per 10 s (limit \(limit) per vault):")
        print(
            "  akvfs (ttl \(ttl) s):                 peak \(akvfs.peak), steady \(akvfs.steady)\(akvfs.peak > limit ? "  OVER THE LIMIT at peak" : "")"
        )
        print(
            "  provider (poll every \(pollInterval) s):     peak \(provider.peak), steady \(provider.steady)\(provider.peak > limit ? "  OVER THE LIMIT at peak" : "")"
        )
    }

    // MARK: Pods

    /// When pod `pod` of node `node` starts: pods start evenly over the spread, nodes interleaved.
    func startTime(node: Int, pod: Int) -> Int {
        let index = pod * nodes + node
        return startSpread * index / (nodes * podsPerNode)
    }

    func identity(ofPod pod: Int) -> Int { pod % identities }

    /// Whether a pod that started at `start` reads its files in the step beginning at `time`.
    func reads(startedAt start: Int, at time: Int) -> Bool {
        guard time + step > start else { return false }
        switch pattern {
        case .start: return start >= time
        case .minute:
            // The pod's first read at or after `time` (reads at start, start + 60, …) falls in this step.
            let next = start + 60 * max(0, (time - start + 59) / 60)
            return next < time + step
        case .continuous: return true
        }
    }

    // MARK: akvfs

    /// Peak and steady-state (mean over the last 10 minutes) calls per 10 s.
    func simulateAkvfs() async -> (peak: Int, steady: Int) {
        let clock = VirtualClock()
        let vault = CountingVault(clock: clock)
        var configuration = CacheConfiguration()
        configuration.ttl = .seconds(ttl)
        configuration.now = { clock.now }
        // Never reached: a fetch answers at once, and its timeout's timer is called off.
        configuration.sleep = { _ in try await Task.sleep(for: .seconds(86_400)) }
        configuration.requestsPerSecondPerVault = 1_000_000  // each node's own limit; the vault's is what this measures
        configuration.maxBytes = 1 << 30
        let references = (0..<objects).map { ObjectReference(kind: .secret, name: "object-\($0)") }
        let sources = (0..<identities).map {
            SourceID(vault: "https://fleet.vault.azure.net", identity: "identity-\($0)")
        }
        var caches: [ObjectCache] = []
        for _ in 0..<nodes {
            let cache = ObjectCache(configuration: configuration)
            for source in sources { await cache.register(vault, as: source) }
            caches.append(cache)
        }
        for time in stride(from: 0, to: duration, by: step) {
            clock.set(seconds: time)
            for (node, cache) in caches.enumerated() {
                // Pods of one identity on one node share cached content: one read stands for all.
                var reading = Set<Int>()
                for pod in 0..<podsPerNode where reads(startedAt: startTime(node: node, pod: pod), at: time) {
                    reading.insert(identity(ofPod: pod))
                }
                for identity in reading {
                    for reference in references { _ = try? await cache.metadata(reference, in: sources[identity]) }
                }
                await cache.maintain()
            }
        }
        for cache in caches { await cache.shutdown() }
        return Self.summary(vault.callsPerWindow(windows: duration / 10))
    }

    // MARK: The provider

    /// The provider's algorithm: at mount, one GET per object for the pod; with rotation on,
    /// again every poll interval for every pod, read or not (plus a token per pod and poll, not
    /// counted: tokens go to Entra ID, not Key Vault).
    func providerCalls() -> (peak: Int, steady: Int) {
        var windows = [Int](repeating: 0, count: duration / 10)
        for node in 0..<nodes {
            for pod in 0..<podsPerNode {
                var time = startTime(node: node, pod: pod)
                while time < duration {
                    windows[time / 10] += objects
                    time += pollInterval
                }
            }
        }
        return Self.summary(windows)
    }

    static func summary(_ windows: [Int]) -> (peak: Int, steady: Int) {
        let last = windows.suffix(60)
        return (windows.max() ?? 0, last.reduce(0, +) / max(1, last.count))
    }
}

/// Time that moves only when the simulation moves it.
final class VirtualClock: Sendable {
    private let seconds = Atomic<Int>(0)
    var now: Duration { .seconds(seconds.load(ordering: .relaxed)) }
    func set(seconds value: Int) { seconds.store(value, ordering: .relaxed) }
}

/// One vault for the whole cluster: answers every object at once and counts the calls in
/// 10-second windows of virtual time.
final class CountingVault: ObjectSource {
    private let clock: VirtualClock
    private let windows = Mutex<[Int: Int]>([:])

    init(clock: VirtualClock) { self.clock = clock }

    func fetch(_ reference: ObjectReference) async throws(SourceError) -> FetchedObject {
        let window = Int(clock.now.components.seconds / 10)
        windows.withLock { $0[window, default: 0] += 1 }
        return FetchedObject(
            metadata: ObjectMetadata(id: "https://fleet.vault.azure.net/secrets/\(reference.name)/v1", version: "v1"),
            payload: .secret("value"))
    }

    func list(_ kind: ObjectKind, pacer: @escaping PagePacer) async throws(SourceError) -> [ListedObject] { [] }
    func listVersions(_ kind: ObjectKind, name: String, pacer: @escaping PagePacer) async throws(SourceError)
        -> [ListedObject]
    { [] }

    func callsPerWindow(windows count: Int) -> [Int] {
        windows.withLock { counts in (0..<count).map { counts[$0] ?? 0 } }
    }
}
