internal import COpenSSL

public enum Digest {
    public static func sha1(_ bytes: [UInt8]) -> [UInt8] {
        hash(bytes, EVP_sha1(), length: 20)
    }

    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        hash(bytes, EVP_sha256(), length: 32)
    }

    /// HMAC-SHA-256 (RFC 2104): a fingerprint nobody can compute or check without `key`.
    public static func hmacSHA256(key: [UInt8], _ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var written = 0
        let ok = key.withUnsafeBytes { keyBytes in
            bytes.withUnsafeBytes { input in
                EVP_Q_mac(
                    nil, "HMAC", nil, "SHA256", nil, keyBytes.baseAddress, keyBytes.count,
                    input.baseAddress?.assumingMemoryBound(to: UInt8.self), input.count, &out, out.count, &written)
            }
        }
        // As for the digests: HMAC-SHA-256 is always in the default provider.
        precondition(ok != nil && written == 32, "OpenSSL HMAC failed: \(OpenSSLErrors.drain())")
        return out
    }

    private static func hash(_ bytes: [UInt8], _ md: OpaquePointer?, length: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var written: UInt32 = 0
        let ok = bytes.withUnsafeBytes { input in
            EVP_Digest(input.baseAddress, input.count, &out, &written, md, nil)
        }
        // SHA-1 and SHA-256 are always present in OpenSSL's default provider; failing here means
        // the library itself is broken and no result could be trusted.
        precondition(ok == 1 && Int(written) == length, "OpenSSL digest failed: \(OpenSSLErrors.drain())")
        return Array(out.prefix(length))
    }
}

public enum SecureRandom {
    public static func bytes(_ count: Int) -> [UInt8] {
        guard count > 0 else { return [] }
        var out = [UInt8](repeating: 0, count: count)
        if RAND_bytes(&out, Int32(count)) == 1 { return out }
        // OpenSSL's DRBG could not seed; the system generator (getrandom) is also cryptographically
        // secure, so fall back to it rather than fail.
        OpenSSLErrors.clear()
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }
}
