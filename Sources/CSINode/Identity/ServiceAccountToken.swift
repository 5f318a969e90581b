import FoundationEssentials
import PKI
import SecretProviderClass

/// The pod a publish is for, as kubelet describes it in the volume context (podInfoOnMount).
/// `package`, like `ServiceAccountToken`, for akvfs-fuzz.
package struct PodIdentity: Sendable, Equatable {
    var namespace: String
    var name: String
    var uid: String?
    /// `csi.storage.k8s.io/serviceAccount.name`; nil when kubelet did not send it.
    var serviceAccount: String?

    package init(namespace: String, name: String, uid: String? = nil, serviceAccount: String? = nil) {
        self.namespace = namespace
        self.name = name
        self.uid = uid
        self.serviceAccount = serviceAccount
    }

    init(_ request: VolumeRequest) {
        self.init(
            namespace: request.podNamespace, name: request.podName, uid: request.podUID,
            serviceAccount: request.serviceAccountName)
    }
}

/// A workload-identity token the plugin has proof of: the cluster's issuer keys verified it, or
/// Entra ID accepted exactly this token. Only these are ever kept for an identity
/// (`ServiceAccountTokenBox.offer`) or decide which cached content a volume may see.
struct VerifiedServiceAccountToken: Sendable, Codable, CustomStringConvertible {
    enum Proof: Sendable, Equatable, Codable {
        /// Signature, issuer and claims checked with the keys the API server publishes.
        case clusterKeys
        /// The cluster's keys were unavailable; Entra ID exchanged this very token.
        case entraExchange
    }

    let value: String
    /// `system:serviceaccount:<namespace>:<name>`.
    let subject: String
    let expiresAt: Date
    let proof: Proof

    /// Only `ServiceAccountTokenVerifier` makes these (and tests).
    init(value: String, subject: String, expiresAt: Date, proof: Proof) {
        self.value = value
        self.subject = subject
        self.expiresAt = expiresAt
        self.proof = proof
    }

    var description: String {
        "VerifiedServiceAccountToken(\(subject), expires \(expiresAt), \(proof), value redacted)"
    }
}

