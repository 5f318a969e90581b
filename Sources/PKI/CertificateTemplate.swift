internal import COpenSSL
import FoundationEssentials

/// What goes into a new certificate. Signatures are SHA-256 (RSA PKCS#1 v1.5 or ECDSA), serials
/// are 16 random bytes, and every certificate gets basic constraints (critical), a subject key
/// identifier (SHA-1 of the public key bits) and an authority key identifier.
public struct CertificateTemplate: Sendable {
    /// A distinguished name written most specific first, as Key Vault policies do:
    /// "CN=foo, O=Bar Inc, C=US". Attributes are separated by commas; "\," (or "\2C") escapes a
    /// comma in a value and a value may be double-quoted. Types are CN, O, OU, L, ST (or S), C,
    /// E (or emailAddress), DC, STREET, UID, SERIALNUMBER, SN, GN (or G), T (title), POSTALCODE
    /// or a dotted OID.
    public var subject: String
    public var subjectAlternativeNames: [SubjectAlternativeName] = []
    public var notBefore: Date
    public var notAfter: Date
    public var isCertificateAuthority: Bool = false
    /// Only for CA certificates.
    public var pathLengthConstraint: Int? = nil
    /// Written as a critical extension; omitted when empty.
    public var keyUsage: [KeyUsage] = []
    /// Dotted OIDs such as "1.3.6.1.5.5.7.3.1" (server auth); omitted when empty.
    public var extendedKeyUsage: [String] = []

    public init(subject: String, notBefore: Date, notAfter: Date) {
        self.subject = subject
        self.notBefore = notBefore
        self.notAfter = notAfter
    }

    /// A certificate for `key`, signed by `key`; its issuer is its subject and its authority key
    /// identifier is its own subject key identifier.
    public func selfSigned(with key: PrivateKey) throws(PKIError) -> Certificate {
        try build(subjectKey: key.publicKey, issuer: nil, signingKey: key, operation: "create self-signed certificate")
    }

    /// A certificate for `subjectKey`, signed by `issuerKey` on behalf of `issuer`; its authority
    /// key identifier is the issuer's subject key identifier.
    public func issue(for subjectKey: PublicKey, issuer: Certificate, issuerKey: PrivateKey) throws(PKIError)
        -> Certificate
    {
        let operation = "issue certificate"
        guard issuerKey.publicKey == issuer.publicKey else {
            throw PKIError(operation: operation, reason: "the issuer key does not belong to the issuer certificate")
        }
        return try build(subjectKey: subjectKey, issuer: issuer, signingKey: issuerKey, operation: operation)
    }

    private func build(subjectKey: PublicKey, issuer: Certificate?, signingKey: PrivateKey, operation: String)
        throws(PKIError) -> Certificate
    {
        try validate(operation: operation)
        let subjectAttributes = try DistinguishedName.parse(subject, operation: operation)

        guard let x509 = X509_new() else { throw .openSSL(operation, "out of memory") }
        defer { X509_free(x509) }
        guard X509_set_version(x509, Int(X509_VERSION_3)) == 1 else {
            throw .openSSL(operation, "could not set the version")
        }
        try setSerialNumber(x509, operation: operation)

        guard let subjectName = X509_NAME_new() else { throw .openSSL(operation, "out of memory") }
        defer { X509_NAME_free(subjectName) }
        // The encoding runs from least to most specific, the reverse of how the string is written.
        for attribute in subjectAttributes.reversed() {
            let added = attribute.value.withUnsafeBufferPointer {
                X509_NAME_add_entry_by_txt(
                    subjectName, attribute.type, MBSTRING_UTF8, $0.baseAddress, Int32($0.count), -1, 0)
            }
            guard added == 1 else {
                throw .openSSL(
                    operation,
                    "the subject attribute \(attribute.type) has a value OpenSSL rejects (too long, or not allowed for that type)"
                )
            }
        }
        guard X509_set_subject_name(x509, subjectName) == 1,
            X509_set_issuer_name(x509, issuer.map { X509_get_subject_name($0.x509) } ?? subjectName) == 1
        else { throw .openSSL(operation, "could not set the subject and issuer names") }

        guard ASN1_TIME_set(X509_getm_notBefore(x509), time_t(notBefore.timeIntervalSince1970.rounded(.down))) != nil,
            ASN1_TIME_set(X509_getm_notAfter(x509), time_t(notAfter.timeIntervalSince1970.rounded(.down))) != nil
        else { throw .openSSL(operation, "could not set the validity period") }
        guard X509_set_pubkey(x509, subjectKey.pkey) == 1 else {
            throw .openSSL(operation, "could not set the public key")
        }

        try addBasicConstraints(x509, operation: operation)
        try addKeyUsage(x509, operation: operation)
        try addExtendedKeyUsage(x509, operation: operation)
        try addSubjectAlternativeNames(x509, operation: operation)
        let subjectKeyIdentifier = try keyIdentifier(x509, operation: operation)
        try addOctetStringExtension(x509, nid: NID_subject_key_identifier, subjectKeyIdentifier, operation: operation)
        var authorityKeyIdentifier = subjectKeyIdentifier
        if let issuer {
            // An issuer without a subject key identifier gets one computed the same way.
            if let issuerKeyIdentifier = issuer.subjectKeyIdentifier {
                authorityKeyIdentifier = issuerKeyIdentifier
            } else {
                authorityKeyIdentifier = try keyIdentifier(issuer.x509, operation: operation)
            }
        }
        try addAuthorityKeyIdentifier(x509, authorityKeyIdentifier, operation: operation)

        guard X509_sign(x509, signingKey.pkey, EVP_sha256()) > 0 else { throw .openSSL(operation, "signing failed") }
        let der = try encodeDER(operation) { i2d_X509(x509, $0) }
        return try Certificate(der: der)
    }

