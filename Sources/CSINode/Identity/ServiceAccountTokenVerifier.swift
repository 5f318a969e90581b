import AzureIdentity
import FoundationEssentials
import HTTPTransport
import KeyVault
import Logging
import PKI
import SecretProviderClass

/// Who a workload-identity token is exchanged for at Entra ID.
struct ExchangeTarget: Sendable, Hashable {
    var clientId: String
    var tenant: String
    var authorityHost: String
    /// The cloud's Key Vault scope (`https://vault.azure.net/.default`).
    var scope: String

    init(clientId: String, tenant: String, cloud: AzureCloud) {
        self.clientId = clientId
        self.tenant = tenant
        authorityHost = cloud.authorityHost
        scope = cloud.keyVaultResource + "/.default"
    }
}

/// Presents a service-account token to Entra ID as a federated credential.
protocol ServiceAccountTokenExchange: Sendable {
    /// Returns only when Entra ID issued a token for exactly `token`.
    func exchange(_ token: String, as target: ExchangeTarget) async throws(CredentialError)
}

/// The real exchange: a workload-identity credential holding only this token, with no cache, so
/// an access token obtained with another token never counts.
struct EntraTokenExchange: ServiceAccountTokenExchange {
    let http: any HTTPClient

    func exchange(_ token: String, as target: ExchangeTarget) async throws(CredentialError) {
        let credential = WorkloadIdentityCredential(
            authority: EntraAuthority(host: target.authorityHost, tenantId: target.tenant), clientId: target.clientId,
            assertion: .provider { token }, http: http)
        _ = try await credential.getToken(TokenRequestContext(scope: target.scope))
    }
}

