import AzureIdentity
import Foundation
import HTTPTransport
import HTTPTypes
import KeyVault
import KeyVaultEmulator
import PKI
import Testing

@Suite("Key Vault client: challenge parsing and resource checks")
struct ChallengeTests {
    @Test("Parses the real service's challenge")
    func azure() throws {
        let challenge = try #require(
            AuthenticationChallenge.parse(
                #"Bearer authorization="https://login.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47", resource="https://vault.azure.net""#
            ))
        #expect(challenge.scope == "https://vault.azure.net/.default")
        #expect(challenge.tenantId == "72f988bf-86f1-41af-91ab-2d7cd011db47")
    }

    @Test("Accepts authorization_uri, scope, lower-case scheme, unquoted values and extra parameters")
    func variants() throws {
        let challenge = try #require(
            AuthenticationChallenge.parse(
                #"bearer authorization_uri=https://login.microsoftonline.com/tenant-x, scope="https://vault.azure.net/.default", error="insufficient_claims", claims="e30=""#
            ))
        #expect(challenge.scope == "https://vault.azure.net/.default")
        #expect(challenge.tenantId == "tenant-x")
        #expect(AuthenticationChallenge.parse(#"Basic realm="x""#) == nil)
        #expect(AuthenticationChallenge.parse(#"Bearer resource="https://vault.azure.net""#) == nil)
    }

    @Test("AD FS authorities name no tenant")
    func adfs() throws {
        let challenge = try #require(
            AuthenticationChallenge.parse(
                #"Bearer authorization="https://adfs.contoso.local/adfs", resource="https://vault.contoso.local/abc""#))
        #expect(challenge.tenantId == nil)
    }

    @Test(
        "The vault must be a subdomain of the challenge's resource",
        arguments: [
            ("https://myvault.vault.azure.net", "https://vault.azure.net", true),
            ("https://myvault.vault.azure.net:443", "https://vault.azure.net", true),
            ("https://myvault.vault.localhost:8443", "https://vault.localhost:8443", true),
            ("https://myvault.vault.azure.net", "https://vault.azure.cn", false),
            ("https://myvault.vault.azure.net:8443", "https://vault.azure.net", false),
            ("https://evil-vault.azure.net", "https://vault.azure.net", false),
            ("https://vault.azure.net", "https://vault.azure.net", false),
        ])
    func resourceCheck(vault: String, resource: String, accepted: Bool) throws {
        let endpoint = try VaultEndpoint.resolve(vault, cloud: .publicCloud)
        let challenge = try #require(
            AuthenticationChallenge.parse(
                #"Bearer authorization="https://login.microsoftonline.com/t", resource="\#(resource)""#))
        #expect(challenge.isResource(of: endpoint) == accepted)
    }

    @Test(
        "Vault names and URLs resolve per cloud; bad ones are explained",
        arguments: [
            ("myvault", "AzurePublicCloud", "https://myvault.vault.azure.net"),
            ("testkv", "azurechinacloud", "https://testkv.vault.azure.cn"),
            ("testkv", "AzureGermanCloud", "https://testkv.vault.microsoftazure.de"),
            ("testkv", "AzureUSGovernmentCloud", "https://testkv.vault.usgovcloudapi.net"),
            ("https://My-Vault.vault.azure.net/", "AzurePublicCloud", "https://my-vault.vault.azure.net"),
        ])
    func vaults(vault: String, cloud: String, url: String) throws {
        let resolved = try VaultEndpoint.resolve(
            vault, cloud: try AzureCloud.resolve(name: cloud, environmentFile: nil))
        #expect(resolved.url == url)
    }

    @Test(
        "Invalid vaults and clouds are refused",
        arguments: [
            "kv", "kv_test", "longkeyvaultnamewhichisnotvalid", "a--b", "http://x.vault.azure.net",
            "https://x.vault.azure.net/path",
        ])
    func invalidVaults(vault: String) {
        #expect(throws: KeyVaultError.self) { try VaultEndpoint.resolve(vault, cloud: .publicCloud) }
    }

    @Test("Unknown cloud names list the allowed ones")
    func unknownCloud() {
        #expect {
            try AzureCloud.resolve(name: "AzureCloud1", environmentFile: nil)
        } throws: { error in
            "\(error)".contains("cloudName AzureCloud1 is not valid") && "\(error)".contains("AzureChinaCloud")
        }
    }
}

