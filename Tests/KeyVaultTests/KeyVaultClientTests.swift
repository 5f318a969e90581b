import AzureIdentity
import EmulatorSupport
import Foundation
import HTTPTransport
import HTTPTypes
import KeyVault
import KeyVaultEmulator
import PKI
import Synchronization
import TestSupport
import Testing

@Suite("Key Vault client against the emulator")
struct KeyVaultClientTests {
    @Test("Gets secrets, keys and certificates, latest and by version")
    func gets() async throws {
        try await withEmulator(seed: .demo) { (harness) async throws in
            let client = try harness.client("demo", credential: harness.secretCredential())
            let latest = try await client.getSecret("database-password")
            #expect(latest.value == "correct-horse-battery-staple")
            let versions = try await client.listSecretVersions("database-password")
            #expect(versions.count == 2)
            let older = try #require(versions.compactMap(\.version).first { $0 != latest.version })
            #expect(try await client.getSecret("database-password", version: older).value == "initial-password-1")
            #expect(try await client.getKey("signing-key").key.kty == "RSA")
            let certificate = try await client.getCertificate("web-tls")
            #expect(certificate.certificateDER?.isEmpty == false)
            #expect(try await client.getSecret("web-tls").isCertificateBacked)
            #expect(try await client.listCertificateVersions("api-tls").count == 1)
            #expect(try await client.listKeyVersions("signing-key").count == 1)
        }
    }

    @Test("A body that arrives in several pieces is whole (the transport grows its buffer by hand)")
    func largeBody() async throws {
        // Near Key Vault's 25 KB limit: libcurl hands the body over in pieces of at most 16 KiB.
        let value = String((0..<24_000).map { index in Character(Unicode.Scalar(UInt8(97 + index % 26))) })
        try await withEmulator(
            seed: Seed(vaults: [SeedVault(name: "large", secrets: [SeedSecret(name: "big", value: value)])])
        ) {
            (harness) async throws in
            let client = try harness.client("large", credential: harness.secretCredential())
            #expect(try await client.getSecret("big").value == value)
        }
    }

