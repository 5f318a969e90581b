internal import COpenSSL

/// An RSA or EC public key.
///
/// `@unchecked Sendable`: the EVP_PKEY is never modified after init, and OpenSSL 3 allows
/// concurrent verification with one EVP_PKEY (each call makes its own context).
public final class PublicKey: @unchecked Sendable, Equatable, Hashable {
    private let handle: KeyHandle
    public let algorithm: KeyAlgorithm
    let subjectPublicKeyInfo: [UInt8]

    var pkey: OpaquePointer { handle.pkey }

    /// Takes ownership of `pkey`, freeing it if the key is unusable.
    init(taking pkey: OpaquePointer, operation: String) throws(PKIError) {
        handle = KeyHandle(taking: pkey)
        algorithm = try KeyAlgorithm(of: pkey, operation: operation)
        subjectPublicKeyInfo = try encodeDER(operation) { i2d_PUBKEY(pkey, $0) }
    }

    /// A DER SubjectPublicKeyInfo, the body of a "PUBLIC KEY" PEM block.
    public convenience init(spkiDER: [UInt8]) throws(PKIError) {
        let operation = "read public key"
        guard let pkey = decodeDER(spkiDER, { d2i_PUBKEY(nil, $0, $1) }, free: { EVP_PKEY_free($0) }) else {
            throw .openSSL(operation, "the data is not a DER SubjectPublicKeyInfo")
        }
        try self.init(taking: pkey, operation: operation)
    }

    /// The first "PUBLIC KEY" (SubjectPublicKeyInfo) or "RSA PUBLIC KEY" (PKCS#1) block.
    public convenience init(pem: String) throws(PKIError) {
        let operation = "read public key PEM"
        guard let block = try PEM.decode(pem).first(where: { $0.label == "PUBLIC KEY" || $0.label == "RSA PUBLIC KEY" })
        else {
            throw PKIError(operation: operation, reason: "no PUBLIC KEY or RSA PUBLIC KEY block found")
        }
        if block.label == "PUBLIC KEY" {
            try self.init(spkiDER: block.der)
            return
        }
        guard let pkey = decodeDER(block.der, { d2i_PublicKey(EVP_PKEY_RSA, nil, $0, $1) }, free: { EVP_PKEY_free($0) })
        else {
            throw .openSSL(operation, "the RSA PUBLIC KEY block is not a PKCS#1 RSAPublicKey")
        }
        try self.init(taking: pkey, operation: operation)
    }

    /// An RSA ("RSA", "RSA-HSM": n, e) or EC ("EC", "EC-HSM": crv, x, y) JWK. Private members are ignored.
    public convenience init(jwk: JSONWebKey) throws(PKIError) {
        let operation = "read public key from JWK"
        let (builder, family) = try jwk.publicParameters(operation: operation)
        let pkey = try builder.makeKey(keyType: family.keyType, selection: copenssl_EVP_PKEY_PUBLIC_KEY)
        try self.init(taking: pkey, operation: operation)
    }

    public func spkiDER() throws(PKIError) -> [UInt8] {
        subjectPublicKeyInfo
    }

    /// "-----BEGIN PUBLIC KEY-----" PEM of the SubjectPublicKeyInfo.
    public func pem() throws(PKIError) -> String {
        PEM.encode(subjectPublicKeyInfo, label: "PUBLIC KEY")
    }

    /// RSA: kty "RSA", n, e. EC: kty "EC", crv, and x, y at the curve's full width.
    public func jwk() throws(PKIError) -> JSONWebKey {
        let operation = "export public key as JWK"
        switch algorithm {
        case .rsa:
            guard let n = bigNumberParameter(pkey, "n"), let e = bigNumberParameter(pkey, "e") else {
                throw .openSSL(operation, "could not read the RSA modulus and exponent")
            }
            return JSONWebKey(kty: "RSA", n: Base64URL.encode(n), e: Base64URL.encode(e))
        case .ec(let curve):
            let width = curve.coordinateByteCount
            guard let x = bigNumberParameter(pkey, "qx", width: width),
                let y = bigNumberParameter(pkey, "qy", width: width)
            else { throw .openSSL(operation, "could not read the EC public point") }
            return JSONWebKey(kty: "EC", crv: curve.rawValue, x: Base64URL.encode(x), y: Base64URL.encode(y))
        }
    }

