import Synchronization

/// The challenge a vault answers unauthenticated requests with, once learned. It is the vault's,
/// the same whoever asks, so clients of one vault for different identities can share one and only
/// the first to reach the vault asks for it.
public final class VaultChallenge: Sendable {
    let learned = Mutex<AuthenticationChallenge?>(nil)

    public init() {}

    public var current: AuthenticationChallenge? { learned.withLock { $0 } }
}

/// What a vault's 401 `WWW-Authenticate: Bearer authorization="…", resource="…"` asks for:
/// a token for `scope`, from `tenantId`.
public struct AuthenticationChallenge: Sendable, Equatable {
    public var scope: String
    /// The first path segment of the authorization URL; nil for AD FS authorities.
    public var tenantId: String?
    public var authorization: String

    /// Parses the Bearer challenge; accepts `authorization` or `authorization_uri`, and
    /// `scope` or `resource` (scope = resource + `/.default`).
    public static func parse(_ header: String) -> AuthenticationChallenge? {
        guard let afterScheme = parametersAfterBearer(header) else { return nil }
        let parameters = parseParameters(afterScheme)
        guard let authorization = parameters["authorization"] ?? parameters["authorization_uri"], !authorization.isEmpty
        else { return nil }
        let scope: String
        if let explicit = parameters["scope"], !explicit.isEmpty {
            scope = explicit
        } else if let resource = parameters["resource"], !resource.isEmpty {
            scope = (resource.hasSuffix("/") ? String(resource.dropLast()) : resource) + "/.default"
        } else {
            return nil
        }
        return AuthenticationChallenge(scope: scope, tenantId: tenant(of: authorization), authorization: authorization)
    }

    /// The text after the (case-insensitive) `Bearer ` scheme.
    static func parametersAfterBearer(_ header: String) -> Substring? {
        let bytes = Array(header.utf8)
        let scheme = Array("bearer ".utf8)
        guard bytes.count >= scheme.count else { return nil }
        for start in 0...(bytes.count - scheme.count) {
            let candidate = bytes[start..<(start + scheme.count)].map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }
            if candidate == scheme {
                return Substring(String(decoding: bytes[(start + scheme.count)...], as: UTF8.self))
            }
        }
        return nil
    }

    /// `key="value", key2=value2` into a dictionary with lower-cased keys.
    static func parseParameters(_ text: Substring) -> [String: String] {
        var result: [String: String] = [:]
        var index = text.startIndex
        while index < text.endIndex {
            while index < text.endIndex, text[index] == " " || text[index] == "," { index = text.index(after: index) }
            guard let equals = text[index...].firstIndex(of: "=") else { break }
            let key = text[index..<equals].trimmingCharacters(in: " ").lowercased()
            index = text.index(after: equals)
            var value = ""
            if index < text.endIndex, text[index] == "\"" {
                index = text.index(after: index)
                let closing = text[index...].firstIndex(of: "\"") ?? text.endIndex
                value = String(text[index..<closing])
                index = closing < text.endIndex ? text.index(after: closing) : closing
            } else {
                let end = text[index...].firstIndex(of: ",") ?? text.endIndex
                value = text[index..<end].trimmingCharacters(in: " ")
                index = end
            }
            if result[key] == nil { result[key] = value }
        }
        return result
    }

    static func tenant(of authorization: String) -> String? {
        guard let scheme = authorization.firstRange(of: "://") else { return nil }
        let path = authorization[scheme.upperBound...].split(separator: "/").dropFirst()
        guard let first = path.first.map(String.init), !first.isEmpty else { return nil }
        if first.lowercased().hasSuffix("adfs") || path.last?.lowercased() == "adfs" { return nil }
        return first
    }

    /// The authority (`host[:port]`) of the scope's resource.
    var resourceAuthority: String {
        var rest = Substring(scope)
        if let scheme = rest.firstRange(of: "://") { rest = rest[scheme.upperBound...] }
        return String(rest.prefix { $0 != "/" }).lowercased()
    }

    /// The vault's host must be a subdomain of the challenge's resource (as the Azure SDKs check),
    /// so a spoofed or misrouted endpoint cannot obtain a token for another resource.
    public func isResource(of vault: VaultEndpoint) -> Bool {
        let resource = resourceAuthority
        guard !resource.isEmpty else { return false }
        if vault.authority.hasSuffix("." + resource) { return true }
        let strip = { (text: String) in text.hasSuffix(":443") ? String(text.dropLast(4)) : text }
        return strip(vault.authority).hasSuffix("." + strip(resource))
    }
}
