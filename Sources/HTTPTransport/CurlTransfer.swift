import CCurl
import Glibc
import HTTPTypes

/// One in-flight request: its easy handle, everything libcurl points into, and what came back.
/// Lives on the loop thread only; the loop keeps it alive while its handle is in the multi.
final class CurlTransfer {
    let id: UInt64
    let target: String
    private let continuation: CheckedContinuation<TransferResult, Never>
    private let easy: EasyHandle
    private let headerList = HeaderList()
    private var requestBody: WipedBuffer?
    private let errorBuffer: UnsafeMutablePointer<CChar>
    private let maxResponseBytes: Int
    private var statusLine = StatusLine(code: 0, reason: "")
    private var responseFields: [HTTPField] = []
    private var headerBlockComplete = false
    private var responseBody: [UInt8] = []
    private var bodyExceededLimit = false
    private var isFinished = false

    var easyRaw: UnsafeMutableRawPointer? { easy.raw }

    /// Configures an easy handle for the submission. Throws when libcurl refuses it; the
    /// caller then completes the submission with that error.
    init(_ submission: Submission, settings: TransferSettings, share: ShareHandle) throws(HTTPTransportError) {
        id = submission.id
        target = submission.request.target
        continuation = submission.continuation
        maxResponseBytes = settings.maxResponseBytes
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        guard let easy = EasyHandle() else {
            errorBuffer.deallocate()
            throw HTTPTransportError(
                kind: .other, target: submission.request.target,
                reason: "curl_easy_init failed (out of memory?)")
        }
        self.easy = easy
        if let body = submission.body { requestBody = WipedBuffer(copying: body) }
        try configure(submission, settings: settings, share: share)
    }

    deinit {
        releaseResources()
        errorBuffer.deallocate()
    }

    // MARK: Setup

