import FoundationEssentials
import PKI

/// Mints and checks the JWTs of the emulated Entra ID (access tokens for Key Vault) and of the
/// emulated Kubernetes cluster's service-account issuer. The two sign with different keys, as a
/// cluster's key is not Entra's: Entra trusts service-account tokens only through the issuer's
/// published keys.
struct TokenService: Sendable {
    /// Key Vault's well-known application id, accepted as an audience like on Azure.
    static let keyVaultApplicationId = "cfa8b339-82a2-471a-a3c9-0fc0be7a4093"
    /// Issuer of the service-account tokens minted by the admin API.
    static let serviceAccountIssuer = "https://oidc.emulator.localhost"
    static let federatedAudience = "api://AzureADTokenExchange"

    /// Entra ID's signing key and its id (`kid` and `x5t`).
    let signingKey: PrivateKey
    let keyId: String
    /// The cluster's service-account signing key, and its id as kube-apiserver derives it:
    /// base64url of the SHA-256 of the public key's DER.
    let serviceAccountKey: PrivateKey
    let serviceAccountKeyId: String
    let tenantId: String
    let lifetimeSeconds: Int64
    let now: @Sendable () -> Int64

    init(tenantId: String, lifetimeSeconds: Int, now: @escaping @Sendable () -> Int64) throws(PKIError) {
        signingKey = try PrivateKey.generate(.rsa(bits: 2048))
        keyId = Base64URL.encode(Digest.sha1(try signingKey.publicKey.spkiDER()))
        serviceAccountKey = try PrivateKey.generate(.rsa(bits: 2048))
        serviceAccountKeyId = Base64URL.encode(Digest.sha256(try serviceAccountKey.publicKey.spkiDER()))
        self.tenantId = tenantId
        self.lifetimeSeconds = Int64(lifetimeSeconds)
        self.now = now
    }

    var issuer: String { "https://sts.windows.net/\(tenantId)/" }

    struct IssuedToken: Sendable {
        var token: String
        var expiresIn: Int64
        var expiresOn: Int64
        var notBefore: Int64
    }

    func issueAccessToken(for principal: Principal, audience: String, authenticationMethod: String) -> IssuedToken {
        let issuedAt = now()
        let claims = AccessTokenClaims(
            aud: audience,
            iss: issuer,
            iat: issuedAt,
            nbf: issuedAt,
            exp: issuedAt + lifetimeSeconds,
            appid: principal.clientId,
            appidacr: authenticationMethod,
            idp: issuer,
            idtyp: "app",
            oid: principal.objectId,
            sub: principal.objectId,
            tid: tenantId,
            uti: Base64URL.encode(SecureRandom.bytes(16)),
            ver: "1.0",
            xmsMirid: principal.resourceId
        )
        let token = sign(claims)
        return IssuedToken(
            token: token, expiresIn: lifetimeSeconds, expiresOn: issuedAt + lifetimeSeconds, notBefore: issuedAt)
    }

    /// What a service-account token is minted with beyond subject, audience and lifetime.
    struct ServiceAccountTokenOptions: Sendable {
        /// Unix seconds; nil is now. In the past makes expired tokens, in the future not-yet-valid ones.
        var issuedAt: Int64?
        /// nil is the emulator's issuer; anything else is a token no cluster of the emulator issued.
        var issuer: String?
        /// The pod a bound token is for (`kubernetes.io.pod`), as kubelet's tokenRequests get them.
        var pod: (name: String, uid: String)?

        init(issuedAt: Int64? = nil, issuer: String? = nil, pod: (name: String, uid: String)? = nil) {
            self.issuedAt = issuedAt
            self.issuer = issuer
            self.pod = pod
        }
    }

