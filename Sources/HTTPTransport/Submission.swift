import HTTPTypes

typealias TransferResult = Result<HTTPClientResponse, HTTPTransportError>

/// One request handed from `execute` to the event loop.
struct Submission: Sendable {
    let id: UInt64
    let request: ValidatedRequest
    let body: [UInt8]?
    let timeout: Duration?
    let continuation: CheckedContinuation<TransferResult, Never>
}

/// A request whose URL passed the checks `execute` makes before anything reaches libcurl.
struct ValidatedRequest: Sendable {
    let method: HTTPRequest.Method
    let url: String
    /// scheme://host[:port]/path for errors: no user info, query or fragment.
    let target: String
    let isHTTPS: Bool
    let headerFields: HTTPFields

    init(_ request: HTTPRequest) throws(HTTPTransportError) {
        let scheme = (request.scheme ?? "").lowercased()
        let authority = request.authority ?? ""
        let path = request.path ?? ""
        let hostPort = authority.split(separator: "@", omittingEmptySubsequences: false).last.map(String.init) ?? ""
        let pathOnly = String(path.prefix { $0 != "?" && $0 != "#" })
        target = "\(scheme)://\(hostPort)\(pathOnly)"
        method = request.method
        headerFields = request.headerFields
        isHTTPS = scheme == "https"

        func invalid(_ reason: String) -> HTTPTransportError {
            HTTPTransportError(kind: .invalidRequest, target: "\(scheme)://\(hostPort)\(pathOnly)", reason: reason)
        }
        guard scheme == "http" || scheme == "https" else {
            throw invalid("scheme '\(scheme)' is not http or https")
        }
        guard !hostPort.isEmpty, !authority.utf8.contains(where: { Self.breaksAuthority($0) }) else {
            throw invalid("the authority (host[:port]) is empty or malformed")
        }
        guard path.hasPrefix("/"), !path.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else {
            throw invalid("the path must start with '/' and contain no spaces or control characters")
        }
        url = "\(scheme)://\(authority)\(path)"
    }

    private static func breaksAuthority(_ byte: UInt8) -> Bool {
        byte <= 0x20 || byte == 0x7F || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "?")
            || byte == UInt8(ascii: "#") || byte == UInt8(ascii: "\\")
    }
}
