import FoundationEssentials
import PKI

/// What a new certificate version consists of before it is stored.
struct IssuedCertificate: Sendable {
    var certificate: Certificate
    var publicJWK: JSONWebKey
    var keyOperations: [String]
    /// The backing secret's value: base64 PKCS#12 (blank password) or PEM with key and chain.
    var secretValue: String
    var secretContentType: String
    /// The PKCS#10 request of a created certificate (DER), which its pending operation shows.
    var signingRequest: [UInt8]? = nil
}

/// Issues self-signed certificates from a policy and reads imported PFX or PEM content, producing
/// the backing secret exactly as Key Vault stores it. Runs outside the store actor.
enum CertificateFactory {
    static let defaultExtendedKeyUsages = ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]

    static func create(policy requested: CertificatePolicy, now: Date) throws(KeyVaultFailure) -> (
        IssuedCertificate, CertificatePolicy
    ) {
        var policy = requested.withDefaults()
        let issuerName = policy.issuer?.name ?? "Self"
        guard issuerName.lowercased() == "self" else {
            throw .badParameter(
                "Issuer '\(issuerName)' is not supported by the emulator: only self-signed certificates (issuer 'Self') can be created; import certificates signed by other issuers."
            )
        }
        let keyProperties = policy.keyProperties!
        let (key, keyType) = try KeyFactory.generate(
            keyType: keyProperties.keyType,
            size: keyProperties.keySize,
            curve: keyProperties.curve
        )
        let x509 = policy.x509Properties!
        let names = try subjectAlternativeNames(x509.subjectAlternativeNames)
        guard let subject = x509.subject ?? (names.isEmpty ? nil : "CN=\(firstName(names))") else {
            throw .badParameter("The certificate policy needs a subject or at least one subject alternative name.")
        }
        let months = x509.validityMonths!
        guard (1...1200).contains(months) else {
            throw .badParameter("validity_months must be between 1 and 1200; got \(months).")
        }
        var template = CertificateTemplate(subject: subject, notBefore: now, notAfter: addMonths(months, to: now))
        template.subjectAlternativeNames = names
        template.keyUsage = try keyUsages(x509.keyUsage, keyType: keyType)
        template.extendedKeyUsage = x509.extendedKeyUsages ?? defaultExtendedKeyUsages
        // The service answers with the usages the certificate got, defaults included.
        policy.x509Properties?.keyUsage = template.keyUsage.map(\.rawValue)
        policy.x509Properties?.extendedKeyUsages = template.extendedKeyUsage
        let certificate: Certificate
        do {
            certificate = try template.selfSigned(with: key)
        } catch {
            throw .badParameter("The certificate policy could not be turned into a certificate: \(error.reason)")
        }
        let exportable = keyProperties.exportable ?? true
        var material = try backingSecret(
            key: exportable ? key : nil,
            certificates: [certificate],
            contentType: policy.secretProperties!.contentType!,
            leaf: certificate,
            keyType: keyType
        )
        do {
            material.signingRequest = try certificate.signingRequest(signedWith: key)
        } catch {
            throw KeyVaultFailure(
                status: 500, code: "InternalServerError",
                message: "Making the certificate's signing request failed: \(error.reason)")
        }
        return (material, policy)
    }

    /// Reads an imported certificate: base64 PKCS#12 (optionally with a password) or PEM text,
    /// depending on the policy's secret content type.
    static func importing(
        value: String,
        password: String?,
        policy requested: CertificatePolicy?
    ) throws(KeyVaultFailure) -> (IssuedCertificate, CertificatePolicy) {
        let contentType = requested?.secretProperties?.contentType ?? CertificatePolicy.pkcs12ContentType
        var privateKey: PrivateKey?
        var certificates: [Certificate] = []
        switch contentType {
        case CertificatePolicy.pkcs12ContentType:
            let compact = value.filter { !$0.isWhitespace }
            guard let der = Data(base64Encoded: compact) else {
                throw .badParameter(
                    "The certificate value is not base64. PKCS#12 certificates are imported as base64 of the PFX file.")
            }
            do {
                let contents = try PKCS12.parse(Array(der), password: password ?? "")
                privateKey = contents.privateKeys.first
                certificates = contents.certificates
            } catch {
                throw .badParameter(
                    "The specified PKCS#12 X.509 certificate content can not be read (\(error.reason)). Check that it is a valid PFX and that the password is right."
                )
            }
        case CertificatePolicy.pemContentType:
            // Microsoft's SDKs and the Azure CLI send the PEM file base64-encoded; raw PEM text works too.
            let text =
                value.contains("-----BEGIN ")
                ? value
                : Data(base64Encoded: value.filter { !$0.isWhitespace }).flatMap { String(data: $0, encoding: .utf8) }
                    ?? value
            do {
                for block in try PEM.decode(text) {
                    switch block.label {
                    case "CERTIFICATE":
                        certificates.append(try Certificate(der: block.der))
                    case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
                        if privateKey == nil { privateKey = try PrivateKey(der: block.der) }
                    case "ENCRYPTED PRIVATE KEY":
                        if privateKey == nil {
                            privateKey = try PrivateKey(
                                pem: PEM.encode(block.der, label: block.label), password: password)
                        }
                    default:
                        continue
                    }
                }
            } catch {
                throw .badParameter(
                    "The specified PEM X.509 certificate content is in an unexpected format (\(error.reason)). It must contain a private key and one or more CERTIFICATE blocks."
                )
            }
        default:
            throw .badParameter(
                "Unsupported secret content type '\(contentType)'. Allowed: \(CertificatePolicy.pkcs12ContentType), \(CertificatePolicy.pemContentType)."
            )
        }
        guard let privateKey else {
            throw .badParameter(
                "The imported certificate has no private key; Key Vault imports need the certificate together with its private key."
            )
        }
        guard let leaf = certificates.first(where: { $0.publicKey == privateKey.publicKey }) else {
            throw .badParameter("None of the imported certificates matches the imported private key.")
        }
        let keyType: String
        switch privateKey.algorithm {
        case .rsa: keyType = "RSA"
        case .ec: keyType = "EC"
        }
        let material = try backingSecret(
            key: privateKey,
            certificates: certificates,
            contentType: contentType,
            leaf: leaf,
            keyType: keyType
        )
        return (material, importedPolicy(requested, leaf: leaf, key: privateKey, contentType: contentType))
    }

    // MARK: Building blocks

    static func backingSecret(
        key: PrivateKey?,
        certificates: [Certificate],
        contentType: String,
        leaf: Certificate,
        keyType: String
    ) throws(KeyVaultFailure) -> IssuedCertificate {
        let secretValue: String
        do {
            switch contentType {
            case CertificatePolicy.pkcs12ContentType:
                secretValue = Data(try PKCS12.create(privateKey: key, certificates: certificates)).base64EncodedString()
            case CertificatePolicy.pemContentType:
                secretValue = (try key?.pkcs8PEM() ?? "") + certificates.map { $0.pem() }.joined()
            default:
                throw KeyVaultFailure.badParameter(
                    "Unsupported secret content type '\(contentType)'. Allowed: \(CertificatePolicy.pkcs12ContentType), \(CertificatePolicy.pemContentType)."
                )
            }
        } catch let failure as KeyVaultFailure {
            throw failure
        } catch let error as PKIError {
            throw KeyVaultFailure(
                status: 500, code: "InternalServerError", message: "Encoding the certificate failed: \(error.reason)")
        } catch {
            throw KeyVaultFailure(status: 500, code: "InternalServerError", message: "Encoding the certificate failed.")
        }
        var publicJWK: JSONWebKey
        do {
            publicJWK = try leaf.publicKey.jwk()
        } catch {
            throw KeyVaultFailure(
                status: 500, code: "InternalServerError",
                message: "Reading the certificate's key failed: \(error.reason)")
        }
        publicJWK.kty = keyType
        return IssuedCertificate(
            certificate: leaf,
            publicJWK: publicJWK,
            keyOperations: KeyFactory.defaultOperations(for: keyType),
            secretValue: secretValue,
            secretContentType: contentType
        )
    }

    private static func importedPolicy(
        _ requested: CertificatePolicy?, leaf: Certificate, key: PrivateKey, contentType: String
    ) -> CertificatePolicy {
        var policy = requested ?? CertificatePolicy()
        var keyProperties = policy.keyProperties ?? .init()
        switch key.algorithm {
        case .rsa(let bits):
            keyProperties.keyType = keyProperties.keyType ?? "RSA"
            keyProperties.keySize = bits
        case .ec(let curve):
            keyProperties.keyType = keyProperties.keyType ?? "EC"
            keyProperties.curve = curve.rawValue
        }
        if keyProperties.exportable == nil { keyProperties.exportable = true }
        if keyProperties.reuseKey == nil { keyProperties.reuseKey = false }
        policy.keyProperties = keyProperties
        policy.secretProperties = .init(contentType: contentType)
        var x509 = policy.x509Properties ?? .init()
        x509.subject = x509.subject ?? leaf.subject
        let dnsNames = leaf.subjectAlternativeNames.compactMap { name -> String? in
            if case .dns(let value) = name { value } else { nil }
        }
        if x509.subjectAlternativeNames == nil, !dnsNames.isEmpty {
            x509.subjectAlternativeNames = .init(dnsNames: dnsNames)
        }
        // The service reports the usages the certificate has.
        if x509.keyUsage == nil, !leaf.keyUsage.isEmpty { x509.keyUsage = leaf.keyUsage.map(\.rawValue) }
        if x509.extendedKeyUsages == nil, !leaf.extendedKeyUsage.isEmpty {
            x509.extendedKeyUsages = leaf.extendedKeyUsage
        }
        let days = leaf.notAfter.timeIntervalSince(leaf.notBefore) / 86_400
        x509.validityMonths = x509.validityMonths ?? max(1, Int((days / 30.4).rounded()))
        policy.x509Properties = x509
        policy.issuer = policy.issuer ?? .init(name: "Unknown")
        // The service cannot renew what another issuer signed: it e-mails the contacts instead.
        if policy.lifetimeActions == nil {
            policy.lifetimeActions = CertificatePolicy.defaultLifetimeActions("EmailContacts")
        }
        return policy
    }

    private static func subjectAlternativeNames(_ names: CertificatePolicy.SubjectAlternativeNames?)
        throws(KeyVaultFailure) -> [SubjectAlternativeName]
    {
        guard let names else { return [] }
        if let upns = names.userPrincipalNames, !upns.isEmpty {
            throw .badParameter(
                "User principal names (upns) in subject alternative names are not supported by the emulator.")
        }
        return (names.dnsNames ?? []).map(SubjectAlternativeName.dns)
            + (names.emails ?? []).map(SubjectAlternativeName.email)
            + (names.uris ?? []).map(SubjectAlternativeName.uri)
            + (names.ipAddresses ?? []).map(SubjectAlternativeName.ipAddress)
    }

    private static func firstName(_ names: [SubjectAlternativeName]) -> String {
        switch names[0] {
        case .dns(let value), .email(let value), .uri(let value), .ipAddress(let value): value
        }
    }

    private static func keyUsages(_ names: [String]?, keyType: String) throws(KeyVaultFailure) -> [KeyUsage] {
        guard let names, !names.isEmpty else {
            return keyType.hasPrefix("EC") ? [.digitalSignature] : [.digitalSignature, .keyEncipherment]
        }
        var usages: [KeyUsage] = []
        for name in names {
            guard let usage = KeyUsage(rawValue: name) else {
                throw .badParameter(
                    "Unknown key usage '\(name)'. Allowed: \(KeyUsage.allCases.map(\.rawValue).joined(separator: ", "))."
                )
            }
            usages.append(usage)
        }
        return usages
    }

    /// Calendar months, as Key Vault counts validity_months.
    static func addMonths(_ months: Int, to date: Date) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: 0)!
        return calendar.date(byAdding: .month, value: months, to: date)
            ?? date.addingTimeInterval(Double(months) * 30 * 86_400)
    }
}
