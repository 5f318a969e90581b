import AzureIdentity
import CommandLineSupport
import FoundationEssentials
import HTTPTransport
import KeyVault

/// A vault client with its HTTP client and credential, built from command-line options and the
/// environment. Shut it down when done so the HTTP thread ends.
struct VaultSession {
    let client: KeyVaultClient
    let credential: CachingCredential
    let http: CurlHTTPClient
    let cloud: AzureCloud

    /// `concurrency`: the most requests the session may have in flight to the vault at once
    /// (`--max-concurrency`); nil for a command that sends one at a time.
    init(vault: String, connection: ConnectionOptions, identity: IdentityOptions, concurrency: Int? = nil) throws {
        let environment = ProcessInfo.processInfo.environment
        cloud = try connection.resolvedCloud(environment)
        let endpoint = try VaultEndpoint.resolve(vault, cloud: cloud)
        http = try CurlHTTPClient(configuration: connection.httpConfiguration(environment, concurrency: concurrency))
        credential = try identity.settings(environment).makeCredential(
            http: http, defaultAuthorityHost: cloud.authorityHost)
        client = KeyVaultClient(
            vault: endpoint, credential: credential, http: http,
            options: connection.clientOptions(environment, concurrency: concurrency ?? 1))
    }

    func shutdown() {
        http.shutdown()
    }

    /// The credential that actually produced tokens (the chain's pick, or the explicit one).
    var credentialInUse: any TokenCredential {
        (credential.base as? CredentialChain)?.selected ?? credential.base
    }
}
