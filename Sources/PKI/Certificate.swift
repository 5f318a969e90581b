internal import COpenSSL
import FoundationEssentials

#if canImport(Glibc)
    internal import Glibc
#elseif canImport(Musl)
    internal import Musl
#endif

public enum SubjectAlternativeName: Sendable, Hashable {
    case dns(String)
    /// Textual IPv4 ("127.0.0.1") or IPv6 ("::1") address.
    case ipAddress(String)
    case email(String)
    case uri(String)
}

/// X.509 key usages (RFC 5280 section 4.2.1.3); raw values are also OpenSSL's names.
public enum KeyUsage: String, Sendable, CaseIterable, Codable {
    case digitalSignature, nonRepudiation, keyEncipherment, dataEncipherment, keyAgreement
    case keyCertSign, cRLSign, encipherOnly, decipherOnly

    /// The bit's position in the KeyUsage BIT STRING.
    var bit: Int32 {
        switch self {
        case .digitalSignature: 0
        case .nonRepudiation: 1
        case .keyEncipherment: 2
        case .dataEncipherment: 3
        case .keyAgreement: 4
        case .keyCertSign: 5
        case .cRLSign: 6
        case .encipherOnly: 7
        case .decipherOnly: 8
        }
    }
}

/// An X.509 certificate. Everything it reports is read once, at init.
///
/// `@unchecked Sendable`: the X509 is never modified after init and is only used afterwards for
/// signature checks, which OpenSSL 3 allows from several threads at once.
public final class Certificate: @unchecked Sendable, Equatable, Hashable {
    let x509: OpaquePointer
    public let der: [UInt8]
    /// RFC 2253 form, most specific first: "CN=leaf,O=Example". Non-ASCII stays UTF-8.
    public let subject: String
    public let issuer: String
    /// Uppercase hex of the serial number's magnitude, e.g. "0A1B"; "-" prefixed if negative.
    public let serialNumberHex: String
    public let notBefore: Date
    public let notAfter: Date
    public let subjectKeyIdentifier: [UInt8]?
    /// The keyIdentifier field of the authority key identifier extension.
    public let authorityKeyIdentifier: [UInt8]?
    /// Whether basic constraints say CA:TRUE.
    public let isCertificateAuthority: Bool
    /// DNS, IP, email and URI names, in the order of the extension; other name forms are skipped.
    public let subjectAlternativeNames: [SubjectAlternativeName]
    /// The key usage extension's bits, in declaration order; empty without the extension.
    public let keyUsage: [KeyUsage]
    /// The extended key usage extension's purposes as dotted OIDs, in order; empty without it.
    public let extendedKeyUsage: [String]
    public let publicKey: PublicKey