/// Decides whether a publish holds the identity its service-account token names, before the
/// token may reach an identity's cache or token box.
///
/// Proof is one of two:
/// 1. the cluster's service-account issuer keys (fetched from the API server, cached, fetched
///    again for a key id not seen yet and every `refreshInterval`) verify the signature, and the
///    issuer is the cluster's;
/// 2. only when those keys are unavailable (no Kubernetes API, or the API server cannot or may not
///    serve them): Entra ID exchanges exactly this token. Proven tokens are remembered by a keyed
///    fingerprint until they expire.
///
/// Either way the token must be unexpired, for `api://AzureADTokenExchange`, and for the pod's own
/// service account (and pod, for bound tokens). A token the keys refuse is refused: it never falls
/// back to Entra, since that would let a forger choose the weaker check.
actor ServiceAccountTokenVerifier {
    struct Settings: Sendable {
        /// How far ahead of this node's clock `nbf` and `iat` may be (the API server's clock may
        /// lead). `exp` gets none: kubelet renews tokens long before they expire.
        var clockSkew: TimeInterval = 60
        /// At most one fetch of the issuer's keys per this many seconds, whatever asks for it, so a
        /// flood of tokens with made-up key ids costs the API server one request per interval.
        var minimumFetchInterval: TimeInterval = 10
        /// Keys older than this are fetched again, so a key the cluster dropped stops being trusted.
        var refreshInterval: TimeInterval = 600
        /// Keys that could not be refreshed for this long count as unavailable.
        var maximumKeyAge: TimeInterval = 86_400
        /// Entra-proven tokens remembered at most; the ones expiring soonest go first.
        var maximumProvenTokens = 10_000
    }

    private let issuerSource: (any ServiceAccountIssuerSource)?
    private let exchange: any ServiceAccountTokenExchange
    private let settings: Settings
    private let now: @Sendable () -> Date
    private let logger = Logger(label: "akvfs.csi")

    private var issuer: ServiceAccountIssuer?
    private var fetchedAt: Date?
    private var lastFetchAttempt: Date?
    /// Why the last fetch failed; nil after a success.
    private var fetchFailure: String?
    private var fetching: Task<Result<ServiceAccountIssuer, IssuerUnavailable>, Never>?

    /// Tokens are fingerprinted with a key that never leaves this process.
    private let fingerprintKey = SecureRandom.bytes(32)
    /// Fingerprints of Entra-proven tokens, and when each token expires.
    private var proven: [[UInt8]: Date] = [:]
    private var proving: [[UInt8]: Task<Result<Void, CredentialError>, Never>] = [:]

    /// `issuerSource` nil: the plugin has no Kubernetes API, so only Entra can prove tokens.
    init(
        issuerSource: (any ServiceAccountIssuerSource)?, exchange: any ServiceAccountTokenExchange,
        settings: Settings = Settings(),
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.issuerSource = issuerSource
        self.exchange = exchange
        self.settings = settings
        self.now = now
    }

    func verify(_ value: String, pod: PodIdentity, target: ExchangeTarget) async throws(VolumeError)
        -> VerifiedServiceAccountToken
    {
        do throws(TokenRefusal) {
            let token = try ServiceAccountToken(value)
            let algorithm = try token.signatureAlgorithm()
            // Claims first: an expired or misdirected token costs neither the API server nor Entra a request.
            let (subject, expiresAt) = try token.checkClaims(pod: pod, now: now(), skew: settings.clockSkew)
            let proof: VerifiedServiceAccountToken.Proof
            switch await keys(for: token.header.kid) {
            case .available(let issuer):
                try check(token, algorithm: algorithm, with: issuer)
                proof = .clusterKeys
            case .unavailable(let reason):
                try await proveWithEntra(token, as: target, expiresAt: expiresAt, keysUnavailable: reason)
                proof = .entraExchange
            }
            return VerifiedServiceAccountToken(value: value, subject: subject, expiresAt: expiresAt, proof: proof)
        } catch {
            logger.warning(
                "refused a service-account token",
                metadata: ["pod": "\(pod.namespace)/\(pod.name)", "reason": "\(error.reason)"])
            throw error.volumeError
        }
    }

    // MARK: The cluster's keys

    private enum Keys {
        case available(ServiceAccountIssuer)
        case unavailable(String)
    }

    private func keys(for keyID: String?) async -> Keys {
        guard issuerSource != nil else {
            return .unavailable("the plugin has no Kubernetes API: no --kubernetes-api and not running in a cluster")
        }
        if fetchedAt.map({ now().timeIntervalSince($0) >= settings.refreshInterval }) ?? true {
            await fetch()
        }
        if let issuer, issuer.candidates(for: keyID).isEmpty {
            // Perhaps the cluster rotated its signing key since the last fetch.
            await fetch()
        }
        guard let issuer, let fetchedAt, now().timeIntervalSince(fetchedAt) < settings.maximumKeyAge else {
            return .unavailable(fetchFailure ?? "the keys have not been fetched yet")
        }
        return .available(issuer)
    }

    /// Fetches the issuer and keys unless a fetch is under way (then waits for it) or one was
    /// tried less than `minimumFetchInterval` ago. A failure keeps the keys held.
    private func fetch() async {
        if let fetching {
            _ = await fetching.value
            return
        }
        let started = now()
        if let lastFetchAttempt, started.timeIntervalSince(lastFetchAttempt) < settings.minimumFetchInterval { return }
        guard let issuerSource else { return }
        lastFetchAttempt = started
        let task = Task { () -> Result<ServiceAccountIssuer, IssuerUnavailable> in
            do throws(IssuerUnavailable) {
                return .success(try await issuerSource.fetch())
            } catch {
                return .failure(error)
            }
        }
        fetching = task
        let result = await task.value
        fetching = nil
        switch result {
        case .success(let fetched):
            if issuer == nil || fetchFailure != nil {
                logger.info(
                    "verifying service-account tokens with the cluster's issuer keys",
                    metadata: [
                        "issuer": "\(fetched.issuer)",
                        "keys": "\(fetched.keys.compactMap(\.id).joined(separator: ","))",
                    ])
            }
            (issuer, fetchedAt, fetchFailure) = (fetched, started, nil)
        case .failure(let failure):
            if fetchFailure != failure.reason {
                logger.warning(
                    issuer == nil
                        ? "cannot read the cluster's service-account issuer keys; until it can, a workload-identity token is accepted only once Entra ID has accepted it"
                        : "cannot refresh the cluster's service-account issuer keys; the ones held are used",
                    metadata: ["reason": "\(failure.reason)"])
            }
            fetchFailure = failure.reason
        }
    }

    private func check(_ token: ServiceAccountToken, algorithm: SignatureAlgorithm, with issuer: ServiceAccountIssuer)
        throws(TokenRefusal)
    {
        let notIssued =
            "the token was not issued by this cluster's API server; only tokens from kubelet's tokenRequests are accepted"
        let keyName = token.header.kid.map { "key \($0)" } ?? "no key id"
        let candidates = issuer.candidates(for: token.header.kid)
        guard !candidates.isEmpty else {
            throw TokenRefusal(
                "it names \(keyName), which is not among the cluster's service-account issuer keys",
                check:
                    "\(notIssued) (after a rotation of the cluster's signing key, the keys are fetched again at most every "
                    + "\(Int(settings.minimumFetchInterval)) s, and kubelet retries)")
        }
        let verifies = candidates.contains { candidate in
            (candidate.algorithm ?? algorithm.rawValue) == algorithm.rawValue
                && token.jws.verify(with: candidate.key, algorithm: algorithm)
        }
        guard verifies else {
            throw TokenRefusal(
                "its signature does not verify with the cluster's keys (\(keyName), \(algorithm.rawValue))",
                check: notIssued)
        }
        guard let tokenIssuer = token.claims.iss, tokenIssuer == issuer.issuer else {
            throw TokenRefusal(
                "its issuer \(token.claims.iss ?? "(none)") is not the cluster's issuer \(issuer.issuer)",
                check: "\(notIssued) (the cluster's issuer is its --service-account-issuer)")
        }
    }

    // MARK: Entra's proof

    private func proveWithEntra(
        _ token: ServiceAccountToken, as target: ExchangeTarget, expiresAt: Date, keysUnavailable reason: String
    ) async throws(TokenRefusal) {
        let input = [target.authorityHost, target.tenant.lowercased(), target.clientId.lowercased(), token.value]
            .joined(separator: "\n")
        let fingerprint = Digest.hmacSHA256(key: fingerprintKey, Array(input.utf8))
        if let expiry = proven[fingerprint], expiry > now() { return }

        let task: Task<Result<Void, CredentialError>, Never>
        if let running = proving[fingerprint] {
            task = running
        } else {
            let (exchange, value) = (self.exchange, token.value)
            task = Task {
                do throws(CredentialError) {
                    try await exchange.exchange(value, as: target)
                    return .success(())
                } catch {
                    return .failure(error)
                }
            }
            proving[fingerprint] = task
        }
        let result = await task.value
        if proving[fingerprint] == task { proving[fingerprint] = nil }
        let why =
            "the cluster's service-account issuer keys are unavailable (\(reason)), so the token had to be proven by exchanging it at Entra ID"
        switch result {
        case .success:
            remember(fingerprint, until: expiresAt)
        case .failure(let error) where error.kind == .transient || error.kind == .unavailable:
            throw TokenRefusal(
                "Entra ID could not be asked to accept it: \(error.message)", check: "\(why); kubelet retries",
                retryable: true)
        case .failure(let error):
            throw TokenRefusal(
                "Entra ID did not accept it for client \(target.clientId): \(error.message)",
                check: "\(why); check the identity's federated credential for the pod's service account")
        }
    }

    private func remember(_ fingerprint: [UInt8], until expiry: Date) {
        let current = now()
        proven = proven.filter { $0.value > current }
        if proven.count >= settings.maximumProvenTokens, let soonest = proven.min(by: { $0.value < $1.value }) {
            proven[soonest.key] = nil
        }
        proven[fingerprint] = expiry
    }
}
