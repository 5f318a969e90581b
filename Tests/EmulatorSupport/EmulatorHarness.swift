import Foundation
import HTTPTransport
import KeyVaultEmulator
import Logging
import TestSupport

/// An emulator started in this process on free ports, a libcurl client that trusts its CA, and a
/// directory for the test's files (the CA among them), removed when it stops.
public struct EmulatorHarness: EmulatorConnection {
    public let emulator: KeyVaultEmulator
    public let http: CurlHTTPClient
    public let directory: URL

    public var endpoints: EmulatorEndpoints { emulator.endpoints }
    public var caFile: String { directory.appendingPathComponent("ca.pem").path }
    public var tenantId: String { endpoints.tenantId }

    public static func start(
        seed: Seed = Seed(), configure: (inout KeyVaultEmulator.Configuration) -> Void = { _ in }
    ) async throws -> EmulatorHarness {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "akvfs-emulator-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let caFile = directory.appendingPathComponent("ca.pem").path
        var configuration = KeyVaultEmulator.Configuration()
        configuration.caOutputPath = caFile
        configuration.seed = seed
        configuration.logger = Logger(label: "emulator-test")
        configuration.logger.logLevel = .error
        configure(&configuration)
        let emulator = try await KeyVaultEmulator.start(configuration)
        let http = try CurlHTTPClient(trusting: caFile)
        return EmulatorHarness(emulator: emulator, http: http, directory: directory)
    }

    public func stop() async {
        http.shutdown()
        await emulator.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Writes `contents` to `name` in the test's directory; its path.
    public func file(_ name: String, _ contents: String) throws -> String {
        let url = directory.appendingPathComponent(name)
        try Data(contents.utf8).write(to: url)
        return url.path
    }

    /// Token-endpoint requests the emulator has answered.
    public func tokenRequests() async -> [LoggedRequest] {
        await emulator.requests().filter { $0.endpoint == .token }
    }

    /// Key Vault requests the emulator has answered for `vault`.
    public func keyVaultRequests(_ vault: String) async -> [LoggedRequest] {
        await emulator.requests().filter { $0.endpoint == .keyVault && $0.vault == vault }
    }
}

/// Runs `body` with a fresh emulator and always stops it.
public func withEmulator(
    seed: Seed = Seed(),
    configure: (inout KeyVaultEmulator.Configuration) -> Void = { _ in },
    _ body: (EmulatorHarness) async throws -> Void
) async throws {
    try await using(
        try await EmulatorHarness.start(seed: seed, configure: configure), release: { await $0.stop() }, body)
}
