import HTTPTypes
import Synchronization

/// `HTTPClient` on libcurl's multi interface. Connections, TLS sessions and DNS answers are
/// reused across requests; requests go over HTTP/1.1 keep-alive unless `preferHTTP2` asks for
/// HTTP/2 (then used when the server offers it by ALPN). All libcurl work happens on
/// one dedicated thread; `execute` only queues a request and waits for its result.
public final class CurlHTTPClient: HTTPClient {
    private let mailbox: CurlLoopMailbox
    private let nextRequestID = Atomic<UInt64>(0)
    private let executor: CurlLoopExecutor

    /// Throws when libcurl cannot be set up or `extraCAFile` is missing, unreadable or not PEM.
    public init(configuration: HTTPClientConfiguration = .init()) throws(HTTPTransportError) {
        try ensureCurlGlobalInit()
        let loop = try CurlEventLoop(settings: TransferSettings(configuration))
        mailbox = loop.mailbox
        executor = loop.executor
        try loop.startThread()
    }

    deinit {
        shutdown()
    }

    /// Stops the loop thread and frees every libcurl object; requests in flight fail with
    /// `.cancelled`, later ones too. Idempotent; blocks until the thread has finished.
    public func shutdown() {
        mailbox.stopAndJoin()
    }

    public var taskExecutor: (any TaskExecutor)? { executor }

    public func execute(_ request: HTTPRequest, body: [UInt8]?, timeout: Duration?) async throws(HTTPTransportError)
        -> HTTPClientResponse
    {
        let validated = try ValidatedRequest(request)
        let id = nextRequestID.wrappingAdd(1, ordering: .relaxed).newValue
        let mailbox = self.mailbox
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                mailbox.submit(
                    Submission(
                        id: id, request: validated, body: body, timeout: timeout,
                        continuation: continuation))
            }
        } onCancel: {
            mailbox.cancel(id)
        }
        return try result.get()
    }
}
