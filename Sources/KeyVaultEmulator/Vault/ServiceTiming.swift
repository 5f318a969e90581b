import FoundationEssentials

/// How one vault's timing differs from an instant, unlimited service. All off by default; set in
/// the seed (`"timing"` of a vault) or at run time (`PUT /_emulator/vaults/<vault>/timing`).
public struct VaultTiming: Sendable, Codable, Equatable {
    /// A soft delete takes this long: meanwhile the object is in neither the vault nor its
    /// deleted objects, and recovering, purging or writing its name answers 409 `ObjectIsBeingDeleted`.
    public var deleteSeconds: Double
    /// A recovery takes this long: meanwhile reads of the object answer 404 and writes or a delete
    /// answer 409 `ObjectIsBeingRecovered`.
    public var recoverSeconds: Double
    /// Key Vault's per-vault limits (per 10 s: secret writes 300, key creates 20, other secret,
    /// certificate and key operations 4,000 each) times this factor, as token buckets that answer
    /// 429 `Throttled` with `Retry-After`. 0 turns throttling off; 1 is the service's own limits.
    public var throttleScale: Double
    /// Every page of a listing that has a next page is followed by an empty page with a nextLink,
    /// as the service sometimes answers.
    public var emptyMiddlePages: Bool

    public init(
        deleteSeconds: Double = 0, recoverSeconds: Double = 0, throttleScale: Double = 0, emptyMiddlePages: Bool = false
    ) {
        self.deleteSeconds = deleteSeconds
        self.recoverSeconds = recoverSeconds
        self.throttleScale = throttleScale
        self.emptyMiddlePages = emptyMiddlePages
    }

    public static let off = VaultTiming()
    static let maximumWindowSeconds = 3600.0
    static let maximumThrottleScale = 10.0

    enum CodingKeys: String, CodingKey, CaseIterable {
        case deleteSeconds, recoverSeconds, throttleScale, emptyMiddlePages
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
        self.init(
            deleteSeconds: try c.decodeIfPresent(Double.self, forKey: .deleteSeconds) ?? 0,
            recoverSeconds: try c.decodeIfPresent(Double.self, forKey: .recoverSeconds) ?? 0,
            throttleScale: try c.decodeIfPresent(Double.self, forKey: .throttleScale) ?? 0,
            emptyMiddlePages: try c.decodeIfPresent(Bool.self, forKey: .emptyMiddlePages) ?? false
        )
    }

    /// What is wrong with these settings, or nil.
    var problem: String? {
        for (name, value) in [("deleteSeconds", deleteSeconds), ("recoverSeconds", recoverSeconds)]
        where !(0...Self.maximumWindowSeconds).contains(value) {
            return "\(name) must be between 0 and \(Int(Self.maximumWindowSeconds)); got \(value)"
        }
        guard (0...Self.maximumThrottleScale).contains(throttleScale) else {
            return "throttleScale must be between 0 (off) and \(Int(Self.maximumThrottleScale)); got \(throttleScale)"
        }
        return nil
    }
}

