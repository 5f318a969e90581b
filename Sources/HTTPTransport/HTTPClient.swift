import HTTPTypes

/// Settings shared by every request a client sends.
public struct HTTPClientConfiguration: Sendable {
    /// Time allowed to resolve, connect and finish the TLS handshake.
    public var connectTimeout: Duration = .seconds(10)
    /// Default total time per request, queueing for a connection included.
    public var requestTimeout: Duration = .seconds(30)
    /// A PEM bundle trusted in addition to the system CAs (a private CA, an emulator's CA).
    public var extraCAFile: String? = nil
    public var userAgent: String = "akvfs"
    public var maxConnectionsPerHost: Int = 8
    /// Larger response bodies fail with `.responseTooLarge`.
    public var maxResponseBytes: Int = 4 << 20
    /// Offer HTTP/2 (ALPN) and multiplex over one connection when the server accepts. Off by
    /// default: with Debian 12's libcurl 7.88 sequential requests were about twice as slow over
    /// HTTP/2 as over keep-alive HTTP/1.1 in our measurements, and 7.88 can leave HTTP/2 data
    /// unreported (see CurlEventLoop). HTTP/1.1 uses a pool of keep-alive connections instead.
    public var preferHTTP2 = false

    public init() {}
}

public struct HTTPClientResponse: Sendable {
    /// Status and header fields of the final response (interim 1xx responses are dropped).
    public var head: HTTPResponse
    public var body: [UInt8]
    /// Connections opened for this request: 0 when an existing connection was reused.
    public var newConnections: Int
    /// "1.0", "1.1" or "2".
    public var httpVersion: String

    public init(head: HTTPResponse, body: [UInt8], newConnections: Int = 0, httpVersion: String = "1.1") {
        self.head = head
        self.body = body
        self.newConnections = newConnections
        self.httpVersion = httpVersion
    }
}

/// Why a request got no response. HTTP error statuses are responses, not errors.
public struct HTTPTransportError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        case invalidRequest, couldNotResolve, couldNotConnect, tlsFailure, timedOut, connectionLost
        case responseTooLarge, cancelled, other
    }

    public let kind: Kind
    /// `scheme://host[:port]/path` of the request: never the query, headers or body, which may
    /// carry secrets. Empty when the client itself could not be set up.
    public let target: String
    /// curl's error text or a plain explanation.
    public let reason: String

    public init(kind: Kind, target: String, reason: String) {
        self.kind = kind
        self.target = target
        self.reason = reason
    }

    /// Network trouble that may pass; a bad request, an oversized body or a cancellation won't.
    public var isRetryable: Bool {
        switch kind {
        case .invalidRequest, .responseTooLarge, .cancelled: false
        case .couldNotResolve, .couldNotConnect, .tlsFailure, .timedOut, .connectionLost, .other: true
        }
    }

    public var description: String {
        guard !target.isEmpty else {
            return "HTTP client setup failed: \(reason)"
        }
        let scheme = target.prefix { $0 != ":" }.uppercased()
        return "\(scheme) request to \(target) failed: \(summary) (\(reason)). \(advice)"
    }

    private var summary: String {
        switch kind {
        case .invalidRequest: "invalid request"
        case .couldNotResolve: "could not resolve host"
        case .couldNotConnect: "could not connect"
        case .tlsFailure: "TLS failure"
        case .timedOut: "timed out"
        case .connectionLost: "connection lost"
        case .responseTooLarge: "response too large"
        case .cancelled: "cancelled"
        case .other: "transfer error"
        }
    }

    private var advice: String {
        switch kind {
        case .invalidRequest: "This is a bug in the caller: only http and https URLs with a host are accepted."
        case .couldNotResolve: "Check the host name, DNS, and any https_proxy setting."
        case .couldNotConnect: "Check that the host is reachable from here, firewalls, and https_proxy/no_proxy."
        case .tlsFailure:
            "Check the server's certificate chain and host name; trust a private CA with the extra CA file setting."
        case .timedOut: "The server or network is slow or unreachable; retry later or raise the timeout."
        case .connectionLost: "The connection closed before a complete response arrived; retrying usually helps."
        case .responseTooLarge: "The response exceeds the configured limit; raise maxResponseBytes if it is legitimate."
        case .cancelled: "The request was cancelled or the client shut down."
        case .other: "Retry; if it persists, the reason above names what libcurl rejected."
        }
    }
}

public protocol HTTPClient: Sendable {
    /// Where a task that sends requests back to back should run to reach the transport without
    /// a thread hand-off; nil when there is no such place.
    var taskExecutor: (any TaskExecutor)? { get }

    /// Sends one request; `timeout` overrides the configured total time for this request.
    func execute(_ request: HTTPRequest, body: [UInt8]?, timeout: Duration?) async throws(HTTPTransportError)
        -> HTTPClientResponse
}

extension HTTPClient {
    public var taskExecutor: (any TaskExecutor)? { nil }

    public func execute(_ request: HTTPRequest, body: [UInt8]? = nil) async throws(HTTPTransportError)
        -> HTTPClientResponse
    {
        try await execute(request, body: body, timeout: nil)
    }
}
