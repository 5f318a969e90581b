import PKI

/// How a secret's value is encoded in Key Vault (SecretProviderClass `objectEncoding`); the file gets the decoded bytes.
public enum ObjectEncoding: String, Sendable, CaseIterable, Codable {
    case utf8 = "utf-8"
    case base64
    case hex

    /// Case-insensitive: "utf-8", "UTF-8", "base64", "BasE64", "hex".
    public init?(parameter: String) {
        self.init(rawValue: parameter.lowercased())
    }

    /// The bytes `value` stands for.
    func decode(_ value: String) throws(ObjectFormatError) -> [UInt8] {
        do throws(DecodingFailure) {
            switch self {
            case .utf8: return Array(value.utf8)
            case .base64: return try StrictBase64.decode(value.utf8)
            case .hex: return try HexText.decode(value.utf8)
            }
        } catch {
            throw ObjectFormatError("failed to decode secret value as \(rawValue): \(error.reason)")
        }
    }
}

/// SecretProviderClass `objectFormat` for certificate-backed secrets.
public enum CertificateFormat: String, Sendable, CaseIterable, Codable {
    case pem
    case pfx

    /// Case-insensitive: "pem", "PEM", "pfx", "PFX".
    public init?(parameter: String) {
        self.init(rawValue: parameter.lowercased())
    }
}

/// The exact bytes of one file, and anything the operator should hear about them.
public struct FormattedObject: Sendable {
    public var bytes: [UInt8]
    public var warnings: [String]

    public init(bytes: [UInt8], warnings: [String] = []) {
        self.bytes = bytes
        self.warnings = warnings
    }
}

/// Why an object could not be turned into file contents. Messages never contain secret values.
public struct ObjectFormatError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public var description: String { message }

    public init(_ message: String) {
        self.message = message
    }
}

/// Key Vault objects as file contents, compatible with the Azure Key Vault provider for the
/// Secrets Store CSI driver (docs/kubernetes.md, Files).
public enum ObjectFormatter {
    /// The warning for a PFX whose certificates do not form one chain; the Azure provider's text.
    public static let incompleteChainWarning =
        "certificate chain is not complete due to missing intermediate/root certificates in the cert from key vault"

    /// A secret as a file. `certificateBacked` is true when the secret bundle has `kid` set.
    /// - plain secret: the value decoded per `encoding` (nil or utf-8: its UTF-8 bytes);
    /// - certificate-backed, application/x-pem-file: the value unchanged (no reordering, no decoding);
    /// - certificate-backed, application/x-pkcs12, `.pem`: every private key as PKCS#8 "PRIVATE KEY"
    ///   first, then the certificates ordered leaf -> root by `CertificateChain.order`; when they do
    ///   not form one chain, in the PFX's order with `incompleteChainWarning`; when they cannot be
    ///   ordered at all (a cycle), in the PFX's order with a warning saying so. `encoding` is ignored.
    /// - certificate-backed, application/x-pkcs12, `.pfx`: the stored base64 text decoded per
    ///   `encoding` (so `.base64` gives the binary PFX).
    public static func secret(
        value: String, contentType: String?, certificateBacked: Bool, format: CertificateFormat = .pem,
        encoding: ObjectEncoding? = nil
    ) throws(ObjectFormatError) -> FormattedObject {
        guard certificateBacked else {
            guard format == .pem else {
                throw ObjectFormatError(
                    "objectFormat pfx needs a certificate-backed secret stored as PKCS#12 (\(ContentType.pkcs12Name)); "
                        + "this secret is not backed by a certificate, so remove objectFormat")
            }
            return FormattedObject(bytes: try (encoding ?? .utf8).decode(value))
        }
        switch try ContentType(contentType) {
        case .pem:
            guard format == .pem else {
                throw ObjectFormatError(
                    "objectFormat pfx needs a certificate-backed secret stored as PKCS#12 (\(ContentType.pkcs12Name)); "
                        + "this certificate's secret is stored as \(ContentType.pemName), so use objectFormat pem")
            }
            return FormattedObject(bytes: Array(value.utf8))
        case .pkcs12:
            switch format {
            case .pfx: return FormattedObject(bytes: try (encoding ?? .utf8).decode(value))
            case .pem: return try pemFromPKCS12(value)
            }
        }
    }

