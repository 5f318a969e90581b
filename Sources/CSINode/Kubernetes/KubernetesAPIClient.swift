import FoundationEssentials
import HTTPTransport
import HTTPTypes
import SecretProviderClass

/// Calls to the Kubernetes API as the plugin: its own service-account token, read again for
/// every request (kubelet rotates it), and the cluster's CA. What each answer means is the
/// caller's to say; this only fails when no request could be made or none was answered.
struct KubernetesAPIClient: Sendable {
    let configuration: KubernetesAPIConfiguration
    let http: any HTTPClient

    /// `what` names the object for messages: "failed to get <what>: …".
    func get(
        _ path: String, accept: String = "application/json", what: String, timeout: Duration = .seconds(30)
    ) async throws(VolumeError) -> HTTPClientResponse {
        try await send(.get, path, accept: accept, action: "get \(what)", timeout: timeout)
    }

    /// `action` says what the call does for messages: "failed to <action>: …". A body is JSON.
    func send(
        _ method: HTTPRequest.Method, _ path: String, body: [UInt8]? = nil, accept: String = "application/json",
        action: String,
        timeout: Duration = .seconds(30)
    ) async throws(VolumeError) -> HTTPClientResponse {
        guard let tokenData = FileManager.default.contents(atPath: configuration.tokenFile),
            let token = String(data: tokenData, encoding: .utf8)?.filter({ !$0.isWhitespace }), !token.isEmpty
        else {
            throw VolumeError(
                .failedPrecondition,
                "failed to \(action): cannot read the plugin's service-account token at "
                    + "\(configuration.tokenFile); mount the service account token (automountServiceAccountToken: true)"
            )
        }
        guard let components = URLComponents(string: configuration.url), let scheme = components.scheme,
            let host = components.host
        else {
            throw VolumeError(
                .failedPrecondition,
                "the Kubernetes API URL \(configuration.url) is not a URL such as https://10.0.0.1:443")
        }
        let authority = host.contains(":") ? "[\(host)]" : host
        var request = HTTPRequest(
            method: method, scheme: scheme, authority: authority + (components.port.map { ":\($0)" } ?? ""), path: path)
        request.headerFields[.authorization] = "Bearer \(token)"
        request.headerFields[.accept] = accept
        if body != nil { request.headerFields[.contentType] = "application/json" }
        do {
            return try await http.execute(request, body: body, timeout: timeout)
        } catch {
            throw VolumeError(.unavailable, "failed to \(action): \(error)")
        }
    }
}
