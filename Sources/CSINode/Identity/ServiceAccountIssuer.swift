import FoundationEssentials
import HTTPTransport
import HTTPTypes
import PKI
import SecretProviderClass

/// The cluster's service-account issuer as the API server publishes it (service-account issuer
/// discovery, KEP-1393): the `issuer` its tokens carry and the public keys that sign them.
struct ServiceAccountIssuer: Sendable {
    struct Key: Sendable {
        /// `kid`; kube-apiserver sets one on every key and every token.
        var id: String?
        /// `alg`, when the key set names one: the token's header must then say the same.
        var algorithm: String?
        var key: PublicKey
    }

    var issuer: String
    var keys: [Key]

    /// The keys a token with this header may have been signed with: the one with its `kid`, or,
    /// for a token without one, every key.
    func candidates(for keyID: String?) -> [Key] {
        guard let keyID else { return keys }
        return keys.filter { $0.id == keyID }
    }
}

/// Why the cluster's issuer and keys could not be had: the plugin then has no way to check a
/// token's signature, which is different from a signature that does not verify.
struct IssuerUnavailable: Error, Sendable, Equatable {
    var reason: String
}

/// Where the issuer and its keys come from.
protocol ServiceAccountIssuerSource: Sendable {
    func fetch() async throws(IssuerUnavailable) -> ServiceAccountIssuer
}

/// Reads `/.well-known/openid-configuration` and `/openid/v1/jwks` from the API server the
/// plugin already uses, with its own service-account token. The discovery document's `jwks_uri`
/// is not followed: it may name a public endpoint outside the cluster, and the API server serves
/// the same keys itself.
struct KubernetesIssuerDiscovery: ServiceAccountIssuerSource {
    static let discoveryPath = "/.well-known/openid-configuration"
    static let keysPath = "/openid/v1/jwks"

    let api: KubernetesAPIClient

    func fetch() async throws(IssuerUnavailable) -> ServiceAccountIssuer {
        let discovery = try await get(Self.discoveryPath, accept: "application/json")
        let keys = try await get(Self.keysPath, accept: "application/jwk-set+json, application/json")
        return try Self.decode(discovery: discovery, keys: keys)
    }

    private func get(_ path: String, accept: String) async throws(IssuerUnavailable) -> [UInt8] {
        let what = "the service-account issuer's \(path == Self.keysPath ? "keys" : "discovery document") (\(path))"
        let response: HTTPClientResponse
        do {
            // Shorter than the API's usual 30 s: a publish waits for this, and failing means Entra can prove tokens instead.
            response = try await api.get(path, accept: accept, what: what, timeout: .seconds(10))
        } catch {
            throw IssuerUnavailable(reason: error.message)
        }
        switch response.head.status.code {
        case 200:
            return response.body
        case 401:
            throw IssuerUnavailable(
                reason:
                    "the Kubernetes API refused the plugin's service-account token for \(what) (401); check the plugin's service "
                    + "account and \(api.configuration.tokenFile)")
        case 403:
            throw IssuerUnavailable(
                reason: "the plugin's service account may not read \(what) (403); bind the ClusterRole "
                    + "system:service-account-issuer-discovery to it (deploy/kubernetes/rbac.yaml)")
        case 404:
            throw IssuerUnavailable(
                reason:
                    "the API server does not serve \(what) (404); it does from Kubernetes 1.21 when --service-account-issuer is an https URL"
            )
        case let status:
            throw IssuerUnavailable(reason: "the Kubernetes API answered HTTP \(status) for \(what)")
        }
    }

    /// The issuer, and the keys usable for signatures: RSA and EC keys whose `use`, if given, is
    /// `sig`. Keys of other types are skipped; a set with none left is as good as none.
    static func decode(discovery: [UInt8], keys: [UInt8]) throws(IssuerUnavailable) -> ServiceAccountIssuer {
        struct Discovery: Decodable { var issuer: String? }
        struct KeySet: Decodable { var keys: [Entry] }
        struct Entry: Decodable {
            var jwk: JSONWebKey
            var use: String?
            var alg: String?
            enum CodingKeys: String, CodingKey { case use, alg }
            init(from decoder: any Decoder) throws {
                jwk = try JSONWebKey(from: decoder)
                let c = try decoder.container(keyedBy: CodingKeys.self)
                use = try c.decodeIfPresent(String.self, forKey: .use)
                alg = try c.decodeIfPresent(String.self, forKey: .alg)
            }
        }
        guard let issuer = (try? JSONDecoder().decode(Discovery.self, from: Data(discovery)))?.issuer, !issuer.isEmpty
        else {
            throw IssuerUnavailable(
                reason: "the API server's \(discoveryPath) is not an OpenID configuration with an issuer")
        }
        guard let entries = try? JSONDecoder().decode(KeySet.self, from: Data(keys)).keys else {
            throw IssuerUnavailable(reason: "the API server's \(keysPath) is not a JSON Web Key Set")
        }
        let usable = entries.compactMap { entry -> ServiceAccountIssuer.Key? in
            guard entry.use == nil || entry.use == "sig", let key = try? PublicKey(jwk: entry.jwk) else { return nil }
            return ServiceAccountIssuer.Key(id: entry.jwk.kid, algorithm: entry.alg, key: key)
        }
        guard !usable.isEmpty else {
            throw IssuerUnavailable(reason: "the API server's \(keysPath) holds no RSA or EC signing key akvfs can use")
        }
        return ServiceAccountIssuer(issuer: issuer, keys: usable)
    }
}
