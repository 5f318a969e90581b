// CCurl: typed entry points for libcurl's variadic functions.
//
// curl_easy_setopt, curl_easy_getinfo and curl_multi_setopt are variadic, and Swift imports
// variadic C functions as unavailable. libcurl reads the third argument with va_arg using the
// type the option implies (long, pointer, curl_off_t or a function pointer), so each wrapper
// below fixes one of those types. Calling the wrong wrapper for an option is the same bug as
// passing the wrong type in C, so the Swift side keeps one call site per option.
#ifndef CCURL_H
#define CCURL_H

#include <curl/curl.h>

static inline CURLcode ccurl_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

// Strings are copied by libcurl (since 7.17.0), so the caller's buffer may die after the call.
static inline CURLcode ccurl_easy_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode ccurl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode ccurl_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode ccurl_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

// Write and header callbacks share curl_write_callback's signature.
static inline CURLcode ccurl_easy_setopt_write_callback(CURL *handle, CURLoption option,
                                                        curl_write_callback callback) {
    return curl_easy_setopt(handle, option, callback);
}

// CURLOPT_SSL_CTX_FUNCTION reads a function pointer; HTTPTransport uses it to hand every
// connection the one X509 store it built at start instead of letting libcurl parse CA files
// again per connection.
static inline CURLcode ccurl_easy_setopt_ssl_ctx_callback(CURL *handle, curl_ssl_ctx_callback callback) {
    return curl_easy_setopt(handle, CURLOPT_SSL_CTX_FUNCTION, callback);
}

static inline CURLcode ccurl_easy_getinfo_long(CURL *handle, CURLINFO info, long *out) {
    return curl_easy_getinfo(handle, info, out);
}

static inline CURLcode ccurl_easy_getinfo_string(CURL *handle, CURLINFO info, char **out) {
    return curl_easy_getinfo(handle, info, out);
}

static inline CURLcode ccurl_easy_getinfo_pointer(CURL *handle, CURLINFO info, void **out) {
    return curl_easy_getinfo(handle, info, out);
}

static inline CURLcode ccurl_easy_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *out) {
    return curl_easy_getinfo(handle, info, out);
}

static inline CURLMcode ccurl_multi_setopt_long(CURLM *multi, CURLMoption option, long value) {
    return curl_multi_setopt(multi, option, value);
}

// curl_share_setopt is variadic too (and a macro when curl's type checks are on). HTTPTransport
// uses a share handle for its DNS and TLS session caches; CURLSHOPT_SHARE and CURLSHOPT_UNSHARE
// read the argument as a curl_lock_data (an int), so this wrapper fixes that type.
static inline CURLSHcode ccurl_share_setopt_lock_data(CURLSH *share, CURLSHoption option,
                                                      curl_lock_data data) {
    return curl_share_setopt(share, option, data);
}

// CURLMsg.data is a union; Swift can read it, but this keeps the intent obvious.
static inline CURLcode ccurl_msg_result(const CURLMsg *message) {
    return message->data.result;
}

// CURLVERSION_NOW is a macro naming the newest struct layout the headers know.
static inline curl_version_info_data *ccurl_version_info(void) {
    return curl_version_info(CURLVERSION_NOW);
}

#endif
