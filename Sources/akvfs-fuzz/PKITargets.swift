import FoundationEssentials
import ObjectFormats
import PKI

extension FuzzTarget {
    static let pkiTargets = [
        FuzzTarget(name: "pem", summary: "PEM text: blocks, private keys, certificates", run: checkPEM),
        FuzzTarget(name: "pkcs12", summary: "a PKCS#12 (PFX) file, opened with a blank password", run: checkPKCS12),
        FuzzTarget(
            name: "certificate", summary: "an X.509 certificate (DER), as a certificate's cer",
            run: checkCertificateRendering),
        FuzzTarget(
            name: "cert-secret",
            summary: "a certificate's secret value (base64 PFX or PEM) rendered as PEM and TLS files",
            run: { input throws(InvariantFailure) in
                for contentType in ["application/x-pkcs12", "application/x-pem-file"] {
                    try checkSecretRendering(value: text(input), contentType: contentType, certificateBacked: true)
                }
            }),
        FuzzTarget(
            name: "byte-codecs", summary: "a plain secret's value decoded per objectEncoding (utf-8, base64, hex)",
            run: { input throws(InvariantFailure) in
                try checkSecretRendering(value: text(input), contentType: nil, certificateBacked: false)
            }),
    ]
}

// MARK: - PEM, PKCS#12, certificates

@Sendable
private func checkPEM(_ input: [UInt8]) throws(InvariantFailure) {
    let pem = text(input)
    if let blocks = try? PEM.decode(pem) {
        for block in blocks {
            let again = try? PEM.decode(PEM.encode(block.der, label: block.label))
            try require(again == [block], "block '\(block.label)' does not survive PEM.encode then decode")
        }
    }
    if let key = try? PrivateKey(pem: pem) { try checkPrivateKey(key) }
    if let certificates = try? Certificate.all(fromPEM: pem) {
        for certificate in certificates { try checkCertificate(certificate) }
    }
}

@Sendable
private func checkPKCS12(_ input: [UInt8]) throws(InvariantFailure) {
    guard let contents = try? PKCS12.parse(input) else { return }
    for key in contents.privateKeys { try checkPrivateKey(key) }
    for certificate in contents.certificates { try checkCertificate(certificate) }
    // What was read can be written and read back. (A key that belongs to none of the
    // certificates cannot be stored with them, so it goes alone.)
    let key = contents.privateKeys.first
    let keyFits =
        key.map { key in
            contents.certificates.isEmpty || contents.certificates.contains { $0.publicKey == key.publicKey }
        } ?? true
    guard key != nil || !contents.certificates.isEmpty else { return }
    let certificates = keyFits ? contents.certificates : []
    guard let written = try? PKCS12.create(privateKey: key, certificates: certificates) else {
        throw InvariantFailure(message: "the PFX's own key and certificates cannot be written back")
    }
    guard let again = try? PKCS12.parse(written) else {
        throw InvariantFailure(message: "a PFX written by PKCS12.create does not parse")
    }
    try require(again.certificates == certificates, "certificates change through create and parse")
    try require(
        again.privateKeys.map(\.publicKey) == key.map { [$0.publicKey] } ?? [],
        "the key changes through create and parse")
}

private func checkPrivateKey(_ key: PrivateKey) throws(InvariantFailure) {
    guard let der = try? key.pkcs8DER() else {
        throw InvariantFailure(message: "a key read cannot be written as PKCS#8")
    }
    guard let again = try? PrivateKey(der: der) else {
        throw InvariantFailure(message: "a key's PKCS#8 does not read back")
    }
    try require(again.publicKey == key.publicKey, "a key's PKCS#8 reads back as another key")
}

private func checkCertificate(_ certificate: Certificate) throws(InvariantFailure) {
    guard let again = try? Certificate(pem: certificate.pem()) else {
        throw InvariantFailure(message: "a certificate's PEM does not read back")
    }
    try require(
        again == certificate && again.subject == certificate.subject && again.issuer == certificate.issuer
            && again.serialNumberHex == certificate.serialNumberHex && again.notBefore == certificate.notBefore
            && again.notAfter == certificate.notAfter
            && again.subjectAlternativeNames == certificate.subjectAlternativeNames
            && again.publicKey == certificate.publicKey,
        "a certificate reads back with other fields")
}

// MARK: - Rendering, as the filesystem and the CSI volumes serve objects

/// A certificate's `cer` as its file: one CERTIFICATE block, whether or not the DER parses.
@Sendable
func checkCertificateRendering(_ der: [UInt8]) throws(InvariantFailure) {
    let file = ObjectFormatter.certificate(cer: der).bytes
    try require(
        file == Array(PEM.encode(der, label: "CERTIFICATE").utf8), "ObjectFormats' and PKI's PEM encoders disagree")
    if let certificate = try? Certificate(der: der) {
        try require(certificate.der == der, "Certificate.der is not the DER it was read from")
        try checkCertificate(certificate)
    }
}

