import CCurl
import CFuse
import COpenSSL
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The C shims link, and the libraries behind them have the features akvfs relies on.
@Suite("C shims")
struct ShimTests {
    @Test("libfuse3 is 3.12 or newer (fuse_loop_cfg_* and the 3.12 loop API)")
    func fuse() {
        #expect(fuse_version() >= 312)
        #expect(cfuse_lowlevel_ops_size() > 0)
    }

    @Test("libcurl speaks TLS and HTTP/2 and has curl_multi_wakeup (7.68+)")
    func curl() throws {
        let info = try #require(ccurl_version_info())
        #expect(info.pointee.version_num >= 0x074400)
        #expect(info.pointee.features & CURL_VERSION_SSL != 0)
        #expect(info.pointee.features & CURL_VERSION_HTTP2 != 0)
        let handle = try #require(curl_easy_init())
        defer { curl_easy_cleanup(handle) }
        #expect(ccurl_easy_setopt_long(handle, CURLOPT_TIMEOUT_MS, 1000) == CURLE_OK)
    }

    /// What the loader finds first under this name is what GnuTLS's constructor calls: the
    /// executable's definition (1, skip) only if the executable exports it, else GnuTLS's own (0).
    @Test("GnuTLS, which libcurl loads, finds the executable's request to skip its start")
    func gnutlsStartSkipped() throws {
        let program = try #require(dlopen(nil, RTLD_NOW))
        defer { dlclose(program) }
        let symbol = try #require(dlsym(program, "_gnutls_global_init_skip"))
        let skip = unsafeBitCast(symbol, to: (@convention(c) () -> Int32).self)
        #expect(skip() == 1)
    }

    @Test("OpenSSL is 3.x")
    func openssl() {
        #expect(OpenSSL_version_num() >= 0x3000_0000)
    }
}
