internal import COpenSSL

/// An RSA or EC private key.
///
/// `@unchecked Sendable`: the EVP_PKEY is never modified after init, and OpenSSL 3 allows
/// concurrent signing and export with one EVP_PKEY (each call makes its own context).
public final class PrivateKey: @unchecked Sendable {
    private let handle: KeyHandle
    public let algorithm: KeyAlgorithm
    public let publicKey: PublicKey

    var pkey: OpaquePointer { handle.pkey }

    /// Takes ownership of `pkey`, freeing it if the key is unusable.
    init(taking pkey: OpaquePointer, operation: String) throws(PKIError) {
        handle = KeyHandle(taking: pkey)
        algorithm = try KeyAlgorithm(of: pkey, operation: operation)
        publicKey = try PublicKey(spkiDER: encodeDER(operation) { i2d_PUBKEY(pkey, $0) })
    }

    /// A new key: RSA with 2048 to 8192 bits (a multiple of 8; Key Vault uses 2048, 3072 and
    /// 4096), or EC on P-256, P-384 or P-521.
    public static func generate(_ algorithm: KeyAlgorithm) throws(PKIError) -> PrivateKey {
        let operation = "generate \(algorithm) key"
        let keyType: StaticString
        switch algorithm {
        case .rsa(let bits):
            guard (2048...8192).contains(bits), bits % 8 == 0 else {
                throw PKIError(
                    operation: operation,
                    reason: "RSA keys must have 2048 to 8192 bits in steps of 8 (Key Vault uses 2048, 3072 or 4096)")
            }
            keyType = "RSA"
        case .ec:
            keyType = "EC"
        }
        guard let context = EVP_PKEY_CTX_new_from_name(nil, keyType.cString, nil) else {
            throw .openSSL(operation, "OpenSSL has no \(keyType) implementation")
        }
        defer { EVP_PKEY_CTX_free(context) }
        guard EVP_PKEY_keygen_init(context) == 1 else { throw .openSSL(operation, "could not start key generation") }
        switch algorithm {
        case .rsa(let bits):
            guard EVP_PKEY_CTX_set_rsa_keygen_bits(context, Int32(bits)) == 1 else {
                throw .openSSL(operation, "could not set the RSA key size")
            }
        case .ec(let curve):
            guard EVP_PKEY_CTX_set_group_name(context, curve.openSSLGroupName.cString) == 1 else {
                throw .openSSL(operation, "could not select the curve")
            }
        }
        var pkey: OpaquePointer? = nil
        guard EVP_PKEY_generate(context, &pkey) == 1, let pkey else {
            throw .openSSL(operation, "key generation failed")
        }
        return try PrivateKey(taking: pkey, operation: operation)
    }

    /// The first private key block in `pem`: "PRIVATE KEY" (PKCS#8), "RSA PRIVATE KEY" (PKCS#1),
    /// "EC PRIVATE KEY" (SEC1) or "ENCRYPTED PRIVATE KEY" (PKCS#8, needs `password`). OpenSSL's
    /// traditional encrypted blocks ("Proc-Type: 4,ENCRYPTED") work too. Other blocks, such as
    /// certificates or "EC PARAMETERS", are skipped.
    public convenience init(pem: String, password: String? = nil) throws(PKIError) {
        let operation = "read private key PEM"
        let keyLabels: Set = ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY"]
        guard let block = try PEM.scan(pem).first(where: { keyLabels.contains($0.label) }) else {
            throw PKIError(
                operation: operation,
                reason: "no PRIVATE KEY, RSA PRIVATE KEY, EC PRIVATE KEY or ENCRYPTED PRIVATE KEY block found")
        }
        let encrypted = block.label == "ENCRYPTED PRIVATE KEY" || block.isLegacyEncrypted
        if encrypted && password == nil {
            throw PKIError(
                operation: operation, reason: "the private key is encrypted; a password is needed to read it")
        }
        let pkey: OpaquePointer?
        if block.isLegacyEncrypted {
            // The cipher and IV are in the block's headers, so OpenSSL must see the PEM text itself.
            pkey = PrivateKeyDecoder.decode(Array(block.text.utf8), inputType: "PEM", password: password)
        } else {
            pkey = PrivateKeyDecoder.decode(block.der, inputType: "DER", password: encrypted ? password : nil)
        }
        guard let pkey else {
            if encrypted {
                throw .openSSL(operation, "could not decrypt the \(block.label) block; check the password")
            }
            throw .openSSL(operation, "the \(block.label) block does not hold a valid private key")
        }
        try self.init(taking: pkey, operation: operation)
    }