    /// Takes ownership of `x509` (parsed from `der`), freeing it if the certificate is unusable.
    init(taking x509: OpaquePointer, der: [UInt8], operation: String) throws(PKIError) {
        do throws(PKIError) {
            let keyInfo = try encodeDER(operation) { i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x509), $0) }
            publicKey = try PublicKey(spkiDER: keyInfo)
            notBefore = try Self.date(X509_get0_notBefore(x509), field: "notBefore", operation: operation)
            notAfter = try Self.date(X509_get0_notAfter(x509), field: "notAfter", operation: operation)
        } catch {
            X509_free(x509)
            throw error
        }
        self.x509 = x509
        self.der = der
        subject = Self.rfc2253(X509_get_subject_name(x509))
        issuer = Self.rfc2253(X509_get_issuer_name(x509))
        serialNumberHex = Self.hex(X509_get0_serialNumber(x509))
        subjectKeyIdentifier = X509_get0_subject_key_id(x509).map { Self.bytes(of: $0) }
        authorityKeyIdentifier = X509_get0_authority_key_id(x509).map { Self.bytes(of: $0) }
        isCertificateAuthority = X509_get_extension_flags(x509) & UInt32(EXFLAG_CA) != 0
        subjectAlternativeNames = Self.alternativeNames(x509)
        keyUsage = Self.keyUsage(x509)
        extendedKeyUsage = Self.extendedKeyUsage(x509)
        // Reading extensions of a certificate with malformed ones leaves errors queued; the
        // fields above simply come out empty then.
        OpenSSLErrors.clear()
    }

    deinit {
        X509_free(x509)
    }

    public convenience init(der: [UInt8]) throws(PKIError) {
        let operation = "read certificate"
        guard let x509 = decodeDER(der, { d2i_X509(nil, $0, $1) }, free: { X509_free($0) }) else {
            throw .openSSL(operation, "the data is not a DER X.509 certificate")
        }
        try self.init(taking: x509, der: der, operation: operation)
    }

    /// The first CERTIFICATE block in `pem`.
    public convenience init(pem: String) throws(PKIError) {
        guard let block = try PEM.decode(pem).first(where: { $0.label == "CERTIFICATE" }) else {
            throw PKIError(operation: "read certificate PEM", reason: "no CERTIFICATE block found")
        }
        try self.init(der: block.der)
    }

    /// Every CERTIFICATE block in `pem`, in order; other blocks are skipped.
    public static func all(fromPEM pem: String) throws(PKIError) -> [Certificate] {
        var certificates: [Certificate] = []
        for block in try PEM.decode(pem) where block.label == "CERTIFICATE" {
            certificates.append(try Certificate(der: block.der))
        }
        return certificates
    }

    public func pem() -> String {
        PEM.encode(der, label: "CERTIFICATE")
    }

    public var sha1Thumbprint: [UInt8] { Digest.sha1(der) }
    public var sha256Thumbprint: [UInt8] { Digest.sha256(der) }

    /// Whether `issuer`'s public key verifies this certificate's signature.
    public func isIssued(by issuer: Certificate) -> Bool {
        defer { OpenSSLErrors.clear() }
        return X509_verify(x509, issuer.publicKey.pkey) == 1
    }

    public static func == (lhs: Certificate, rhs: Certificate) -> Bool {
        lhs.der == rhs.der
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(der)
    }

    // MARK: Reading fields

    static func rfc2253(_ name: OpaquePointer?) -> String {
        guard let name else { return "" }
        // OpenSSL's RFC 2253 flags, minus the one that would escape UTF-8 bytes as \XX.
        let flags = copenssl_XN_FLAG_RFC2253 & ~UInt(ASN1_STRFLGS_ESC_MSB)
        let text = writeToMemoryBIO { X509_NAME_print_ex($0, name, 0, flags) >= 0 } ?? []
        return String(decoding: text, as: UTF8.self)
    }

    private static func bytes(of string: UnsafePointer<ASN1_STRING>) -> [UInt8] {
        let count = Int(ASN1_STRING_length(string))
        guard count > 0, let data = ASN1_STRING_get0_data(string) else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: count))
    }

    private static func hex(_ serial: UnsafePointer<ASN1_INTEGER>?) -> String {
        guard let serial else { return "" }
        let magnitude = bytes(of: serial)
        let digits = magnitude.isEmpty ? "00" : magnitude.map { hexByte($0) }.joined()
        return ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER ? "-" + digits : digits
    }

    private static func hexByte(_ byte: UInt8) -> String {
        let symbols = Array("0123456789ABCDEF")
        return String([symbols[Int(byte >> 4)], symbols[Int(byte & 0x0F)]])
    }

    private static func date(_ time: UnsafePointer<ASN1_TIME>?, field: String, operation: String) throws(PKIError)
        -> Date
    {
        var parts = tm()
        guard let time, ASN1_TIME_to_tm(time, &parts) == 1 else {
            throw .openSSL(operation, "the certificate's \(field) time is malformed")
        }
        return Date(timeIntervalSince1970: TimeInterval(timegm(&parts)))
    }

    private static func keyUsage(_ x509: OpaquePointer) -> [KeyUsage] {
        guard X509_get_extension_flags(x509) & UInt32(EXFLAG_KUSAGE) != 0 else { return [] }
        let bits = X509_get_key_usage(x509)
        let flags: [(KeyUsage, Int32)] = [
            (.digitalSignature, KU_DIGITAL_SIGNATURE), (.nonRepudiation, KU_NON_REPUDIATION),
            (.keyEncipherment, KU_KEY_ENCIPHERMENT),
            (.dataEncipherment, KU_DATA_ENCIPHERMENT), (.keyAgreement, KU_KEY_AGREEMENT),
            (.keyCertSign, KU_KEY_CERT_SIGN),
            (.cRLSign, KU_CRL_SIGN), (.encipherOnly, KU_ENCIPHER_ONLY), (.decipherOnly, KU_DECIPHER_ONLY),
        ]
        return flags.filter { bits & UInt32($0.1) != 0 }.map(\.0)
    }

    private static func extendedKeyUsage(_ x509: OpaquePointer) -> [String] {
        guard let extensionValue = X509_get_ext_d2i(x509, NID_ext_key_usage, nil, nil) else { return [] }
        let usages = OpaquePointer(extensionValue)
        defer { EXTENDED_KEY_USAGE_free(usages) }
        return (0..<copenssl_sk_ASN1_OBJECT_num(usages)).compactMap { index in
            guard let object = copenssl_sk_ASN1_OBJECT_value(usages, index) else { return nil }
            var buffer = [CChar](repeating: 0, count: 128)
            let length = OBJ_obj2txt(&buffer, Int32(buffer.count), object, 1)
            guard length > 0, Int(length) < buffer.count else { return nil }
            return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    private static func alternativeNames(_ x509: OpaquePointer) -> [SubjectAlternativeName] {
        guard let extensionValue = X509_get_ext_d2i(x509, NID_subject_alt_name, nil, nil) else { return [] }
        let names = OpaquePointer(extensionValue)
        defer { GENERAL_NAMES_free(names) }
        var result: [SubjectAlternativeName] = []
        for index in 0..<copenssl_sk_GENERAL_NAME_num(names) {
            guard let name = copenssl_sk_GENERAL_NAME_value(names, index) else { continue }
            func text(_ string: UnsafeMutablePointer<ASN1_STRING>?) -> String {
                string.map { String(decoding: bytes(of: $0), as: UTF8.self) } ?? ""
            }
            switch name.pointee.type {
            case GEN_DNS: result.append(.dns(text(name.pointee.d.dNSName)))
            case GEN_EMAIL: result.append(.email(text(name.pointee.d.rfc822Name)))
            case GEN_URI: result.append(.uri(text(name.pointee.d.uniformResourceIdentifier)))
            case GEN_IPADD:
                if let address = name.pointee.d.iPAddress, let formatted = ipAddressText(bytes(of: address)) {
                    result.append(.ipAddress(formatted))
                }
            default: continue
            }
        }
        return result
    }

    private static func ipAddressText(_ address: [UInt8]) -> String? {
        let family: Int32
        switch address.count {
        case 4: family = AF_INET
        case 16: family = AF_INET6
        default: return nil
        }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(family, address, &buffer, socklen_t(buffer.count)) != nil else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