/// A key's file: its public key as one PUBLIC KEY block, the same key as the JWK.
func checkKeyRendering(_ jwk: JSONWebKey) throws(InvariantFailure) {
    guard let file = try? ObjectFormatter.key(jwk) else { return }
    guard let blocks = try? PEM.decode(text(file.bytes)), blocks.count == 1, blocks[0].label == "PUBLIC KEY",
        let rendered = try? PublicKey(spkiDER: blocks[0].der)
    else { throw InvariantFailure(message: "a key's file is not one PUBLIC KEY block") }
    try require(rendered == (try? PublicKey(jwk: jwk)), "a key's file holds another key than its JWK")
}

/// A secret's file for every objectFormat and objectEncoding, and the TLS files of a certificate's secret.
func checkSecretRendering(value: String, contentType: String?, certificateBacked: Bool) throws(InvariantFailure) {
    func render(_ format: CertificateFormat, _ encoding: ObjectEncoding?) -> FormattedObject? {
        try? ObjectFormatter.secret(
            value: value, contentType: contentType, certificateBacked: certificateBacked, format: format,
            encoding: encoding)
    }
    let isPKCS12 = certificateBacked && contentType?.lowercased() == "application/x-pkcs12"
    let isPEM = certificateBacked && contentType?.lowercased() == "application/x-pem-file"

    if !certificateBacked || isPKCS12 {
        // The stored text decoded per objectEncoding: plain secrets with pem, PFX secrets with pfx.
        let format: CertificateFormat = certificateBacked ? .pfx : .pem
        try require(render(format, nil)?.bytes == Array(value.utf8), "no encoding changed the value")
        try require(render(format, .utf8)?.bytes == Array(value.utf8), "utf-8 changed the value")
        if let bytes = render(format, .hex)?.bytes {
            let hex = bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
            try require(hex == value.lowercased(), "hex decoding does not round-trip")
        }
        if let bytes = render(format, .base64)?.bytes {
            let canonical = Data(bytes).base64EncodedString()
            try require(
                (try? ObjectFormatter.secret(
                    value: canonical, contentType: contentType, certificateBacked: certificateBacked, format: format,
                    encoding: .base64))?
                    .bytes == bytes, "base64 decoding does not round-trip")
            if let foundation = Data(base64Encoded: value.filter { $0 != "\r" && $0 != "\n" && $0 != "\r\n" }) {
                try require(Array(foundation) == bytes, "base64 decodes differently from Foundation's decoder")
            }
        }
    }
    if !certificateBacked || isPEM {
        try require(render(.pfx, nil) == nil, "objectFormat pfx accepted for a secret that is not a PFX")
    }
    if isPEM { try require(render(.pem, nil)?.bytes == Array(value.utf8), "a PEM certificate's secret was changed") }
    if isPKCS12, let file = render(.pem, nil) { try checkKeysThenCertificates(file.bytes) }

    if certificateBacked, let material = try? ObjectFormatter.tlsMaterial(value: value, contentType: contentType) {
        try require(
            material.fullChainPEM == material.leafPEM + material.chainPEM,
            "fullchain.pem is not cert.pem then chain.pem")
        guard let key = try? PrivateKey(pem: text(material.privateKeyPEM)),
            let leaf = try? Certificate(pem: text(material.leafPEM)),
            let chain = try? Certificate.all(fromPEM: text(material.chainPEM))
        else { throw InvariantFailure(message: "a TLS file does not read back") }
        try require(leaf.publicKey == key.publicKey, "cert.pem does not match key.pem")
        try require(!chain.contains(leaf), "the leaf is repeated in chain.pem")
    }
}

/// The PEM of a PFX: every private key first, then certificates; exactly PKI's PEM of each block.
private func checkKeysThenCertificates(_ file: [UInt8]) throws(InvariantFailure) {
    guard let blocks = try? PEM.decode(text(file)) else {
        throw InvariantFailure(message: "a PFX's PEM does not decode")
    }
    let labels = blocks.map(\.label)
    let keys = labels.prefix { $0 == "PRIVATE KEY" }.count
    try require(
        labels.dropFirst(keys).allSatisfy { $0 == "CERTIFICATE" },
        "a PFX's PEM is not keys then certificates: \(labels)")
    try require(
        Array(blocks.map { PEM.encode($0.der, label: $0.label) }.joined().utf8) == file,
        "ObjectFormats' and PKI's PEM encoders disagree")
    for block in blocks {
        if block.label == "CERTIFICATE" {
            try require((try? Certificate(der: block.der)) != nil, "a PFX's certificate does not read back")
        } else {
            try require((try? PrivateKey(der: block.der)) != nil, "a PFX's key does not read back")
        }
    }
}
