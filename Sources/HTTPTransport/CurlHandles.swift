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

/// Frees one C object with `release`, at most once: `close()` or, as a backstop, deinit.
class OwnedResource<Raw> {
    fileprivate(set) var raw: Raw?
    private let release: (Raw) -> Void

    init(_ raw: Raw?, release: @escaping (Raw) -> Void) {
        self.raw = raw
        self.release = release
    }

    final func close() {
        if let raw {
            release(raw)
            self.raw = nil
        }
    }

    deinit { close() }
}

/// Closing it closes every cached connection, so every easy handle must have been removed first.
final class MultiHandle: OwnedResource<UnsafeMutableRawPointer> {
    init() throws(HTTPTransportError) {
        guard let raw = curl_multi_init() else {
            throw HTTPTransportError(kind: .other, target: "", reason: "curl_multi_init failed (out of memory?)")
        }
        super.init(raw, release: { _ = curl_multi_cleanup($0) })
    }
}

/// DNS cache and TLS session cache shared by all easy handles. Only the loop thread uses it,
/// so it needs no lock callbacks. Close it after the multi handle: closing cached TLS
/// connections still touches the session cache.
final class ShareHandle: OwnedResource<UnsafeMutableRawPointer> {
    init() throws(HTTPTransportError) {
        guard let raw = curl_share_init() else {
            throw HTTPTransportError(kind: .other, target: "", reason: "curl_share_init failed (out of memory?)")
        }
        super.init(raw, release: { _ = curl_share_cleanup($0) })
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
}

/// Close it after it was removed from the multi handle.
final class EasyHandle: OwnedResource<UnsafeMutableRawPointer> {
    init?() {
        guard let raw = curl_easy_init() else { return nil }
        super.init(raw, release: { curl_easy_cleanup($0) })
    }
}

/// Close it after the easy handle that points at the list is cleaned up.
final class HeaderList: OwnedResource<UnsafeMutablePointer<curl_slist>> {
    init() {
        super.init(nil, release: Self.wipeAndFree)
    }

    /// Returns false when libcurl could not allocate; the list keeps what it had.
    func append(_ line: String) -> Bool {
        guard let extended = curl_slist_append(raw, line) else { return false }
        raw = extended
        return true
    }

    /// curl_slist_append copied each line into the list; wipe them (they may hold tokens).
    private static func wipeAndFree(_ list: UnsafeMutablePointer<curl_slist>) {
        var node: UnsafeMutablePointer<curl_slist>? = list
        while let current = node {
            if let text = current.pointee.data {
                explicit_bzero(text, strlen(text))
            }
            node = current.pointee.next
        }
        curl_slist_free_all(list)
    }
}

/// A private copy of bytes that may be secret (a request body, the CA bundle), stable in memory
/// while libcurl reads it without copying, wiped before it is freed. Close it after libcurl can
/// no longer read the buffer (its easy handle is cleaned up).
final class WipedBuffer: OwnedResource<UnsafeMutableRawBufferPointer> {
    let count: Int

    init(copying source: [UInt8]) {
        // One spare byte so an empty body still has a valid, non-null address.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: source.count + 1, alignment: 1)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        source.withUnsafeBytes { buffer.copyMemory(from: $0) }
        count = source.count
        super.init(buffer, release: Self.wipeAndFree)
    }

    var baseAddress: UnsafeMutableRawPointer? { raw?.baseAddress }

    private static func wipeAndFree(_ bytes: UnsafeMutableRawBufferPointer) {
        if let base = bytes.baseAddress {
            explicit_bzero(base, bytes.count)
        }
        bytes.deallocate()
    }
}