    /// An unencrypted PKCS#8 PrivateKeyInfo, PKCS#1 RSAPrivateKey or SEC1 ECPrivateKey in DER.
    public convenience init(der: [UInt8]) throws(PKIError) {
        let operation = "read private key"
        guard let pkey = PrivateKeyDecoder.decode(der, inputType: "DER", password: nil) else {
            throw .openSSL(operation, "the data is not a DER PKCS#8, PKCS#1 or SEC1 private key")
        }
        try self.init(taking: pkey, operation: operation)
    }

    /// A private JWK: RSA needs n, e, d, p, q, dp, dq and qi; EC needs crv, x, y and d. The key
    /// is checked for consistency (the private part must match the public part).
    public convenience init(jwk: JSONWebKey) throws(PKIError) {
        let operation = "read private key from JWK"
        let (builder, family) = try jwk.publicParameters(operation: operation)
        switch family {
        case .rsa:
            let members: [(KeyPath<JSONWebKey, String?>, String, String)] = [
                (\.d, "d", "d"), (\.p, "p", "rsa-factor1"), (\.q, "q", "rsa-factor2"),
                (\.dp, "dp", "rsa-exponent1"), (\.dq, "dq", "rsa-exponent2"), (\.qi, "qi", "rsa-coefficient1"),
            ]
            for (member, name, parameter) in members {
                try builder.addBigNumber(parameter, jwk.bytes(member, named: name, operation: operation))
            }
        case .ec(let curve):
            let d = try jwk.bytes(\.d, named: "d", operation: operation)
            guard d.count <= curve.coordinateByteCount else {
                throw PKIError(operation: operation, reason: "JWK d is longer than a \(curve.rawValue) private key")
            }
            try builder.addBigNumber("priv", d)
        }
        let pkey = try builder.makeKey(keyType: family.keyType, selection: copenssl_EVP_PKEY_KEYPAIR)
        guard let checkContext = EVP_PKEY_CTX_new_from_pkey(nil, pkey, nil) else {
            EVP_PKEY_free(pkey)
            throw .openSSL(operation, "out of memory")
        }
        defer { EVP_PKEY_CTX_free(checkContext) }
        guard EVP_PKEY_pairwise_check(checkContext) == 1 else {
            EVP_PKEY_free(pkey)
            throw .openSSL(operation, "the JWK's private members do not match its public members")
        }
        try self.init(taking: pkey, operation: operation)
    }

    /// The key in its algorithm's own format, as `openssl pkey -traditional` and Go's
    /// `x509.MarshalPKCS1PrivateKey`/`MarshalECPrivateKey` write it: a PKCS#1 RSAPrivateKey
    /// ("RSA PRIVATE KEY"), or a SEC1 ECPrivateKey with its named curve and public key ("EC PRIVATE KEY").
    public func traditionalPEM() throws(PKIError) -> String {
        let der = try encodeDER("export private key in its traditional format") { i2d_PrivateKey(pkey, $0) }
        switch algorithm {
        case .rsa: return PEM.encode(der, label: "RSA PRIVATE KEY")
        case .ec: return PEM.encode(der, label: "EC PRIVATE KEY")
        }
    }

    /// Unencrypted PKCS#8 PrivateKeyInfo DER.
    public func pkcs8DER() throws(PKIError) -> [UInt8] {
        let operation = "export private key as PKCS#8"
        guard let info = EVP_PKEY2PKCS8(pkey) else { throw .openSSL(operation, "could not convert the key") }
        defer { PKCS8_PRIV_KEY_INFO_free(info) }
        return try encodeDER(operation) { i2d_PKCS8_PRIV_KEY_INFO(info, $0) }
    }

    /// "-----BEGIN PRIVATE KEY-----" PEM of the unencrypted PKCS#8 form.
    public func pkcs8PEM() throws(PKIError) -> String {
        PEM.encode(try pkcs8DER(), label: "PRIVATE KEY")
    }

    /// The public JWK, plus the private members when `includePrivate` (RSA: d, p, q, dp, dq, qi;
    /// EC: d at the curve's full width).
    public func jwk(includePrivate: Bool) throws(PKIError) -> JSONWebKey {
        var key = try publicKey.jwk()
        guard includePrivate else { return key }
        let operation = "export private key as JWK"
        func member(_ name: String, width: Int? = nil) throws(PKIError) -> String {
            guard let value = bigNumberParameter(pkey, name, width: width) else {
                throw .openSSL(operation, "could not read the key's private parameters")
            }
            return Base64URL.encode(value)
        }
        switch algorithm {
        case .rsa:
            key.d = try member("d")
            key.p = try member("rsa-factor1")
            key.q = try member("rsa-factor2")
            key.dp = try member("rsa-exponent1")
            key.dq = try member("rsa-exponent2")
            key.qi = try member("rsa-coefficient1")
        case .ec(let curve):
            key.d = try member("priv", width: curve.coordinateByteCount)
        }
        return key
    }

