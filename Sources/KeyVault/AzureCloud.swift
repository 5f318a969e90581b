import FoundationEssentials

/// An Azure cloud: where vaults live, the resource their tokens are for, and where Entra ID is.
/// Names follow go-autorest, as the Secrets Store CSI driver's `cloudName` does.
public struct AzureCloud: Sendable, Equatable {
    public var name: String
    /// e.g. `vault.azure.net`; a vault named `x` is `https://x.<suffix>/`.
    public var keyVaultDNSSuffix: String
    /// e.g. `https://vault.azure.net` (no trailing slash); scope = resource + `/.default`.
    public var keyVaultResource: String
    /// e.g. `https://login.microsoftonline.com` (no trailing slash).
    public var authorityHost: String

    public static let publicCloud = cloud("AzurePublicCloud", "vault.azure.net", "https://login.microsoftonline.com")
    public static let usGovernmentCloud = cloud(
        "AzureUSGovernmentCloud", "vault.usgovcloudapi.net", "https://login.microsoftonline.us")
    public static let chinaCloud = cloud("AzureChinaCloud", "vault.azure.cn", "https://login.chinacloudapi.cn")
    /// Closed on 2021-10-29; kept because old manifests still name it.
    public static let germanCloud = cloud(
        "AzureGermanCloud", "vault.microsoftazure.de", "https://login.microsoftonline.de")

    /// In every named cloud the vaults' token resource is their DNS suffix over HTTPS; Azure Stack
    /// clouds say theirs in their environment file.
    private static func cloud(_ name: String, _ keyVaultDNSSuffix: String, _ authorityHost: String) -> AzureCloud {
        AzureCloud(
            name: name, keyVaultDNSSuffix: keyVaultDNSSuffix, keyVaultResource: "https://" + keyVaultDNSSuffix,
            authorityHost: authorityHost)
    }

    public static let named: [AzureCloud] = [publicCloud, usGovernmentCloud, chinaCloud, germanCloud]
    public static let stackCloudName = "AzureStackCloud"

    /// A cloud by name, case-insensitively; empty means public. `AzureStackCloud` needs an
    /// environment file (`environmentFile`).
    public static func resolve(name: String?, environmentFile: String?) throws(KeyVaultError) -> AzureCloud {
        let wanted = (name ?? "").trimmingCharacters(in: " \t")
        if wanted.isEmpty, environmentFile == nil { return publicCloud }
        if wanted.lowercased() == stackCloudName.lowercased() || (wanted.isEmpty && environmentFile != nil) {
            guard let environmentFile else {
                throw .configuration(
                    "cloudName AzureStackCloud needs an environment file (--cloud-env-file or cloudEnvFileName) describing the cloud's endpoints."
                )
            }
            return try load(environmentFile: environmentFile)
        }
        if let cloud = named.first(where: { $0.name.lowercased() == wanted.lowercased() }) {
            if environmentFile != nil {
                throw .configuration(
                    "an environment file is only used with cloudName AzureStackCloud, not \(cloud.name).")
            }
            return cloud
        }
        let allowed = (named.map(\.name) + [stackCloudName]).joined(separator: ", ")
        throw .configuration("cloudName \(wanted) is not valid; use one of \(allowed).")
    }

    /// Reads an Azure Stack style environment file:
    /// `{"name":…, "activeDirectoryEndpoint":…, "keyVaultEndpoint":…, "keyVaultDNSSuffix":…}`.
    public static func load(environmentFile path: String) throws(KeyVaultError) -> AzureCloud {
        struct File: Decodable {
            var name: String?
            var activeDirectoryEndpoint: String?
            var keyVaultEndpoint: String?
            var keyVaultDNSSuffix: String?
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .configuration("cannot read the cloud environment file \(path).")
        }
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: data)
        } catch {
            throw .configuration(
                "the cloud environment file \(path) is not valid JSON with activeDirectoryEndpoint, keyVaultEndpoint and keyVaultDNSSuffix."
            )
        }
        guard let authority = file.activeDirectoryEndpoint, let resource = file.keyVaultEndpoint,
            let suffix = file.keyVaultDNSSuffix,
            !authority.isEmpty, !resource.isEmpty, !suffix.isEmpty
        else {
            throw .configuration(
                "the cloud environment file \(path) must set activeDirectoryEndpoint, keyVaultEndpoint and keyVaultDNSSuffix."
            )
        }
        func withoutTrailingSlashes(_ url: String) -> String { String(url.reversed().drop { $0 == "/" }.reversed()) }
        for (field, url) in [("activeDirectoryEndpoint", authority), ("keyVaultEndpoint", resource)]
        where !withoutTrailingSlashes(url).hasPrefix("https://") {
            throw .configuration("\(field) in \(path) must be an https URL; got \(url).")
        }
        // The suffix ends every vault's authority, so it may hold nothing but a domain (and an emulator's port).
        let domain = suffix.hasPrefix(".") ? String(suffix.dropFirst()) : suffix
        guard isDomain(domain) else {
            throw .configuration(
                "keyVaultDNSSuffix in \(path) must be a DNS domain such as vault.local.azurestack.external; got \(suffix)."
            )
        }
        return AzureCloud(
            name: file.name ?? stackCloudName,
            keyVaultDNSSuffix: domain,
            keyVaultResource: withoutTrailingSlashes(resource),
            authorityHost: withoutTrailingSlashes(authority)
        )
    }
}

/// `label.label…[:port]` with labels of ASCII letters, digits and '-'.
private func isDomain(_ text: String) -> Bool {
    let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
    if parts.count == 2, !(1...5).contains(parts[1].count) || !parts[1].allSatisfy({ $0.isASCII && $0.isNumber }) {
        return false
    }
    return parts[0].split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
        !label.isEmpty && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
    }
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        String(drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed())
    }
}