    private func configure(_ submission: Submission, settings: TransferSettings, share: ShareHandle)
        throws(HTTPTransportError)
    {
        let request = submission.request
        let userData = Unmanaged.passUnretained(self).toOpaque()

        try setString(CURLOPT_URL, request.url)
        // Only http(s), also for redirects, which are never followed: Key Vault's clients handle
        // status codes themselves, and a redirect must not carry the Authorization header away.
        try setString(CURLOPT_PROTOCOLS_STR, "http,https")
        try setString(CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
        try setLong(CURLOPT_FOLLOWLOCATION, 0)
        // No SIGALRM-based DNS timeouts: we run on our own thread inside a larger process.
        try setLong(CURLOPT_NOSIGNAL, 1)
        try setPointer(CURLOPT_ERRORBUFFER, UnsafeMutableRawPointer(errorBuffer))
        try setPointer(CURLOPT_SHARE, share.raw)
        try setPointer(CURLOPT_WRITEDATA, userData)
        try setWriteCallback(CURLOPT_WRITEFUNCTION, curlTransferWriteBody)
        try setPointer(CURLOPT_HEADERDATA, userData)
        try setWriteCallback(CURLOPT_HEADERFUNCTION, curlTransferWriteHeader)
        // A cancelled or timed-out transfer still resolving its host would otherwise make libcurl
        // wait on the resolver thread, blocking the whole loop; with this it detaches the thread.
        try setLong(CURLOPT_QUICK_EXIT, 1)

        try setLong(CURLOPT_CONNECTTIMEOUT_MS, settings.connectTimeoutMilliseconds)
        try setLong(CURLOPT_TIMEOUT_MS, curlMilliseconds(submission.timeout ?? settings.requestTimeout))
        try setLong(CURLOPT_TCP_KEEPALIVE, 1)
        try setLong(CURLOPT_TCP_KEEPIDLE, 30)
        try setLong(CURLOPT_TCP_KEEPINTVL, 15)
        try setLong(CURLOPT_HTTP_VERSION, Int(settings.preferHTTP2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1))
        if request.isHTTPS, settings.preferHTTP2 {
            // Wait for a connection being set up to the same host to learn whether it multiplexes
            // (HTTP/2 via ALPN) rather than opening a parallel one straight away.
            try setLong(CURLOPT_PIPEWAIT, 1)
        }
        // Proxies: nothing here sets CURLOPT_PROXY or CURLOPT_NOPROXY, so libcurl honours the
        // environment: https_proxy/HTTPS_PROXY, http_proxy (lower case only), no_proxy/NO_PROXY.
        // The proxy's CONNECT response is kept out of the header callback.
        try setLong(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1)

        // Verification is always on; there is deliberately no way to turn it off.
        try setLong(CURLOPT_SSL_VERIFYPEER, 1)
        try setLong(CURLOPT_SSL_VERIFYHOST, 2)
        // libcurl loads no CA file or directory itself; the shared store replaces them.
        try setString(CURLOPT_CAINFO, nil)
        try setString(CURLOPT_CAPATH, nil)
        try check(ccurl_easy_setopt_ssl_ctx_callback(easy.raw, installTrustStore), CURLOPT_SSL_CTX_FUNCTION)
        try setPointer(CURLOPT_SSL_CTX_DATA, UnsafeMutableRawPointer(settings.trust.raw))

        try setString(CURLOPT_USERAGENT, settings.userAgent)
        // Fails early when Content-Length announces too much; the write callback covers the rest.
        try setOffT(CURLOPT_MAXFILESIZE_LARGE, curl_off_t(settings.maxResponseBytes))

        try configureMethodAndBody(request.method)
        try configureHeaders(request.headerFields)
    }

    private func configureMethodAndBody(_ method: HTTPRequest.Method) throws(HTTPTransportError) {
        let sendsEmptyBody = method == .post || method == .put || method == .patch
        if requestBody == nil && sendsEmptyBody {
            // So libcurl sends "Content-Length: 0" rather than no length at all.
            requestBody = WipedBuffer(copying: [])
        }
        switch (method, requestBody) {
        case (.head, _):
            // A body on HEAD is meaningless; NOBODY makes libcurl not wait for one.
            try setLong(CURLOPT_NOBODY, 1)
        case (.get, nil):
            try setLong(CURLOPT_HTTPGET, 1)
        case (_, let body?):
            // POSTFIELDS turns the request into a POST and does not copy the bytes, which
            // `requestBody` keeps alive; the size must be set first (it is not NUL-terminated).
            try setOffT(CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
            try setPointer(CURLOPT_POSTFIELDS, body.baseAddress)
            if method != .post { try setString(CURLOPT_CUSTOMREQUEST, method.rawValue) }
        case (_, nil):
            try setString(CURLOPT_CUSTOMREQUEST, method.rawValue)
        }
    }

    private func configureHeaders(_ fields: HTTPFields) throws(HTTPTransportError) {
        var lines: [String] = []
        for field in fields {
            // "Name:" would tell libcurl to drop the header; "Name;" sends it with an empty value.
            lines.append(field.value.isEmpty ? "\(field.name.rawName);" : "\(field.name.rawName): \(field.value)")
        }
        // libcurl adds "Expect: 100-continue" to large uploads over HTTP/1.1, costing a round
        // trip or a one-second stall with servers that ignore it.
        if fields[.expect] == nil { lines.append("Expect:") }
        // With POSTFIELDS libcurl would claim "application/x-www-form-urlencoded".
        if fields[.contentType] == nil { lines.append("Content-Type:") }
        for line in lines where !headerList.append(line) {
            throw HTTPTransportError(kind: .other, target: target, reason: "out of memory building request headers")
        }
        try setSlist(CURLOPT_HTTPHEADER, headerList.raw)
    }

    private func setLong(_ option: CURLoption, _ value: Int) throws(HTTPTransportError) {
        try check(ccurl_easy_setopt_long(easy.raw, option, value), option)
    }

    private func setString(_ option: CURLoption, _ value: String?) throws(HTTPTransportError) {
        try check(ccurl_easy_setopt_string(easy.raw, option, value), option)
    }

    private func setPointer(_ option: CURLoption, _ value: UnsafeMutableRawPointer?) throws(HTTPTransportError) {
        try check(ccurl_easy_setopt_pointer(easy.raw, option, value), option)
    }

    private func setOffT(_ option: CURLoption, _ value: curl_off_t) throws(HTTPTransportError) {
        try check(ccurl_easy_setopt_off_t(easy.raw, option, value), option)
    }

    private func setSlist(_ option: CURLoption, _ value: UnsafeMutablePointer<curl_slist>?) throws(HTTPTransportError) {
        try check(ccurl_easy_setopt_slist(easy.raw, option, value), option)
    }

    private func setWriteCallback(_ option: CURLoption, _ callback: curl_write_callback) throws(HTTPTransportError) {
        try check(ccurl_easy_setopt_write_callback(easy.raw, option, callback), option)
    }

    private func check(_ code: CURLcode, _ option: CURLoption) throws(HTTPTransportError) {
        guard code != CURLE_OK else { return }
        let kind: HTTPTransportError.Kind =
            (code == CURLE_URL_MALFORMAT || code == CURLE_UNSUPPORTED_PROTOCOL) ? .invalidRequest : .other
        throw HTTPTransportError(
            kind: kind, target: target,
            reason: "libcurl rejected option \(option.rawValue): \(curlErrorText(code))")
    }

    // MARK: Callbacks (called by libcurl on the loop thread during curl_multi_perform)

    fileprivate func receiveBody(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        guard responseBody.count + bytes.count <= maxResponseBytes else {
            bodyExceededLimit = true
            return 0  // anything but bytes.count makes libcurl stop with CURLE_WRITE_ERROR
        }
        if responseBody.count + bytes.count > responseBody.capacity {
            // Grown by hand: a reallocation by append would free the old buffer, which may hold
            // part of a secret, without zeroing it.
            var larger: [UInt8] = []
            larger.reserveCapacity(max(responseBody.capacity * 2, responseBody.count + bytes.count, 16 << 10))
            larger.append(contentsOf: responseBody)
            responseBody.withUnsafeMutableBytes { old in
                if let base = old.baseAddress { explicit_bzero(base, old.count) }
            }
            responseBody = larger
        }
        responseBody.append(contentsOf: bytes)
        return bytes.count
    }

    /// libcurl hands over one complete header line at a time, status lines and the blank
    /// line ending each block included, for every response: interim 1xx ones too.
    fileprivate func receiveHeaderLine(_ bytes: UnsafeBufferPointer<UInt8>) {
        var line = ArraySlice(bytes)
        while let last = line.last, last == UInt8(ascii: "\r") || last == UInt8(ascii: "\n") {
            line = line.dropLast()
        }
        if line.starts(with: "HTTP/".utf8) {
            // A new response begins: forget the interim one's fields.
            statusLine = StatusLine(line)
            responseFields.removeAll()
            headerBlockComplete = false
        } else if line.isEmpty {
            headerBlockComplete = true
        } else if headerBlockComplete {
            return  // trailers after a chunked body; nothing here needs them
        } else if let first = line.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") {
            // Obsolete line folding: continue the previous field's value.
            if var previous = responseFields.popLast() {
                let continued = Array(previous.value.utf8) + [UInt8(ascii: " ")] + trimmed(line)
                previous = HTTPField(name: previous.name, value: continued)
                responseFields.append(previous)
            }
        } else if let colon = line.firstIndex(of: UInt8(ascii: ":")),
            let name = HTTPField.Name(String(decoding: line[..<colon], as: UTF8.self))
        {
            // Names that are not valid tokens are dropped rather than failing the response.
            responseFields.append(HTTPField(name: name, value: trimmed(line[(colon + 1)...])))
        }
    }

    private func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        func isSpace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        var slice = bytes
        while let first = slice.first, isSpace(first) { slice = slice.dropFirst() }
        while let last = slice.last, isSpace(last) { slice = slice.dropLast() }
        return slice
    }

