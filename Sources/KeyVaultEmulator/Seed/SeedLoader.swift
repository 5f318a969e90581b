import FoundationEssentials
import PKI

/// Puts a validated seed's vaults and objects into the store, generating keys and certificates.
enum SeedLoader {
    static func apply(_ seed: Seed, to store: VaultStore, now: Date) async throws(EmulatorError) {
        do {
            for vault in seed.vaults {
                await store.createVault(vault.name)
                for secret in vault.secrets {
                    for version in secret.versions {
                        _ = try await store.setSecret(
                            vault: vault.name,
                            name: secret.name,
                            value: version.value,
                            contentType: version.contentType,
                            tags: version.tags,
                            attributes: WireAttributesInput(enabled: version.enabled)
                        )
                    }
                }
                for key in vault.keys {
                    let (privateKey, keyType) = try KeyFactory.generate(
                        keyType: key.keyType, size: key.size, curve: key.curve)
                    var publicJWK = try privateKey.publicKey.jwk()
                    publicJWK.kty = keyType
                    _ = try await store.addKey(
                        vault: vault.name,
                        name: key.name,
                        publicKey: publicJWK,
                        keyOperations: KeyFactory.defaultOperations(for: keyType),
                        tags: key.tags,
                        attributes: WireAttributesInput(enabled: key.enabled)
                    )
                }
                for certificate in vault.certificates {
                    for _ in 0..<certificate.versions {
                        let (material, policy) = try issue(certificate, now: now)
                        _ = try await store.addCertificate(
                            vault: vault.name,
                            name: certificate.name,
                            material: material,
                            policy: policy,
                            tags: certificate.tags,
                            attributes: WireAttributesInput(enabled: certificate.enabled),
                            preserveCertOrder: nil
                        )
                    }
                }
            }
        } catch let failure as KeyVaultFailure {
            throw .invalidSeed(SeedError(path: "<seed>", problem: failure.message))
        } catch let error as PKIError {
            throw .cryptography(error.description)
        } catch {
            throw .cryptography("\(error)")
        }
    }

    private static func policy(for certificate: SeedCertificate) -> CertificatePolicy {
        CertificatePolicy(
            keyProperties: .init(
                exportable: true, keyType: certificate.keyType, keySize: certificate.keySize, reuseKey: false,
                curve: certificate.curve),
            secretProperties: .init(contentType: certificate.contentType),
            x509Properties: .init(
                subject: certificate.subject ?? "CN=\(certificate.dnsNames[0])",
                subjectAlternativeNames: certificate.dnsNames.isEmpty ? nil : .init(dnsNames: certificate.dnsNames),
                validityMonths: certificate.validityMonths
            ),
            issuer: .init(name: certificate.chain == 1 ? "Self" : "Unknown")
        ).withDefaults()
    }

    /// A self-signed certificate, or a leaf issued by a freshly generated intermediate and root,
    /// stored with its chain (leaf, intermediate, root) like an imported chain.
    private static func issue(_ certificate: SeedCertificate, now: Date) throws -> (
        IssuedCertificate, CertificatePolicy
    ) {
        let policy = policy(for: certificate)
        if certificate.chain == 1 {
            return try CertificateFactory.create(policy: policy, now: now)
        }
        let notAfter = CertificateFactory.addMonths(certificate.validityMonths, to: now)
        let rootKey = try PrivateKey.generate(.ec(.p384))
        var rootTemplate = CertificateTemplate(
            subject: "CN=\(certificate.name) Root CA, O=akvfs emulator", notBefore: now, notAfter: notAfter)
        rootTemplate.isCertificateAuthority = true
        rootTemplate.keyUsage = [.keyCertSign, .cRLSign]
        let root = try rootTemplate.selfSigned(with: rootKey)
        var issuer = root
        var issuerKey = rootKey
        var chain = [root]
        if certificate.chain == 3 {
            let intermediateKey = try PrivateKey.generate(.ec(.p256))
            var intermediateTemplate = CertificateTemplate(
                subject: "CN=\(certificate.name) Intermediate CA, O=akvfs emulator",
                notBefore: now,
                notAfter: notAfter
            )
            intermediateTemplate.isCertificateAuthority = true
            intermediateTemplate.pathLengthConstraint = 0
            intermediateTemplate.keyUsage = [.keyCertSign, .cRLSign]
            let intermediate = try intermediateTemplate.issue(
                for: intermediateKey.publicKey, issuer: root, issuerKey: rootKey)
            chain.insert(intermediate, at: 0)
            issuer = intermediate
            issuerKey = intermediateKey
        }
        let keyProperties = policy.keyProperties!
        let (leafKey, keyType) = try KeyFactory.generate(
            keyType: keyProperties.keyType, size: keyProperties.keySize, curve: keyProperties.curve)
        var leafTemplate = CertificateTemplate(
            subject: policy.x509Properties!.subject!, notBefore: now, notAfter: notAfter)
        leafTemplate.subjectAlternativeNames = certificate.dnsNames.map(SubjectAlternativeName.dns)
        leafTemplate.keyUsage = keyType.hasPrefix("EC") ? [.digitalSignature] : [.digitalSignature, .keyEncipherment]
        leafTemplate.extendedKeyUsage = CertificateFactory.defaultExtendedKeyUsages
        let leaf = try leafTemplate.issue(for: leafKey.publicKey, issuer: issuer, issuerKey: issuerKey)
        let material = try CertificateFactory.backingSecret(
            key: leafKey,
            certificates: [leaf] + chain,
            contentType: certificate.contentType,
            leaf: leaf,
            keyType: keyType
        )
        return (material, policy)
    }
}