    private func validate(operation: String) throws(PKIError) {
        guard notBefore < notAfter else {
            throw PKIError(operation: operation, reason: "notBefore must be earlier than notAfter")
        }
        if let pathLengthConstraint {
            guard isCertificateAuthority else {
                throw PKIError(operation: operation, reason: "a path length constraint needs isCertificateAuthority")
            }
            guard pathLengthConstraint >= 0 else {
                throw PKIError(operation: operation, reason: "the path length constraint must not be negative")
            }
        }
        for oid in extendedKeyUsage where !DistinguishedName.isDottedOID(oid) {
            throw PKIError(
                operation: operation,
                reason: "extended key usage '\(oid)' is not a dotted OID such as 1.3.6.1.5.5.7.3.1")
        }
        for name in subjectAlternativeNames {
            switch name {
            case .dns(let value), .email(let value), .uri(let value):
                guard !value.isEmpty, value.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                    throw PKIError(
                        operation: operation,
                        reason:
                            "subject alternative name '\(value)' must be non-empty printable ASCII (use punycode for international domain names)"
                    )
                }
            case .ipAddress:
                continue  // OpenSSL's parser checks these while the extension is built.
            }
        }
    }

    private func setSerialNumber(_ x509: OpaquePointer, operation: String) throws(PKIError) {
        var serial = SecureRandom.bytes(16)
        // Positive (top bit clear) and a full 16 bytes long (next bit set).
        serial[0] = serial[0] & 0x7F | 0x40
        guard let number = bignum(from: serial) else { throw .openSSL(operation, "out of memory") }
        defer { BN_free(number) }
        guard let integer = BN_to_ASN1_INTEGER(number, nil) else { throw .openSSL(operation, "out of memory") }
        defer { ASN1_INTEGER_free(integer) }
        guard X509_set_serialNumber(x509, integer) == 1 else {
            throw .openSSL(operation, "could not set the serial number")
        }
    }

    private func addBasicConstraints(_ x509: OpaquePointer, operation: String) throws(PKIError) {
        guard let constraints = BASIC_CONSTRAINTS_new() else { throw .openSSL(operation, "out of memory") }
        defer { BASIC_CONSTRAINTS_free(constraints) }
        constraints.pointee.ca = isCertificateAuthority ? 0xFF : 0
        if let pathLengthConstraint {
            guard let length = ASN1_INTEGER_new() else { throw .openSSL(operation, "out of memory") }
            constraints.pointee.pathlen = length  // freed with the constraints
            guard ASN1_INTEGER_set(length, pathLengthConstraint) == 1 else {
                throw .openSSL(operation, "could not set the path length constraint")
            }
        }
        try addExtension(
            x509, NID_basic_constraints, constraints, critical: true, named: "basic constraints", operation: operation)
    }

    private func addKeyUsage(_ x509: OpaquePointer, operation: String) throws(PKIError) {
        guard !keyUsage.isEmpty else { return }
        guard let bits = ASN1_BIT_STRING_new() else { throw .openSSL(operation, "out of memory") }
        defer { ASN1_BIT_STRING_free(bits) }
        for usage in keyUsage {
            guard ASN1_BIT_STRING_set_bit(bits, usage.bit, 1) == 1 else { throw .openSSL(operation, "out of memory") }
        }
        try addExtension(x509, NID_key_usage, bits, critical: true, named: "key usage", operation: operation)
    }

    private func addExtendedKeyUsage(_ x509: OpaquePointer, operation: String) throws(PKIError) {
        guard !extendedKeyUsage.isEmpty else { return }
        guard let usages = copenssl_sk_ASN1_OBJECT_new_null() else { throw .openSSL(operation, "out of memory") }
        defer { EXTENDED_KEY_USAGE_free(usages) }
        for oid in extendedKeyUsage {
            guard let object = OBJ_txt2obj(oid, 1) else {
                throw .openSSL(operation, "extended key usage '\(oid)' is not a valid OID")
            }
            guard copenssl_sk_ASN1_OBJECT_push(usages, object) > 0 else {
                ASN1_OBJECT_free(object)
                throw .openSSL(operation, "out of memory")
            }
        }
        try addExtension(
            x509, NID_ext_key_usage, UnsafeMutableRawPointer(usages), named: "extended key usage", operation: operation)
    }

    private func addSubjectAlternativeNames(_ x509: OpaquePointer, operation: String) throws(PKIError) {
        guard !subjectAlternativeNames.isEmpty else { return }
        guard let names = copenssl_sk_GENERAL_NAME_new_null() else { throw .openSSL(operation, "out of memory") }
        defer { GENERAL_NAMES_free(names) }
        for alternativeName in subjectAlternativeNames {
            let (type, value): (Int32, String) =
                switch alternativeName {
                case .dns(let value): (GEN_DNS, value)
                case .ipAddress(let value): (GEN_IPADD, value)
                case .email(let value): (GEN_EMAIL, value)
                case .uri(let value): (GEN_URI, value)
                }
            // One name per call, so a comma in a value is just a character, never a separator.
            guard let name = a2i_GENERAL_NAME(nil, nil, nil, type, value, 0) else {
                throw .openSSL(operation, "subject alternative name '\(value)' is not valid for its type")
            }
            guard copenssl_sk_GENERAL_NAME_push(names, name) > 0 else {
                GENERAL_NAME_free(name)
                throw .openSSL(operation, "out of memory")
            }
        }
        try addExtension(
            x509, NID_subject_alt_name, UnsafeMutableRawPointer(names), named: "subject alternative names",
            operation: operation)
    }

    /// RFC 5280 section 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's contents.
    private func keyIdentifier(_ x509: OpaquePointer, operation: String) throws(PKIError) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard X509_pubkey_digest(x509, EVP_sha1(), &digest, &length) == 1 else {
            throw .openSSL(operation, "could not compute the key identifier")
        }
        return Array(digest.prefix(Int(length)))
    }

    private func addOctetStringExtension(_ x509: OpaquePointer, nid: Int32, _ value: [UInt8], operation: String)
        throws(PKIError)
    {
        guard let octets = ASN1_OCTET_STRING_new() else { throw .openSSL(operation, "out of memory") }
        defer { ASN1_OCTET_STRING_free(octets) }
        guard ASN1_OCTET_STRING_set(octets, value, Int32(value.count)) == 1 else {
            throw .openSSL(operation, "could not add the subject key identifier")
        }
        try addExtension(x509, nid, octets, named: "the subject key identifier", operation: operation)
    }

    private func addAuthorityKeyIdentifier(_ x509: OpaquePointer, _ keyIdentifier: [UInt8], operation: String)
        throws(PKIError)
    {
        guard let authorityKeyID = AUTHORITY_KEYID_new() else { throw .openSSL(operation, "out of memory") }
        defer { AUTHORITY_KEYID_free(authorityKeyID) }
        guard let octets = ASN1_OCTET_STRING_new() else { throw .openSSL(operation, "out of memory") }
        authorityKeyID.pointee.keyid = octets  // freed with authorityKeyID
        guard ASN1_OCTET_STRING_set(octets, keyIdentifier, Int32(keyIdentifier.count)) == 1 else {
            throw .openSSL(operation, "could not add the authority key identifier")
        }
        try addExtension(
            x509, NID_authority_key_identifier, authorityKeyID, named: "the authority key identifier",
            operation: operation)
    }

    /// Encodes `value` as extension `nid` of `x509`; `name` says which extension failed.
    private func addExtension(
        _ x509: OpaquePointer, _ nid: Int32, _ value: UnsafeMutableRawPointer, critical: Bool = false,
        named name: String, operation: String
    ) throws(PKIError) {
        guard X509_add1_ext_i2d(x509, nid, value, critical ? 1 : 0, UInt(X509V3_ADD_DEFAULT)) == 1 else {
            throw .openSSL(operation, "could not add \(name)")
        }
    }
}

