import CCurl
import Glibc

// Owners of libcurl's C objects. None is Sendable: after `CurlHTTPClient.init` hands them to the
// event loop thread, only that thread touches them. Each frees its object at most once, either
// when the loop closes it in a known order or, as a backstop, in deinit.

/// curl_global_init is not safe to race with other libcurl calls, so it runs once, lazily,
/// before the first client touches libcurl (Swift initialises globals exactly once).
private let curlGlobalInitResult: CURLcode = curl_global_init(Int(CURL_GLOBAL_DEFAULT))

func ensureCurlGlobalInit() throws(HTTPTransportError) {
    guard curlGlobalInitResult == CURLE_OK else {
        throw HTTPTransportError(
            kind: .other, target: "",
            reason: "curl_global_init failed: \(curlErrorText(curlGlobalInitResult))")
    }
}

func curlErrorText(_ code: CURLcode) -> String {
    String(cString: curl_easy_strerror(code))
}

final class MultiHandle {
    private(set) var raw: UnsafeMutableRawPointer?

    init() throws(HTTPTransportError) {
        guard let raw = curl_multi_init() else {
            throw HTTPTransportError(kind: .other, target: "", reason: "curl_multi_init failed (out of memory?)")
        }
        self.raw = raw
    }

    /// Closes every cached connection. Every easy handle must have been removed first.
    func close() {
        if let raw {
            curl_multi_cleanup(raw)
            self.raw = nil
        }
    }

    deinit { close() }
}

/// DNS cache and TLS session cache shared by all easy handles. Only the loop thread uses it,
/// so it needs no lock callbacks.
final class ShareHandle {
    private(set) var raw: UnsafeMutableRawPointer?

    init() throws(HTTPTransportError) {
        guard let raw = curl_share_init() else {
            throw HTTPTransportError(kind: .other, target: "", reason: "curl_share_init failed (out of memory?)")
        }
        self.raw = raw
        for data in [CURL_LOCK_DATA_DNS, CURL_LOCK_DATA_SSL_SESSION] {
            let code = ccurl_share_setopt_lock_data(raw, CURLSHOPT_SHARE, data)
            guard code == CURLSHE_OK else {
                close()
                throw HTTPTransportError(
                    kind: .other, target: "",
                    reason: "curl_share_setopt failed: \(String(cString: curl_share_strerror(code)))")
            }
        }
    }

    /// Must come after the multi handle is closed: closing cached TLS connections still
    /// touches the session cache.
    func close() {
        if let raw {
            curl_share_cleanup(raw)
            self.raw = nil
        }
    }

    deinit { close() }
}

final class EasyHandle {
    private(set) var raw: UnsafeMutableRawPointer?

    init?() {
        guard let raw = curl_easy_init() else { return nil }
        self.raw = raw
    }

    /// Must come after the handle was removed from the multi handle.
    func close() {
        if let raw {
            curl_easy_cleanup(raw)
            self.raw = nil
        }
    }

    deinit { close() }
}

final class HeaderList {
    private(set) var raw: UnsafeMutablePointer<curl_slist>?

    /// Returns false when libcurl could not allocate; the list keeps what it had.
    func append(_ line: String) -> Bool {
        guard let extended = curl_slist_append(raw, line) else { return false }
        raw = extended
        return true
    }

    /// Must come after the easy handle that points at the list is cleaned up.
    func close() {
        if let raw {
            // curl_slist_append copied each line into the list; wipe them (they may hold tokens).
            var node: UnsafeMutablePointer<curl_slist>? = raw
            while let current = node {
                if let text = current.pointee.data {
                    explicit_bzero(text, strlen(text))
                }
                node = current.pointee.next
            }
            curl_slist_free_all(raw)
            self.raw = nil
        }
    }

    deinit { close() }
}

/// A private copy of bytes that may be secret (a request body, the CA bundle), stable in memory
/// while libcurl reads it without copying, wiped before it is freed.
final class WipedBuffer {
    private(set) var bytes: UnsafeMutableRawBufferPointer?
    let count: Int

    init(copying source: [UInt8]) {
        // One spare byte so an empty body still has a valid, non-null address.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: source.count + 1, alignment: 1)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        source.withUnsafeBytes { buffer.copyMemory(from: $0) }
        bytes = buffer
        count = source.count
    }

    var baseAddress: UnsafeMutableRawPointer? { bytes?.baseAddress }

    /// Must come after libcurl can no longer read the buffer (its easy handle is cleaned up).
    func close() {
        if let bytes {
            if let base = bytes.baseAddress {
                explicit_bzero(base, bytes.count)
            }
            bytes.deallocate()
            self.bytes = nil
        }
    }

    deinit { close() }
}
