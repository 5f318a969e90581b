internal import COpenSSL

#if canImport(Glibc)
    internal import Glibc
#elseif canImport(Musl)
    internal import Musl
#endif

// Small bridges between Swift values and OpenSSL's calling conventions.

extension StaticString {
    /// Some OpenSSL calls keep a name argument by pointer beyond the call (EVP_PKEY_CTX_new_from_name
    /// keeps the key type, OSSL_DECODER_CTX keeps the input type). A Swift string bridged to
    /// `const char *` is only valid during the call; a multi-character StaticString literal is
    /// static, NUL-terminated storage.
    var cString: UnsafePointer<CChar> {
        precondition(hasPointerRepresentation, "single-scalar StaticString has no C string")
        return UnsafeRawPointer(utf8Start).assumingMemoryBound(to: CChar.self)
    }
}

/// Serializes with an OpenSSL `i2d_*` function: one call measures, the second writes.
func encodeDER(
    _ operation: String,
    _ i2d: (UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?) -> Int32
) throws(PKIError) -> [UInt8] {
    let length = i2d(nil)
    guard length > 0 else { throw .openSSL(operation, "could not encode to DER") }
    var bytes = [UInt8](repeating: 0, count: Int(length))
    let written = bytes.withUnsafeMutableBufferPointer { buffer in
        var cursor = buffer.baseAddress
        return i2d(&cursor)
    }
    guard written == length else { throw .openSSL(operation, "could not encode to DER") }
    return bytes
}

/// Parses with an OpenSSL `d2i_*` function and insists the object uses every byte, so trailing
/// garbage is an error rather than silently ignored. Returns nil when OpenSSL fails or bytes are
/// left over (freeing the object with `free` then).
func decodeDER(
    _ der: [UInt8],
    _ d2i: (UnsafeMutablePointer<UnsafePointer<UInt8>?>, Int) -> OpaquePointer?,
    free: (OpaquePointer) -> Void
) -> OpaquePointer? {
    der.withUnsafeBufferPointer { buffer -> OpaquePointer? in
        guard let start = buffer.baseAddress else { return nil }
        var cursor: UnsafePointer<UInt8>? = start
        guard let object = d2i(&cursor, buffer.count) else { return nil }
        guard let end = cursor, end - start == buffer.count else {
            free(object)
            return nil
        }
        return object
    }
}

/// Runs `body` with an empty memory BIO and returns what it wrote, or nil if `body` failed.
func writeToMemoryBIO(_ body: (OpaquePointer) -> Bool) -> [UInt8]? {
    guard let bio = BIO_new(BIO_s_mem()) else { return nil }
    defer { BIO_free(bio) }
    guard body(bio) else { return nil }
    var data: UnsafeMutablePointer<CChar>? = nil
    let count = copenssl_BIO_get_mem_data(bio, &data)
    guard count > 0, let data else { return [] }
    return data.withMemoryRebound(to: UInt8.self, capacity: count) {
        Array(UnsafeBufferPointer(start: $0, count: count))
    }
}

/// Big-endian unsigned bytes of a BIGNUM, left-padded with zeros to `width` when given.
func bytes(of bignum: OpaquePointer, width: Int? = nil) -> [UInt8]? {
    let minimal = (Int(BN_num_bits(bignum)) + 7) / 8
    let count = width ?? max(minimal, 1)
    guard minimal <= count else { return nil }
    var out = [UInt8](repeating: 0, count: count)
    let written = out.withUnsafeMutableBufferPointer { BN_bn2binpad(bignum, $0.baseAddress, Int32(count)) }
    return written == Int32(count) ? out : nil
}

/// A BIGNUM from big-endian unsigned bytes; the caller frees it.
func bignum(from bytes: [UInt8]) -> OpaquePointer? {
    bytes.withUnsafeBufferPointer { BN_bin2bn($0.baseAddress, Int32($0.count), nil) }
}

/// Reads a big-number parameter of a key ("n", "e", "d", "priv", "qx", ...).
func bigNumberParameter(_ pkey: OpaquePointer, _ name: String, width: Int? = nil) -> [UInt8]? {
    var value: OpaquePointer? = nil
    guard EVP_PKEY_get_bn_param(pkey, name, &value) == 1, let value else { return nil }
    defer { BN_clear_free(value) }
    return bytes(of: value, width: width)
}

