import AzureIdentity
import KeyVault
import KeyVaultEmulator

/// akvfs's own clients built against the emulator the way `akvfs` builds them.
extension EmulatorHarness {
    public var authority: EntraAuthority { EntraAuthority(host: endpoints.authorityHost, tenantId: tenantId) }

    public func vault(_ name: String) throws -> VaultEndpoint {
        try VaultEndpoint.resolve(endpoints.vaultURL(name), cloud: .publicCloud)
    }

    public func client(_ vault: String, credential: any TokenCredential, options: KeyVaultClientOptions = .init())
        throws -> KeyVaultClient
    {
        KeyVaultClient(vault: try self.vault(vault), credential: credential, http: http, options: options)
    }

    /// An open identity's client-secret credential (any secret is accepted for unknown apps).
    public func secretCredential(clientId: String = "0000aaaa-0000-4000-8000-000000000001", secret: String = "any")
        -> CachingCredential
    {
        CachingCredential(ClientSecretCredential(authority: authority, clientId: clientId, secret: secret, http: http))
    }
}
