internal import COpenSSL

/// PKCS#12 (PFX) files as Key Vault stores certificate-backed secrets.
public enum PKCS12 {
    public struct Contents: Sendable {
        public var privateKeys: [PrivateKey]
        /// In the order the file stores them.
        public var certificates: [Certificate]

        public init(privateKeys: [PrivateKey], certificates: [Certificate]) {
            self.privateKeys = privateKeys
            self.certificates = certificates
        }
    }

    /// PBE iterations for the bags and for the MAC.
    static let iterations: Int32 = 2048

    /// A PFX that old decoders read: certificates (in the given order) in one safe and the key in
    /// a shrouded bag, both encrypted with pbeWithSHAAnd3-KeyTripleDES-CBC, and a SHA-1 MAC, all
    /// at 2048 iterations. That is what Go's golang.org/x/crypto/pkcs12 and `openssl pkcs12`
    /// (without -legacy) both open. The key and the certificate whose public key matches it share
    /// a localKeyID (the certificate's SHA-1 thumbprint) and carry `friendlyName` if given.
    ///
    /// An empty password is encoded as the empty BMPString (two zero bytes), which is what
    /// Windows, Go and `openssl -passin pass:` use for "no password".
    public static func create(
        privateKey: PrivateKey?, certificates: [Certificate], password: String = "",
        friendlyName: String? = nil
    ) throws(PKIError) -> [UInt8] {
        try create(
            privateKey: privateKey, certificates: certificates, passwordOrNone: password, friendlyName: friendlyName)
    }

    /// `passwordOrNone` nil writes a file with no password at all (the empty byte string rather
    /// than the empty BMPString), as some tools do; tests use it to check that `parse` opens both.
    static func create(
        privateKey: PrivateKey?, certificates: [Certificate], passwordOrNone password: String?,
        friendlyName: String?
    ) throws(PKIError) -> [UInt8] {
        let operation = "create PKCS#12"
        let cipher = NID_pbe_WithSHA1And3_Key_TripleDES_CBC
        var matchingCertificate: Int? = nil
        if let privateKey, !certificates.isEmpty {
            matchingCertificate = certificates.firstIndex { $0.publicKey == privateKey.publicKey }
            guard matchingCertificate != nil else {
                throw PKIError(
                    operation: operation, reason: "the private key does not belong to any of the certificates")
            }
        }
        let localKeyID =
            matchingCertificate.map { certificates[$0].sha1Thumbprint }
            ?? privateKey.map { Digest.sha1($0.publicKey.subjectPublicKeyInfo) }

        func label(_ bag: OpaquePointer) throws(PKIError) {
            if var localKeyID {
                guard PKCS12_add_localkeyid(bag, &localKeyID, Int32(localKeyID.count)) == 1 else {
                    throw .openSSL(operation, "could not add the localKeyID attribute")
                }
            }
            if let friendlyName {
                guard PKCS12_add_friendlyname_utf8(bag, friendlyName, Int32(friendlyName.utf8.count)) == 1 else {
                    throw .openSSL(operation, "could not add the friendlyName attribute")
                }
            }
        }

        var certificateBags: OpaquePointer? = nil
        defer { if let certificateBags { copenssl_sk_PKCS12_SAFEBAG_pop_free(certificateBags) } }
        for (index, certificate) in certificates.enumerated() {
            guard let bag = PKCS12_add_cert(&certificateBags, certificate.x509) else {
                throw .openSSL(operation, "could not add a certificate")
            }
            if index == matchingCertificate { try label(bag) }
        }

        var keyBags: OpaquePointer? = nil
        defer { if let keyBags { copenssl_sk_PKCS12_SAFEBAG_pop_free(keyBags) } }
        if let privateKey {
            guard let bag = PKCS12_add_key(&keyBags, privateKey.pkey, 0, iterations, cipher, password) else {
                throw .openSSL(operation, "could not add the private key")
            }
            try label(bag)
        }

        var safes: OpaquePointer? = nil
        defer { if let safes { copenssl_sk_PKCS7_pop_free(safes) } }
        if let certificateBags, PKCS12_add_safe(&safes, certificateBags, cipher, iterations, password) != 1 {
            throw .openSSL(operation, "could not encrypt the certificates")
        }
        // The key bag is already shrouded, so its safe is plain data, as OpenSSL and Windows do it.
        if let keyBags, PKCS12_add_safe(&safes, keyBags, -1, 0, nil) != 1 {
            throw .openSSL(operation, "could not add the key safe")
        }
        guard let safes else {
            throw PKIError(operation: operation, reason: "there is nothing to store: no key and no certificates")
        }
        guard let pfx = PKCS12_add_safes(safes, 0) else { throw .openSSL(operation, "could not assemble the file") }
        defer { PKCS12_free(pfx) }
        guard PKCS12_set_mac(pfx, password, -1, nil, 0, iterations, EVP_sha1()) == 1 else {
            throw .openSSL(operation, "could not compute the MAC")
        }
        return try encodeDER(operation) { i2d_PKCS12(pfx, $0) }
    }