/// Owns an EVP_PKEY for a `PublicKey` or `PrivateKey`. Stored first in their inits, it also frees
/// the key when a later step of the init throws (Swift releases the properties set so far).
final class KeyHandle {
    let pkey: OpaquePointer

    init(taking pkey: OpaquePointer) {
        self.pkey = pkey
    }

    deinit {
        EVP_PKEY_free(pkey)
    }
}

/// Collects OSSL_PARAMs for EVP_PKEY_fromdata. OSSL_PARAM_BLD keeps key names and values by
/// pointer until the parameters are used, so this owns C copies of all of them until it dies.
final class KeyParameterBuilder {
    private let builder: OpaquePointer
    private var strings: [UnsafeMutablePointer<CChar>] = []
    private var bignums: [OpaquePointer] = []
    private let operation: String

    init(operation: String) throws(PKIError) {
        guard let builder = OSSL_PARAM_BLD_new() else { throw .openSSL(operation, "out of memory") }
        self.builder = builder
        self.operation = operation
    }

    deinit {
        OSSL_PARAM_BLD_free(builder)
        for bignum in bignums { BN_clear_free(bignum) }
        for string in strings { free(string) }
    }

    private func ownedCString(_ text: String) throws(PKIError) -> UnsafeMutablePointer<CChar> {
        guard let copy = strdup(text) else { throw .openSSL(operation, "out of memory") }
        strings.append(copy)
        return copy
    }

    func addBigNumber(_ name: String, _ value: [UInt8]) throws(PKIError) {
        let key = try ownedCString(name)
        guard let number = bignum(from: value) else { throw .openSSL(operation, "out of memory") }
        bignums.append(number)
        guard OSSL_PARAM_BLD_push_BN(builder, key, number) == 1 else {
            throw .openSSL(operation, "could not set key parameter '\(name)'")
        }
    }

    func addUTF8String(_ name: String, _ value: String) throws(PKIError) {
        let key = try ownedCString(name)
        let text = try ownedCString(value)
        guard OSSL_PARAM_BLD_push_utf8_string(builder, key, text, 0) == 1 else {
            throw .openSSL(operation, "could not set key parameter '\(name)'")
        }
    }

    func addOctetString(_ name: String, _ value: [UInt8]) throws(PKIError) {
        let key = try ownedCString(name)
        // Held as a C string allocation so it lives as long as the builder; the length is explicit.
        guard let copy = malloc(max(value.count, 1))?.assumingMemoryBound(to: CChar.self) else {
            throw .openSSL(operation, "out of memory")
        }
        strings.append(copy)
        value.withUnsafeBytes { source in
            if let base = source.baseAddress {
                UnsafeMutableRawPointer(copy).copyMemory(from: base, byteCount: source.count)
            }
        }
        guard OSSL_PARAM_BLD_push_octet_string(builder, key, copy, value.count) == 1 else {
            throw .openSSL(operation, "could not set key parameter '\(name)'")
        }
    }

    /// Builds a key of `keyType` ("RSA" or "EC") from the collected parameters.
    func makeKey(keyType: StaticString, selection: Int32) throws(PKIError) -> OpaquePointer {
        guard let params = OSSL_PARAM_BLD_to_param(builder) else { throw .openSSL(operation, "out of memory") }
        defer { OSSL_PARAM_free(params) }
        guard let context = EVP_PKEY_CTX_new_from_name(nil, keyType.cString, nil) else {
            throw .openSSL(operation, "OpenSSL has no \(keyType) implementation")
        }
        defer { EVP_PKEY_CTX_free(context) }
        var pkey: OpaquePointer? = nil
        guard EVP_PKEY_fromdata_init(context) == 1,
            EVP_PKEY_fromdata(context, &pkey, selection, params) == 1,
            let pkey
        else { throw .openSSL(operation, "the key parameters do not form a valid \(keyType) key") }
        return pkey
    }
}