/// The service's timing for every vault: the settings, the deletes and recoveries still under
/// way, and the throttling buckets.
actor ServiceTiming {
    private var settings: [String: VaultTiming]
    private var transitions: [ObjectKey: Transition] = [:]
    private var buckets: [BucketKey: TokenBucket] = [:]
    private let now: @Sendable () -> Date

    private struct ObjectKey: Hashable {
        var vault: String
        var kind: ObjectKind
        var name: String
    }

    private struct Transition {
        enum Change { case deleting, recovering }
        var change: Change
        var until: Date
    }

    /// Key Vault's limits are per vault and operation class.
    private struct BucketKey: Hashable {
        var vault: String
        var operationClass: OperationClass
    }

    enum OperationClass: String, CaseIterable {
        case secretWrite, keyCreate, secretsAndVault, keys

        /// Transactions per 10 s the service allows a vault (software keys, RSA-2048 and EC).
        var limit: Double {
            switch self {
            case .secretWrite: 300
            case .keyCreate: 20
            case .secretsAndVault, .keys: 4000
            }
        }

        /// Certificates count as vault transactions; creating or importing one makes a key.
        init(_ operation: KeyVaultOperation) {
            switch operation {
            case .setSecret, .update(.secrets, _, _): self = .secretWrite
            case .createKey, .importKey, .createCertificate, .importCertificate: self = .keyCreate
            default: self = operation.kind == .keys ? .keys : .secretsAndVault
            }
        }
    }

    init(settings: [String: VaultTiming], now: @escaping @Sendable () -> Date) {
        self.settings = Dictionary(settings.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { $1 })
        self.now = now
    }

    func timing(of vault: String) -> VaultTiming {
        settings[vault.lowercased()] ?? .off
    }

    func set(_ timing: VaultTiming, for vault: String) {
        let vault = vault.lowercased()
        settings[vault] = timing
        buckets = buckets.filter { $0.key.vault != vault }
        if timing.deleteSeconds == 0 && timing.recoverSeconds == 0 {
            transitions = transitions.filter { $0.key.vault != vault }
        }
    }

    /// Before an operation runs: the 429 or 409 the service would answer instead, if any; else
    /// the vault's timing, for the operation to follow (empty middle pages).
    func admit(_ operation: KeyVaultOperation, vault: String) throws(KeyVaultFailure) -> VaultTiming {
        let timing = timing(of: vault)
        let current = now()
        if timing.throttleScale > 0 {
            let key = BucketKey(vault: vault.lowercased(), operationClass: OperationClass(operation))
            var bucket =
                buckets[key]
                ?? TokenBucket(capacity: max(1, key.operationClass.limit * timing.throttleScale), at: current)
            defer { buckets[key] = bucket }
            if let wait = bucket.take(at: current) { throw .throttled(retryAfter: wait) }
        }
        guard let name = operation.objectName else { return timing }
        let key = ObjectKey(vault: vault.lowercased(), kind: operation.kind, name: name.lowercased())
        guard let transition = transitions[key] else { return timing }
        guard transition.until > current else {
            transitions[key] = nil
            return timing
        }
        switch (transition.change, operation) {
        case (.deleting, .getDeleted):
            throw .deletedNotFound(operation.kind, name: name)
        case (.deleting, .purge), (.deleting, .recover), (.deleting, .setSecret), (.deleting, .createKey),
            (.deleting, .importKey),
            (.deleting, .createCertificate), (.deleting, .importCertificate):
            throw .inTransition(operation.kind, name: name, inner: "ObjectIsBeingDeleted", state: "being deleted")
        case (.recovering, .get), (.recovering, .listVersions), (.recovering, .update),
            (.recovering, .certificatePolicy),
            (.recovering, .certificateOperation):
            throw .notFound(operation.kind, name: name)
        case (.recovering, .delete), (.recovering, .setSecret), (.recovering, .createKey), (.recovering, .importKey),
            (.recovering, .createCertificate), (.recovering, .importCertificate):
            throw .inTransition(operation.kind, name: name, inner: "ObjectIsBeingRecovered", state: "being recovered")
        default:
            return timing
        }
    }

    /// After an operation succeeded: a delete or recovery starts its window.
    func completed(_ operation: KeyVaultOperation, vault: String) {
        let timing = timing(of: vault)
        let (change, seconds): (Transition.Change, Double)
        switch operation {
        case .delete: (change, seconds) = (.deleting, timing.deleteSeconds)
        case .recover: (change, seconds) = (.recovering, timing.recoverSeconds)
        default: return
        }
        guard seconds > 0, let name = operation.objectName else { return }
        let key = ObjectKey(vault: vault.lowercased(), kind: operation.kind, name: name.lowercased())
        transitions[key] = Transition(change: change, until: now().addingTimeInterval(seconds))
    }
}

/// A bucket that holds up to `capacity` transactions and refills it every 10 s, continuously.
struct TokenBucket {
    let capacity: Double
    private var tokens: Double
    private var refilledAt: Date

    init(capacity: Double, at time: Date) {
        self.capacity = capacity
        tokens = capacity
        refilledAt = time
    }

    private var perSecond: Double { capacity / 10 }

    /// Takes one transaction; when none is left, the whole seconds until one is.
    mutating func take(at time: Date) -> Int? {
        tokens = min(capacity, tokens + max(0, time.timeIntervalSince(refilledAt)) * perSecond)
        refilledAt = time
        guard tokens < 1 else {
            tokens -= 1
            return nil
        }
        return max(1, Int(((1 - tokens) / perSecond).rounded(.up)))
    }
}
