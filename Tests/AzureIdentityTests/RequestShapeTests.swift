import AzureIdentity
import Foundation
import HTTPTransport
import HTTPTypes
import Synchronization
import Testing

/// Answers every request with a token and keeps what was sent, so tests can check the wire
/// format without a server.
private final class RecordingHTTPClient: HTTPClient {
    struct Sent: Sendable {
        var request: HTTPRequest
        var body: String?
    }

    private let recorded = Mutex<[Sent]>([])

    var sent: [Sent] { recorded.withLock { $0 } }

    func execute(_ request: HTTPRequest, body: [UInt8]?, timeout: Duration?) async throws(HTTPTransportError)
        -> HTTPClientResponse
    {
        // Decoded now: the credentials wipe their form bodies once the request is done.
        let text = body.map { String(decoding: $0, as: UTF8.self) }
        recorded.withLock { $0.append(Sent(request: request, body: text)) }
        return HTTPClientResponse(
            head: HTTPResponse(status: .ok), body: Array(#"{"access_token":"issued","expires_in":3600}"#.utf8))
    }
}

@Suite("What credentials send")
struct RequestShapeTests {
    static let authority = EntraAuthority(host: "https://login.example", tenantId: "contoso.example")
    static let context = TokenRequestContext(scope: "https://vault.azure.net/.default")
    static let scope = "https%3A%2F%2Fvault.azure.net%2F.default"
    static let assertionType = "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"

    func headers(_ request: HTTPRequest) -> [String] {
        request.headerFields.map { "\($0.name.rawName): \($0.value)" }
    }

    @Test func clientSecretPostsTheSecretGrant() async throws {
        let http = RecordingHTTPClient()
        let credential = ClientSecretCredential(
            authority: Self.authority, clientId: "app-1", secret: "s3cr+t", http: http)
        #expect(credential.clientId == "app-1")
        #expect(credential.name == "ClientSecretCredential (client app-1, tenant contoso.example)")
        #expect(try await credential.getToken(Self.context).token == "issued")
        let sent = try #require(http.sent.first)
        #expect(sent.request.method == .post)
        #expect(sent.request.authority == "login.example")
        #expect(sent.request.path == "/contoso.example/oauth2/v2.0/token")
        #expect(
            headers(sent.request) == ["Content-Type: application/x-www-form-urlencoded", "Accept: application/json"])
        #expect(
            sent.body == "grant_type=client_credentials&client_id=app-1&client_secret=s3cr%2Bt&scope=\(Self.scope)")
    }

    @Test func clientSecretChecksTheAuthorityFirstAndTheTenantLast() async {
        let http = RecordingHTTPClient()
        let badHost = ClientSecretCredential(
            authority: EntraAuthority(host: "http://login.example", tenantId: "contoso.example"), clientId: "app-1",
            secret: "", http: http)
        let hostError = await #expect(throws: CredentialError.self) { try await badHost.getToken(Self.context) }
        #expect(hostError?.message.hasPrefix("authority host 'http://login.example' must be an https URL") == true)

        let emptySecret = ClientSecretCredential(authority: Self.authority, clientId: "app-1", secret: "", http: http)
        let otherTenant = TokenRequestContext(scope: Self.context.scope, tenantId: "fabrikam.example")
        let secretError = await #expect(throws: CredentialError.self) { try await emptySecret.getToken(otherTenant) }
        #expect(secretError?.credential == "ClientSecretCredential")
        #expect(secretError?.kind == .invalidConfiguration)
        #expect(secretError?.message == "the client secret is empty")
        #expect(http.sent.isEmpty)
    }

