import PKI

/// Ready-to-use TLS files from a certificate-backed secret, for the paths nginx or haproxy read.
public struct TLSMaterial: Sendable {
    /// The private key as PKCS#8 "PRIVATE KEY" PEM.
    public var privateKeyPEM: [UInt8]
    /// The certificate whose public key matches the private key.
    public var leafPEM: [UInt8]
    /// The other certificates, the leaf's issuer first and toward the root; may be empty.
    public var chainPEM: [UInt8]
    /// `leafPEM` followed by `chainPEM`.
    public var fullChainPEM: [UInt8]
    public var warnings: [String]

    public init(
        privateKeyPEM: [UInt8], leafPEM: [UInt8], chainPEM: [UInt8], fullChainPEM: [UInt8], warnings: [String] = []
    ) {
        self.privateKeyPEM = privateKeyPEM
        self.leafPEM = leafPEM
        self.chainPEM = chainPEM
        self.fullChainPEM = fullChainPEM
        self.warnings = warnings
    }
}

extension ObjectFormatter {
    /// TLS material from a certificate-backed secret stored as PKCS#12 or PEM. PEM blocks are found
    /// by type in any order (the VM extension writes the key last), and PKCS#1 "RSA PRIVATE KEY" and
    /// SEC1 "EC PRIVATE KEY" keys come out as PKCS#8. The chain follows the leaf's issuers (key
    /// identifiers, else issuer name and signature); certificates not on that path are appended in
    /// their stored order, with `incompleteChainWarning`.
    public static func tlsMaterial(value: String, contentType: String?) throws(ObjectFormatError) -> TLSMaterial {
        let bundle: CertificateBundle
        switch try ContentType(contentType) {
        case .pkcs12: bundle = try CertificateBundle(pkcs12Base64: value)
        case .pem: bundle = try CertificateBundle(pem: value)
        }
        guard !bundle.privateKeys.isEmpty else {
            throw ObjectFormatError(
                "the certificate-backed secret holds no private key, so there is no TLS key to serve; "
                    + "the certificate's key is probably non-exportable (policy keyProps.exportable false)")
        }
        guard !bundle.certificates.isEmpty else {
            throw ObjectFormatError("the certificate-backed secret holds a private key but no certificate")
        }
        var match: (key: PrivateKey, leaf: Int)? = nil
        for key in bundle.privateKeys {
            if let leaf = bundle.certificates.firstIndex(where: { $0.publicKey == key.publicKey }) {
                match = (key, leaf)
                break
            }
        }
        guard let match else {
            throw ObjectFormatError("none of the certificates in the certificate-backed secret matches its private key")
        }

        let path = CertificateChain.issuerPath(from: match.leaf, in: bundle.certificates)
        let offPath = bundle.certificates.indices.filter { !path.contains($0) }
        let chain = (path.dropFirst() + offPath).map { bundle.certificates[$0].der }
        let leafPEM = PEMWriter.encode(bundle.certificates[match.leaf].der, label: PEMWriter.certificateLabel)
        let chainPEM = PEMWriter.encode(certificates: chain)

        var keyDER = try pkcs8DER(match.key)
        defer { keyDER.wipe() }
        return TLSMaterial(
            privateKeyPEM: PEMWriter.encode(keyDER, label: PEMWriter.privateKeyLabel),
            leafPEM: leafPEM,
            chainPEM: chainPEM,
            fullChainPEM: leafPEM + chainPEM,
            warnings: offPath.isEmpty ? [] : [incompleteChainWarning])
    }
}

/// The keys and certificates in a certificate-backed secret's value.
struct CertificateBundle {
    var privateKeys: [PrivateKey]
    /// In stored order.
    var certificates: [Certificate]

    /// A PFX as Key Vault stores it: standard base64, blank password.
    init(pkcs12Base64 value: String) throws(ObjectFormatError) {
        var der: [UInt8]
        do {
            der = try StrictBase64.decode(value.utf8)
        } catch {
            throw ObjectFormatError("failed to decode the certificate's PKCS#12 value as base64: \(error.reason)")
        }
        defer { der.wipe() }
        do {
            let contents = try PKCS12.parse(der, password: "")
            privateKeys = contents.privateKeys
            certificates = contents.certificates
        } catch {
            throw ObjectFormatError("failed to read the certificate's PKCS#12 value: \(error.reason)")
        }
    }

    /// PEM blocks by type, in any order; blocks of other types (e.g. "EC PARAMETERS") are skipped.
    init(pem value: String) throws(ObjectFormatError) {
        var blocks: [PEM.Block]
        do {
            blocks = try PEM.decode(value)
        } catch {
            throw ObjectFormatError("failed to read the certificate's PEM value: \(error.reason)")
        }
        defer {
            for index in blocks.indices { blocks[index].der.wipe() }
        }
        privateKeys = []
        certificates = []
        for index in blocks.indices {
            switch blocks[index].label {
            case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
                do {
                    privateKeys.append(try PrivateKey(der: blocks[index].der))
                } catch {
                    throw ObjectFormatError(
                        "failed to read the \(blocks[index].label) block in the certificate's PEM value: \(error.reason)"
                    )
                }
            case "ENCRYPTED PRIVATE KEY":
                throw ObjectFormatError(
                    "the certificate's PEM value holds an encrypted private key, which has no password here; "
                        + "import the certificate into Key Vault with an unencrypted key")
            case "CERTIFICATE":
                do {
                    certificates.append(try Certificate(der: blocks[index].der))
                } catch {
                    throw ObjectFormatError(
                        "failed to read a CERTIFICATE block in the certificate's PEM value: \(error.reason)")
                }
            default:
                continue
            }
        }
    }
}