    /// Whether `signature` is a valid `algorithm` signature of `message` by this key. ES
    /// signatures are in JOSE form (r || s). PS256 accepts any salt length, as most JOSE
    /// libraries do; the signer side always uses 32.
    public func verify(signature: [UInt8], message: [UInt8], algorithm: SignatureAlgorithm) -> Bool {
        defer { OpenSSLErrors.clear() }
        guard algorithm.accepts(self.algorithm) else { return false }
        var encodedSignature = signature
        if case .ec(let curve) = self.algorithm {
            guard let der = ECDSASignature.der(fromJOSE: signature, width: curve.coordinateByteCount) else {
                return false
            }
            encodedSignature = der
        }
        guard let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        var keyContext: OpaquePointer? = nil
        guard EVP_DigestVerifyInit_ex(context, &keyContext, algorithm.digestName.cString, nil, nil, pkey, nil) == 1
        else {
            return false
        }
        if algorithm == .ps256 {
            guard EVP_PKEY_CTX_set_rsa_padding(keyContext, RSA_PKCS1_PSS_PADDING) == 1,
                EVP_PKEY_CTX_set_rsa_pss_saltlen(keyContext, RSA_PSS_SALTLEN_AUTO) == 1
            else { return false }
        }
        return encodedSignature.withUnsafeBufferPointer { signatureBytes in
            message.withUnsafeBufferPointer { messageBytes in
                EVP_DigestVerify(
                    context, signatureBytes.baseAddress, signatureBytes.count,
                    messageBytes.baseAddress, messageBytes.count) == 1
            }
        }
    }

    public static func == (lhs: PublicKey, rhs: PublicKey) -> Bool {
        lhs.subjectPublicKeyInfo == rhs.subjectPublicKeyInfo
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(subjectPublicKeyInfo)
    }
}

/// EC public points as OpenSSL's "pub" parameter wants them.
enum ECPoint {
    /// 0x04 || x || y from a JWK's x and y, each left-padded to the curve's width.
    static func uncompressed(_ jwk: JSONWebKey, curve: ECCurve, operation: String) throws(PKIError) -> [UInt8] {
        let width = curve.coordinateByteCount
        let x = try jwk.bytes(\.x, named: "x", operation: operation)
        let y = try jwk.bytes(\.y, named: "y", operation: operation)
        guard x.count <= width, y.count <= width else {
            throw PKIError(
                operation: operation,
                reason: "JWK x or y is longer than a \(curve.rawValue) coordinate (\(width) bytes)")
        }
        return [0x04] + [UInt8](repeating: 0, count: width - x.count) + x
            + [UInt8](repeating: 0, count: width - y.count) + y
    }
}

/// ECDSA signatures: OpenSSL speaks DER (SEQUENCE of r and s), JOSE speaks r || s at fixed width.
enum ECDSASignature {
    static func jose(fromDER der: [UInt8], width: Int) -> [UInt8]? {
        guard let signature = decodeDER(der, { d2i_ECDSA_SIG(nil, $0, $1) }, free: { ECDSA_SIG_free($0) }) else {
            return nil
        }
        defer { ECDSA_SIG_free(signature) }
        var r: OpaquePointer? = nil
        var s: OpaquePointer? = nil
        ECDSA_SIG_get0(signature, &r, &s)
        guard let r, let s, let rBytes = bytes(of: r, width: width), let sBytes = bytes(of: s, width: width) else {
            return nil
        }
        return rBytes + sBytes
    }

    static func der(fromJOSE jose: [UInt8], width: Int) -> [UInt8]? {
        guard jose.count == 2 * width, let signature = ECDSA_SIG_new() else { return nil }
        defer { ECDSA_SIG_free(signature) }
        guard let r = bignum(from: Array(jose[..<width])) else { return nil }
        guard let s = bignum(from: Array(jose[width...])) else {
            BN_free(r)
            return nil
        }
        guard ECDSA_SIG_set0(signature, r, s) == 1 else {
            BN_free(r)
            BN_free(s)
            return nil
        }
        return try? encodeDER("encode ECDSA signature") { i2d_ECDSA_SIG(signature, $0) }
    }
}

extension JSONWebKey {
    /// A parameter builder holding this key's public members, which a public and a private key
    /// are both built from: RSA's n and e, or an EC key's curve and point.
    func publicParameters(operation: String) throws(PKIError) -> (builder: KeyParameterBuilder, family: Family) {
        let builder = try KeyParameterBuilder(operation: operation)
        let family = try Family(of: self, operation: operation)
        switch family {
        case .rsa:
            try builder.addBigNumber("n", bytes(\.n, named: "n", operation: operation))
            try builder.addBigNumber("e", bytes(\.e, named: "e", operation: operation))
        case .ec(let curve):
            try builder.addUTF8String("group", curve.openSSLGroupName.description)
            try builder.addOctetString("pub", ECPoint.uncompressed(self, curve: curve, operation: operation))
        }
        return (builder, family)
    }
}

extension JSONWebKey.Family {
    /// OpenSSL's name for the key type.
    var keyType: StaticString {
        switch self {
        case .rsa: "RSA"
        case .ec: "EC"
        }
    }
}
