/// What an injected fault does to a matching request.
public enum FaultAction: Sendable, Equatable {
    /// Answer with this status (400-599) and the service's error body for it; 429 and 5xx can
    /// carry `Retry-After` (seconds).
    case status(Int, retryAfter: Int?)
    /// Never answer; the request stays open until the client gives up or `seconds` pass.
    case hang(seconds: Int)
    /// Close the connection without answering.
    case drop
}

/// A fault for the next `count` requests that match; nil fields match anything.
public struct FaultRule: Sendable, Equatable {
    public var method: String?
    /// A vault name; nil also matches token, discovery and IMDS requests.
    public var vault: String?
    public var pathPrefix: String?
    public var count: Int
    public var action: FaultAction

    public init(
        method: String? = nil, vault: String? = nil, pathPrefix: String? = nil, count: Int = 1, action: FaultAction
    ) {
        self.method = method
        self.vault = vault
        self.pathPrefix = pathPrefix
        self.count = count
        self.action = action
    }

    func matches(method: String, vault: String?, path: String) -> Bool {
        if let wanted = self.method, wanted.uppercased() != method.uppercased() { return false }
        if let wanted = self.vault, wanted.lowercased() != vault?.lowercased() { return false }
        if let prefix = pathPrefix, !path.lowercased().hasPrefix(prefix.lowercased()) { return false }
        return true
    }
}

/// Faults and latency for tests and benchmarks, consulted before every non-admin request.
actor FaultInjector {
    private var rules: [FaultRule] = []
    private(set) var latencyMilliseconds = 0

    func add(_ rule: FaultRule) { rules.append(rule) }

    func clear() {
        rules.removeAll()
        latencyMilliseconds = 0
    }

    func setLatency(milliseconds: Int) { latencyMilliseconds = milliseconds }

    var pending: [FaultRule] { rules }

    /// Consumes one use of the first matching rule.
    func take(method: String, vault: String?, path: String) -> FaultAction? {
        guard let index = rules.firstIndex(where: { $0.matches(method: method, vault: vault, path: path) }) else {
            return nil
        }
        let action = rules[index].action
        rules[index].count -= 1
        if rules[index].count <= 0 { rules.remove(at: index) }
        return action
    }
}