    /// A token as kube-apiserver's TokenRequest mints it: `sub`, `aud`, times, `jti`, and for a
    /// service-account subject the `kubernetes.io` claim (namespace, service account, bound pod).
    func issueServiceAccountToken(
        subject: String, audience: String, lifetimeSeconds: Int64, options: ServiceAccountTokenOptions = .init()
    ) -> String {
        let issuedAt = options.issuedAt ?? now()
        var kubernetes: ServiceAccountTokenClaims.Kubernetes?
        let parts = subject.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        if parts.count == 4, parts[0] == "system", parts[1] == "serviceaccount" {
            kubernetes = .init(
                namespace: parts[2],
                serviceaccount: .init(name: parts[3], uid: Identifiers.stableUUID(from: subject)),
                pod: options.pod.map { .init(name: $0.name, uid: $0.uid) })
        }
        return sign(
            ServiceAccountTokenClaims(
                iss: options.issuer ?? Self.serviceAccountIssuer,
                sub: subject,
                aud: [audience],
                iat: issuedAt,
                nbf: issuedAt,
                exp: issuedAt + lifetimeSeconds,
                jti: Identifiers.newUUID(),
                kubernetes: kubernetes
            ),
            key: serviceAccountKey, keyId: serviceAccountKeyId, x5t: false
        )
    }

    private func sign(_ claims: some Encodable) -> String {
        sign(claims, key: signingKey, keyId: keyId, x5t: true)
    }

    private func sign(_ claims: some Encodable, key: PrivateKey, keyId: String, x5t: Bool) -> String {
        let header = JOSEHeader(alg: "RS256", typ: "JWT", kid: keyId, x5t: x5t ? keyId : nil)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        do {
            return try JWS.sign(
                headerJSON: Array(try encoder.encode(header)),
                payloadJSON: Array(try encoder.encode(claims)),
                key: key,
                algorithm: .rs256
            )
        } catch {
            // Signing with our own freshly generated key cannot fail short of a broken OpenSSL.
            preconditionFailure("signing an emulator token failed: \(error)")
        }
    }

    /// The JWKS document Entra's discovery endpoint publishes.
    func jwks() throws -> [String: [JSONWebKey]] {
        var key = try signingKey.publicKey.jwk()
        key.kid = keyId
        return ["keys": [key]]
    }

    /// The service-account issuer's JWKS as kube-apiserver serves it at `/openid/v1/jwks`:
    /// each key with `use`, `alg` and `kid`.
    func serviceAccountJWKS() throws(PKIError) -> ServiceAccountJWKS {
        let key = try serviceAccountKey.publicKey.jwk()
        return ServiceAccountJWKS(keys: [
            .init(use: "sig", kty: key.kty, kid: serviceAccountKeyId, alg: "RS256", n: key.n, e: key.e)
        ])
    }

    // MARK: Key Vault side

    /// Checks a bearer token the way Key Vault does and returns who it speaks for.
    func validateAccessToken(_ token: String, resource: String) throws(KeyVaultFailure) -> AccessTokenClaims {
        let jws: JWS
        let header: JOSEHeader
        let claims: AccessTokenClaims
        do {
            jws = try JWS(compact: token)
            header = try JSONDecoder().decode(JOSEHeader.self, from: Data(jws.headerJSON))
            claims = try JSONDecoder().decode(AccessTokenClaims.self, from: Data(jws.payloadJSON))
        } catch {
            throw .unauthorized("AKV10000: Request is missing a Bearer or PoP token. The bearer token is malformed.")
        }
        guard header.kid == keyId || header.x5t == keyId, header.alg == "RS256" else {
            throw .unauthorized("AKV10046: Unable to resolve the key used for signature validation.")
        }
        guard jws.verify(with: signingKey.publicKey, algorithm: .rs256) else {
            throw .unauthorized("AKV10046: Token signature validation failed.")
        }
        let current = now()
        guard claims.exp > current else {
            throw .unauthorized(
                "[TokenExpired] Error validating token: 'S2S12086'. The token expired at \(claims.exp).")
        }
        guard claims.nbf <= current + 300 else {
            throw .unauthorized(
                "[TokenNotYetValid] Error validating token: the token is not valid before \(claims.nbf).")
        }
        let accepted = [resource, resource + "/", Self.keyVaultApplicationId]
        guard accepted.contains(claims.aud) else {
            throw .unauthorized(
                "AKV10022: Invalid audience. Expected \(resource) or \(Self.keyVaultApplicationId), found: \(claims.aud)."
            )
        }
        guard claims.iss == issuer else {
            throw .unauthorized("AKV10032: Invalid issuer. Expected one of \(issuer), found: \(claims.iss).")
        }
        return claims
    }