/// Parses the distinguished-name strings certificate policies use.
enum DistinguishedName {
    struct Attribute {
        /// The name OpenSSL knows the attribute type by ("CN", "emailAddress") or a dotted OID.
        var type: String
        var value: [UInt8]
    }

    /// Friendly spellings, upper-cased, mapped to OpenSSL's names.
    private static let attributeTypes: [String: String] = [
        "CN": "CN", "COMMONNAME": "CN",
        "O": "O", "ORGANIZATIONNAME": "O",
        "OU": "OU", "ORGANIZATIONALUNITNAME": "OU",
        "L": "L", "LOCALITYNAME": "L",
        "ST": "ST", "S": "ST", "STATEORPROVINCENAME": "ST",
        "C": "C", "COUNTRYNAME": "C",
        "E": "emailAddress", "EMAIL": "emailAddress", "EMAILADDRESS": "emailAddress",
        "DC": "DC", "DOMAINCOMPONENT": "DC",
        "STREET": "street", "STREETADDRESS": "street",
        "UID": "UID", "USERID": "UID",
        "SERIALNUMBER": "serialNumber",
        "SN": "SN", "SURNAME": "SN",
        "G": "GN", "GN": "GN", "GIVENNAME": "GN",
        "T": "title", "TITLE": "title",
        "POSTALCODE": "postalCode",
    ]