    @Test("Listing follows nextLink through every page, one request per page")
    func paging() async throws {
        let secrets = (0..<60).map { SeedSecret(name: String(format: "secret-%03d", $0), value: "v\($0)") }
        try await withEmulator(seed: Seed(vaults: [SeedVault(name: "paged", secrets: secrets)])) {
            (harness) async throws in
            let client = try harness.client("paged", credential: harness.secretCredential())
            _ = try await client.getSecret("secret-000")
            await harness.emulator.resetRequests()
            let listed = try await client.listSecrets()
            #expect(listed.map(\.name) == secrets.map(\.name))
            let requests = await harness.keyVaultRequests("paged")
            #expect(requests.count == 3, "60 secrets at 25 per page, no extra calls")
            #expect(requests.allSatisfy { $0.status == 200 })

            // A pacer is awaited before each page after the first; when it throws, the listing ends.
            let paced = Mutex(0)
            #expect(try await client.listSecrets(pacer: { paced.withLock { $0 += 1 } }).count == 60)
            #expect(paced.withLock { $0 } == 2)
            await #expect {
                _ = try await client.listSecrets(pacer: { throw CancellationError() })
            } throws: { error in
                (error as? KeyVaultError)?.kind == .cancelled
            }
        }
    }

    @Test("Empty pages that link on are followed, first or in the middle")
    func emptyPages() async throws {
        let many = (0..<60).map { SeedSecret(name: String(format: "secret-%03d", $0), value: "v") }
        let seed = Seed(
            emptyFirstPage: true,
            vaults: [
                SeedVault(name: "sparse", secrets: [SeedSecret(name: "only", value: "1")]),
                SeedVault(name: "gappy", secrets: many, timing: VaultTiming(emptyMiddlePages: true)),
            ])
        try await withEmulator(seed: seed) { (harness) async throws in
            let client = try harness.client("sparse", credential: harness.secretCredential())
            #expect(try await client.listSecrets().map(\.name) == ["only"])

            let gappy = try harness.client("gappy", credential: harness.secretCredential())
            #expect(try await gappy.listSecrets().map(\.name) == many.map(\.name))
            let pages = await harness.keyVaultRequests("gappy").filter { $0.path == "/secrets" && $0.status == 200 }
            #expect(pages.count == 6, "an empty first page, then 3 pages with an empty one between each")
        }
    }

    /// A demo-vault client whose retries sleep on a recording clock (nothing waits), with its
    /// token and connection already in place.
    static func clientSleepingOnRecordingClock(_ harness: EmulatorHarness) async throws -> (
        KeyVaultClient, RecordingClock
    ) {
        let clock = RecordingClock()
        let client = try harness.client(
            "demo", credential: harness.secretCredential(), options: .sleeping(on: clock))
        _ = try await client.getSecret("api-key")
        return (client, clock)
    }

    /// The next `times` reads of api-key answer `status`.
    static func failAPIKey(_ harness: EmulatorHarness, times: Int, status: Int, retryAfter: Int?) async {
        await harness.emulator.inject(
            FaultRule(
                method: "GET", vault: "demo", pathPrefix: "/secrets/api-key", count: times,
                action: .status(status, retryAfter: retryAfter)))
    }

    @Test(
        "Throttling that says when to come back is waited out past the retry cap, within the deadline; 503s are capped")
    func throttlingIsNotCapped() async throws {
        try await withEmulator(seed: .demo) { (harness) async throws in
            let (client, clock) = try await Self.clientSleepingOnRecordingClock(harness)
            await Self.failAPIKey(harness, times: 12, status: 429, retryAfter: 1)
            #expect(try await client.getSecret("api-key").value == "demo-api-key-8c2f5e")
            #expect(clock.sleeps == Array(repeating: .seconds(1), count: 12))

            await Self.failAPIKey(harness, times: 12, status: 503, retryAfter: nil)
            await #expect(throws: KeyVaultError.self) { try await client.getSecret("api-key") }
            #expect(clock.sleeps.count == 12 + 8, "503s end after 8 retries")
        }
    }

    @Test("A Retry-After beyond maxRetryAfter is waited for that long, and reported capped for the caller's next try")
    func hugeRetryAfterIsCapped() async throws {
        try await withEmulator(seed: .demo) { (harness) async throws in
            let (client, clock) = try await Self.clientSleepingOnRecordingClock(harness)
            await Self.failAPIKey(harness, times: 2, status: 429, retryAfter: 100_000)
            do {
                _ = try await client.getSecret("api-key")
                Issue.record("a throttled read succeeded")
            } catch let error as KeyVaultError {
                #expect(error.kind == .throttled)
                #expect(error.retryAfter == .seconds(120), "a cache schedules its next revalidation by this")
            }
            // The first wait is capped at 120 s; a second does not fit in the rest of the 180 s deadline.
            #expect(clock.sleeps == [.seconds(120)])
        }
    }

    @Test("Throttling with Retry-After is honoured, without it backed off; 503 is retried")
    func retries() async throws {
        try await withEmulator(seed: .demo) { (harness) async throws in
            let (client, clock) = try await Self.clientSleepingOnRecordingClock(harness)
            await Self.failAPIKey(harness, times: 1, status: 429, retryAfter: 7)
            await Self.failAPIKey(harness, times: 1, status: 429, retryAfter: nil)
            await Self.failAPIKey(harness, times: 1, status: 503, retryAfter: nil)
            #expect(try await client.getSecret("api-key").value == "demo-api-key-8c2f5e")
            let statuses = await harness.keyVaultRequests("demo").filter { $0.path == "/secrets/api-key" }.map(\.status)
            #expect(statuses.suffix(4) == [429, 429, 503, 200])
            #expect(clock.sleeps.count == 3)
            #expect(clock.sleeps[0] == .seconds(7))
            // Exponential over the call's retries: the 2nd waits 1.6 s and the 3rd 3.2 s, each with jitter ×[0.8, 1.3).
            #expect(clock.sleeps[1] >= .milliseconds(1280) && clock.sleeps[1] < .milliseconds(2080))
            #expect(clock.sleeps[2] >= .milliseconds(2560) && clock.sleeps[2] < .milliseconds(4160))
        }
    }

    @Test(
        "authenticate learns the challenge and gets a token, retrying like any call; a vault that never asks for one is refused"
    )
    func preflight() async throws {
        try await withEmulator(seed: .demo) { (harness) async throws in
            let clock = RecordingClock()
            var options = KeyVaultClientOptions.sleeping(on: clock)
            options.retry.maxRetries = 2
            let client = try harness.client("demo", credential: harness.secretCredential(), options: options)
            await harness.emulator.inject(
                FaultRule(
                    method: "GET", vault: "demo", pathPrefix: "/secrets", count: 1, action: .status(503, retryAfter: 3))
            )
            let token = try await client.authenticate()
            #expect(!token.token.isEmpty && client.currentChallenge != nil)
            #expect(clock.sleeps == [.seconds(3)])
            #expect(await harness.keyVaultRequests("demo").map(\.status) == [503, 401])

            let failing = try harness.client("demo", credential: harness.secretCredential(), options: options)
            await harness.emulator.inject(
                FaultRule(
                    method: "GET", vault: "demo", pathPrefix: "/secrets", count: 3, action: .status(500, retryAfter: 0))
            )
            await #expect {
                _ = try await failing.authenticate()
            } throws: { error in
                (error as? KeyVaultError)?.kind == .serverError && (error as? KeyVaultError)?.status == 500
            }
            await harness.emulator.inject(
                FaultRule(
                    method: "GET", vault: "demo", pathPrefix: "/secrets", count: 1,
                    action: .status(404, retryAfter: nil)))
            await #expect {
                _ = try await failing.authenticate()
            } throws: { error in
                (error as? KeyVaultError)?.kind == .invalidResponse
                    && "\(error)".contains("instead of asking for a token")
            }
        }
    }

    @Test(
        "A Retry-After over 60 s is honoured up to the configured maximum; past the deadline the call fails as throttled"
    )
    func longRetryAfter() async throws {
        try await withEmulator(seed: .demo) { (harness) async throws in
            let clock = RecordingClock()
            var options = KeyVaultClientOptions.sleeping(on: clock)
            options.retry.maxRetryAfter = .seconds(100)
            options.retry.deadline = .seconds(180)
            let client = try harness.client("demo", credential: harness.secretCredential(), options: options)
            await harness.emulator.inject(
                FaultRule(vault: "demo", pathPrefix: "/secrets/api-key", count: 1, action: .status(429, retryAfter: 90))
            )
            #expect(try await client.getSecret("api-key").value != nil)
            #expect(clock.sleeps.contains(.seconds(90)))

            await harness.emulator.inject(
                FaultRule(
                    vault: "demo", pathPrefix: "/secrets/api-key", count: 1, action: .status(429, retryAfter: 600)))
            let capped = RecordingClock()
            options.clock = capped
            let cappedClient = try harness.client("demo", credential: harness.secretCredential(), options: options)
            _ = try await cappedClient.getSecret("api-key")
            #expect(capped.sleeps.contains(.seconds(100)), "a 600 s ask is shortened to the 100 s maximum")

            await harness.emulator.inject(
                FaultRule(
                    vault: "demo", pathPrefix: "/secrets/api-key", count: 5, action: .status(429, retryAfter: 100)))
            let impatient = RecordingClock()
            options.clock = impatient
            let impatientClient = try harness.client("demo", credential: harness.secretCredential(), options: options)
            await #expect {
                _ = try await impatientClient.getSecret("api-key")
            } throws: { error in
                let failure = error as? KeyVaultError
                return failure?.kind == .throttled && failure?.retryAfter == .seconds(100)
                    && "\(error)".contains("Throttled")
            }
            #expect(impatient.sleeps == [.seconds(100)], "a second 100 s wait would pass the 180 s deadline")
        }
    }

    @Test("Dropped connections are retried")
    func networkRetry() async throws {
        try await withEmulator(seed: .demo) { (harness) async throws in
            var options = KeyVaultClientOptions()
            options.clock = RecordingClock()
            let client = try harness.client("demo", credential: harness.secretCredential(), options: options)
            _ = try await client.getSecret("api-key")
            await harness.emulator.inject(FaultRule(vault: "demo", count: 2, action: .drop))
            #expect(try await client.getSecret("api-key").value == "demo-api-key-8c2f5e")
        }
    }

    @Test("A challenge naming a resource outside the vault's domain is refused, and no token is requested")
    func foreignChallenge() async throws {
        let seed = Seed(challengeResource: "https://vault.azure.net", vaults: [SeedVault(name: "spoofed")])
        try await withEmulator(seed: seed) { (harness) async throws in
            let client = try harness.client("spoofed", credential: harness.secretCredential())
            await #expect {
                _ = try await client.getSecret("anything")
            } throws: { error in
                (error as? KeyVaultError)?.kind == .challengeRejected
                    && "\(error)".contains("https://vault.azure.net/.default")
            }
            #expect(await harness.tokenRequests().isEmpty)
            let requests = await harness.keyVaultRequests("spoofed")
            #expect(
                requests.count == 1 && requests[0].identity == nil, "only the unauthenticated probe reached the vault")

            var options = KeyVaultClientOptions()
            options.verifyChallengeResource = false
            let trusting = try harness.client("spoofed", credential: harness.secretCredential(), options: options)
            await #expect {
                _ = try await trusting.getSecret("anything")
            } throws: { error in
                (error as? KeyVaultError)?.kind == .unauthorized
            }
        }
    }

    @Test("Errors are typed from Key Vault's envelope")
    func typedErrors() async throws {
        let seed = Seed(
            identities: [
                SeedIdentity(name: "reader", type: .servicePrincipal, clientId: "aaaa0000-0000-4000-8000-000000000001")
            ],
            vaults: [
                SeedVault(name: "demo", secrets: [SeedSecret(name: "off", value: "x", enabled: false)]),
                SeedVault(
                    name: "locked", access: [SeedAccessRule(identity: "reader", secrets: ["get"])],
                    secrets: [SeedSecret(name: "s", value: "v")]),
            ]
        )
        try await withEmulator(seed: seed) { (harness) async throws in
            let client = try harness.client("demo", credential: harness.secretCredential())
            for (name, kind, inner) in [
                ("missing", KeyVaultError.Kind.notFound, nil as String?), ("off", .disabled, "SecretDisabled"),
            ] {
                await #expect {
                    _ = try await client.getSecret(name)
                } throws: { error in
                    let failure = error as? KeyVaultError
                    return failure?.kind == kind && failure?.innerCode == inner && failure?.vault == client.vault.url
                }
            }
            let locked = try harness.client(
                "locked", credential: harness.secretCredential(clientId: "aaaa0000-0000-4000-8000-000000000001"))
            await #expect {
                _ = try await locked.listSecrets()
            } throws: { error in
                (error as? KeyVaultError)?.kind == .forbidden && "\(error)".contains("ForbiddenByRbac")
            }
            await #expect(throws: KeyVaultError.self) { _ = try await client.getSecret("bad_name") }
            await #expect(throws: KeyVaultError.self) { _ = try await client.getSecret("ok", version: "../x") }
        }
    }

    @Test("Many concurrent calls share one token request")
    func tokenReuse() async throws {
        try await withEmulator(seed: .demo) { (harness) async throws in
            let client = try harness.client("demo", credential: harness.secretCredential())
            _ = try await client.listSecrets()
            try await withThrowingTaskGroup { group in
                for _ in 0..<50 { group.addTask { _ = try await client.getSecret("api-key") } }
                try await group.waitForAll()
            }
            #expect(await harness.tokenRequests().count == 1)
        }
    }

    @Test("Concurrent first calls learn the challenge from one unauthenticated request")
    func oneChallengeProbe() async throws {
        try await withEmulator(seed: .demo) { (harness) async throws in
            let client = try harness.client("demo", credential: harness.secretCredential())
            try await withThrowingTaskGroup { group in
                for _ in 0..<20 { group.addTask { _ = try await client.getSecret("api-key") } }
                try await group.waitForAll()
            }
            let requests = await harness.keyVaultRequests("demo")
            #expect(requests.filter { $0.status == 401 }.count == 1)
            #expect(requests.filter { $0.status == 200 }.count == 20)
            #expect(await harness.tokenRequests().count == 1)
        }
    }

    @Test(
        "A burst's first calls each ask unauthenticated up to parallelFirstContacts, so its authenticated requests find their connections open",
        arguments: [(parallel: 8, probes: 8), (parallel: 1, probes: 1)])
    func parallelFirstContacts(parallel: Int, probes: Int) async throws {
        try await withEmulator(seed: .demo) { (harness) async throws in
            var settings = HTTPClientConfiguration()
            settings.extraCAFile = harness.directory.appendingPathComponent("ca.pem").path
            settings.maxConnectionsPerHost = 8
            let http = FirstContactsTogether(try CurlHTTPClient(configuration: settings), count: probes)
            defer { http.base.shutdown() }
            var options = KeyVaultClientOptions()
            options.parallelFirstContacts = parallel
            let client = KeyVaultClient(
                vault: try harness.vault("demo"), credential: harness.secretCredential(), http: http, options: options)
            try await withThrowingTaskGroup { group in
                for _ in 0..<8 { group.addTask { _ = try await client.getSecret("api-key") } }
                try await group.waitForAll()
            }
            let requests = await harness.keyVaultRequests("demo")
            #expect(requests.filter { $0.status == 401 }.count == probes)
            #expect(requests.filter { $0.status == 200 }.count == 8)
            #expect(await harness.tokenRequests().count == 1)
            let opened = http.connectionsOpenedWithToken.withLock { $0 }
            if parallel == 8 {
                #expect(opened == 0, "each authenticated request reused a connection a first contact opened")
            } else {
                #expect(opened > 0, "one probe opened one connection; requests beyond it opened their own")
            }
        }
    }

    @Test("A first call whose caller gives up calls off its hung challenge probe; the next call asks afresh")
    func abandonedProbe() async throws {
        try await withEmulator(seed: .demo) { (harness) async throws in
            var options = KeyVaultClientOptions()
            options.requestTimeout = .seconds(120)
            let client = try harness.client("demo", credential: harness.secretCredential(), options: options)
            await harness.emulator.inject(FaultRule(vault: "demo", count: 1, action: .hang(seconds: 300)))
            let abandoned = Task { try await client.getSecret("api-key") }
            for _ in 0..<200 where await harness.keyVaultRequests("demo").isEmpty {
                try await Task.sleep(for: .milliseconds(10))
            }
            abandoned.cancel()
            await #expect(throws: (any Error).self) { try await abandoned.value }
            // Not held up for the probe's 120 s timeout by the probe still hanging in the emulator.
            let value = try await withThrowingTaskGroup(of: String?.self) { group in
                group.addTask { try await client.getSecret("api-key").value }
                group.addTask {
                    try await Task.sleep(for: .seconds(30))
                    return nil
                }
                defer { group.cancelAll() }
                return try await group.next() ?? nil
            }
            #expect(value == "demo-api-key-8c2f5e")
        }
    }
}

