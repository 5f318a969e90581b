// The floor under akvfs's resident memory: a process that links the same system libcurl and
// makes one HTTPS request, as a mount does before it goes idle. benchmarks/memory reads this
// process's /proc/PID/smaps next to akvfs's, so the share of the libraries (libcrypto, libssl,
// libcurl and what they pull in) is measured rather than assumed.
//
//   tlsfloor URL CA_FILE     prints "ready" once the request is answered, then waits for a signal
#include <curl/curl.h>
#include <stdio.h>
#include <unistd.h>

// akvfs turns off GnuTLS's start-up (loaded only for libcurl's LDAP and RTMP support, never used);
// so does this program, with the same documented hook, so that the floor is one akvfs could reach.
int _gnutls_global_init_skip(void) { return 1; }

static size_t discard(char *data, size_t size, size_t count, void *context) {
    (void)data;
    (void)context;
    return size * count;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: tlsfloor URL CA_FILE\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *handle = curl_easy_init();
    curl_easy_setopt(handle, CURLOPT_URL, argv[1]);
    curl_easy_setopt(handle, CURLOPT_CAINFO, argv[2]);
    curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, discard);
    CURLcode result = curl_easy_perform(handle);
    if (result != CURLE_OK) {
        fprintf(stderr, "tlsfloor: %s\n", curl_easy_strerror(result));
        return 1;
    }
    // Keep the connection, as a mount keeps its own, and hold still to be measured.
    printf("ready\n");
    fflush(stdout);
    pause();
    return 0;
}
