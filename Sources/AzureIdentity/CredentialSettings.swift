import FoundationEssentials
import HTTPTransport

/// Which identity to use and how, from the standard `AZURE_*` variables and command-line options.
/// Secrets come from the environment or files only, never from argv.
public struct CredentialSettings: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        /// Environment (secret, then certificate), workload identity, managed identity, Azure CLI.
        case auto
        case managedIdentity = "managed-identity"
        case workloadIdentity = "workload-identity"
        case clientSecret = "client-secret"
        case clientCertificate = "client-certificate"
        case azureCLI = "azure-cli"
    }

    public var kind: Kind = .auto
    public var tenantId: String?
    public var clientId: String?
    public var clientSecret: String?
    public var clientCertificatePath: String?
    public var clientCertificatePassword: String?
    public var sendCertificateChain = false
    public var federatedTokenFile: String?
    public var authorityHost: String?
    public var additionallyAllowedTenants: [String] = []
    /// Managed identity: user-assigned by object id or resource id (client id uses `clientId`).
    public var managedIdentityObjectId: String?
    public var managedIdentityResourceId: String?
    public var imdsEndpoint: String?
    /// App Service managed identity (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`).
    public var environment: [String: String] = [:]

    public init() {}

    /// Reads `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`,
    /// `AZURE_CLIENT_CERTIFICATE_PATH`, `AZURE_CLIENT_CERTIFICATE_PASSWORD`,
    /// `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN`, `AZURE_FEDERATED_TOKEN_FILE`, `AZURE_AUTHORITY_HOST`,
    /// `AZURE_ADDITIONALLY_ALLOWED_TENANTS`, `AZURE_IDENTITY_DISABLE_MULTITENANTAUTH` and `AKVFS_IMDS_ENDPOINT`.
    public static func fromEnvironment(_ environment: [String: String]) -> CredentialSettings {
        var settings = CredentialSettings()
        func value(_ name: String) -> String? {
            guard let text = environment[name], !text.isEmpty else { return nil }
            return text
        }
        settings.environment = environment
        settings.tenantId = value("AZURE_TENANT_ID")
        settings.clientId = value("AZURE_CLIENT_ID")
        settings.clientSecret = value("AZURE_CLIENT_SECRET")
        settings.clientCertificatePath = value("AZURE_CLIENT_CERTIFICATE_PATH")
        settings.clientCertificatePassword = value("AZURE_CLIENT_CERTIFICATE_PASSWORD")
        settings.sendCertificateChain = ["1", "true"].contains(
            value("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN")?.lowercased() ?? "")
        settings.federatedTokenFile = value("AZURE_FEDERATED_TOKEN_FILE")
        settings.authorityHost = value("AZURE_AUTHORITY_HOST")
        settings.additionallyAllowedTenants =
            value("AZURE_ADDITIONALLY_ALLOWED_TENANTS")?.split(separator: ";").map(String.init) ?? []
        settings.imdsEndpoint = value("AKVFS_IMDS_ENDPOINT")
        return settings
    }

    private func failure(_ credential: String, _ message: String) -> CredentialError {
        CredentialError(credential: credential, kind: .invalidConfiguration, message: message)
    }

    private func authority(defaultHost: String) -> EntraAuthority {
        EntraAuthority(
            host: authorityHost ?? defaultHost, tenantId: tenantId ?? "",
            additionallyAllowedTenants: additionallyAllowedTenants)
    }

    /// Builds the credential, wrapped in a token cache. `defaultAuthorityHost` comes from the
    /// vault's cloud when `AZURE_AUTHORITY_HOST` is not set.
    public func makeCredential(
        http: any HTTPClient,
        defaultAuthorityHost: String = EntraAuthority.publicCloudHost,
        now: @escaping @Sendable () -> Date = { Date() }
    ) throws(CredentialError) -> CachingCredential {
        let credential: any TokenCredential
        switch kind {
        case .auto:
            credential = CredentialChain(chain(http: http, defaultAuthorityHost: defaultAuthorityHost, now: now))
        case .clientSecret:
            let (clientId, secret) = try appSetting(
                clientSecret, from: "AZURE_CLIENT_SECRET (or --client-secret-file)", for: "ClientSecretCredential")
            credential = ClientSecretCredential(
                authority: authority(defaultHost: defaultAuthorityHost), clientId: clientId, secret: secret,
                http: http, now: now)
        case .clientCertificate:
            let (clientId, path) = try appSetting(
                clientCertificatePath, from: "AZURE_CLIENT_CERTIFICATE_PATH (or --client-certificate)",
                for: "ClientCertificateCredential")
            credential = ClientCertificateCredential(
                authority: authority(defaultHost: defaultAuthorityHost), clientId: clientId, certificatePath: path,
                password: clientCertificatePassword, sendCertificateChain: sendCertificateChain, http: http, now: now)
        case .workloadIdentity:
            let (clientId, file) = try appSetting(
                federatedTokenFile, from: "AZURE_FEDERATED_TOKEN_FILE (or --federated-token-file)",
                for: "WorkloadIdentityCredential")
            credential = WorkloadIdentityCredential(
                authority: authority(defaultHost: defaultAuthorityHost), clientId: clientId, assertion: .file(file),
                http: http, now: now)
        case .managedIdentity:
            credential = try managedIdentity(http: http, now: now)
        case .azureCLI:
            credential = AzureCLICredential(tenantId: tenantId, now: now)
        }
        return CachingCredential(credential, now: now)
    }

    /// What an app credential chosen with `--credential` needs: its own setting (`value`, which
    /// `source` names when it is missing), a tenant id and a client id. Returns the client id and `value`.
    private func appSetting(_ value: String?, from source: String, for credential: String) throws(CredentialError)
        -> (clientId: String, value: String)
    {
        guard let value else { throw failure(credential, "set \(source) for --credential \(kind.rawValue)") }
        let required: KeyValuePairs = ["tenant id": tenantId, "client id": clientId]
        let missing = required.filter { $0.value?.isEmpty ?? true }.map(\.key)
        guard missing.isEmpty, let clientId else {
            throw failure(
                credential,
                "missing \(missing.joined(separator: " and ")): set AZURE_TENANT_ID and AZURE_CLIENT_ID, or --tenant-id and --client-id"
            )
        }
        return (clientId, value)
    }

    private func managedIdentity(http: any HTTPClient, now: @escaping @Sendable () -> Date) throws(CredentialError)
        -> ManagedIdentityCredential
    {
        let chosen = [
            clientId.map { ManagedIdentityCredential.Identity.clientId($0) },
            managedIdentityObjectId.map { .objectId($0) },
            managedIdentityResourceId.map { .resourceId($0) },
        ].compactMap { $0 }
        guard chosen.count <= 1 else {
            throw failure(
                "ManagedIdentityCredential",
                "choose a user-assigned identity by one of client id, object id or resource id, not several")
        }
        return ManagedIdentityCredential(
            identity: chosen.first ?? .systemAssigned,
            source: .detect(environment: environment, imdsOverride: imdsEndpoint),
            http: http,
            now: now
        )
    }

    /// DefaultAzureCredential's order: environment, workload identity, managed identity, Azure CLI.
    private func chain(http: any HTTPClient, defaultAuthorityHost: String, now: @escaping @Sendable () -> Date)
        -> [any TokenCredential]
    {
        var credentials: [any TokenCredential] = []
        let authority = authority(defaultHost: defaultAuthorityHost)
        if tenantId != nil, let clientId, let clientSecret {
            credentials.append(
                ClientSecretCredential(
                    authority: authority, clientId: clientId, secret: clientSecret, http: http, now: now))
        } else if tenantId != nil, let clientId, let path = clientCertificatePath {
            credentials.append(
                ClientCertificateCredential(
                    authority: authority, clientId: clientId, certificatePath: path,
                    password: clientCertificatePassword,
                    sendCertificateChain: sendCertificateChain, http: http, now: now))
        } else {
            credentials.append(
                Unavailable(
                    name: "EnvironmentCredential",
                    reason:
                        "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH) are not all set"
                ))
        }
        if tenantId != nil, let clientId, let file = federatedTokenFile {
            credentials.append(
                WorkloadIdentityCredential(
                    authority: authority, clientId: clientId, assertion: .file(file), http: http, now: now))
        } else {
            credentials.append(
                Unavailable(
                    name: "WorkloadIdentityCredential",
                    reason: "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE are not all set"))
        }
        // As in the SDKs, AZURE_CLIENT_ID selects a user-assigned managed identity.
        let identity: ManagedIdentityCredential.Identity =
            managedIdentityObjectId.map { .objectId($0) } ?? managedIdentityResourceId.map { .resourceId($0) }
            ?? clientId.map { .clientId($0) } ?? .systemAssigned
        credentials.append(
            ManagedIdentityCredential(
                identity: identity, source: .detect(environment: environment, imdsOverride: imdsEndpoint), http: http,
                now: now))
        credentials.append(AzureCLICredential(tenantId: tenantId, now: now))
        return credentials
    }
}

/// A chain member whose settings are absent; it reports why without doing anything.
struct Unavailable: TokenCredential {
    let name: String
    let reason: String

    func getToken(_ context: TokenRequestContext) async throws(CredentialError) -> AccessToken {
        throw CredentialError(credential: name, kind: .unavailable, message: reason)
    }
}
