internal import COpenSSL

extension Certificate {
    /// The PKCS#10 request (DER) this certificate answers, as a CA would have received it: the
    /// certificate's subject and public key, and the extensions a requester asks for (subject
    /// alternative names, key usage, extended key usage), signed with SHA-256 by `key`, which
    /// must be the certificate's own.
    public func signingRequest(signedWith key: PrivateKey) throws(PKIError) -> [UInt8] {
        let operation = "create a certificate signing request"
        guard key.publicKey == publicKey else {
            throw PKIError(operation: operation, reason: "the key is not the certificate's")
        }
        guard let request = X509_REQ_new() else { throw .openSSL(operation, "out of memory") }
        defer { X509_REQ_free(request) }
        // Version 1 (encoded 0) is the only version PKCS#10 defines.
        guard X509_REQ_set_version(request, 0) == 1,
            X509_REQ_set_subject_name(request, X509_get_subject_name(x509)) == 1,
            X509_REQ_set_pubkey(request, key.pkey) == 1
        else { throw .openSSL(operation, "could not set the subject and the public key") }

        var requested: OpaquePointer?  // STACK_OF(X509_EXTENSION), made by X509V3_add1_i2d
        defer { if let requested { copenssl_sk_X509_EXTENSION_pop_free(requested) } }
        let wanted: [(nid: Int32, free: (UnsafeMutableRawPointer) -> Void)] = [
            (NID_subject_alt_name, { GENERAL_NAMES_free(OpaquePointer($0)) }),
            (NID_key_usage, { ASN1_BIT_STRING_free($0.assumingMemoryBound(to: ASN1_BIT_STRING.self)) }),
            (NID_ext_key_usage, { EXTENDED_KEY_USAGE_free(OpaquePointer($0)) }),
        ]
        for extensionKind in wanted {
            var critical: Int32 = 0
            guard let value = X509_get_ext_d2i(x509, extensionKind.nid, &critical, nil) else { continue }
            defer { extensionKind.free(value) }
            guard X509V3_add1_i2d(&requested, extensionKind.nid, value, critical, UInt(X509V3_ADD_DEFAULT)) == 1 else {
                throw .openSSL(operation, "could not copy the certificate's extensions")
            }
        }
        if let requested, X509_REQ_add_extensions(request, requested) != 1 {
            throw .openSSL(operation, "could not add the requested extensions")
        }
        guard X509_REQ_sign(request, key.pkey, EVP_sha256()) > 0 else { throw .openSSL(operation, "signing failed") }
        return try encodeDER(operation) { i2d_X509_REQ(request, $0) }
    }
}
