import FoundationEssentials

/// One request the emulator answered, as tests read it to count upstream calls.
public struct LoggedRequest: Sendable, Codable, Equatable {
    public enum Endpoint: String, Sendable, Codable {
        case keyVault = "keyvault"
        case token
        case discovery
        case imds
        case appService = "appservice"
        case kubernetes
        case resourceManager = "arm"
    }

    public struct Identity: Sendable, Codable, Equatable {
        public var name: String?
        public var clientId: String
        public var objectId: String
    }

    public var sequence: Int
    public var time: Double
    public var endpoint: Endpoint
    public var method: String
    public var host: String
    public var vault: String?
    public var path: String
    public var query: String?
    public var status: Int
    public var identity: Identity?
    /// Set when an injected fault answered: "status 429", "hang" or "drop".
    public var fault: String?
}

/// Every non-admin request, oldest first, bounded so a long benchmark cannot exhaust memory.
actor RequestLog {
    static let capacity = 200_000

    private var entries: [LoggedRequest] = []
    private var nextSequence = 1

    func record(_ make: (Int) -> LoggedRequest) {
        entries.append(make(nextSequence))
        nextSequence += 1
        if entries.count > Self.capacity { entries.removeFirst(entries.count - Self.capacity) }
    }

    func all() -> [LoggedRequest] { entries }

    func reset() { entries.removeAll() }
}