    // MARK: Token endpoint side

    /// Reads a JWT presented as a client assertion, without trusting it yet.
    func readAssertion(_ assertion: String) throws(EntraFailure) -> (
        jws: JWS, header: JOSEHeader, claims: AssertionClaims
    ) {
        do {
            let jws = try JWS(compact: assertion.trimmedWhitespace)
            let header = try JSONDecoder().decode(JOSEHeader.self, from: Data(jws.headerJSON))
            let claims = try JSONDecoder().decode(AssertionClaims.self, from: Data(jws.payloadJSON))
            return (jws, header, claims)
        } catch {
            throw EntraFailure(
                status: 400, error: "invalid_client", code: 50027, description: "JWT token is invalid or malformed.")
        }
    }

    /// Checks a federated (workload identity) assertion minted by this emulator's issuer.
    func validateFederatedAssertion(
        jws: JWS,
        claims: AssertionClaims,
        acceptedSubjects: [String]?
    ) throws(EntraFailure) -> String {
        guard claims.iss == Self.serviceAccountIssuer else {
            throw EntraFailure(
                status: 400,
                error: "invalid_client",
                code: 700211,
                description:
                    "No matching federated identity record found for presented assertion issuer '\(claims.iss ?? "")'. The emulator trusts tokens from \(Self.serviceAccountIssuer) (mint them with POST /_emulator/service-account-tokens)."
            )
        }
        // Entra checks the assertion with the keys the issuer publishes, which are the cluster's.
        guard jws.verify(with: serviceAccountKey.publicKey, algorithm: .rs256) else {
            throw EntraFailure(
                status: 400, error: "invalid_client", code: 50013, description: "Assertion failed signature validation."
            )
        }
        try checkValidity(claims)
        guard claims.aud.contains(Self.federatedAudience) else {
            throw EntraFailure(
                status: 400,
                error: "invalid_client",
                code: 700212,
                description:
                    "No matching federated identity record found for presented assertion audience '\(claims.aud.joined(separator: ","))'. Expected \(Self.federatedAudience)."
            )
        }
        let subject = claims.sub ?? ""
        if let acceptedSubjects, !acceptedSubjects.contains(subject) {
            throw EntraFailure(
                status: 400,
                error: "invalid_client",
                code: 700213,
                description: "No matching federated identity record found for presented assertion subject '\(subject)'."
            )
        }
        return subject
    }

    /// The subject of a service-account token this emulator minted and that has not expired,
    /// whatever its audience (the emulated Kubernetes API accepts any).
    func validateServiceAccountToken(_ token: String) -> String? {
        guard let (jws, _, claims) = try? readAssertion(token), claims.iss == Self.serviceAccountIssuer,
            jws.verify(with: serviceAccountKey.publicKey, algorithm: .rs256), (try? checkValidity(claims)) != nil
        else { return nil }
        return claims.sub
    }

    func checkValidity(_ claims: AssertionClaims) throws(EntraFailure) {
        let current = Double(now())
        guard let exp = claims.exp, exp > current else {
            throw EntraFailure(
                status: 400, error: "invalid_client", code: 700024,
                description: "Client assertion is not within its valid time range.")
        }
        if let nbf = claims.nbf, nbf > current + 300 {
            throw EntraFailure(
                status: 400, error: "invalid_client", code: 700024,
                description: "Client assertion is not within its valid time range.")
        }
    }
}

/// An error answer of the Entra token endpoint (`{"error":…,"error_description":"AADSTS…"}`).
struct EntraFailure: Error, Sendable {
    var status: Int
    var error: String
    var code: Int
    var description: String
}
