import AzureIdentity
import FoundationEssentials
import KeyVault
import PKI
import SecretProviderClass
import Synchronization
import TestSupport
import Testing

@testable import CSINode

/// A cluster's service-account issuer in memory: it signs tokens, rotates keys, can fail, and
/// counts how often the plugin fetches its keys. Its documents go through the plugin's own decoder.
final class TestIssuer: ServiceAccountIssuerSource {
    static let issuer = "https://kubernetes.default.svc.cluster.local"

    struct Key: Sendable {
        var id: String
        var key: PrivateKey
        var algorithm: SignatureAlgorithm
    }

    private struct State {
        var keys: [Key]
        var fetches = 0
        var failure: String?
    }

    private let state: Mutex<State>

    init(keys: [Key]) {
        state = Mutex(State(keys: keys))
    }

    static func make(_ algorithm: SignatureAlgorithm = .rs256) throws -> (TestIssuer, Key) {
        let key = try Key(id: "cluster-key-1", key: newKey(algorithm), algorithm: algorithm)
        return (TestIssuer(keys: [key]), key)
    }

    static func newKey(_ algorithm: SignatureAlgorithm = .rs256) throws -> PrivateKey {
        try PrivateKey.generate(algorithm == .es256 ? .ec(.p256) : .rsa(bits: 2048))
    }

    var fetches: Int { state.withLock { $0.fetches } }
    func setKeys(_ keys: [Key]) { state.withLock { $0.keys = keys } }
    func fail(_ reason: String?) { state.withLock { $0.failure = reason } }