    @Test func workloadIdentityPostsTheFederatedToken() async throws {
        let http = RecordingHTTPClient()
        let credential = WorkloadIdentityCredential(
            authority: Self.authority, clientId: "app-2", assertion: .provider({ "header.claims.signature\n" }),
            http: http)
        #expect(credential.clientId == "app-2")
        #expect(credential.name == "WorkloadIdentityCredential (client app-2, tenant contoso.example)")
        #expect(try await credential.getToken(Self.context).token == "issued")
        let sent = try #require(http.sent.first)
        #expect(sent.request.path == "/contoso.example/oauth2/v2.0/token")
        #expect(
            sent.body
                == "grant_type=client_credentials&client_id=app-2&scope=\(Self.scope)&client_assertion_type=\(Self.assertionType)&client_assertion=header.claims.signature"
        )
    }

    @Test func workloadIdentityChecksTheTenantBeforeReadingTheToken() async {
        let http = RecordingHTTPClient()
        let credential = WorkloadIdentityCredential(
            authority: Self.authority, clientId: "app-2", assertion: .provider({ nil }), http: http)
        let otherTenant = TokenRequestContext(scope: Self.context.scope, tenantId: "fabrikam.example")
        let tenantError = await #expect(throws: CredentialError.self) { try await credential.getToken(otherTenant) }
        #expect(tenantError?.message.hasPrefix("the vault belongs to tenant fabrikam.example") == true)
        let tokenError = await #expect(throws: CredentialError.self) { try await credential.getToken(Self.context) }
        #expect(tokenError?.credential == "WorkloadIdentityCredential")
        #expect(tokenError?.kind == .invalidConfiguration)
        #expect(tokenError?.message == "no service-account token is available")
        #expect(http.sent.isEmpty)
    }

    @Test func certificateCredentialNamesItselfAndItsFile() async {
        let credential = ClientCertificateCredential(
            authority: Self.authority, clientId: "app-3", certificatePath: "/nonexistent/cert.pem",
            http: RecordingHTTPClient())
        #expect(credential.clientId == "app-3")
        #expect(credential.name == "ClientCertificateCredential (client app-3, tenant contoso.example)")
        let error = await #expect(throws: CredentialError.self) { try await credential.getToken(Self.context) }
        #expect(error?.credential == "ClientCertificateCredential")
        #expect(error?.kind == .invalidConfiguration)
        #expect(
            error?.message
                == "cannot read the certificate file /nonexistent/cert.pem (AZURE_CLIENT_CERTIFICATE_PATH)")
    }

    static let resourceId =
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u"
    static let encodedResourceId =
        "%2Fsubscriptions%2Fs%2FresourceGroups%2Frg%2Fproviders%2FMicrosoft.ManagedIdentity%2FuserAssignedIdentities%2Fu"

    @Test(arguments: [
        (ManagedIdentityCredential.Identity.systemAssigned, ""),
        (.clientId("c-1"), "&client_id=c-1"),
        (.objectId("o-1"), "&object_id=o-1"),
        (.resourceId(RequestShapeTests.resourceId), "&msi_res_id=\(RequestShapeTests.encodedResourceId)"),
    ])
    func managedIdentityAsksIMDS(_ identity: ManagedIdentityCredential.Identity, _ selector: String) async throws {
        let http = RecordingHTTPClient()
        let credential = ManagedIdentityCredential(
            identity: identity, source: .imds(endpoint: "http://169.254.169.254"), http: http)
        #expect(try await credential.getToken(Self.context).token == "issued")
        let sent = try #require(http.sent.first)
        #expect(sent.request.method == .get)
        #expect(sent.request.scheme == "http")
        #expect(sent.request.authority == "169.254.169.254")
        #expect(
            sent.request.path
                == "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net\(selector)"
        )
        #expect(headers(sent.request) == ["Metadata: true"])
        #expect(sent.body == nil)
    }

    @Test(arguments: [
        (ManagedIdentityCredential.Identity.systemAssigned, ""),
        (.clientId("c-1"), "&client_id=c-1"),
        (.objectId("o-1"), "&object_id=o-1"),
        (.resourceId(RequestShapeTests.resourceId), "&mi_res_id=\(RequestShapeTests.encodedResourceId)"),
    ])
    func managedIdentityAsksAppService(_ identity: ManagedIdentityCredential.Identity, _ selector: String)
        async throws
    {
        let http = RecordingHTTPClient()
        let credential = ManagedIdentityCredential(
            identity: identity, source: .appService(endpoint: "http://127.0.0.1:41000/msi/token", header: "h-1"),
            http: http)
        #expect(try await credential.getToken(Self.context).token == "issued")
        let sent = try #require(http.sent.first)
        #expect(sent.request.authority == "127.0.0.1:41000")
        #expect(
            sent.request.path
                == "/msi/token?api-version=2019-08-01&resource=https%3A%2F%2Fvault.azure.net\(selector)")
        #expect(headers(sent.request) == ["X-IDENTITY-HEADER: h-1", "Metadata: true"])
    }

    static let missingIds = "set AZURE_TENANT_ID and AZURE_CLIENT_ID, or --tenant-id and --client-id"

    @Test(arguments: [
        (
            CredentialSettings.Kind.clientSecret, "ClientSecretCredential",
            "set AZURE_CLIENT_SECRET (or --client-secret-file) for --credential client-secret"
        ),
        (
            .clientCertificate, "ClientCertificateCredential",
            "set AZURE_CLIENT_CERTIFICATE_PATH (or --client-certificate) for --credential client-certificate"
        ),
        (
            .workloadIdentity, "WorkloadIdentityCredential",
            "set AZURE_FEDERATED_TOKEN_FILE (or --federated-token-file) for --credential workload-identity"
        ),
    ])
    func settingsSayWhatAnAppCredentialLacks(_ kind: CredentialSettings.Kind, _ credential: String, _ unset: String) {
        var settings = CredentialSettings()
        settings.kind = kind
        let http = RecordingHTTPClient()
        func failure() -> CredentialError? {
            #expect(throws: CredentialError.self) { try settings.makeCredential(http: http) }
        }
        #expect(failure()?.credential == credential)
        #expect(failure()?.kind == .invalidConfiguration)
        #expect(failure()?.message == unset)

        settings.clientSecret = "s"
        settings.clientCertificatePath = "/c.pem"
        settings.federatedTokenFile = "/token"
        #expect(failure()?.message == "missing tenant id and client id: \(Self.missingIds)")
        settings.tenantId = "contoso.example"
        settings.clientId = ""
        #expect(failure()?.message == "missing client id: \(Self.missingIds)")
        settings.tenantId = nil
        settings.clientId = "app-4"
        #expect(failure()?.message == "missing tenant id: \(Self.missingIds)")
        settings.tenantId = "contoso.example"
        let made = try? settings.makeCredential(http: http)
        #expect(made?.name == "\(credential) (client app-4, tenant contoso.example)")
    }
}
