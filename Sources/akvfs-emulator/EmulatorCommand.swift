import ArgumentParser
import Dispatch
import FoundationEssentials
import Glibc
import KeyVaultEmulator
import Logging

@main
struct EmulatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "akvfs-emulator",
        abstract: "A local Azure Key Vault with Entra ID and IMDS endpoints, for tests and demos.",
        discussion: """
            Serves the Key Vault data plane for any vault at https://<vault>.vault.localhost:<port>/, the \
            Entra ID token endpoint at https://localhost:<port>/<tenant>/oauth2/v2.0/token, and IMDS and the \
            App Service identity endpoint on the plain-HTTP port. Once ready it prints one line of JSON to \
            stdout (port, imdsPort, authorityHost, tenantId, caFile, ...) and logs to stderr. SIGTERM or \
            SIGINT stop it. The admin API for request logs and fault injection is under /_emulator/ \
            (see docs/emulator.md).
            """
    )

    @Option(help: "HTTPS port for Key Vault and Entra ID (0 picks a free port).")
    var port: Int = 8443

    @Option(
        name: .customLong("imds-port"), help: "Plain-HTTP port for IMDS and App Service identity (0 picks a free port)."
    )
    var imdsPort: Int = 8480

    @Option(
        name: .customLong("ca-out"),
        help: "Write the emulator's CA certificate (PEM) to this file; clients must trust it.")
    var caOut: String

    @Option(
        help:
            "Seed file (JSON) with vaults, objects, identities and access rules. Without it the vault set starts empty."
    )
    var seed: String?

    @Flag(help: "Load the built-in demo seed (vault 'demo' with secrets, keys and certificates).")
    var demo = false

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    func validate() throws {
        guard (0...65535).contains(port) else {
            throw ValidationError("--port must be between 0 and 65535; got \(port).")
        }
        guard (0...65535).contains(imdsPort) else {
            throw ValidationError("--imds-port must be between 0 and 65535; got \(imdsPort).")
        }
        guard port == 0 || port != imdsPort else { throw ValidationError("--port and --imds-port must differ.") }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError(
                "--log-level must be one of trace, debug, info, notice, warning, error, critical; got '\(logLevel)'.")
        }
        guard !(demo && seed != nil) else { throw ValidationError("Use either --seed FILE or --demo, not both.") }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel)!
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "akvfs-emulator")

        var configuration = KeyVaultEmulator.Configuration()
        configuration.bindHost = host
        configuration.port = port
        configuration.imdsPort = imdsPort
        configuration.caOutputPath = caOut
        configuration.logger = logger
        configuration.appServiceIdentityHeader = ProcessInfo.processInfo.environment["AKVFS_EMULATOR_IDENTITY_HEADER"]
        do {
            if demo {
                configuration.seed = .demo
            } else if let seed {
                configuration.seed = try Seed.load(path: seed)
            }
        } catch {
            printError("akvfs-emulator: \(error)")
            throw ExitCode.failure
        }

        let termination = TerminationSignals()
        let emulator: KeyVaultEmulator
        do {
            emulator = try await KeyVaultEmulator.start(configuration)
        } catch {
            printError("akvfs-emulator: \(error)")
            throw ExitCode.failure
        }

        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let line = String(decoding: try encoder.encode(emulator.endpoints), as: UTF8.self)
        writeLine(line, to: STDOUT_FILENO)
        logger.info(
            "ready", metadata: ["port": "\(emulator.endpoints.port)", "imdsPort": "\(emulator.endpoints.imdsPort)"])

        let signal = await termination.wait()
        logger.info("stopping", metadata: ["signal": "\(signal)"])
        await emulator.stop()
    }

    private func printError(_ message: String) {
        writeLine(message, to: STDERR_FILENO)
    }

    /// Unbuffered, so the ready line reaches a parent reading the pipe at once.
    private func writeLine(_ text: String, to descriptor: Int32) {
        var bytes = Array((text + "\n").utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            guard written > 0 else { return }
            bytes = bytes.dropFirst(written)
        }
    }
}

/// Turns SIGTERM and SIGINT into an awaitable event, so the emulator stops its listeners and
/// exits 0 instead of dying mid-response.
final class TerminationSignals {
    private let sources: [any DispatchSourceSignal]
    private let stream: AsyncStream<Int32>

    init() {
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        self.stream = stream
        sources = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            return source
        }
    }

    func wait() async -> Int32 {
        for await number in stream { return number }
        return 0
    }
}