    func fetch() async throws(IssuerUnavailable) -> ServiceAccountIssuer {
        let (keys, failure) = state.withLock { state in
            state.fetches += 1
            return (state.keys, state.failure)
        }
        if let failure { throw IssuerUnavailable(reason: failure) }
        let entries = keys.map { key in
            let jwk = (try? key.key.publicKey.jwk()) ?? JSONWebKey(kty: "none")
            let members = [
                ("use", "sig"), ("kty", jwk.kty), ("kid", key.id), ("alg", key.algorithm.rawValue), ("n", jwk.n),
                ("e", jwk.e), ("crv", jwk.crv), ("x", jwk.x), ("y", jwk.y),
            ]
            return "{"
                + members.compactMap { name, value in value.map { #""\#(name)":"\#($0)""# } }.joined(separator: ",")
                + "}"
        }
        let discovery =
            #"{"issuer":"\#(Self.issuer)","jwks_uri":"https://10.0.0.1:443/openid/v1/jwks","response_types_supported":["id_token"]}"#
        return try KubernetesIssuerDiscovery.decode(
            discovery: Array(discovery.utf8), keys: Array(#"{"keys":[\#(entries.joined(separator: ","))]}"#.utf8))
    }
}

/// Entra ID's side of the exchange: it counts the tokens presented and answers as told.
final class TestExchange: ServiceAccountTokenExchange {
    private let state = Mutex<(calls: Int, failure: CredentialError?)>((0, nil))

    var calls: Int { state.withLock { $0.calls } }
    func fail(_ failure: CredentialError?) { state.withLock { $0.failure = failure } }

    func exchange(_ token: String, as target: ExchangeTarget) async throws(CredentialError) {
        let failure = state.withLock { state in
            state.calls += 1
            return state.failure
        }
        if let failure { throw failure }
    }
}

/// The claims kube-apiserver writes; nil members are left out.
struct TestClaims: Encodable {
    struct Kubernetes: Encodable {
        struct Reference: Encodable {
            var name: String
            var uid: String
        }
        var namespace: String
        var serviceaccount: Reference
        var pod: Reference?
    }

    var iss: String? = TestIssuer.issuer
    var sub: String? = "system:serviceaccount:team-a:reader"
    var aud: [String]? = [SecretProviderClassParser.workloadIdentityAudience]
    var iat: Int64?
    var nbf: Int64?
    var exp: Int64?
    var kubernetes: Kubernetes?

    enum CodingKeys: String, CodingKey {
        case iss, sub, aud, iat, nbf, exp
        case kubernetes = "kubernetes.io"
    }

    /// Issued now, valid for an hour, for team A's reader bound to pod web-0.
    init(clock: ManualClock) {
        iat = clock.secondsSince1970
        nbf = clock.secondsSince1970
        exp = clock.secondsSince1970 + 3600
        kubernetes = Kubernetes(
            namespace: "team-a", serviceaccount: .init(name: "reader", uid: "sa-uid"),
            pod: .init(name: "web-0", uid: "uid-web-0"))
    }
}

struct TestHeader: Encodable {
    var alg: String
    var kid: String?
}

func sign(_ claims: TestClaims, with key: TestIssuer.Key) throws -> String {
    try sign(
        claims, header: TestHeader(alg: key.algorithm.rawValue, kid: key.id), key: key.key, algorithm: key.algorithm)
}

func sign(_ claims: TestClaims, header: TestHeader, key: PrivateKey, algorithm: SignatureAlgorithm) throws -> String {
    try JWS.sign(
        headerJSON: Array(try JSONEncoder().encode(header)), payloadJSON: Array(try JSONEncoder().encode(claims)),
        key: key,
        algorithm: algorithm)
}

/// A token in the shape of a JWS whose signature is whatever `signature` makes of the signing input.
func unsigned(_ claims: TestClaims, header: TestHeader, signature: ([UInt8]) -> [UInt8]) throws -> String {
    let input =
        Base64URL.encode(Array(try JSONEncoder().encode(header))) + "."
        + Base64URL.encode(Array(try JSONEncoder().encode(claims)))
    return input + "." + Base64URL.encode(signature(Array(input.utf8)))
}

@Suite("Service-account token verification")
struct TokenVerifierTests {
    static let pod = PodIdentity(namespace: "team-a", name: "web-0", uid: "uid-web-0", serviceAccount: "reader")
    static let target = ExchangeTarget(
        clientId: "aaaaaaaa-0000-4000-8000-00000000000a", tenant: "tenant", cloud: .publicCloud)

    struct Harness {
        let issuer: TestIssuer
        let key: TestIssuer.Key
        /// On a whole second, so times the tests compute from claims compare equal.
        let clock = ManualClock(date: Date(timeIntervalSince1970: 1_900_000_000))
        let exchange = TestExchange()
        let verifier: ServiceAccountTokenVerifier

        init(_ algorithm: SignatureAlgorithm = .rs256, kubernetes: Bool = true) throws {
            (issuer, key) = try TestIssuer.make(algorithm)
            let clock = self.clock
            verifier = ServiceAccountTokenVerifier(
                issuerSource: kubernetes ? issuer : nil, exchange: exchange, now: { clock.date })
        }

        var claims: TestClaims { TestClaims(clock: clock) }

        func verify(_ token: String, pod: PodIdentity = TokenVerifierTests.pod) async throws
            -> VerifiedServiceAccountToken
        {
            try await verifier.verify(token, pod: pod, target: TokenVerifierTests.target)
        }

        /// The refusal of `token`, checked to be what a refusal must be: unauthenticated, and without the token.
        func refusal(
            _ token: String, pod: PodIdentity = TokenVerifierTests.pod, code: VolumeError.Code = .unauthenticated
        ) async -> String {
            let error = await #expect(throws: VolumeError.self) { try await self.verify(token, pod: pod) }
            #expect(error?.code == code, "\(error?.message ?? "")")
            #expect(
                error?.message.contains(token) == false && error?.message.contains("eyJ") == false,
                "no token in the message")
            #expect(
                error?.message.hasPrefix("refused the pod's service-account token for api://AzureADTokenExchange: ")
                    == true)
            return error?.message ?? ""
        }
    }

    @Test(
        "A token the cluster's key signed, for the pod's own service account, is verified with one fetch of the keys",
        arguments: [SignatureAlgorithm.rs256, .es256])
    func genuine(algorithm: SignatureAlgorithm) async throws {
        let harness = try Harness(algorithm)
        let verified = try await harness.verify(try sign(harness.claims, with: harness.key))
        #expect(verified.subject == "system:serviceaccount:team-a:reader")
        #expect(verified.proof == .clusterKeys)
        #expect(verified.expiresAt == harness.clock.date.addingTimeInterval(3600))
        harness.clock.advance(by: .seconds(30))
        _ = try await harness.verify(try sign(harness.claims, with: harness.key))
        #expect(harness.issuer.fetches == 1, "the keys are cached")
        #expect(harness.exchange.calls == 0)
        #expect(!verified.description.contains(verified.value))
    }

    @Test("A token signed with another key under the cluster's key id is refused, and Entra is not asked")
    func forged() async throws {
        let harness = try Harness()
        let forger = TestIssuer.Key(id: harness.key.id, key: try TestIssuer.newKey(), algorithm: .rs256)
        let message = await harness.refusal(try sign(harness.claims, with: forger))
        #expect(
            message.contains("its signature does not verify with the cluster's keys (key cluster-key-1, RS256)"),
            "\(message)")
        #expect(message.contains("not issued by this cluster's API server"))
        #expect(harness.exchange.calls == 0, "a verification failure never falls back to Entra")
    }

    @Test("alg none, HS256 with the public key as secret, and an algorithm the key cannot make are refused")
    func algorithms() async throws {
        let harness = try Harness()
        let none = await harness.refusal(
            try unsigned(harness.claims, header: TestHeader(alg: "none", kid: harness.key.id)) { _ in Array("x".utf8) })
        #expect(none.contains("it is not signed (alg none)"), "\(none)")
        let emptySignature = await harness.refusal(
            try unsigned(harness.claims, header: TestHeader(alg: "none", kid: nil)) { _ in [] })
        #expect(emptySignature.contains("it is not signed (alg none)"), "\(emptySignature)")
        #expect(harness.issuer.fetches == 0, "refused before any key is fetched")

        let publicKey = try harness.key.key.publicKey.spkiDER()
        let hmac = await harness.refusal(
            try unsigned(harness.claims, header: TestHeader(alg: "HS256", kid: harness.key.id)) {
                Digest.hmacSHA256(key: publicKey, $0)
            })
        #expect(hmac.contains("it is signed with HS256, which akvfs does not accept"), "\(hmac)")

        let ecKey = try TestIssuer.newKey(.es256)
        let mismatched = await harness.refusal(
            try sign(
                harness.claims, header: TestHeader(alg: "ES256", kid: harness.key.id), key: ecKey, algorithm: .es256))
        #expect(mismatched.contains("signature does not verify"), "\(mismatched)")
        #expect(harness.exchange.calls == 0)
    }

    @Test("Expired and not-yet-valid tokens are refused by the verifier's clock; nbf within the skew is accepted")
    func lifetime() async throws {
        let harness = try Harness()
        let token = try sign(harness.claims, with: harness.key)
        _ = try await harness.verify(token)
        harness.clock.advance(by: .seconds(3600))
        let expired = await harness.refusal(token)
        #expect(expired.contains("it expired at 2030-03-17T18:46:40Z (it is now 2030-03-17T18:46:40Z)"), "\(expired)")
        #expect(expired.contains("kubelet sends a fresh token"))

        var early = harness.claims
        early.nbf = harness.clock.secondsSince1970 + 120
        let notYet = await harness.refusal(try sign(early, with: harness.key))
        #expect(notYet.contains("it is not valid before") && notYet.contains("60 s of clock skew allowed"), "\(notYet)")
        var issuedAhead = harness.claims
        issuedAhead.iat = harness.clock.secondsSince1970 + 120
        #expect(await harness.refusal(try sign(issuedAhead, with: harness.key)).contains("(iat;"))
        var slightlyAhead = harness.claims
        (slightlyAhead.nbf, slightlyAhead.iat) = (
            harness.clock.secondsSince1970 + 30, harness.clock.secondsSince1970 + 30
        )
        _ = try await harness.verify(try sign(slightlyAhead, with: harness.key))

        var forever = harness.claims
        forever.exp = nil
        #expect(await harness.refusal(try sign(forever, with: harness.key)).contains("it has no expiry (exp)"))
    }

    @Test("A token for another audience is refused before any key is fetched")
    func audience() async throws {
        let harness = try Harness()
        var claims = harness.claims
        claims.aud = ["https://kubernetes.default.svc"]
        let message = await harness.refusal(try sign(claims, with: harness.key))
        #expect(
            message.contains(
                "it has the wrong audience https://kubernetes.default.svc (expected api://AzureADTokenExchange)"),
            "\(message)")
        #expect(message.contains("tokenRequests"))
        #expect(harness.issuer.fetches == 0)
    }