    /// A key as "PUBLIC KEY" PEM (SubjectPublicKeyInfo) from its JWK: RSA/RSA-HSM (n, e) or
    /// EC/EC-HSM on P-256, P-384 or P-521. Private members, if present, are ignored.
    public static func key(_ jwk: JSONWebKey) throws(ObjectFormatError) -> FormattedObject {
        switch jwk.kty {
        case "RSA", "RSA-HSM":
            break
        case "EC", "EC-HSM":
            guard let curve = jwk.crv else {
                throw ObjectFormatError("failed to get key. the EC key has no curve (crv)")
            }
            guard ECCurve(rawValue: curve) != nil else {
                throw ObjectFormatError("curve \(curve) is not supported")
            }
        default:
            throw ObjectFormatError("failed to get key. key type '\(jwk.kty)' currently not supported")
        }
        do throws(PKIError) {
            let publicKey = try PublicKey(jwk: jwk.publicOnly)
            return FormattedObject(bytes: PEMWriter.encode(try publicKey.spkiDER(), label: PEMWriter.publicKeyLabel))
        } catch {
            throw ObjectFormatError("failed to get key. the \(jwk.kty) key is malformed: \(error.reason)")
        }
    }

    /// A certificate's `cer` (DER) as one CERTIFICATE PEM block: the leaf only, as Key Vault's
    /// certificate object holds no chain and no key. The bytes are not checked.
    public static func certificate(cer: [UInt8]) -> FormattedObject {
        FormattedObject(bytes: PEMWriter.encode(cer, label: PEMWriter.certificateLabel))
    }

    private static func pemFromPKCS12(_ value: String) throws(ObjectFormatError) -> FormattedObject {
        let bundle = try CertificateBundle(pkcs12Base64: value)
        var certificates = bundle.certificates
        var warnings: [String] = []
        do {
            let chain = try CertificateChain.order(certificates)
            certificates = chain.certificates
            if !chain.complete { warnings.append(incompleteChainWarning) }
        } catch {
            // The Azure provider fails the object here; the certificates are still usable as stored.
            warnings.append(
                "could not order the certificate chain (\(error)); the certificates keep the order of the PFX")
        }
        var keyDERs = try bundle.privateKeys.map { key throws(ObjectFormatError) in try pkcs8DER(key) }
        defer {
            for index in keyDERs.indices { keyDERs[index].wipe() }
        }
        var output: [UInt8] = []
        output.reserveCapacity(
            keyDERs.reduce(0) { $0 + PEMWriter.encodedLength(derCount: $1.count, label: PEMWriter.privateKeyLabel) }
                + certificates.reduce(0) {
                    $0 + PEMWriter.encodedLength(derCount: $1.der.count, label: PEMWriter.certificateLabel)
                })
        for index in keyDERs.indices {
            PEMWriter.append(keyDERs[index], label: PEMWriter.privateKeyLabel, to: &output)
        }
        for certificate in certificates {
            PEMWriter.append(certificate.der, label: PEMWriter.certificateLabel, to: &output)
        }
        return FormattedObject(bytes: output, warnings: warnings)
    }

    static func pkcs8DER(_ key: PrivateKey) throws(ObjectFormatError) -> [UInt8] {
        do {
            return try key.pkcs8DER()
        } catch {
            throw ObjectFormatError("failed to convert the certificate's private key to PKCS#8: \(error.reason)")
        }
    }
}

/// The content types Key Vault gives certificate-backed secrets.
enum ContentType {
    case pkcs12
    case pem

    static let pkcs12Name = "application/x-pkcs12"
    static let pemName = "application/x-pem-file"

    init(_ contentType: String?) throws(ObjectFormatError) {
        guard let contentType, !contentType.isEmpty else {
            // The Azure provider dereferences nil here and crashes.
            throw ObjectFormatError(
                "certificate-backed secret has no content type; expected \(Self.pkcs12Name) or \(Self.pemName)")
        }
        switch contentType.lowercased() {
        case Self.pkcs12Name: self = .pkcs12
        case Self.pemName: self = .pem
        default: throw ObjectFormatError("failed to get certificate. unknown content type '\(contentType)'")
        }
    }
}
