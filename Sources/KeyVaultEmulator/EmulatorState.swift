import FoundationEssentials
import PKI
import Synchronization

/// Everything the request handlers share. Mutable parts are actors (store, faults, log) or
/// behind a lock (the endpoints, known only once both ports are bound).
final class EmulatorState: Sendable {
    let tenantId: String
    let emptyFirstPage: Bool
    let acceptAnyAPIVersion: Bool
    let challengeResource: String?
    let appServiceIdentityHeader: String?
    let store: VaultStore
    let tokens: TokenService
    let identities: IdentityRegistry
    let access: AccessControl
    let timing: ServiceTiming
    let faults = FaultInjector()
    let log = RequestLog()
    let kubernetes = KubernetesObjects()
    private let clock: @Sendable () -> Date
    private let publishedEndpoints = Mutex<EmulatorEndpoints?>(nil)

    init(seed: Seed, appServiceIdentityHeader: String?, clock: @escaping @Sendable () -> Date) throws(EmulatorError) {
        tenantId = seed.tenantId.lowercased()
        emptyFirstPage = seed.emptyFirstPage
        acceptAnyAPIVersion = seed.acceptAnyAPIVersion
        challengeResource = seed.challengeResource
        self.appServiceIdentityHeader = appServiceIdentityHeader
        self.clock = clock
        let seconds: @Sendable () -> Int64 = { Int64(clock().timeIntervalSince1970) }
        store = VaultStore(createVaultsOnFirstUse: seed.createVaultsOnFirstUse, now: seconds)
        timing = ServiceTiming(
            settings: Dictionary(
                seed.vaults.compactMap { vault in vault.timing.map { (vault.name, $0) } }, uniquingKeysWith: { $1 }),
            now: clock)
        do {
            identities = try IdentityRegistry(seed: seed)
            access = try AccessControl(seed: seed, identities: identities)
        } catch {
            throw .invalidSeed(error)
        }
        do {
            tokens = try TokenService(tenantId: tenantId, lifetimeSeconds: seed.tokenLifetimeSeconds, now: seconds)
        } catch {
            throw .cryptography(error.description)
        }
    }

    func now() -> Date { clock() }

    var endpoints: EmulatorEndpoints? {
        get { publishedEndpoints.withLock { $0 } }
        set { publishedEndpoints.withLock { $0 = newValue } }
    }
}