/// KeyVault's, not the standard library's ObjectIdentifier.
private typealias VaultObjectID = KeyVault.ObjectIdentifier

@Suite("Object identifiers")
struct ObjectIdentifierTests {
    @Test("Ids split into collection, name and version; anything else is refused")
    func parsing() throws {
        let versioned = try #require(
            VaultObjectID("https://myvault.vault.azure.net/secrets/db-password/4a1f0c9e2b6d4c8f9e0a1b2c3d4e5f60"))
        #expect(
            versioned.collection == "secrets" && versioned.name == "db-password"
                && versioned.version == "4a1f0c9e2b6d4c8f9e0a1b2c3d4e5f60")
        let latest = try #require(VaultObjectID("https://myvault.vault.localhost:8443/keys/signing-key"))
        #expect(latest.collection == "keys" && latest.name == "signing-key" && latest.version == nil)
        #expect(SecretBundle(value: nil, id: "https://v.vault.azure.net/secrets/a/b").version == "b")
        let trailing = try #require(VaultObjectID("https://v.vault.azure.net:443/certificates/web//"))
        #expect(trailing.collection == "certificates" && trailing.name == "web" && trailing.version == nil)
        for bad in [
            "", "secrets/a", "https://v.vault.azure.net/", "https://v.vault.azure.net/secrets",
            "https://v.vault.azure.net/secrets/a/b/c",
        ] {
            #expect(VaultObjectID(bad) == nil, "\(bad)")
        }
    }
}

@Suite("Cloud environment files")
struct CloudEnvironmentFileTests {
    private func load(
        authority: String = "https://login.microsoftonline.com/",
        resource: String = "https://vault.local.azurestack.external/",
        suffix: String = "vault.local.azurestack.external"
    ) throws(KeyVaultError) -> AzureCloud {
        let json =
            #"{"activeDirectoryEndpoint":"\#(authority)","keyVaultEndpoint":"\#(resource)","keyVaultDNSSuffix":"\#(suffix)"}"#
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "akvfs-cloud-\(UUID().uuidString).json"
        ).path
        FileManager.default.createFile(atPath: path, contents: Data(json.utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try AzureCloud.load(environmentFile: path)
    }

    @Test("The DNS suffix may start with a dot and, for an emulator, end with a port")
    func suffixes() throws {
        #expect(
            try load(suffix: ".vault.local.azurestack.external").keyVaultDNSSuffix == "vault.local.azurestack.external")
        #expect(try load(suffix: "vault.localhost:8443").keyVaultDNSSuffix == "vault.localhost:8443")
    }

    // Found by the cloud-env fuzz target (Fuzz/corpus/cloud-env/found-double-slash.json): one of two
    // trailing slashes stayed, so the authority became https://login.microsoftonline.com//<tenant>.
    @Test("Endpoints lose every trailing slash; one that is no URL without them is refused")
    func endpoints() throws {
        let cloud = try load(
            authority: "https://login.microsoftonline.com//", resource: "https://vault.local.azurestack.external///")
        #expect(cloud.authorityHost == "https://login.microsoftonline.com")
        #expect(cloud.keyVaultResource == "https://vault.local.azurestack.external")
        #expect(throws: KeyVaultError.self) { try load(resource: "https:///") }
        #expect(throws: KeyVaultError.self) { try load(authority: "http://login.microsoftonline.com") }
    }

    // Found by the cloud-env fuzz target (Fuzz/corpus/cloud-env/found-suffix-with-path.json): a suffix
    // with a path or other URL parts became part of every vault's URL.
    @Test(
        "A DNS suffix that is not a domain is refused",
        arguments: [
            ".vault.local.azurestack.externaagement.local.azurestack.external/cal.azurestack.external",
            "vault.local/x", "vault local", ".", "a..b", "vault.local:", "vault.local:port", "user@vault.local",
            "vault.local?x",
        ])
    func badSuffix(suffix: String) {
        #expect(throws: KeyVaultError.self) { try load(suffix: suffix) }
    }
}
