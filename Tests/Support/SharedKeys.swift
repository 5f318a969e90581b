import PKI

/// Keys generated once and shared, because RSA generation dominates the run time of the suites
/// that need some key. Generation itself is tested separately for every size and curve.
public enum SharedKeys {
    public static let rsa2048 = Result { () throws(PKIError) in try PrivateKey.generate(.rsa(bits: 2048)) }
    public static let p256 = Result { () throws(PKIError) in try PrivateKey.generate(.ec(.p256)) }
    public static let p384 = Result { () throws(PKIError) in try PrivateKey.generate(.ec(.p384)) }
    public static let p521 = Result { () throws(PKIError) in try PrivateKey.generate(.ec(.p521)) }

    public static func key(for algorithm: SignatureAlgorithm) throws -> PrivateKey {
        switch algorithm {
        case .rs256, .ps256: try rsa2048.get()
        case .es256: try p256.get()
        case .es384: try p384.get()
        case .es512: try p521.get()
        }
    }
}
