// Certificate-backed PEM secrets with the key in the older encodings and written last, as the Key
// Vault VM extension and hand-made imports have them. Test keys only, made once with OpenSSL 3.0:
//   openssl ecparam -name prime256v1 -genkey -out ec.pem          (EC PARAMETERS + SEC1 EC PRIVATE KEY)
//   openssl req -x509 -new -key ec.pem -subj "/CN=sec1.example" -days 36500 -out ec-cert.pem
//   openssl genrsa -traditional -out rsa.pem 2048                  (PKCS#1 RSA PRIVATE KEY)
//   openssl req -x509 -new -key rsa.pem -subj "/CN=pkcs1.example" -days 36500 -out rsa-cert.pem
enum LegacyKeyFixture {
    static let ecCertificate = """
        -----BEGIN CERTIFICATE-----
        MIIBhTCCASugAwIBAgIUCM2aUk9eJhsIy35dnBSwjtRdsPEwCgYIKoZIzj0EAwIw
        FzEVMBMGA1UEAwwMc2VjMS5leGFtcGxlMCAXDTI2MTEyOTAxMzIxMVoYDzIxMjYx
        MTA1MDEzMjExWjAXMRUwEwYDVQQDDAxzZWMxLmV4YW1wbGUwWTATBgcqhkjOPQIB
        BggqhkjOPQMBBwNCAAQToaSIvsC0MW3OM20FDljYomscmOhdCf4hLGjcm6VCewNw
        vF1kI4EmdmGKAxLNKIvwxICSz6vANR2TGwyBAq7Yo1MwUTAdBgNVHQ4EFgQUppuK
        659QawG5xVTAb5h1DE90Si0wHwYDVR0jBBgwFoAUppuK659QawG5xVTAb5h1DE90
        Si0wDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiAX5frRRHq6parp
        TFvjIIvigJdxO+sJEltWCe4r6xLLAwIhALdYVC/9hBzOwMn38hw/IP+gs2dQsnNh
        DBqSSkaO3lJI
        -----END CERTIFICATE-----
        """
    static let ecKeySEC1 = """
        -----BEGIN EC PARAMETERS-----
        BggqhkjOPQMBBw==
        -----END EC PARAMETERS-----
        -----BEGIN EC PRIVATE KEY-----
        MHcCAQEEIHrn/fhfhPpLXjJZRfEaa//gyaNNAzcK9jU/vNwIb0PhoAoGCCqGSM49
        AwEHoUQDQgAEE6GkiL7AtDFtzjNtBQ5Y2KJrHJjoXQn+ISxo3JulQnsDcLxdZCOB
        JnZhigMSzSiL8MSAks+rwDUdkxsMgQKu2A==
        -----END EC PRIVATE KEY-----
        """
    static let rsaCertificate = """
        -----BEGIN CERTIFICATE-----
        MIIDEzCCAfugAwIBAgIUFqkUuY0KDKiytiWp3SxxQ+hAngEwDQYJKoZIhvcNAQEL
        BQAwGDEWMBQGA1UEAwwNcGtjczEuZXhhbXBsZTAgFw0yNjExMjkwMTMyMTJaGA8y
        MTI2MTEwNTAxMzIxMlowGDEWMBQGA1UEAwwNcGtjczEuZXhhbXBsZTCCASIwDQYJ
        KoZIhvcNAQEBBQADggEPADCCAQoCggEBALtJ8/9eJkvbwbv3AaVH7sAhpVjj+2ZN
        d8tYUSzlY5NIMpU0M3kRFWO5rkEBHA8FzAkKSJRVcX6iFUyUdWzcnVIMzgIodK2M
        Qz2A22Orkkx7/BauZGRZNGrCL/dw37jfJP6xuYe7xAGQy4cuY7Z84SqEROJf8c7/
        qL2qwN1V1beKbsaEzkFEzqSDthhwTZ8P7enYSNQB0IRhEeVH15Sz1b/Mir4Ilojr
        fg8w5gWpRwVmNcb4FVTAVKbFsghG8fZmI5GHO2HpNH58ck0jhux4v874lzRwigd6
        3XCXSJDz+Sm6ypasuP+nlpPR2LDKY5Mv3tKULA0YS/zp6R292nDe0lcCAwEAAaNT
        MFEwHQYDVR0OBBYEFNVtMy6CzytgJE9eIfO86WidkUOVMB8GA1UdIwQYMBaAFNVt
        My6CzytgJE9eIfO86WidkUOVMA8GA1UdEwEB/wQFMAMBAf8wDQYJKoZIhvcNAQEL
        BQADggEBAD8e2Ds/OpZ9CcsHdQUoFJFRIY7ChOFhtrfSqVSbN/pvEgqLYncGPi/e
        agkmxzczc6ZV4mA8MQnewLe+KXFK00GwkfuKYw8agY+xncb61mmm5aSZB95QMIvu
        w8wZK0gBnBQqBE0lmCm7kf2Fo0mhcPOKYly2tlDrWZx9kDV7QdsEkWlaE4QBDyfv
        M2UpOlkvVGdMuh1raepPmvmd5o+/ZO7ZRitkcEIg97aRL2FeSFSxx7FW2cqLAthX
        UxoxqST/aFF5tApd4jXpFA+mTe/bxQwWLDzmg7XIz1WVKA3M75lTLcwuw7bIRwM1
        UHOtNW7nSeVPM5NX7P/HJr/ef42JGJ0=
        -----END CERTIFICATE-----
        """
    static let rsaKeyPKCS1 = """
        -----BEGIN RSA PRIVATE KEY-----
        MIIEowIBAAKCAQEAu0nz/14mS9vBu/cBpUfuwCGlWOP7Zk13y1hRLOVjk0gylTQz
        eREVY7muQQEcDwXMCQpIlFVxfqIVTJR1bNydUgzOAih0rYxDPYDbY6uSTHv8Fq5k
        ZFk0asIv93DfuN8k/rG5h7vEAZDLhy5jtnzhKoRE4l/xzv+ovarA3VXVt4puxoTO
        QUTOpIO2GHBNnw/t6dhI1AHQhGER5UfXlLPVv8yKvgiWiOt+DzDmBalHBWY1xvgV
        VMBUpsWyCEbx9mYjkYc7Yek0fnxyTSOG7Hi/zviXNHCKB3rdcJdIkPP5KbrKlqy4
        /6eWk9HYsMpjky/e0pQsDRhL/OnpHb3acN7SVwIDAQABAoIBAEXti042Q3tAXnoF
        dFZXYMPY7Ckf2k5sr0U7wPdP4JlttAE0f+F8qO1Wt0KrHORZCED513aW3mznLKeu
        qJdQWeb4Q/TXURU5USPGGGQC+/lVs55uV6qGCgWwYoNzX/zhSClWh0ywJTNmci+T
        eQR6ZQHgZ+3T3++nUkQa3K7nbQf9Ysu79BMxyBM6OZyOzSY/zCbQIHgdg10bA3VM
        Tq8cCeo7jraA6AZwboMJFsWGIBwLYJvqoZesDBYfNJnaZLQxT5j21LSEHNVr4RlC
        slW5bdkYsq9HggejP9MkxMV2Zt4VPsWfPxO+IVaQWgdlHGDCsgP99RjDdwfiCa5C
        K9tYR1UCgYEA5KB3YdacTmLPJhdwxajDCIOsIvmx5+sI32UXr+C71ywpNwY0dWtZ
        JbqQQBNGPlXGTLr272oaSMv0zV7Gu9f77+J2R8sQdUxg3aMInPAtwYzQ5jMhULkf
        JYeWFix/4b2gLehR9LMvNYPzDTF/5neFfyZ54CWTHzO8LDG2ddQVFD0CgYEA0bZ0
        9R3qaf5RAKaLaphAtCM6eP3mGfEZ4TJ+lsNl2bdbBlHNSsmL6VLmdpQ0KFObMhLm
        01uVoPPFIa+1yBAXm0ftY6+ctP1cf0tbrur5vpjLr4UOMwL8sUHo6QJtjJ4ogdDn
        tswwLhV3KZ22iD2xQpNS4RseQHzGIHmuRBisJiMCgYBoQDOvzWig5bWHrRCjUPz+
        GOyZVjqlgisdkr9mV5fP2jdA+/dXw4d3CMdWMHPLYNl3i5mmOj+aCkaqjxkX9rjO
        /fjpa9MpaZaR+hGnXm2+4DMxhQcgBAoL1vO9ULVPfmRYCqO0bTCNuolN7tBfiwi4
        nhbc+sVHaRPZIyIMQJUMEQKBgQClymwOOFdQ8lhRfljrrXBBuTQJ4RffXGdMTKId
        SF6lzznr9hGpVUsB66L9Dc9qLiacYKsRXu8c7nrjVckNYAN5pFR9IaFuyHouvIG/
        +E32q08j9Lm0BGGHNQcP5vZ6W7LEZkY5kpVoaVnqkZ9zd+pCKrwz8D9rVflARVJK
        zYKTJwKBgHgqA5DG4aSp1pwCFAJpJkx3+stMC6id9ApcVfnl4EDjQ6CrS5CeZlgq
        2DYeNyaGKDE5ZJDohHYUpgolvvansVBV0sXuhGVGWsz1zs5fUU+VAnSO96CsqfQc
        4eyLoVsFfFAprbz8eEAGH/ZEinIJuuqWBtsWO2WRdmE0g2b1VOSr
        -----END RSA PRIVATE KEY-----
        """
}
