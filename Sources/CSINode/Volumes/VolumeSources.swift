import AzureIdentity
import FoundationEssentials
import HTTPTransport
import KeyVault
import ObjectCache
import PKI
import SecretProviderClass
import Synchronization

/// Settings every volume's vault client and credential share.
public struct SourceSettings: Sendable {
    /// Used when a SecretProviderClass names no cloud (the Azure provider's `--cloud-name`).
    public var defaultCloud: AzureCloud = .publicCloud
    public var clientOptions = KeyVaultClientOptions()
    /// Managed identity's endpoint (IMDS, or App Service from the environment).
    public var managedIdentitySource: ManagedIdentityCredential.Source = .imds(
        endpoint: ManagedIdentityCredential.Source.defaultIMDSEndpoint)

    public init() {}
}

/// Who reads a vault for a volume, and the cache source that reads with it.
///
/// Volumes with the same identity and vault share one source, so one cache entry per object:
/// N pods of one service account cost one GET per object per refresh. The identity key decides
/// sharing, so it holds everything that proves access: the service account (the subject of a
/// workload identity's verified token), a fingerprint of a service principal's secret (two pods
/// with one client ID but different secrets never share), the tenant and the authority.
actor VolumeSources {
    /// A volume's hold on a source; give it back with `release`.
    struct Lease: Sendable, Equatable {
        var source: SourceID
        var identityKey: String
    }

    private struct Identity {
        var credential: CachingCredential
        /// The newest service-account token for a workload identity, read by its credential.
        var serviceAccountToken: ServiceAccountTokenBox?
    }

    private let cache: ObjectCache
    private let http: any HTTPClient
    private let settings: SourceSettings
    private var identities: [String: Identity] = [:]
    private var users: [SourceID: Set<String>] = [:]
    /// Each vault's challenge, shared by its sources: a new identity's first publish goes
    /// straight to its token, with no unauthenticated round trip. Kept while the vault has users.
    private var challenges: [String: VaultChallenge] = [:]
    private var lingerCount = 0
    /// The last register or unregister asked for each source.
    private var changes: [SourceID: Task<Void, Never>] = [:]
    /// Secrets are fingerprinted with a key that never leaves memory: this process's, or the
    /// previous plugin process's when it took the volumes over (their identity keys name sources).
    private(set) var fingerprintKey = SecureRandom.bytes(32)

    init(cache: ObjectCache, http: any HTTPClient, settings: SourceSettings) {
        self.cache = cache
        self.http = http
        self.settings = settings
    }

    var defaultCloud: AzureCloud { settings.defaultCloud }

    /// Takes the previous plugin process's key, before any volume is acquired.
    func adoptFingerprintKey(_ key: [UInt8]) {
        precondition(identities.isEmpty, "the fingerprint key changes only before any identity is made")
        fingerprintKey = key
    }

    /// The source for `volumeID` to read `endpoint` as `identity`, registered with the cache by
    /// its first user. A workload identity needs its token verified (`ServiceAccountTokenVerifier`),
    /// which names the identity and may replace the token held when it expires later.
    func acquire(
        _ identity: VolumeIdentity, verifiedToken: VerifiedServiceAccountToken?, tenant: String, cloud: AzureCloud,
        endpoint: VaultEndpoint, volumeID: String
    ) async throws(VolumeError) -> Lease {
        let key = try identityKey(identity, verifiedToken: verifiedToken, tenant: tenant, cloud: cloud)
        if identities[key] == nil {
            identities[key] = makeIdentity(identity, tenant: tenant, cloud: cloud)
        }
        if let verifiedToken {
            identities[key]?.serviceAccountToken?.offer(verifiedToken)
        }
        let source = SourceID(vault: endpoint.url, identity: key)
        if users[source, default: []].isEmpty, let credential = identities[key]?.credential {
            let challenge = challenges[endpoint.url] ?? VaultChallenge()
            challenges[endpoint.url] = challenge
            let client = KeyVaultClient(
                vault: endpoint, credential: credential, http: http, options: settings.clientOptions,
                challenge: challenge)
            let cache = self.cache
            inOrder(source) { await cache.register(KeyVaultSource(client: client), as: source) }
        }
        users[source, default: []].insert(volumeID)
        // Every user waits until the source is registered, not only the first.
        await changes[source]?.value
        return Lease(source: source, identityKey: key)
    }

    /// Gives a lease back; the last user of a source unregisters it, which wipes its content.
    /// With `linger` the source and its content stay that long after this volume (for kubelet's
    /// retry of a publish that failed or timed out, which then finds what the first try fetched).
    func release(_ lease: Lease, volumeID: String, linger: Duration) async {
        if linger > .zero {
            lingerCount += 1
            let placeholder = "lingering #\(lingerCount) after \(volumeID)"
            users[lease.source, default: []].insert(placeholder)
            Task {
                try? await Task.sleep(for: linger)
                await self.release(lease, volumeID: placeholder, linger: .zero)
            }
        }
        users[lease.source]?.remove(volumeID)
        guard users[lease.source]?.isEmpty ?? false else { return }
        users[lease.source] = nil
        let cache = self.cache
        let unregistered = inOrder(lease.source) { await cache.unregister(lease.source) }
        if !users.keys.contains(where: { $0.identity == lease.identityKey }) {
            identities[lease.identityKey] = nil
        }
        if !users.keys.contains(where: { $0.vault == lease.source.vault }) {
            challenges[lease.source.vault] = nil
        }
        await unregistered.value
    }

    /// Registering and unregistering one source happen in the order they were asked for, though
    /// each is an actor hop that a concurrent publish or unpublish could otherwise overtake.
    @discardableResult
    private func inOrder(_ source: SourceID, _ change: @escaping @Sendable () async -> Void) -> Task<Void, Never> {
        let previous = changes[source]
        let task = Task {
            await previous?.value
            await change()
        }
        changes[source] = task
        return task
    }

    /// Volumes using each source, for status and tests.
    func volumeCount(_ source: SourceID) -> Int { users[source]?.count ?? 0 }

    // MARK: Identities

    private func identityKey(
        _ identity: VolumeIdentity, verifiedToken: VerifiedServiceAccountToken?, tenant: String, cloud: AzureCloud
    ) throws(VolumeError) -> String {
        let authority = "\(cloud.authorityHost)/\(tenant.lowercased())"
        switch identity {
        case .workloadIdentity(let clientId, let token, _):
            // The verified token's subject is the service account the cluster issued it for.
            guard let verifiedToken, verifiedToken.value == token else {
                throw VolumeError(
                    .internalError, "the workload-identity token was not verified before use; this is a bug in akvfs")
            }
            return "workload:\(authority):\(clientId.lowercased()):\(verifiedToken.subject)"
        case .servicePrincipal(let clientId, let secret):
            let fingerprint = Digest.hmacSHA256(key: fingerprintKey, Array(secret.utf8)).prefix(8).map {
                String($0, radix: 16)
            }.joined()
            return "service-principal:\(authority):\(clientId.lowercased()):\(fingerprint)"
        case .nodeManagedIdentity(let clientId):
            return "node-managed-identity:\(clientId?.lowercased() ?? "system-assigned")"
        }
    }

    private func makeIdentity(_ identity: VolumeIdentity, tenant: String, cloud: AzureCloud) -> Identity {
        let authority = EntraAuthority(host: cloud.authorityHost, tenantId: tenant)
        switch identity {
        case .workloadIdentity(let clientId, _, _):
            let box = ServiceAccountTokenBox()
            let credential = WorkloadIdentityCredential(
                authority: authority, clientId: clientId, assertion: .provider { box.current }, http: http)
            return Identity(credential: CachingCredential(credential), serviceAccountToken: box)
        case .servicePrincipal(let clientId, let secret):
            let credential = ClientSecretCredential(
                authority: authority, clientId: clientId, secret: secret, http: http)
            return Identity(credential: CachingCredential(credential), serviceAccountToken: nil)
        case .nodeManagedIdentity(let clientId):
            let credential = ManagedIdentityCredential(
                identity: clientId.map { .clientId($0) } ?? .systemAssigned, source: settings.managedIdentitySource,
                http: http)
            return Identity(credential: CachingCredential(credential), serviceAccountToken: nil)
        }
    }
}

/// The verified service-account token expiring last among those handed over for one workload
/// identity: the assertion its credential presents to Entra ID.
final class ServiceAccountTokenBox: Sendable {
    private let token = Mutex<VerifiedServiceAccountToken?>(nil)

    init() {}

    var current: String? { token.withLock { $0?.value } }

    /// Keeps the token held if it expires later (publishes can arrive out of order). Only a
    /// verified token can be offered, so a forged one can never displace the real one.
    func offer(_ offered: VerifiedServiceAccountToken) {
        token.withLock { held in
            if let held, held.expiresAt > offered.expiresAt { return }
            held = offered
        }
    }
}