    // MARK: Completion

    /// Turns libcurl's verdict into the caller's result and resumes the caller, exactly once.
    /// The easy handle must already be out of the multi handle.
    func complete(with code: CURLcode) {
        complete(with: result(for: code))
    }

    func complete(with result: TransferResult) {
        guard !isFinished else { return }
        isFinished = true
        releaseResources()
        continuation.resume(returning: result)
    }

    private func result(for code: CURLcode) -> TransferResult {
        guard code == CURLE_OK else { return .failure(error(for: code)) }
        var statusCode = 0
        _ = ccurl_easy_getinfo_long(easy.raw, CURLINFO_RESPONSE_CODE, &statusCode)
        guard (100...999).contains(statusCode) else {
            return .failure(
                HTTPTransportError(
                    kind: .connectionLost, target: target,
                    reason: "the server sent no valid status code"))
        }
        var connects = 0
        _ = ccurl_easy_getinfo_long(easy.raw, CURLINFO_NUM_CONNECTS, &connects)
        var version = 0
        _ = ccurl_easy_getinfo_long(easy.raw, CURLINFO_HTTP_VERSION, &version)
        let reason = statusLine.code == statusCode ? statusLine.reason : ""
        let head = HTTPResponse(
            status: .init(code: statusCode, reasonPhrase: reason),
            headerFields: HTTPFields(responseFields))
        let body = responseBody
        responseBody = []
        return .success(
            HTTPClientResponse(
                head: head, body: body, newConnections: connects,
                httpVersion: Self.versionName(version)))
    }