extension KeyVaultClientOptions {
    /// Default options whose retry waits are recorded by `clock` instead of slept.
    fileprivate static func sleeping(on clock: RecordingClock) -> Self {
        var options = KeyVaultClientOptions()
        options.clock = clock
        return options
    }
}

/// The real transport, holding unauthenticated requests until `count` of them have arrived (so a
/// burst's first contacts are in flight together however the tasks are scheduled), and counting
/// the connections that authenticated requests had to open.
private final class FirstContactsTogether: HTTPClient {
    let base: CurlHTTPClient
    let count: Int
    let arrived = Mutex(0)
    let connectionsOpenedWithToken = Mutex(0)

    init(_ base: CurlHTTPClient, count: Int) {
        self.base = base
        self.count = count
    }

    func execute(_ request: HTTPRequest, body: [UInt8]?, timeout: Duration?) async throws(HTTPTransportError)
        -> HTTPClientResponse
    {
        let authenticated = request.headerFields[.authorization] != nil
        if !authenticated, request.authority?.hasPrefix("demo.") == true {
            arrived.withLock { $0 += 1 }
            for _ in 0..<500 where arrived.withLock({ $0 }) < count {
                try? await Task.sleep(for: .milliseconds(10))
            }
        }
        let response = try await base.execute(request, body: body, timeout: timeout)
        if authenticated { connectionsOpenedWithToken.withLock { $0 += response.newConnections } }
        return response
    }
}
