import CCurl
import Glibc

/// What every transfer needs from the configuration, resolved once at client init.
struct TransferSettings {
    var connectTimeoutMilliseconds: Int
    var requestTimeout: Duration
    var userAgent: String
    var maxConnectionsPerHost: Int
    var maxResponseBytes: Int
    var preferHTTP2: Bool
    /// What every HTTPS connection trusts, built once (see TrustStore for why).
    var trust: TrustStore

    init(_ configuration: HTTPClientConfiguration) throws(HTTPTransportError) {
        connectTimeoutMilliseconds = curlMilliseconds(configuration.connectTimeout)
        requestTimeout = configuration.requestTimeout
        userAgent = configuration.userAgent
        maxConnectionsPerHost = max(1, configuration.maxConnectionsPerHost)
        maxResponseBytes = max(0, configuration.maxResponseBytes)
        preferHTTP2 = configuration.preferHTTP2
        trust = try TrustStore(extraCAFile: configuration.extraCAFile)
    }
}

/// libcurl's millisecond options treat 0 as "no limit", so anything shorter becomes 1 ms.
func curlMilliseconds(_ duration: Duration) -> Int {
    let (seconds, attoseconds) = duration.components
    guard seconds >= 0, duration > .zero else { return 1 }
    let (whole, overflow) = Int(seconds).multipliedReportingOverflow(by: 1000)
    if overflow { return Int.max }
    let (total, overflow2) = whole.addingReportingOverflow(Int(attoseconds / 1_000_000_000_000_000))
    return overflow2 ? Int.max : max(1, total)
}

struct FileReadError: Error {
    let message: String
}

func readWholeFile(_ path: String) throws(FileReadError) -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw FileReadError(message: String(cString: strerror(errno))) }
    defer { close(fd) }
    var contents: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EINTR { continue }
            throw FileReadError(message: String(cString: strerror(errno)))
        }
        if count == 0 { return contents }
        contents.append(contentsOf: chunk[0..<count])
        // A CA bundle is at most a few MiB; refuse to slurp something absurd by mistake.
        if contents.count > 64 << 20 { throw FileReadError(message: "larger than 64 MiB, not a CA bundle") }
    }
}
