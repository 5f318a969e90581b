import ArgumentParser
import AzureIdentity
import FoundationEssentials

/// Which identity to authenticate as. Every option falls back to the standard environment
/// variable; secrets (client secret, certificate password) come only from the environment or a file.
struct IdentityOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "auto (the Azure SDKs' default chain), managed-identity, workload-identity, client-secret, client-certificate or azure-cli. Env: AKVFS_CREDENTIAL.",
            valueName: "kind"))
    var credential: String?

    @Option(help: "Directory (tenant) id. Env: AZURE_TENANT_ID.")
    var tenantId: String?

    @Option(
        help: "Application (client) id, or a user-assigned managed identity's client id. Env: AZURE_CLIENT_ID.")
    var clientId: String?

    @Option(
        help: ArgumentHelp("Read the client secret from this file instead of AZURE_CLIENT_SECRET.", valueName: "file"))
    var clientSecretFile: String?

    @Option(
        help: ArgumentHelp(
            "PEM or PKCS#12 file with the service principal's certificate and key; password from AZURE_CLIENT_CERTIFICATE_PASSWORD. Env: AZURE_CLIENT_CERTIFICATE_PATH.",
            valueName: "file"))
    var clientCertificate: String?

    @Option(
        help: ArgumentHelp("Workload identity token file. Env: AZURE_FEDERATED_TOKEN_FILE.", valueName: "file"))
    var federatedTokenFile: String?

    @Option(
        help:
            "Entra ID authority, e.g. https://login.microsoftonline.com (default: the cloud's). Env: AZURE_AUTHORITY_HOST."
    )
    var authorityHost: String?

    @Option(
        help: "A user-assigned managed identity by object (principal) id.")
    var managedIdentityObjectId: String?

    @Option(
        help: "A user-assigned managed identity by ARM resource id.")
    var managedIdentityResourceId: String?

    @Option(
        help: ArgumentHelp(
            "Instance Metadata Service base URL (default http://169.254.169.254). Env: AKVFS_IMDS_ENDPOINT.",
            valueName: "url"))
    var imdsEndpoint: String?

    @Option(
        help: ArgumentHelp(
            "Other tenants a vault may send the credential to, comma-separated, or '*'.", valueName: "tenants"))
    var additionallyAllowedTenants: String?

    func validate() throws {
        if let credential, CredentialSettings.Kind(rawValue: credential) == nil {
            let allowed = CredentialSettings.Kind.allCases.map(\.rawValue).joined(separator: ", ")
            throw ValidationError("--credential '\(credential)' is not one of \(allowed).")
        }
    }

    /// Settings from the environment, overridden by options.
    func settings(_ environment: [String: String]) throws -> CredentialSettings {
        var settings = CredentialSettings.fromEnvironment(environment)
        let kindName = credential ?? environment["AKVFS_CREDENTIAL"] ?? "auto"
        guard let kind = CredentialSettings.Kind(rawValue: kindName) else {
            throw ValidationError(
                "AKVFS_CREDENTIAL '\(kindName)' is not one of \(CredentialSettings.Kind.allCases.map(\.rawValue).joined(separator: ", "))."
            )
        }
        settings.kind = kind
        if let tenantId { settings.tenantId = tenantId }
        if let clientId { settings.clientId = clientId }
        if let clientSecretFile {
            guard let data = FileManager.default.contents(atPath: clientSecretFile) else {
                throw ValidationError("cannot read --client-secret-file \(clientSecretFile).")
            }
            settings.clientSecret = String(decoding: data, as: UTF8.self).trimmingWhitespace
        }
        if let clientCertificate { settings.clientCertificatePath = clientCertificate }
        if let federatedTokenFile { settings.federatedTokenFile = federatedTokenFile }
        if let authorityHost { settings.authorityHost = authorityHost }
        if let managedIdentityObjectId { settings.managedIdentityObjectId = managedIdentityObjectId }
        if let managedIdentityResourceId { settings.managedIdentityResourceId = managedIdentityResourceId }
        if let imdsEndpoint { settings.imdsEndpoint = imdsEndpoint }
        if let additionallyAllowedTenants {
            settings.additionallyAllowedTenants = additionallyAllowedTenants.split(separator: ",").map {
                $0.trimmingWhitespace
            }
        }
        return settings
    }
}
