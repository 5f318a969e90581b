import FoundationEssentials
import HTTPTransport
import HTTPTypes

/// A managed identity: the machine's system-assigned identity or a user-assigned one, from the
/// Azure Instance Metadata Service (VMs, AKS nodes) or the App Service identity endpoint.
public struct ManagedIdentityCredential: TokenCredential {
    public enum Identity: Sendable, Equatable, CustomStringConvertible {
        case systemAssigned
        case clientId(String)
        case objectId(String)
        case resourceId(String)

        public var description: String {
            switch self {
            case .systemAssigned: "system-assigned"
            case .clientId(let id): "user-assigned, client id \(id)"
            case .objectId(let id): "user-assigned, object id \(id)"
            case .resourceId(let id): "user-assigned, resource id \(id)"
            }
        }
    }

    public enum Source: Sendable, Equatable, CustomStringConvertible {
        /// Base URL of IMDS, `http://169.254.169.254` on Azure.
        case imds(endpoint: String)
        /// `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` of App Service, Functions and Container Apps.
        case appService(endpoint: String, header: String)

        public static let defaultIMDSEndpoint = "http://169.254.169.254"

        /// App Service when its variables are set; else IMDS at `imdsOverride`,
        /// `AZURE_POD_IDENTITY_AUTHORITY_HOST` or the standard address.
        public static func detect(environment: [String: String], imdsOverride: String? = nil) -> Source {
            if let endpoint = environment["IDENTITY_ENDPOINT"], let header = environment["IDENTITY_HEADER"],
                !endpoint.isEmpty, !header.isEmpty
            {
                return .appService(endpoint: endpoint, header: header)
            }
            let endpoint =
                imdsOverride ?? environment["AKVFS_IMDS_ENDPOINT"] ?? environment["AZURE_POD_IDENTITY_AUTHORITY_HOST"]
                ?? defaultIMDSEndpoint
            return .imds(endpoint: endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint)
        }

        public var description: String {
            switch self {
            case .imds(let endpoint): "IMDS at \(endpoint)"
            case .appService(let endpoint, _): "App Service identity endpoint \(endpoint)"
            }
        }
    }

    public let identity: Identity
    public let source: Source
    private let http: any HTTPClient
    private let now: @Sendable () -> Date
    private let clock: any Clock<Duration>

    /// IMDS guidance: retry 404, 410, 429 and 5xx with exponential backoff; 410 means IMDS is
    /// being updated and is back within 70 seconds.
    static let maxRetries = 5
    static let backoff = Backoff(base: .milliseconds(800), maximum: .seconds(15))
    static let updatingWindow: Duration = .seconds(70)

    public init(
        identity: Identity = .systemAssigned,
        source: Source,
        http: any HTTPClient,
        now: @escaping @Sendable () -> Date = { Date() },
        clock: any Clock<Duration> = ContinuousClock()
    ) {
        self.identity = identity
        self.source = source
        self.http = http
        self.now = now
        self.clock = clock
    }

    public var name: String { "ManagedIdentityCredential (\(source), \(identity))" }

    public func getToken(_ context: TokenRequestContext) async throws(CredentialError) -> AccessToken {
        let request = try makeRequest(resource: context.resource)
        var lastProblem = ""
        var waited: Duration = .zero
        var attempt = 0
        while true {
            let response: HTTPClientResponse
            do {
                response = try await http.execute(request, body: nil, timeout: .seconds(10))
            } catch {
                // Nothing listening: this machine has no managed identity endpoint.
                if attempt == 0, [.couldNotConnect, .couldNotResolve, .timedOut].contains(error.kind) {
                    throw CredentialError(
                        credential: "ManagedIdentityCredential", kind: .unavailable,
                        message: "no managed identity endpoint answered at \(source) (\(error.reason))")
                }
                guard error.isRetryable else {
                    throw CredentialError(
                        credential: "ManagedIdentityCredential", kind: .transient, message: error.description)
                }
                lastProblem = error.description
                waited += try await wait(retry: attempt, after: nil)
                attempt += 1
                if attempt > Self.maxRetries { break }
                continue
            }
            let status = response.head.status.code
            if status == 200 {
                guard let token = HTTPSupport.accessToken(in: response.body, now: now()) else {
                    throw CredentialError(
                        credential: "ManagedIdentityCredential", kind: .transient,
                        message: "\(source) answered 200 without a usable access_token and expiry")
                }
                return token
            }
            let summary = HTTPSupport.ErrorResponse.summary(of: response.body, status: status)
            if status == 400 {
                throw CredentialError(
                    credential: "ManagedIdentityCredential",
                    kind: .unavailable,
                    message:
                        "\(source) has no \(identity) identity for this machine (HTTP 400: \(summary)). Assign the identity to the VM or node pool, or choose another with --client-id / --managed-identity-object-id / --managed-identity-resource-id."
                )
            }
            let retryable = status == 404 || status == 410 || status == 429 || (500...599).contains(status)
            guard retryable else {
                throw CredentialError(
                    credential: "ManagedIdentityCredential", kind: .authenticationFailed,
                    message: "\(source) refused the request: HTTP \(status): \(summary)")
            }
            lastProblem = "HTTP \(status): \(summary)"
            attempt += 1
            // 410: keep trying until IMDS's update window has passed, whatever the retry count.
            let withinUpdate = status == 410 && waited < Self.updatingWindow
            if attempt > Self.maxRetries && !withinUpdate { break }
            waited += try await wait(
                retry: attempt - 1, after: RetryAfter.parse(response.head.headerFields, now: now()))
        }
        throw CredentialError(
            credential: "ManagedIdentityCredential", kind: .transient,
            message: "\(source) gave no token after retries: \(lastProblem)")
    }

    /// Sleeps before a retry and returns how long.
    private func wait(retry: Int, after hint: Duration?) async throws(CredentialError) -> Duration {
        let delay = min(hint ?? Self.backoff.delay(beforeRetry: retry), .seconds(30))
        do {
            try await clock.sleep(for: delay)
        } catch {
            throw CredentialError(
                credential: "ManagedIdentityCredential", kind: .transient, message: "cancelled while waiting to retry")
        }
        return delay
    }

    private func makeRequest(resource: String) throws(CredentialError) -> HTTPRequest {
        var headers = HTTPFields()
        let path: String
        let apiVersion: String
        // The two services spell the resource id parameter differently.
        let resourceIdParameter: String
        switch source {
        case .imds(let endpoint):
            path = "\(endpoint)/metadata/identity/oauth2/token"
            (apiVersion, resourceIdParameter) = ("2018-02-01", "msi_res_id")
        case .appService(let endpoint, let header):
            path = endpoint
            (apiVersion, resourceIdParameter) = ("2019-08-01", "mi_res_id")
            headers[HTTPField.Name("X-IDENTITY-HEADER")!] = header
        }
        headers[HTTPField.Name("Metadata")!] = "true"
        var query = [("api-version", apiVersion), ("resource", resource)]
        switch identity {
        case .systemAssigned: break
        case .clientId(let id): query.append(("client_id", id))
        case .objectId(let id): query.append(("object_id", id))
        case .resourceId(let id): query.append((resourceIdParameter, id))
        }
        let url = "\(path)?\(HTTPSupport.query(query))"
        guard let request = HTTPSupport.request(.get, url: url, headers: headers) else {
            throw CredentialError(
                credential: "ManagedIdentityCredential", kind: .invalidConfiguration,
                message: "invalid managed identity endpoint in \(source); use an http:// or https:// URL")
        }
        return request
    }
}
