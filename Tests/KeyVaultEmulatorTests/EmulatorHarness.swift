import Foundation
import HTTPTransport
import HTTPTypes
import KeyVaultEmulator
import Logging
import Testing

/// A bearer token in a test. Its description is redacted so a failed expectation never prints it.
struct BearerToken: Sendable, CustomStringConvertible {
    let value: String
    var description: String { "BearerToken(redacted)" }
}

/// An emulator started in-process on free ports, and a libcurl client that trusts its CA.
struct EmulatorHarness: Sendable {
    let emulator: KeyVaultEmulator
    let client: CurlHTTPClient
    let directory: URL

    var endpoints: EmulatorEndpoints { emulator.endpoints }
    var caFile: String { directory.appendingPathComponent("ca.pem").path }

    static func start(seed: Seed = Seed(), configure: (inout KeyVaultEmulator.Configuration) -> Void = { _ in })
        async throws -> EmulatorHarness
    {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "akvfs-emulator-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var configuration = KeyVaultEmulator.Configuration()
        configuration.caOutputPath = directory.appendingPathComponent("ca.pem").path
        configuration.seed = seed
        configuration.logger = Logger(label: "emulator-test")
        configuration.logger.logLevel = .error
        configure(&configuration)
        let emulator = try await KeyVaultEmulator.start(configuration)
        var clientConfiguration = HTTPClientConfiguration()
        clientConfiguration.extraCAFile = configuration.caOutputPath
        clientConfiguration.requestTimeout = .seconds(30)
        let client = try CurlHTTPClient(configuration: clientConfiguration)
        return EmulatorHarness(emulator: emulator, client: client, directory: directory)
    }

    func stop() async {
        client.shutdown()
        await emulator.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    // MARK: HTTP

    struct Reply: Sendable {
        var status: Int
        var headers: HTTPFields
        var body: [UInt8]

        /// The body as JSON, with any `access_token` redacted (read it with `accessToken`).
        var json: [String: Any] {
            var object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:]
            if object["access_token"] != nil { object["access_token"] = "<redacted>" }
            return object
        }
        var accessToken: BearerToken? {
            let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
            return (object?["access_token"] as? String).map(BearerToken.init)
        }
        var text: String { accessToken == nil ? String(decoding: body, as: UTF8.self) : "<token response>" }
        /// The Key Vault error envelope's code and inner code.
        var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
        var innerErrorCode: String? {
            ((json["error"] as? [String: Any])?["innererror"] as? [String: Any])?["code"] as? String
        }
        var errorMessage: String? { (json["error"] as? [String: Any])?["message"] as? String }

        /// A standard-base64 string field, decoded.
        func base64(_ field: String) throws -> [UInt8] {
            let text = try #require(json[field] as? String, "\(field) missing in \(self.text)")
            return Array(try #require(Data(base64Encoded: text), "\(field) is not base64"))
        }
    }

    func send(
        _ method: HTTPRequest.Method,
        _ url: String,
        headers: HTTPFields = [:],
        body: [UInt8]? = nil,
        timeout: Duration? = nil
    ) async throws -> Reply {
        let components = try #require(URLComponents(string: url))
        let authority = components.port.map { "\(components.host!):\($0)" } ?? components.host!
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        let target = path + (components.percentEncodedQuery.map { "?\($0)" } ?? "")
        let request = HTTPRequest(
            method: method, scheme: components.scheme, authority: authority, path: target, headerFields: headers)
        let response = try await client.execute(request, body: body, timeout: timeout)
        return Reply(status: response.head.status.code, headers: response.head.headerFields, body: response.body)
    }

    func sendJSON(_ method: HTTPRequest.Method, _ url: String, token: BearerToken?, json: Any? = nil) async throws
        -> Reply
    {
        var headers = HTTPFields()
        if let token { headers[.authorization] = "Bearer \(token.value)" }
        var body: [UInt8]?
        if let json {
            headers[.contentType] = "application/json"
            body = Array(try JSONSerialization.data(withJSONObject: json))
        }
        return try await send(method, url, headers: headers, body: body)
    }

    // MARK: Key Vault

    func vaultURL(_ vault: String, _ path: String, apiVersion: String = "7.6") -> String {
        let separator = path.contains("?") ? "&" : "?"
        return "https://\(vault).vault.localhost:\(endpoints.port)\(path)\(separator)api-version=\(apiVersion)"
    }

    func keyVault(_ method: HTTPRequest.Method, _ vault: String, _ path: String, token: BearerToken, json: Any? = nil)
        async throws -> Reply
    {
        try await sendJSON(method, vaultURL(vault, path), token: token, json: json)
    }

    // MARK: Tokens

    var tokenURL: String { "\(endpoints.authorityHost)/\(endpoints.tenantId)/oauth2/v2.0/token" }
    var vaultScope: String { "\(endpoints.resource)/.default" }

    func tokenRequest(_ form: [String: String]) async throws -> Reply {
        let body = form.map { "\($0.key)=\(Self.formEncode($0.value))" }.joined(separator: "&")
        var headers = HTTPFields()
        headers[.contentType] = "application/x-www-form-urlencoded"
        return try await send(.post, tokenURL, headers: headers, body: Array(body.utf8))
    }

    /// A vault token for a client-secret identity (any secret works for open identities).
    func token(
        clientId: String = "11111111-2222-3333-4444-555555555555", secret: String = "test-secret", scope: String? = nil
    ) async throws -> BearerToken {
        let reply = try await tokenRequest([
            "grant_type": "client_credentials", "client_id": clientId, "client_secret": secret,
            "scope": scope ?? vaultScope,
        ])
        #expect(reply.status == 200, "token request failed: \(reply.text)")
        return try #require(reply.accessToken)
    }

    static func formEncode(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~")))
            ?? value
    }

    /// The payload of a JWT, decoded without checking it.
    static func claims(of token: BearerToken?) -> [String: Any] {
        let parts = (token?.value ?? "").split(separator: ".")
        guard parts.count == 3 else { return [:] }
        var base64 = String(parts[1]).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64) else { return [:] }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
    }
}

/// Runs `body` with a fresh emulator and always stops it.
func withEmulator(
    seed: Seed = Seed(),
    configure: (inout KeyVaultEmulator.Configuration) -> Void = { _ in },
    _ body: (EmulatorHarness) async throws -> Void
) async throws {
    let harness = try await EmulatorHarness.start(seed: seed, configure: configure)
    do {
        try await body(harness)
    } catch {
        await harness.stop()
        throw error
    }
    await harness.stop()
}
