import Foundation
import HTTPTransport
import HTTPTypes
import KeyVaultEmulator
import Testing

/// A running emulator as a test reaches it: where it listens and a libcurl client that trusts its
/// CA. The requests below are the same whether the emulator runs in this process
/// (`EmulatorHarness`) or in its own (MountTests' `EmulatorProcess`).
public protocol EmulatorConnection: Sendable {
    var endpoints: EmulatorEndpoints { get }
    var http: CurlHTTPClient { get }
}

/// A bearer token in a test. Its description is redacted so a failed expectation never prints it.
public struct BearerToken: Sendable, CustomStringConvertible {
    public let value: String
    public var description: String { "BearerToken(redacted)" }
    public init(value: String) { self.value = value }
}

/// An answer from the emulator.
public struct EmulatorReply: Sendable {
    public var status: Int
    public var headers: HTTPFields
    public var body: [UInt8]

    /// The body as JSON, with any `access_token` redacted (read it with `accessToken`).
    public var json: [String: Any] {
        var object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:]
        if object["access_token"] != nil { object["access_token"] = "<redacted>" }
        return object
    }
    public var accessToken: BearerToken? {
        let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
        return (object?["access_token"] as? String).map(BearerToken.init)
    }
    public var text: String { accessToken == nil ? String(decoding: body, as: UTF8.self) : "<token response>" }
    /// The Key Vault error envelope's code and inner code.
    public var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    public var innerErrorCode: String? {
        ((json["error"] as? [String: Any])?["innererror"] as? [String: Any])?["code"] as? String
    }
    public var errorMessage: String? { (json["error"] as? [String: Any])?["message"] as? String }

    /// A standard-base64 string field, decoded.
    public func base64(_ field: String) throws -> [UInt8] {
        let text = try #require(json[field] as? String, "\(field) missing in \(self.text)")
        return Array(try #require(Data(base64Encoded: text), "\(field) is not base64"))
    }
}

extension EmulatorConnection {
    // MARK: HTTP

    public func send(
        _ method: HTTPRequest.Method,
        _ url: String,
        headers: HTTPFields = [:],
        body: [UInt8]? = nil,
        timeout: Duration? = nil
    ) async throws -> EmulatorReply {
        let components = try #require(URLComponents(string: url))
        let host = try #require(components.host, "no host in \(url)")
        let authority = components.port.map { "\(host):\($0)" } ?? host
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        let target = path + (components.percentEncodedQuery.map { "?\($0)" } ?? "")
        let request = HTTPRequest(
            method: method, scheme: components.scheme, authority: authority, path: target, headerFields: headers)
        let response = try await http.execute(request, body: body, timeout: timeout)
        return EmulatorReply(
            status: response.head.status.code, headers: response.head.headerFields, body: response.body)
    }

    public func sendJSON(_ method: HTTPRequest.Method, _ url: String, token: BearerToken? = nil, json: Any? = nil)
        async throws -> EmulatorReply
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

    public func vaultURL(_ vault: String, _ path: String, apiVersion: String = "7.6") -> String {
        let separator = path.contains("?") ? "&" : "?"
        return "https://\(vault).vault.localhost:\(endpoints.port)\(path)\(separator)api-version=\(apiVersion)"
    }

    public func keyVault(
        _ method: HTTPRequest.Method, _ vault: String, _ path: String, token: BearerToken, json: Any? = nil
    ) async throws -> EmulatorReply {
        try await sendJSON(method, vaultURL(vault, path), token: token, json: json)
    }

    // MARK: Tokens

    public var tokenURL: String { "\(endpoints.authorityHost)/\(endpoints.tenantId)/oauth2/v2.0/token" }
    public var vaultScope: String { "\(endpoints.resource)/.default" }

    public func tokenRequest(_ form: [String: String]) async throws -> EmulatorReply {
        let body = form.map { "\($0.key)=\(Self.formEncode($0.value))" }.joined(separator: "&")
        var headers = HTTPFields()
        headers[.contentType] = "application/x-www-form-urlencoded"
        return try await send(.post, tokenURL, headers: headers, body: Array(body.utf8))
    }

    /// A vault token for a client-secret identity (any secret works for open identities).
    public func token(
        clientId: String = "11111111-2222-3333-4444-555555555555", secret: String = "test-secret", scope: String? = nil
    ) async throws -> BearerToken {
        let reply = try await tokenRequest([
            "grant_type": "client_credentials", "client_id": clientId, "client_secret": secret,
            "scope": scope ?? vaultScope,
        ])
        #expect(reply.status == 200, "token request failed: \(reply.text)")
        return try #require(reply.accessToken)
    }

    public static func formEncode(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~")))
            ?? value
    }

    /// The payload of a JWT, decoded without checking it.
    public static func claims(of token: BearerToken?) -> [String: Any] {
        let parts = (token?.value ?? "").split(separator: ".")
        guard parts.count == 3 else { return [:] }
        var base64 = String(parts[1]).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64) else { return [:] }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
    }
}

extension CurlHTTPClient {
    /// A client that trusts the system's CAs and `caFile`, an emulator's.
    public convenience init(trusting caFile: String, preferHTTP2: Bool = false) throws {
        var configuration = HTTPClientConfiguration()
        configuration.extraCAFile = caFile
        configuration.preferHTTP2 = preferHTTP2
        try self.init(configuration: configuration)
    }
}