    /// Signs `message` (it is hashed here). RS256 is PKCS#1 v1.5, PS256 is PSS with MGF1-SHA256
    /// and a 32-byte salt, ES* signatures come back in JOSE form (r || s at the curve's width).
    public func sign(_ message: [UInt8], algorithm: SignatureAlgorithm) throws(PKIError) -> [UInt8] {
        let operation = "sign with \(algorithm.rawValue)"
        guard algorithm.accepts(self.algorithm) else {
            throw PKIError(
                operation: operation,
                reason: "\(algorithm.rawValue) needs \(algorithm.keyRequirement), but this is an \(self.algorithm) key")
        }
        guard let context = EVP_MD_CTX_new() else { throw .openSSL(operation, "out of memory") }
        defer { EVP_MD_CTX_free(context) }
        var keyContext: OpaquePointer? = nil
        guard EVP_DigestSignInit_ex(context, &keyContext, algorithm.digestName.cString, nil, nil, pkey, nil) == 1 else {
            throw .openSSL(operation, "could not start signing")
        }
        if algorithm == .ps256 {
            guard EVP_PKEY_CTX_set_rsa_padding(keyContext, RSA_PKCS1_PSS_PADDING) == 1,
                EVP_PKEY_CTX_set_rsa_pss_saltlen(keyContext, 32) == 1
            else { throw .openSSL(operation, "could not select PSS padding") }
        }
        var length = 0
        var signature: [UInt8] = []
        let ok = message.withUnsafeBufferPointer { messageBytes -> Bool in
            guard EVP_DigestSign(context, nil, &length, messageBytes.baseAddress, messageBytes.count) == 1 else {
                return false
            }
            signature = [UInt8](repeating: 0, count: length)
            return EVP_DigestSign(context, &signature, &length, messageBytes.baseAddress, messageBytes.count) == 1
        }
        guard ok else { throw .openSSL(operation, "signing failed") }
        signature.removeLast(signature.count - length)
        guard case .ec(let curve) = self.algorithm else { return signature }
        guard let jose = ECDSASignature.jose(fromDER: signature, width: curve.coordinateByteCount) else {
            throw .openSSL(operation, "could not convert the ECDSA signature to JOSE form")
        }
        return jose
    }
}

/// Private keys through OpenSSL 3's decoder, which recognises PKCS#8 (plain and encrypted),
/// PKCS#1 and SEC1 without being told which.
enum PrivateKeyDecoder {
    static func decode(_ input: [UInt8], inputType: StaticString, password: String?) -> OpaquePointer? {
        // The decoder writes its result through this pointer during OSSL_DECODER_from_data, long
        // after OSSL_DECODER_CTX_new_for_pkey returns, so it needs a stable address.
        let result = UnsafeMutablePointer<OpaquePointer?>.allocate(capacity: 1)
        result.initialize(to: nil)
        defer { result.deallocate() }
        // Selecting only the private half stops a public key from being accepted as a private one.
        guard
            let context = OSSL_DECODER_CTX_new_for_pkey(
                result, inputType.cString, nil, nil, Int32(OSSL_KEYMGMT_SELECT_PRIVATE_KEY), nil, nil)
        else { return nil }
        defer { OSSL_DECODER_CTX_free(context) }
        if let password {
            // OpenSSL copies the passphrase. Setting one (even empty) also means it never falls
            // back to prompting on a terminal.
            // The trailing NUL is not part of the passphrase; it keeps the pointer non-nil for
            // an empty password, which OpenSSL would otherwise reject.
            let ok = (Array(password.utf8) + [0]).withUnsafeBufferPointer {
                OSSL_DECODER_CTX_set_passphrase(context, $0.baseAddress, $0.count - 1)
            }
            guard ok == 1 else { return nil }
        }
        let decoded = input.withUnsafeBufferPointer { buffer -> Bool in
            var cursor = buffer.baseAddress
            var remaining = buffer.count
            return OSSL_DECODER_from_data(context, &cursor, &remaining) == 1
        }
        guard decoded, let pkey = result.pointee else {
            if let pkey = result.pointee { EVP_PKEY_free(pkey) }
            return nil
        }
        // Decoders that were tried and did not match may have queued errors.
        OpenSSLErrors.clear()
        return pkey
    }
}
