// A chain that PKI's CertificateTemplate cannot make: its leaf has NO subject key identifier (the
// template always adds one). It mirrors the Azure provider's TestFetchCertChainWithLeafMissingSKI.
//
// Made once with OpenSSL 3.0 (all keys EC P-256, valid for 100 years; keys discarded):
//   ca.ext:   basicConstraints=critical,CA:TRUE / subjectKeyIdentifier=hash / authorityKeyIdentifier=keyid:always
//   leaf.ext: basicConstraints=critical,CA:FALSE / subjectKeyIdentifier=none / authorityKeyIdentifier=keyid:always
//   openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out <name>.key   (root, int1, int2, leaf)
//   openssl req -x509 -new -key root.key -subj "/CN=Fixture Root CA" -days 36500 -extensions v3 \
//       -config <(printf '[req]\ndistinguished_name=dn\n[dn]\n[v3]\n'; cat ca.ext) -out root.pem
//   then for (int1, "/CN=Fixture Intermediate 1", root, ca.ext), (int2, "/CN=Fixture Intermediate 2", int1, ca.ext)
//   and (leaf, "/CN=fixture.example", int2, leaf.ext):
//   openssl req -new -key <name>.key -subj <subject> -out <name>.csr
//   openssl x509 -req -in <name>.csr -CA <issuer>.pem -CAkey <issuer>.key -CAcreateserial -days 36500 \
//       -extfile <ext> -out <name>.pem
// Kept as Swift source rather than .pem files so the test target needs no resource declaration.
enum LeafWithoutSKIFixture {
    static let root = """
        -----BEGIN CERTIFICATE-----
        MIIBjDCCATGgAwIBAgIUJnNcsdGi5KLWe60WHler4Q2OkFIwCgYIKoZIzj0EAwIw
        GjEYMBYGA1UEAwwPRml4dHVyZSBSb290IENBMCAXDTI2MTEyOTAxMjk1M1oYDzIx
        MjYxMTA1MDEyOTUzWjAaMRgwFgYDVQQDDA9GaXh0dXJlIFJvb3QgQ0EwWTATBgcq
        hkjOPQIBBggqhkjOPQMBBwNCAAQHvkapbkRdJn74lBz7d164QIsvWkBv6fd4WeOO
        t/qor4mFeSg332Kzg14tHjgK3rE0fywWFjoR1qHtqkZaKbESo1MwUTAPBgNVHRMB
        Af8EBTADAQH/MB0GA1UdDgQWBBTiCcJmgJ5fGmPeLBqxbyVSHy6AxjAfBgNVHSME
        GDAWgBTiCcJmgJ5fGmPeLBqxbyVSHy6AxjAKBggqhkjOPQQDAgNJADBGAiEAkMFQ
        mpH21jXzqynMYHBb3pjhFhbTfe2l9TFq778F+XYCIQD9uctCk0VGns15I9VqfzhJ
        W5Cj6GP1kHxF5NZEVoAEdw==
        -----END CERTIFICATE-----
        """
    static let intermediate1 = """
        -----BEGIN CERTIFICATE-----
        MIIBkzCCATigAwIBAgIUX5RMi5tJvSaOP1PLefzy/ncrktkwCgYIKoZIzj0EAwIw
        GjEYMBYGA1UEAwwPRml4dHVyZSBSb290IENBMCAXDTI2MTEyOTAxMjk1M1oYDzIx
        MjYxMTA1MDEyOTUzWjAhMR8wHQYDVQQDDBZGaXh0dXJlIEludGVybWVkaWF0ZSAx
        MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEQTN+LMY7m1IbmDAltHiO9pH1hIKU
        K9SIFkd3Ofqwjlpp9wFBP3rLHsxtvbCnsjfzk5R946BQpHcEIC+9sfZNXaNTMFEw
        DwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUppjOvcCip8YdKC0pJFEIvJBrJ3kw
        HwYDVR0jBBgwFoAU4gnCZoCeXxpj3iwasW8lUh8ugMYwCgYIKoZIzj0EAwIDSQAw
        RgIhALxWs70LN6r8MaJYQMB4Prhtbbmh0uir5l6qnwD6YvxrAiEAkRMvqi99hwI3
        g2no/Lhna7NjJuotwzXsnbegGJxYPXM=
        -----END CERTIFICATE-----
        """
    static let intermediate2 = """
        -----BEGIN CERTIFICATE-----
        MIIBmjCCAT+gAwIBAgIUb7pRKQhE17TjaedMukZjKc6skfEwCgYIKoZIzj0EAwIw
        ITEfMB0GA1UEAwwWRml4dHVyZSBJbnRlcm1lZGlhdGUgMTAgFw0yNjExMjkwMTI5
        NTNaGA8yMTI2MTEwNTAxMjk1M1owITEfMB0GA1UEAwwWRml4dHVyZSBJbnRlcm1l
        ZGlhdGUgMjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABLfNmcruZFGa8YVlRqis
        HoToBagegJTdhMNBhGcqEECUj9vkCLCkee5xQUzIj3XrFSKygCUDsg3l9UuvvGzx
        6cqjUzBRMA8GA1UdEwEB/wQFMAMBAf8wHQYDVR0OBBYEFN5H5dqlhdmGeErmHX/7
        1MNxrPJzMB8GA1UdIwQYMBaAFKaYzr3AoqfGHSgtKSRRCLyQayd5MAoGCCqGSM49
        BAMCA0kAMEYCIQCaA2I9WJA69hMWbgNCmxoSbif7DyxqMFFl2SLRtinitgIhAIGN
        zhMXmESOywGzyrBdrhg+bXQe8l6T0dJEe3UvSs6F
        -----END CERTIFICATE-----
        """
    static let leaf = """
        -----BEGIN CERTIFICATE-----
        MIIBbzCCARagAwIBAgIURJlIl3+aESXtNm5XkqhQWeFgE2AwCgYIKoZIzj0EAwIw
        ITEfMB0GA1UEAwwWRml4dHVyZSBJbnRlcm1lZGlhdGUgMjAgFw0yNjExMjkwMTI5
        NTNaGA8yMTI2MTEwNTAxMjk1M1owGjEYMBYGA1UEAwwPZml4dHVyZS5leGFtcGxl
        MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYR4MTE/c3yCGFa3HvlPXlNpsr0a8
        AOPkdKMVzsKt31igtVrcqAMv8OmljOLlCYtGlJbXSXhnJgfqRfY/hEw7WKMxMC8w
        DAYDVR0TAQH/BAIwADAfBgNVHSMEGDAWgBTeR+XapYXZhnhK5h1/+9TDcazyczAK
        BggqhkjOPQQDAgNHADBEAiAdvcJ5nPb6y/fd2iMZrJdga6fF2lEksqG6Fm1kyYHO
        AwIgTfl5u9EJm4HIprog3GeDq1rZWgPe/oVGQYgllRkIThk=
        -----END CERTIFICATE-----
        """
}
