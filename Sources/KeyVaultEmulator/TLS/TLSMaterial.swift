import FoundationEssentials
import Glibc
import PKI

/// The emulator's own certificate authority and the server certificate it signs. Clients trust
/// the CA (written to `--ca-out`) and can then reach `localhost`, any `<vault>.vault.localhost`,
/// 127.0.0.1 and ::1 over verified TLS, as they would reach Azure.
struct TLSMaterial: Sendable {
    let caCertificate: Certificate
    let serverCertificate: Certificate
    let serverKey: PrivateKey

    static let serverNames: [SubjectAlternativeName] = [
        .dns("localhost"), .dns("*.vault.localhost"), .dns("vault.localhost"), .ipAddress("127.0.0.1"),
        .ipAddress("::1"),
    ]

    static func generate(now: Date) throws(PKIError) -> TLSMaterial {
        // Both certificates are valid from an hour ago (clock skew) for 90 days.
        func template(subject: String) -> CertificateTemplate {
            CertificateTemplate(
                subject: subject, notBefore: now.addingTimeInterval(-3600),
                notAfter: now.addingTimeInterval(90 * 86_400))
        }
        let caKey = try PrivateKey.generate(.ec(.p256))
        var caTemplate = template(subject: "CN=akvfs Key Vault emulator CA, O=akvfs")
        caTemplate.isCertificateAuthority = true
        caTemplate.pathLengthConstraint = 0
        caTemplate.keyUsage = [.keyCertSign, .cRLSign, .digitalSignature]
        let caCertificate = try caTemplate.selfSigned(with: caKey)

        let serverKey = try PrivateKey.generate(.ec(.p256))
        var serverTemplate = template(subject: "CN=localhost, O=akvfs")
        serverTemplate.subjectAlternativeNames = serverNames
        serverTemplate.keyUsage = [.digitalSignature]
        serverTemplate.extendedKeyUsage = ["1.3.6.1.5.5.7.3.1"]
        let serverCertificate = try serverTemplate.issue(
            for: serverKey.publicKey, issuer: caCertificate, issuerKey: caKey)
        return TLSMaterial(caCertificate: caCertificate, serverCertificate: serverCertificate, serverKey: serverKey)
    }

    /// Writes the CA certificate next to its final path and renames it into place, so a reader
    /// never sees half a file.
    func writeCA(to path: String) throws(EmulatorError) {
        let temporary = path + ".tmp-\(Identifiers.newVersion().prefix(8))"
        do {
            try Data(caCertificate.pem().utf8).write(to: URL(fileURLWithPath: temporary))
        } catch {
            throw EmulatorError.cannotWriteCA(path: path, reason: "\(error)")
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw EmulatorError.cannotWriteCA(path: path, reason: reason)
        }
    }
}
