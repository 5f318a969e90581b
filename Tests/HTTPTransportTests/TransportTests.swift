import EmulatorSupport
import Foundation
import HTTPTransport
import HTTPTypes
import KeyVaultEmulator
import Testing

@Suite("HTTP transport against the emulator")
struct TransportTests {
    @Test("HTTP/1.1 keep-alive by default; HTTP/2 when preferred and offered; connections are reused")
    func versionsAndReuse() async throws {
        try await withEmulator { (harness) async throws in
            for (preferHTTP2, expected) in [(false, "1.1"), (true, "2")] {
                let client = try CurlHTTPClient(trusting: harness.caFile, preferHTTP2: preferHTTP2)
                defer { client.shutdown() }
                let request = harness.openIDConfigurationRequest
                let first = try await client.execute(request)
                let second = try await client.execute(request)
                #expect(first.httpVersion == expected && second.httpVersion == expected)
                #expect(first.newConnections == 1)
                #expect(second.newConnections == 0, "the second request reuses the connection")
            }
        }
    }

    @Test("Tasks preferring the client's executor run on its loop thread, and still finish after shutdown")
    func loopExecutor() async throws {
        try await withEmulator { (harness) async throws in
            let client = try CurlHTTPClient(trusting: harness.caFile)
            let request = harness.openIDConfigurationRequest
            let threads = try await withTaskExecutorPreference(client.taskExecutor) { () async throws -> [String] in
                var names = [currentThreadName()]
                for _ in 0..<3 {
                    let response = try await client.execute(request)
                    #expect(response.head.status.code == 200)
                    names.append(currentThreadName())
                }
                return names
            }
            #expect(threads == Array(repeating: "akvfs-http", count: 4))
            client.shutdown()
            // The loop is gone: the task runs elsewhere and its request fails instead of hanging.
            let afterShutdown = await withTaskExecutorPreference(client.taskExecutor) {
                () async -> HTTPTransportError.Kind? in
                do throws(HTTPTransportError) {
                    _ = try await client.execute(request)
                    return nil
                } catch {
                    return error.kind
                }
            }
            #expect(afterShutdown == .cancelled)
        }
    }

    @Test("An extra CA file must exist and hold PEM certificates")
    func extraCAFileChecked() async throws {
        try await withEmulator { (harness) async throws in
            for (contents, expected) in [
                (nil, "cannot read the extra CA file"), ("not a certificate\n", "holds no PEM certificate"),
            ] {
                var configuration = HTTPClientConfiguration()
                configuration.extraCAFile =
                    try contents.map { try harness.file("extra-ca.pem", $0) } ?? "/nonexistent/ca.pem"
                #expect {
                    _ = try CurlHTTPClient(configuration: configuration)
                } throws: { error in
                    (error as? HTTPTransportError)?.kind == .invalidRequest && "\(error)".contains(expected)
                }
            }
        }
    }

    @Test("Every new connection trusts the system CAs and the extra CA file")
    func sharedTrustStore() async throws {
        try await withEmulator { (harness) async throws in
            let client = try CurlHTTPClient(trusting: harness.caFile)
            defer { client.shutdown() }
            let request = harness.openIDConfigurationRequest
            // Parallel requests open several connections, each set up from the one shared store.
            let responses = try await withThrowingTaskGroup(of: HTTPClientResponse.self) { group in
                for _ in 0..<6 { group.addTask { try await client.execute(request) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(responses.allSatisfy { $0.head.status.code == 200 })
            #expect(responses.map(\.newConnections).reduce(0, +) > 1)
        }
    }

    @Test("An untrusted server certificate fails, whatever the options")
    func untrusted() async throws {
        try await withEmulator { (harness) async throws in
            let client = try CurlHTTPClient()
            defer { client.shutdown() }
            let request = HTTPRequest(
                method: .get, scheme: "https", authority: "localhost:\(harness.endpoints.port)", path: "/")
            await #expect {
                _ = try await client.execute(request)
            } throws: { error in
                (error as? HTTPTransportError)?.kind == .tlsFailure
            }
        }
    }
}

extension EmulatorHarness {
    /// A request any client may send: Entra ID's OpenID configuration.
    fileprivate var openIDConfigurationRequest: HTTPRequest {
        HTTPRequest(
            method: .get, scheme: "https", authority: "localhost:\(endpoints.port)",
            path: "/\(tenantId)/v2.0/.well-known/openid-configuration")
    }
}

private func currentThreadName() -> String {
    ((try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "").trimmingCharacters(in: .newlines)
}
