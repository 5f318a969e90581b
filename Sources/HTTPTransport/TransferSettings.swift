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
    /// System CAs plus the extra CA file, handed to each easy handle with CURLOPT_CAINFO_BLOB
    /// (not copied by libcurl, so it lives as long as the loop). Nil: libcurl's own defaults.
    var caBundle: WipedBuffer?

    init(_ configuration: HTTPClientConfiguration) throws(HTTPTransportError) {
        connectTimeoutMilliseconds = curlMilliseconds(configuration.connectTimeout)
        requestTimeout = configuration.requestTimeout
        userAgent = configuration.userAgent
        maxConnectionsPerHost = max(1, configuration.maxConnectionsPerHost)
        maxResponseBytes = max(0, configuration.maxResponseBytes)
        preferHTTP2 = configuration.preferHTTP2
        if let extraCAFile = configuration.extraCAFile {
            caBundle = try Self.combinedCABundle(extraCAFile: extraCAFile)
        }
    }

    /// CURLOPT_CAINFO_BLOB replaces libcurl's CA file rather than adding to it, so "system CAs
    /// plus one more" means concatenating the system bundle and the extra file ourselves.
    private static func combinedCABundle(extraCAFile: String) throws(HTTPTransportError) -> WipedBuffer {
        let extra: [UInt8]
        do throws(FileReadError) {
            extra = try readWholeFile(extraCAFile)
        } catch {
            throw HTTPTransportError(kind: .invalidRequest, target: "",
                                     reason: "cannot read the extra CA file \(extraCAFile) (\(error.message)); "
                                         + "point the setting at a readable PEM bundle")
        }
        guard containsPEMCertificate(extra) else {
            throw HTTPTransportError(
                kind: .invalidRequest, target: "",
                reason: "the extra CA file \(extraCAFile) holds no PEM certificate "
                    + "(expected '-----BEGIN CERTIFICATE-----' blocks); point the setting at a PEM bundle")
        }
        // An unreadable system bundle is not fatal: Debian's libcurl also trusts the hashed
        // CA directory (CURLOPT_CAPATH, /etc/ssl/certs), which the blob does not replace.
        var combined = (try? readWholeFile(systemCABundlePath())) ?? []
        combined.append(UInt8(ascii: "\n"))
        combined.append(contentsOf: extra)
        combined.append(UInt8(ascii: "\n"))
        return WipedBuffer(copying: combined)
    }

    /// The CA bundle libcurl was built to use (CURLINFO_CAINFO on a fresh handle).
    private static func systemCABundlePath() -> String {
        let fallback = "/etc/ssl/certs/ca-certificates.crt"
        guard let easy = EasyHandle(), let raw = easy.raw else { return fallback }
        var path: UnsafeMutablePointer<CChar>? = nil
        guard ccurl_easy_getinfo_string(raw, CURLINFO_CAINFO, &path) == CURLE_OK, let path else {
            return fallback
        }
        return String(cString: path)
    }

    private static func containsPEMCertificate(_ bytes: [UInt8]) -> Bool {
        let text = String(decoding: bytes, as: UTF8.self)
        return ["-----BEGIN CERTIFICATE-----", "-----BEGIN TRUSTED CERTIFICATE-----",
                "-----BEGIN X509 CERTIFICATE-----"].contains { text.contains($0) }
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
