import FoundationEssentials
import HTTPTransport
import PKI

/// A service principal authenticating with a certificate: an RS256 client assertion carrying
/// the certificate's SHA-1 thumbprint (`x5t`), signed with its private key.
public struct ClientCertificateCredential: TokenCredential {
    private let certificatePath: String
    private let password: String?
    private let sendCertificateChain: Bool
    private let endpoint: EntraTokenEndpoint

    /// `certificatePath` is a PEM file (private key and certificate) or a PKCS#12 file. It is read
    /// for every token request, so a renewed certificate is picked up without a restart.
    public init(
        authority: EntraAuthority,
        clientId: String,
        certificatePath: String,
        password: String? = nil,
        sendCertificateChain: Bool = false,
        http: any HTTPClient,
        now: @escaping @Sendable () -> Date = { Date() },
        clock: any Clock<Duration> = ContinuousClock()
    ) {
        self.certificatePath = certificatePath
        self.password = password
        self.sendCertificateChain = sendCertificateChain
        endpoint = EntraTokenEndpoint(
            http: http, authority: authority, credential: "ClientCertificateCredential", clientId: clientId, now: now,
            clock: clock)
    }

    public var clientId: String { endpoint.clientId }

    public var name: String { endpoint.credentialName }

    public func getToken(_ context: TokenRequestContext) async throws(CredentialError) -> AccessToken {
        try await endpoint.requestToken(context) { tenant throws(CredentialError) in
            let (key, chain) = try loadCertificate()
            return try makeAssertion(key: key, chain: chain, audience: endpoint.tokenURL(tenant: tenant))
        }
    }

    private func failure(_ message: String) -> CredentialError {
        endpoint.invalidConfiguration(message)
    }

    /// The RSA key and its certificate first, then the rest of the file's certificates.
    private func loadCertificate() throws(CredentialError) -> (PrivateKey, [Certificate]) {
        guard let data = FileManager.default.contents(atPath: certificatePath) else {
            throw failure("cannot read the certificate file \(certificatePath) (AZURE_CLIENT_CERTIFICATE_PATH)")
        }
        let bytes = Array(data)
        var key: PrivateKey?
        var certificates: [Certificate] = []
        do {
            if let text = String(validating: bytes, as: UTF8.self), text.contains("-----BEGIN") {
                key = try PrivateKey(pem: text, password: password)
                certificates = try Certificate.all(fromPEM: text)
            } else {
                let contents = try PKCS12.parse(bytes, password: password ?? "")
                key = contents.privateKeys.first
                certificates = contents.certificates
            }
        } catch {
            throw failure("cannot use the certificate file \(certificatePath): \(error.reason)")
        }
        guard let key else { throw failure("the certificate file \(certificatePath) holds no private key") }
        guard case .rsa = key.algorithm else {
            throw failure(
                "the certificate file \(certificatePath) holds a \(key.algorithm) key; Entra client assertions here are RS256, which needs an RSA key"
            )
        }
        guard let leaf = certificates.first(where: { $0.publicKey == key.publicKey }) else {
            throw failure("no certificate in \(certificatePath) matches its private key")
        }
        return (key, [leaf] + certificates.filter { $0 != leaf })
    }

    private func makeAssertion(key: PrivateKey, chain: [Certificate], audience: String) throws(CredentialError)
        -> String
    {
        struct Header: Encodable {
            var alg = "RS256"
            var typ = "JWT"
            var x5t: String
            var x5c: [String]?
        }
        struct Claims: Encodable {
            var aud: String
            var iss: String
            var sub: String
            var jti: String
            var nbf: Int64
            var iat: Int64
            var exp: Int64
        }
        let issued = Int64(endpoint.now().timeIntervalSince1970)
        let header = Header(
            x5t: Base64URL.encode(chain[0].sha1Thumbprint),
            x5c: sendCertificateChain ? chain.map { Data($0.der).base64EncodedString() } : nil
        )
        let claims = Claims(
            aud: audience, iss: clientId, sub: clientId, jti: UUID().uuidString.lowercased(), nbf: issued, iat: issued,
            exp: issued + 600)
        do {
            return try JWS.sign(
                headerJSON: Array(try JSONEncoder().encode(header)),
                payloadJSON: Array(try JSONEncoder().encode(claims)),
                key: key,
                algorithm: .rs256
            )
        } catch let error as PKIError {
            throw failure("signing the client assertion failed: \(error.reason)")
        } catch {
            throw failure("signing the client assertion failed")
        }
    }
}
