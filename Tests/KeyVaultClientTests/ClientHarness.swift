import AzureIdentity
import Foundation
import HTTPTransport
import HTTPTypes
import KeyVault
import KeyVaultEmulator
import Logging
import PKI
import Synchronization
import Testing

/// An emulator in-process, a libcurl client trusting its CA, and helpers to build the akvfs
/// client against it the way `akvfs` does.
struct ClientHarness: Sendable {
    let emulator: KeyVaultEmulator
    let http: CurlHTTPClient
    let directory: URL

    var endpoints: EmulatorEndpoints { emulator.endpoints }
    var caFile: String { directory.appendingPathComponent("ca.pem").path }
    var tenantId: String { endpoints.tenantId }
    var authority: EntraAuthority { EntraAuthority(host: endpoints.authorityHost, tenantId: tenantId) }

    func vault(_ name: String) throws -> VaultEndpoint {
        try VaultEndpoint.resolve(endpoints.vaultURL(name), cloud: .publicCloud)
    }

    func client(_ vault: String, credential: any TokenCredential, options: KeyVaultClientOptions = .init()) throws
        -> KeyVaultClient
    {
        KeyVaultClient(vault: try self.vault(vault), credential: credential, http: http, options: options)
    }

    /// An open identity's client-secret credential (any secret is accepted for unknown apps).
    func secretCredential(clientId: String = "0000aaaa-0000-4000-8000-000000000001", secret: String = "any")
        -> CachingCredential
    {
        CachingCredential(ClientSecretCredential(authority: authority, clientId: clientId, secret: secret, http: http))
    }

    func file(_ name: String, _ contents: String) throws -> String {
        let url = directory.appendingPathComponent(name)
        try Data(contents.utf8).write(to: url)
        return url.path
    }

    /// Token-endpoint requests the emulator has seen.
    func tokenRequests() async -> [LoggedRequest] {
        await emulator.requests().filter { $0.endpoint == .token }
    }

    func keyVaultRequests(_ vault: String) async -> [LoggedRequest] {
        await emulator.requests().filter { $0.endpoint == .keyVault && $0.vault == vault }
    }

    static func start(seed: Seed = Seed()) async throws -> ClientHarness {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "akvfs-client-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var configuration = KeyVaultEmulator.Configuration()
        configuration.caOutputPath = directory.appendingPathComponent("ca.pem").path
        configuration.seed = seed
        configuration.logger = Logger(label: "client-test")
        configuration.logger.logLevel = .error
        let emulator = try await KeyVaultEmulator.start(configuration)
        var httpConfiguration = HTTPClientConfiguration()
        httpConfiguration.extraCAFile = configuration.caOutputPath
        let http = try CurlHTTPClient(configuration: httpConfiguration)
        return ClientHarness(emulator: emulator, http: http, directory: directory)
    }

    func stop() async {
        http.shutdown()
        await emulator.stop()
        try? FileManager.default.removeItem(at: directory)
    }
}

func withClientHarness(seed: Seed = Seed(), _ body: (ClientHarness) async throws -> Void) async throws {
    let harness = try await ClientHarness.start(seed: seed)
    do {
        try await body(harness)
    } catch {
        await harness.stop()
        throw error
    }
    await harness.stop()
}

/// A clock whose sleeps return at once and are recorded, so tests can check what the client
/// waited for (Retry-After of minutes included) without waiting.
final class RecordingClock: Clock, Sendable {
    struct Instant: InstantProtocol {
        var offset: Duration
        func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - offset }
        static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
    }

    private let state = Mutex<(now: Duration, sleeps: [Duration])>((.zero, []))

    var now: Instant { Instant(offset: state.withLock { $0.now }) }
    var minimumResolution: Duration { .zero }
    var sleeps: [Duration] { state.withLock { $0.sleeps } }

    func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        try Task.checkCancellation()
        state.withLock { state in
            state.sleeps.append(deadline.offset - state.now)
            state.now = max(state.now, deadline.offset)
        }
    }
}

/// Wall time the test moves by hand, for token expiry.
final class ManualTime: Sendable {
    private let current = Mutex(Date())
    var now: Date { current.withLock { $0 } }
    func advance(by seconds: TimeInterval) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
    var function: @Sendable () -> Date { { self.now } }
}