/// A service-account JWT taken apart, not yet trusted. Parsing never prints the token.
package struct ServiceAccountToken: Sendable {
    struct Header: Decodable, Sendable {
        var alg: String?
        var kid: String?
        /// Extensions the signer insists on (RFC 7515 §4.1.11); none are understood here.
        var crit: [String]?
    }

    /// The claims kube-apiserver writes into tokens from its TokenRequest API.
    struct Claims: Decodable, Sendable {
        var iss: String?
        var sub: String?
        /// A string or a list in JWTs; always a list here.
        var aud: [String]
        var exp: Double?
        var nbf: Double?
        var iat: Double?
        /// `kubernetes.io`: the namespace, service account and, for bound tokens, the pod.
        var kubernetes: Kubernetes?

        struct Kubernetes: Decodable, Sendable {
            var namespace: String?
            var pod: Reference?
            var serviceaccount: Reference?
        }

        struct Reference: Decodable, Sendable {
            var name: String?
            var uid: String?
        }

        enum CodingKeys: String, CodingKey {
            case iss, sub, aud, exp, nbf, iat
            case kubernetes = "kubernetes.io"
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            iss = try c.decodeIfPresent(String.self, forKey: .iss)
            sub = try c.decodeIfPresent(String.self, forKey: .sub)
            if let single = try? c.decodeIfPresent(String.self, forKey: .aud) {
                aud = [single]
            } else {
                aud = try c.decodeIfPresent([String].self, forKey: .aud) ?? []
            }
            exp = try c.decodeIfPresent(Double.self, forKey: .exp)
            nbf = try c.decodeIfPresent(Double.self, forKey: .nbf)
            iat = try c.decodeIfPresent(Double.self, forKey: .iat)
            kubernetes = try c.decodeIfPresent(Kubernetes.self, forKey: .kubernetes)
        }
    }

    let value: String
    let jws: JWS
    let header: Header
    let claims: Claims

    package init(_ value: String) throws(TokenRefusal) {
        self.value = value
        do {
            jws = try JWS(compact: value)
        } catch {
            throw TokenRefusal("it is not a JWT (\(error.reason))", check: Self.origin)
        }
        do {
            header = try JSONDecoder().decode(Header.self, from: Data(jws.headerJSON))
            claims = try JSONDecoder().decode(Claims.self, from: Data(jws.payloadJSON))
        } catch {
            throw TokenRefusal("its header or claims are not the JSON of a service-account token", check: Self.origin)
        }
    }

    static let origin =
        "kubelet hands over the token the CSIDriver's tokenRequests ask for; check that nothing else sets csi.storage.k8s.io/serviceAccount.tokens"

    /// The signature algorithm the header names, if it is one a cluster may sign with. `none` and
    /// the HMAC algorithms never are: anyone holding the (public) key could make an HS256 token.
    func signatureAlgorithm() throws(TokenRefusal) -> SignatureAlgorithm {
        guard let name = header.alg, !name.isEmpty else {
            throw TokenRefusal("its header names no signature algorithm (alg)", check: Self.origin)
        }
        if name.lowercased() == "none" {
            throw TokenRefusal(
                "it is not signed (alg none)",
                check: "only tokens signed by the cluster's service-account issuer are accepted")
        }
        guard let algorithm = SignatureAlgorithm(rawValue: name) else {
            throw TokenRefusal(
                "it is signed with \(name), which akvfs does not accept",
                check: "service-account tokens are signed by the cluster's issuer with "
                    + SignatureAlgorithm.allCases.map(\.rawValue).joined(separator: ", "))
        }
        if let critical = header.crit, !critical.isEmpty {
            throw TokenRefusal(
                "its header marks extensions as critical (\(critical.joined(separator: ", "))), which akvfs does not understand",
                check: Self.origin)
        }
        return algorithm
    }

    /// Everything that needs no key: lifetime, audience, and whose token it is. `now` and `skew`
    /// in seconds; exp gets no skew (kubelet renews tokens long before they expire).
    package func checkClaims(pod: PodIdentity, now: Date, skew: TimeInterval) throws(TokenRefusal) -> (
        subject: String, expiresAt: Date
    ) {
        let clocks = "check the clocks of the node and the API server"
        guard let exp = claims.exp else {
            throw TokenRefusal(
                "it has no expiry (exp)", check: "kubelet's tokenRequests tokens always expire; \(Self.origin)")
        }
        let expiresAt = Date(timeIntervalSince1970: exp)
        guard expiresAt > now else {
            throw TokenRefusal(
                "it expired at \(Self.format(expiresAt)) (it is now \(Self.format(now)))",
                check: "kubelet sends a fresh token with its next publish; if this repeats, \(clocks)")
        }
        for (name, value) in [("nbf", claims.nbf), ("iat", claims.iat)] {
            guard let value else { continue }
            let time = Date(timeIntervalSince1970: value)
            guard time <= now.addingTimeInterval(skew) else {
                throw TokenRefusal(
                    "it is not valid before \(Self.format(time)) (\(name); it is now \(Self.format(now)), \(Int(skew)) s of clock skew allowed)",
                    check: clocks)
            }
        }
        let audience = SecretProviderClassParser.workloadIdentityAudience
        guard claims.aud.contains(audience) else {
            let found = claims.aud.isEmpty ? "none" : claims.aud.joined(separator: ", ")
            throw TokenRefusal(
                "it has the wrong audience \(found) (expected \(audience))",
                check: "add the audience \(audience) to the CSIDriver's spec.tokenRequests")
        }
        let subject = claims.sub ?? ""
        let parts = subject.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 4, parts[0] == "system", parts[1] == "serviceaccount", !parts[2].isEmpty, !parts[3].isEmpty
        else {
            throw TokenRefusal(
                "its subject \(subject.isEmpty ? "(none)" : subject) is not a service account (system:serviceaccount:<namespace>:<name>)",
                check: Self.origin)
        }
        let (namespace, account) = (parts[2], parts[3])
        let expected = "system:serviceaccount:\(pod.namespace):\(pod.serviceAccount ?? account)"
        let mismatch = "its subject \(subject) does not match the pod's service account \(expected)"
        let podCheck =
            "kubelet requests the token for the pod's own service account; the token was made for another pod"
        guard namespace == pod.namespace, pod.serviceAccount.map({ $0 == account }) ?? true else {
            throw TokenRefusal(mismatch, check: podCheck)
        }
        if let bound = claims.kubernetes {
            guard bound.namespace.map({ $0 == namespace }) ?? true,
                bound.serviceaccount?.name.map({ $0 == account }) ?? true
            else {
                throw TokenRefusal(
                    "its kubernetes.io claim names another service account than its subject \(subject)",
                    check: Self.origin)
            }
            if let boundPod = bound.pod {
                let nameMatches = boundPod.name.map { $0 == pod.name } ?? true
                let uidMatches = both(boundPod.uid, pod.uid).map { $0 == $1 } ?? true
                guard nameMatches, uidMatches else {
                    let named = "\(namespace)/\(boundPod.name ?? "?")" + (boundPod.uid.map { " (uid \($0))" } ?? "")
                    let publishing = "\(pod.namespace)/\(pod.name)" + (pod.uid.map { " (uid \($0))" } ?? "")
                    throw TokenRefusal(
                        "it is bound to pod \(named), not to the pod being published, \(publishing)", check: podCheck)
                }
            }
        }
        return (subject, expiresAt)
    }

    static func format(_ date: Date) -> String { date.formatted(.iso8601) }
}

private func both<A, B>(_ a: A?, _ b: B?) -> (A, B)? {
    guard let a, let b else { return nil }
    return (a, b)
}

/// Why a service-account token is refused: what is wrong, and what to check. Never the token.
package struct TokenRefusal: Error, Sendable, Equatable {
    package var reason: String
    package var check: String
    /// Retrying later may succeed (the issuer's keys could not be refreshed), rather than never.
    var retryable = false

    init(_ reason: String, check: String, retryable: Bool = false) {
        self.reason = reason
        self.check = check
        self.retryable = retryable
    }

    var volumeError: VolumeError {
        VolumeError(
            retryable ? .unavailable : .unauthenticated,
            "refused the pod's service-account token for \(SecretProviderClassParser.workloadIdentityAudience): \(reason); \(check)"
        )
    }
}
