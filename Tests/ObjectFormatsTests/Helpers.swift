import FoundationEssentials
import PKI
import Testing

/// root -> intermediate -> server, all EC.
struct ServerChain {
    let rootKey: PrivateKey
    let intermediateKey: PrivateKey
    let serverKey: PrivateKey
    let root: Certificate
    let intermediate: Certificate
    let server: Certificate

    static let shared = Result { () throws(PKIError) in try ServerChain() }

    init() throws(PKIError) {
        rootKey = try PrivateKey.generate(.ec(.p384))
        intermediateKey = try PrivateKey.generate(.ec(.p256))
        serverKey = try PrivateKey.generate(.ec(.p256))
        root = try Self.template("CN=Test Root CA, O=akvfs tests", ca: true).selfSigned(with: rootKey)
        intermediate = try Self.template("CN=Test Intermediate CA, O=akvfs tests", ca: true)
            .issue(for: intermediateKey.publicKey, issuer: root, issuerKey: rootKey)
        server = try Self.template("CN=server.example", ca: false)
            .issue(for: serverKey.publicKey, issuer: intermediate, issuerKey: intermediateKey)
    }

    static func template(_ subject: String, ca: Bool) -> CertificateTemplate {
        let notBefore = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 - 3600).rounded(.down))
        var template = CertificateTemplate(
            subject: subject, notBefore: notBefore, notAfter: notBefore.addingTimeInterval(86400 * 30))
        template.isCertificateAuthority = ca
        return template
    }
}

/// Every ordering of `items`.
func permutations<Element>(_ items: [Element]) -> [[Element]] {
    guard items.count > 1 else { return [items] }
    var result: [[Element]] = []
    for index in items.indices {
        var rest = items
        let first = rest.remove(at: index)
        for tail in permutations(rest) { result.append([first] + tail) }
    }
    return result
}

/// Standard base64 with padding, as Key Vault stores a PFX.
func base64(_ bytes: [UInt8]) -> String {
    Data(bytes).base64EncodedString()
}

func bytes(_ text: String) -> [UInt8] {
    Array(text.utf8)
}

func text(_ bytes: [UInt8]) -> String {
    String(decoding: bytes, as: UTF8.self)
}

enum ContentTypes {
    static let pkcs12 = "application/x-pkcs12"
    static let pem = "application/x-pem-file"
}
