import CCurl
import COpenSSL

/// The certificates every HTTPS connection trusts, parsed once and shared by all connections.
///
/// libcurl parses its CA bundle again for each new connection unless it was given a CA file and
/// nothing else (its own store cache is off with a CA blob or a CA directory, and Debian's
/// libcurl always has a CA directory). With OpenSSL 3, parsing Debian's ~140 roots costs about
/// 45 ms of CPU, which a mount's parallel first fetches would pay once per connection, one after
/// another on the transport thread. Instead one X509_STORE is built here and handed to each
/// connection's SSL_CTX through CURLOPT_SSL_CTX_FUNCTION, so a new connection costs its handshake.
final class TrustStore {
    /// X509_STORE*; every SSL_CTX holding it keeps its own reference (SSL_CTX_set1_cert_store).
    let raw: OpaquePointer

    /// System CAs as libcurl was built to find them (bundle and hashed directory), plus the
    /// extra PEM file when one is configured.
    init(extraCAFile: String?) throws(HTTPTransportError) {
        guard let store = X509_STORE_new() else {
            throw HTTPTransportError(kind: .other, target: "", reason: "X509_STORE_new failed (out of memory?)")
        }
        raw = store
        let defaults = Self.libcurlDefaults()
        // A missing system bundle is not fatal: the directory may hold the roots, and a
        // connection to a server nobody vouches for fails with a verification error anyway.
        if let bundle = defaults.bundle { _ = X509_STORE_load_file(store, bundle) }
        // The hashed directory is searched lazily, certificate by certificate, during verification.
        if let directory = defaults.directory { _ = X509_STORE_load_path(store, directory) }
        ERR_clear_error()
        if let extraCAFile { try addExtra(extraCAFile) }
    }

    deinit { X509_STORE_free(raw) }

    private func addExtra(_ path: String) throws(HTTPTransportError) {
        let bytes: [UInt8]
        do throws(FileReadError) {
            bytes = try readWholeFile(path)
        } catch {
            throw HTTPTransportError(
                kind: .invalidRequest, target: "",
                reason:
                    "cannot read the extra CA file \(path) (\(error.message)); point the setting at a readable PEM bundle"
            )
        }
        var added = 0
        bytes.withUnsafeBytes { buffer in
            guard let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else { return }
            defer { BIO_free(bio) }
            while let certificate = PEM_read_bio_X509(bio, nil, nil, nil) {
                if X509_STORE_add_cert(raw, certificate) == 1 { added += 1 }
                X509_free(certificate)
            }
        }
        ERR_clear_error()  // the loop ends on "no start line", which is not an error here
        guard added > 0 else {
            throw HTTPTransportError(
                kind: .invalidRequest, target: "",
                reason: "the extra CA file \(path) holds no PEM certificate "
                    + "(expected '-----BEGIN CERTIFICATE-----' blocks); point the setting at a PEM bundle")
        }
    }

    /// Where libcurl would look for CAs by itself (CURLINFO_CAINFO and CURLINFO_CAPATH on a fresh handle).
    private static func libcurlDefaults() -> (bundle: String?, directory: String?) {
        guard let easy = EasyHandle(), let handle = easy.raw else { return ("/etc/ssl/certs/ca-certificates.crt", nil) }
        func info(_ key: CURLINFO) -> String? {
            var value: UnsafeMutablePointer<CChar>? = nil
            guard ccurl_easy_getinfo_string(handle, key, &value) == CURLE_OK, let value else { return nil }
            return String(cString: value)
        }
        return (info(CURLINFO_CAINFO), info(CURLINFO_CAPATH))
    }
}

/// Runs on the transport thread as libcurl sets up each TLS connection: gives its SSL_CTX the
/// shared store (the user pointer), replacing whatever libcurl loaded, which is nothing.
let installTrustStore: curl_ssl_ctx_callback = { _, sslContext, store in
    guard let sslContext, let store else { return CURLE_SSL_CERTPROBLEM }
    SSL_CTX_set1_cert_store(OpaquePointer(sslContext), OpaquePointer(store))
    return CURLE_OK
}
