// Debian's libcurl is built against OpenSSL, but it also links LDAP and RTMP support, and both
// bring in GnuTLS. GnuTLS initializes itself from a library constructor when it is loaded (its
// algorithm tables, ASN.1 trees, random generator, system priority file), which costs every akvfs
// process about 0.6 MiB of resident memory for a library it never uses: akvfs only lets libcurl
// speak http and https, over OpenSSL.
//
// GnuTLS documents this function as the way for a program to turn that implicit start off
// (GNUTLS_SKIP_GLOBAL_INIT in gnutls.h): the library's own definition is weak and answers 0, and
// the loader finds the executable's first. Anything that does use GnuTLS (libldap, librtmp) calls
// gnutls_global_init itself before it does. The executable must export the symbol for the loader
// to see it; Package.swift asks the linker to (--export-dynamic-symbol).
int _gnutls_global_init_skip(void);

int _gnutls_global_init_skip(void) {
    return 1;
}