    @Test("A token the cluster's key signed for another issuer is refused")
    func issuer() async throws {
        let harness = try Harness()
        var claims = harness.claims
        claims.iss = "https://oidc.elsewhere.example"
        let message = await harness.refusal(try sign(claims, with: harness.key))
        #expect(
            message.contains(
                "its issuer https://oidc.elsewhere.example is not the cluster's issuer \(TestIssuer.issuer)"),
            "\(message)")
    }

    @Test("The subject, and a bound token's pod, must be the pod's own")
    func subject() async throws {
        let harness = try Harness()
        var otherNamespace = harness.claims
        otherNamespace.sub = "system:serviceaccount:team-b:reader"
        otherNamespace.kubernetes = nil
        let namespace = await harness.refusal(try sign(otherNamespace, with: harness.key))
        #expect(
            namespace.contains(
                "its subject system:serviceaccount:team-b:reader does not match the pod's service account system:serviceaccount:team-a:reader"
            ),
            "\(namespace)")

        var otherAccount = harness.claims
        otherAccount.sub = "system:serviceaccount:team-a:writer"
        otherAccount.kubernetes = nil
        #expect(
            await harness.refusal(try sign(otherAccount, with: harness.key)).contains(
                "does not match the pod's service account"))
        // Without kubelet's service-account name, the namespace still has to match.
        var noName = Self.pod
        noName.serviceAccount = nil
        _ = try await harness.verify(try sign(otherAccount, with: harness.key), pod: noName)
        #expect(
            await harness.refusal(try sign(otherNamespace, with: harness.key), pod: noName).contains("does not match"))

        var user = harness.claims
        user.sub = "user:alice"
        #expect(
            await harness.refusal(try sign(user, with: harness.key)).contains(
                "its subject user:alice is not a service account"))

        var otherPod = harness.claims
        otherPod.kubernetes?.pod = .init(name: "web-1", uid: "uid-web-1")
        let bound = await harness.refusal(try sign(otherPod, with: harness.key))
        #expect(
            bound.contains(
                "it is bound to pod team-a/web-1 (uid uid-web-1), not to the pod being published, team-a/web-0 (uid uid-web-0)"
            ), "\(bound)")
        var otherUID = harness.claims
        otherUID.kubernetes?.pod?.uid = "uid-of-a-deleted-web-0"
        #expect(await harness.refusal(try sign(otherUID, with: harness.key)).contains("bound to pod"))

        var contradicting = harness.claims
        contradicting.kubernetes?.namespace = "team-b"
        #expect(
            await harness.refusal(try sign(contradicting, with: harness.key)).contains(
                "kubernetes.io claim names another service account"))
        #expect(harness.exchange.calls == 0)
    }

    @Test("An unknown key id makes exactly one fetch: a rotated key is picked up, a made-up one refused")
    func unknownKeyID() async throws {
        let harness = try Harness()
        _ = try await harness.verify(try sign(harness.claims, with: harness.key))
        #expect(harness.issuer.fetches == 1)

        harness.clock.advance(by: .seconds(11))
        let rotated = TestIssuer.Key(id: "cluster-key-2", key: try TestIssuer.newKey(), algorithm: .rs256)
        harness.issuer.setKeys([harness.key, rotated])
        let verified = try await harness.verify(try sign(harness.claims, with: rotated))
        #expect(verified.proof == .clusterKeys)
        #expect(harness.issuer.fetches == 2, "one fetch for the new key id")

        let madeUp = TestIssuer.Key(id: "made-up", key: try TestIssuer.newKey(), algorithm: .rs256)
        let message = await harness.refusal(try sign(harness.claims, with: madeUp))
        #expect(
            message.contains("it names key made-up, which is not among the cluster's service-account issuer keys"),
            "\(message)")
        #expect(harness.issuer.fetches == 2, "the keys were fetched less than 10 s ago")
        #expect(harness.exchange.calls == 0)
    }

    @Test("A flood of made-up key ids costs the API server one fetch per 10 s")
    func fetchRateLimit() async throws {
        let harness = try Harness()
        _ = try await harness.verify(try sign(harness.claims, with: harness.key))
        harness.clock.advance(by: .seconds(11))
        let forger = try TestIssuer.newKey()
        let tokens = try (0..<20).map {
            try sign(harness.claims, with: TestIssuer.Key(id: "forged-\($0)", key: forger, algorithm: .rs256))
        }
        await withTaskGroup(of: Void.self) { group in
            for token in tokens {
                group.addTask { _ = try? await harness.verify(token) }
            }
        }
        #expect(harness.issuer.fetches == 2, "20 concurrent unknown key ids share one fetch")
        harness.clock.advance(by: .seconds(5))
        _ = await harness.refusal(tokens[0])
        #expect(harness.issuer.fetches == 2)
        harness.clock.advance(by: .seconds(6))
        _ = await harness.refusal(tokens[1])
        #expect(harness.issuer.fetches == 3)
    }

    @Test("Keys are refreshed every 10 minutes: a key the cluster dropped stops verifying")
    func refresh() async throws {
        let harness = try Harness()
        let token = try sign(harness.claims, with: harness.key)
        _ = try await harness.verify(token)
        harness.clock.advance(by: .seconds(599))
        _ = try await harness.verify(token)
        #expect(harness.issuer.fetches == 1)
        harness.issuer.setKeys([TestIssuer.Key(id: "cluster-key-2", key: try TestIssuer.newKey(), algorithm: .rs256)])
        harness.clock.advance(by: .seconds(1))
        #expect(await harness.refusal(token).contains("not among the cluster's service-account issuer keys"))
        #expect(harness.issuer.fetches == 2)
    }

    @Test("Only unavailable keys fall back to Entra ID, which must accept exactly this token; proofs are remembered")
    func entraProof() async throws {
        let harness = try Harness()
        harness.issuer.fail("the plugin's service account may not read the service-account issuer's keys (403)")
        let token = try sign(harness.claims, with: harness.key)
        let verified = try await harness.verify(token)
        #expect(verified.proof == .entraExchange)
        #expect(verified.subject == "system:serviceaccount:team-a:reader")
        #expect(harness.exchange.calls == 1)
        _ = try await harness.verify(token)
        #expect(harness.exchange.calls == 1, "a proven token is remembered")
        harness.clock.advance(by: .seconds(1))
        _ = try await harness.verify(try sign(harness.claims, with: harness.key))
        #expect(harness.exchange.calls == 2, "another token is proven again")

        // Claims are still checked first: Entra is not asked about a token that cannot be right.
        var expired = harness.claims
        expired.exp = harness.clock.secondsSince1970 - 1
        _ = await harness.refusal(try sign(expired, with: harness.key))
        #expect(harness.exchange.calls == 2)

        harness.exchange.fail(
            CredentialError(
                credential: "WorkloadIdentityCredential", kind: .authenticationFailed,
                message: "AADSTS50013: Assertion failed signature validation."))
        harness.clock.advance(by: .seconds(1))
        let refused = await harness.refusal(try sign(harness.claims, with: harness.key))
        #expect(
            refused.contains("Entra ID did not accept it for client \(Self.target.clientId): AADSTS50013"), "\(refused)"
        )
        #expect(
            refused.contains("may not read the service-account issuer's keys (403)"),
            "the reason Entra was asked: \(refused)")

        harness.exchange.fail(
            CredentialError(
                credential: "WorkloadIdentityCredential", kind: .transient, message: "no token after 4 attempts"))
        harness.clock.advance(by: .seconds(1))
        let outage = await harness.refusal(try sign(harness.claims, with: harness.key), code: .unavailable)
        #expect(outage.contains("Entra ID could not be asked"), "\(outage)")

        // Once the keys can be read (10 s after the last try), they are the proof again.
        harness.issuer.fail(nil)
        harness.clock.advance(by: .seconds(10))
        #expect(try await harness.verify(try sign(harness.claims, with: harness.key)).proof == .clusterKeys)
        let forger = TestIssuer.Key(id: harness.key.id, key: try TestIssuer.newKey(), algorithm: .rs256)
        _ = await harness.refusal(try sign(harness.claims, with: forger))
        #expect(harness.exchange.calls == 4, "with keys available, a forged token never reaches Entra")
    }

    @Test("Without a Kubernetes API, Entra ID is the only proof")
    func noKubernetesAPI() async throws {
        let harness = try Harness(kubernetes: false)
        #expect(try await harness.verify(try sign(harness.claims, with: harness.key)).proof == .entraExchange)
        harness.exchange.fail(
            CredentialError(
                credential: "WorkloadIdentityCredential", kind: .authenticationFailed, message: "AADSTS700213"))
        harness.clock.advance(by: .seconds(1))
        let refused = await harness.refusal(try sign(harness.claims, with: harness.key))
        #expect(refused.contains("the plugin has no Kubernetes API"), "\(refused)")
        #expect(harness.issuer.fetches == 0)
    }

    @Test("Keys that cannot be refreshed are used for a day, then count as unavailable")
    func staleKeys() async throws {
        let harness = try Harness()
        _ = try await harness.verify(try sign(harness.claims, with: harness.key))
        harness.issuer.fail("the Kubernetes API answered HTTP 503")
        harness.clock.advance(by: .seconds(3600))
        #expect(try await harness.verify(try sign(harness.claims, with: harness.key)).proof == .clusterKeys)
        harness.clock.advance(by: .seconds(86_400))
        #expect(try await harness.verify(try sign(harness.claims, with: harness.key)).proof == .entraExchange)
    }
}