    static func isDottedOID(_ text: String) -> Bool {
        let arcs = text.split(separator: ".", omittingEmptySubsequences: false)
        return arcs.count >= 2 && arcs.allSatisfy { !$0.isEmpty && $0.utf8.allSatisfy { (0x30...0x39).contains($0) } }
    }

    static func parse(_ text: String, operation: String) throws(PKIError) -> [Attribute] {
        func failure(_ why: String) -> PKIError {
            PKIError(operation: operation, reason: "subject '\(text)' is not a valid distinguished name: \(why)")
        }
        let bytes = Array(text.utf8)
        var attributes: [Attribute] = []
        var index = 0
        func isSpace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        // A byte is never one of the fullwidth digits hexDigitValue also accepts: only 0-9, a-f, A-F pass.
        func hexValue(_ byte: UInt8) -> UInt8? { Character(Unicode.Scalar(byte)).hexDigitValue.map(UInt8.init) }

        while true {
            // Attribute type, up to "=".
            let separator = bytes[index...].firstIndex { $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: ",") }
            guard let equals = separator, bytes[equals] == UInt8(ascii: "=") else {
                let component = String(decoding: bytes[index..<(separator ?? bytes.count)], as: UTF8.self)
                    .trimmingSpaces()
                throw failure(component.isEmpty ? "it has an empty attribute" : "'\(component)' has no '='")
            }
            let typeText = String(decoding: bytes[index..<equals], as: UTF8.self).trimmingSpaces()
            guard !typeText.isEmpty else { throw failure("an attribute has no type before '='") }
            let type: String
            if let known = attributeTypes[typeText.uppercased()] {
                type = known
            } else if isDottedOID(typeText) {
                type = typeText
            } else {
                throw failure(
                    "unknown attribute type '\(typeText)'; use CN, O, OU, L, ST, C, E, DC, STREET, UID, SERIALNUMBER, SN, GN, T, POSTALCODE or a dotted OID"
                )
            }
            index = equals + 1

            // Value, up to an unescaped "," or the end.
            var value: [UInt8] = []
            var significantCount = 0  // value.count without trailing unescaped spaces
            while index < bytes.count, isSpace(bytes[index]) { index += 1 }
            if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
                index += 1
                var closed = false
                while index < bytes.count {
                    let byte = bytes[index]
                    index += 1
                    if byte == UInt8(ascii: "\"") {
                        closed = true
                        break
                    }
                    if byte == UInt8(ascii: "\\"), index < bytes.count {
                        value.append(bytes[index])
                        index += 1
                    } else {
                        value.append(byte)
                    }
                }
                guard closed else { throw failure("a quoted value of \(typeText) is not closed") }
                significantCount = value.count
                while index < bytes.count, isSpace(bytes[index]) { index += 1 }
                guard index == bytes.count || bytes[index] == UInt8(ascii: ",") else {
                    throw failure("unexpected text after the quoted value of \(typeText)")
                }
            } else {
                while index < bytes.count, bytes[index] != UInt8(ascii: ",") {
                    let byte = bytes[index]
                    index += 1
                    if byte == UInt8(ascii: "\\") {
                        guard index < bytes.count else { throw failure("it ends with a lone '\\'") }
                        if index + 1 < bytes.count, let high = hexValue(bytes[index]),
                            let low = hexValue(bytes[index + 1])
                        {
                            value.append(high << 4 | low)
                            index += 2
                        } else {
                            value.append(bytes[index])
                            index += 1
                        }
                        significantCount = value.count
                    } else {
                        value.append(byte)
                        if !isSpace(byte) { significantCount = value.count }
                    }
                }
            }
            value.removeLast(value.count - significantCount)
            guard !value.isEmpty else { throw failure("\(typeText) has an empty value") }
            guard String(validating: value, as: UTF8.self) != nil else {
                throw failure("the value of \(typeText) is not UTF-8")
            }
            attributes.append(Attribute(type: type, value: value))

            guard index < bytes.count else { return attributes }
            index += 1  // past the ","
        }
    }
}