    /// Reads every key and certificate in a PFX, modern (PBES2/AES, SHA-256 MAC) or legacy
    /// (3DES or RC2-40, SHA-1 MAC). A blank password opens files made with "" as well as files
    /// made with no password at all, which differ on the wire.
    public static func parse(_ der: [UInt8], password: String = "") throws(PKIError) -> Contents {
        let operation = "read PKCS#12"
        _ = LegacyProvider.isLoaded
        guard let pfx = decodeDER(der, { d2i_PKCS12(nil, $0, $1) }, free: { PKCS12_free($0) }) else {
            throw .openSSL(operation, "the data is not a DER PKCS#12 (PFX) file")
        }
        defer { PKCS12_free(pfx) }

        // nil is "no password" (no bytes), "" is the empty BMPString (two zero bytes).
        var candidates: [String?] = password.isEmpty ? ["", nil] : [password]
        if PKCS12_mac_present(pfx) == 1 {
            candidates = candidates.filter { candidate in
                PKCS12_verify_mac(pfx, candidate, candidate == nil ? 0 : -1) == 1
            }
            guard !candidates.isEmpty else {
                throw .openSSL(
                    operation,
                    password.isEmpty
                        ? "the MAC does not verify with a blank password; the file needs a password (or is damaged)"
                        : "the MAC does not verify; the password is wrong (or the file is damaged)")
            }
            OpenSSLErrors.clear()
        }
        var lastError = PKIError(operation: operation, reason: "no password could decrypt the file")
        for candidate in candidates {
            do throws(PKIError) {
                return try readContents(pfx, password: candidate, operation: operation)
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    private static func readContents(_ pfx: OpaquePointer, password: String?, operation: String) throws(PKIError)
        -> Contents
    {
        guard let authenticatedSafes = PKCS12_unpack_authsafes(pfx) else {
            throw .openSSL(operation, "could not read the file's contents")
        }
        defer { copenssl_sk_PKCS7_pop_free(authenticatedSafes) }
        var contents = Contents(privateKeys: [], certificates: [])
        for index in 0..<copenssl_sk_PKCS7_num(authenticatedSafes) {
            guard let safe = copenssl_sk_PKCS7_value(authenticatedSafes, index) else { continue }
            let bags: OpaquePointer?
            switch OBJ_obj2nid(safe.pointee.type) {
            case NID_pkcs7_data:
                bags = PKCS12_unpack_p7data(safe)
            case NID_pkcs7_encrypted:
                bags = PKCS12_unpack_p7encdata(safe, password, password == nil ? 0 : -1)
                if bags == nil {
                    throw .openSSL(
                        operation,
                        "could not decrypt the certificates; the password is wrong or the cipher is not available")
                }
            default:
                continue  // Public-key-enveloped safes need the recipient's key; Key Vault never makes them.
            }
            guard let bags else { throw .openSSL(operation, "could not read a safe") }
            defer { copenssl_sk_PKCS12_SAFEBAG_pop_free(bags) }
            try collect(bags, password: password, into: &contents, operation: operation)
        }
        return contents
    }

    private static func collect(
        _ bags: OpaquePointer, password: String?, into contents: inout Contents,
        operation: String
    ) throws(PKIError) {
        for index in 0..<copenssl_sk_PKCS12_SAFEBAG_num(bags) {
            guard let bag = copenssl_sk_PKCS12_SAFEBAG_value(bags, index) else { continue }
            switch PKCS12_SAFEBAG_get_nid(bag) {
            case NID_keyBag:
                guard let info = PKCS12_SAFEBAG_get0_p8inf(bag), let pkey = EVP_PKCS82PKEY(info) else {
                    throw .openSSL(operation, "could not read a key bag")
                }
                contents.privateKeys.append(try PrivateKey(taking: pkey, operation: operation))
            case NID_pkcs8ShroudedKeyBag:
                guard let info = PKCS12_decrypt_skey(bag, password, password == nil ? 0 : -1) else {
                    throw .openSSL(
                        operation,
                        "could not decrypt the private key; the password is wrong or the cipher is not available")
                }
                defer { PKCS8_PRIV_KEY_INFO_free(info) }
                guard let pkey = EVP_PKCS82PKEY(info) else {
                    throw .openSSL(operation, "could not read the decrypted private key")
                }
                contents.privateKeys.append(try PrivateKey(taking: pkey, operation: operation))
            case NID_certBag:
                guard PKCS12_SAFEBAG_get_bag_nid(bag) == NID_x509Certificate else { continue }  // SDSI certificates
                guard let x509 = PKCS12_SAFEBAG_get1_cert(bag) else {
                    throw .openSSL(operation, "could not read a certificate bag")
                }
                defer { X509_free(x509) }
                let der = try encodeDER(operation) { i2d_X509(x509, $0) }
                contents.certificates.append(try Certificate(der: der))
            case NID_safeContentsBag:
                if let nested = PKCS12_SAFEBAG_get0_safes(bag) {
                    try collect(nested, password: password, into: &contents, operation: operation)
                }
            default:
                continue  // CRL and secret bags
            }
        }
    }
}

/// OpenSSL 3 keeps RC2 and other pre-2010 ciphers, which older PFX files use, in its "legacy"
/// provider. It is loaded once, best effort; `retain_fallbacks` keeps the default provider.
enum LegacyProvider {
    static let isLoaded: Bool = {
        let provider = OSSL_PROVIDER_try_load(nil, "legacy", 1)
        OpenSSLErrors.clear()
        return provider != nil  // Never unloaded: it serves the whole process.
    }()
}
