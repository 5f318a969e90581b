/// A vault's base URL, from a name and a cloud (`myvault` → `https://myvault.vault.azure.net`)
/// or from a full URL (`https://myvault.vault.azure.net/`, or an emulator's
/// `https://myvault.vault.localhost:8443/`).
public struct VaultEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// `https://host[:port]`, lower-cased, without a trailing slash.
    public let url: String
    /// `host[:port]`, lower-cased.
    public let authority: String
    /// The vault's name: the first label of the host.
    public let name: String

    public var description: String { url }

    static let nameRule =
        "3-24 characters of letters, digits and '-', starting with a letter, ending with a letter or digit, no '--'"

    public static func isValidName(_ name: String) -> Bool {
        let characters = Array(name)
        guard (3...24).contains(characters.count),
            let first = characters.first, first.isASCII, first.isLetter,
            let last = characters.last, last.isASCII, last.isLetter || last.isNumber,
            characters.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") })
        else { return false }
        return !name.contains("--")
    }

    public static func resolve(_ vault: String, cloud: AzureCloud) throws(KeyVaultError) -> VaultEndpoint {
        let text = vault.trimmingCharacters(in: " \t")
        if text.contains("://") { return try parse(url: text) }
        guard isValidName(text) else {
            throw .configuration(
                "'\(text)' is not a valid vault name: names are \(nameRule). Give a name, or the vault's full https URL."
            )
        }
        return VaultEndpoint(
            url: "https://\(text.lowercased()).\(cloud.keyVaultDNSSuffix.lowercased())",
            authority: "\(text.lowercased()).\(cloud.keyVaultDNSSuffix.lowercased())", name: text.lowercased())
    }

    static func parse(url text: String) throws(KeyVaultError) -> VaultEndpoint {
        guard text.lowercased().hasPrefix("https://") else {
            throw .configuration("vault URL \(text) must use https: Key Vault tokens are never sent over plain HTTP.")
        }
        var rest = text.dropFirst("https://".count)
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        let authority = rest.lowercased()
        guard !authority.isEmpty, !authority.contains("/"), !authority.contains("?"), !authority.contains("@"),
            !authority.contains("#")
        else {
            throw .configuration(
                "vault URL \(text) must be just https://<host>[:<port>]/, without a path, query or user.")
        }
        let host = authority.split(separator: ":").first.map(String.init) ?? authority
        let name = host.split(separator: ".").first.map(String.init) ?? host
        return VaultEndpoint(url: "https://\(authority)", authority: authority, name: name)
    }
}