@Suite("The issuer's discovery documents")
struct IssuerDiscoveryTests {
    @Test("Signing keys of the API server's JWKS are read with their key ids; others are skipped")
    func decode() throws {
        let key = try PrivateKey.generate(.rsa(bits: 2048)).publicKey.jwk()
        let keys = #"""
            {"keys":[{"use":"sig","kty":"RSA","kid":"k1","alg":"RS256","n":"\#(key.n!)","e":"\#(key.e!)"},
                     {"use":"enc","kty":"RSA","kid":"k2","alg":"RSA-OAEP","n":"\#(key.n!)","e":"\#(key.e!)"},
                     {"kty":"OKP","kid":"k3","crv":"Ed25519","x":"AA"}]}
            """#
        let issuer = try KubernetesIssuerDiscovery.decode(
            discovery: Array(#"{"issuer":"https://k8s.example"}"#.utf8), keys: Array(keys.utf8))
        #expect(issuer.issuer == "https://k8s.example")
        #expect(issuer.keys.map(\.id) == ["k1"])
        #expect(issuer.keys.first?.algorithm == "RS256")
        #expect(
            issuer.candidates(for: "k1").count == 1 && issuer.candidates(for: "k2").isEmpty
                && issuer.candidates(for: nil).count == 1)
    }

    @Test(
        "Documents that are not a discovery document and a key set leave the keys unavailable",
        arguments: [
            (#"{}"#, #"{"keys":[]}"#, "not an OpenID configuration"),
            (#"{"issuer":"https://k8s.example"}"#, #"[]"#, "not a JSON Web Key Set"),
            (#"{"issuer":"https://k8s.example"}"#, #"{"keys":[]}"#, "no RSA or EC signing key"),
        ])
    func unusable(discovery: String, keys: String, reason: String) {
        let error = #expect(throws: IssuerUnavailable.self) {
            try KubernetesIssuerDiscovery.decode(discovery: Array(discovery.utf8), keys: Array(keys.utf8))
        }
        #expect(error?.reason.contains(reason) == true, "\(error?.reason ?? "")")
    }
}
