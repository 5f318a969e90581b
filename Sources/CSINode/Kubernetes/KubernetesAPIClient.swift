import FoundationEssentials
import HTTPTransport
import HTTPTypes
import SecretProviderClass

/// GETs from the Kubernetes API as the plugin: its own service-account token, read again for
/// every request (kubelet rotates it), and the cluster's CA. What each answer means is the
/// caller's to say; this only fails when no request could be made or none was answered.
struct KubernetesAPIClient: Sendable {
    let configuration: KubernetesAPIConfiguration
    let http: any HTTPClient

    /// `what` names the object for messages: "failed to get <what>: …".
    func get(
        _ path: String, accept: String = "application/json", what: String, timeout: Duration = .seconds(30)
    ) async throws(VolumeError) -> HTTPClientResponse {
        guard let tokenData = FileManager.default.contents(atPath: configuration.tokenFile),
            let token = String(data: tokenData, encoding: .utf8)?.filter({ !$0.isWhitespace }), !token.isEmpty
        else {
            throw VolumeError(
                .failedPrecondition,
                "failed to get \(what): cannot read the plugin's service-account token at "
                    + "\(configuration.tokenFile); mount the service account token (automountServiceAccountToken: true)")
        }
        guard let components = URLComponents(string: configuration.url), let scheme = components.scheme, let host = components.host else {
            throw VolumeError(.failedPrecondition, "the Kubernetes API URL \(configuration.url) is not a URL such as https://10.0.0.1:443")
        }
        let authority = host.contains(":") ? "[\(host)]" : host
        var request = HTTPRequest(
            method: .get, scheme: scheme, authority: authority + (components.port.map { ":\($0)" } ?? ""), path: path)
        request.headerFields[.authorization] = "Bearer \(token)"
        request.headerFields[.accept] = accept
        do {
            return try await http.execute(request, body: nil, timeout: timeout)
        } catch {
            throw VolumeError(.unavailable, "failed to get \(what): \(error)")
        }
    }
}