    private static func versionName(_ version: Int) -> String {
        switch version {
        case Int(CURL_HTTP_VERSION_1_0): "1.0"
        case Int(CURL_HTTP_VERSION_2_0): "2"
        case Int(CURL_HTTP_VERSION_3): "3"
        default: "1.1"
        }
    }

    private func error(for code: CURLcode) -> HTTPTransportError {
        let detail = String(cString: errorBuffer).trimmingTrailingNewlines()
        var reason = detail.isEmpty ? curlErrorText(code) : detail
        let kind: HTTPTransportError.Kind
        switch code {
        case CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT, CURLE_BAD_FUNCTION_ARGUMENT:
            kind = .invalidRequest
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            kind = .couldNotResolve
        case CURLE_COULDNT_CONNECT, CURLE_PROXY:
            kind = .couldNotConnect
        case CURLE_OPERATION_TIMEDOUT:
            kind = .timedOut
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
            CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED,
            CURLE_SSL_ENGINE_INITFAILED, CURLE_SSL_SHUTDOWN_FAILED, CURLE_SSL_CRL_BADFILE, CURLE_SSL_ISSUER_ERROR,
            CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CLIENTCERT,
            CURLE_USE_SSL_FAILED:
            kind = .tlsFailure
        case CURLE_GOT_NOTHING, CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_PARTIAL_FILE, CURLE_HTTP2,
            CURLE_HTTP2_STREAM:
            kind = .connectionLost
        case CURLE_WRITE_ERROR where bodyExceededLimit, CURLE_FILESIZE_EXCEEDED:
            kind = .responseTooLarge
            reason = "the response body exceeds the limit of \(maxResponseBytes) bytes"
        case CURLE_ABORTED_BY_CALLBACK:
            kind = .cancelled
        default:
            kind = .other
        }
        return HTTPTransportError(kind: kind, target: target, reason: reason)
    }

    /// Frees the easy handle first (it points at the header list, the body and the error
    /// buffer), then wipes what may hold secrets.
    private func releaseResources() {
        easy.close()
        headerList.close()
        requestBody?.close()
        requestBody = nil
        // Only a failed transfer still holds body bytes here (a successful one moved them to the
        // caller); they may be part of a secret, so wipe them in place before letting go.
        responseBody.withUnsafeMutableBytes { bytes in
            if let base = bytes.baseAddress { explicit_bzero(base, bytes.count) }
        }
        responseBody = []
    }
}

private struct StatusLine {
    var code: Int
    var reason: String

    init(code: Int, reason: String) {
        self.code = code
        self.reason = reason
    }

    /// "HTTP/1.1 200 OK" or "HTTP/2 200"; the reason phrase is ISO Latin 1.
    init(_ line: ArraySlice<UInt8>) {
        let parts = line.split(separator: UInt8(ascii: " "), maxSplits: 2, omittingEmptySubsequences: true)
        code = parts.count > 1 ? Int(String(decoding: parts[1], as: UTF8.self)) ?? 0 : 0
        reason = parts.count > 2 ? String(String.UnicodeScalarView(parts[2].map { Unicode.Scalar($0) })) : ""
    }
}

extension String {
    fileprivate func trimmingTrailingNewlines() -> String {
        var text = Substring(self)
        while let last = text.last, last.isNewline || last == " " { text = text.dropLast() }
        return String(text)
    }
}

// C entry points: libcurl passes back the CurlTransfer as its user data pointer. The loop keeps
// the transfer alive while its handle is in the multi, the only time libcurl calls these.

private func curlTransferWriteBody(
    _ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ userData: UnsafeMutableRawPointer?
) -> Int {
    guard let userData else { return 0 }
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(userData).takeUnretainedValue()
    let bytes = UnsafeBufferPointer(
        start: UnsafeRawPointer(data)?.assumingMemoryBound(to: UInt8.self),
        count: data == nil ? 0 : size * count)
    return transfer.receiveBody(bytes)
}

private func curlTransferWriteHeader(
    _ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ userData: UnsafeMutableRawPointer?
) -> Int {
    guard let userData else { return 0 }
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(userData).takeUnretainedValue()
    let length = data == nil ? 0 : size * count
    transfer.receiveHeaderLine(
        UnsafeBufferPointer(
            start: UnsafeRawPointer(data)?.assumingMemoryBound(to: UInt8.self), count: length))
    return length
}
