import PKI

public enum ObjectKind: String, Sendable, Hashable, CaseIterable, Codable {
    case secret, key, certificate
}

/// One object of a vault; a nil `version` means the latest version.
public struct ObjectReference: Hashable, Sendable, Codable, CustomStringConvertible {
    public var kind: ObjectKind
    public var name: String
    public var version: String?

    public init(kind: ObjectKind, name: String, version: String? = nil) {
        self.kind = kind
        self.name = name
        self.version = version
    }

    /// `secret 'db-password'` or `secret 'db-password' version 0a1b…`, for logs and messages.
    public var description: String {
        "\(kind.rawValue) '\(name)'" + (version.map { " version \($0)" } ?? "")
    }

    // Key Vault's names and versions are case-insensitive: `API-KEY` and `api-key` are one object,
    // so they share one cache entry, one request in flight, and one rotation that every file
    // showing either spelling follows. Names are ASCII letters, digits and dashes (versions are
    // hex), so folding ASCII letters is enough; the spelling first asked for is the one sent.

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.kind == rhs.kind && Self.sameFolded(lhs.name, rhs.name)
            && (lhs.version == nil && rhs.version == nil
                || lhs.version.flatMap { left in rhs.version.map { Self.sameFolded(left, $0) } } == true)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(kind)
        Self.combineFolded(name, into: &hasher)
        if let version {
            hasher.combine(true)
            Self.combineFolded(version, into: &hasher)
        } else {
            hasher.combine(false)
        }
    }

    private static func folded(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
    }

    private static func sameFolded(_ left: String, _ right: String) -> Bool {
        left == right
            || (left.utf8.count == right.utf8.count && left.utf8.elementsEqual(right.utf8) { folded($0) == folded($1) })
    }

    /// Hashes as the lowercase spelling would. The kernel's every request hashes a name, so a
    /// lowercase one (the usual spelling) costs only a scan and String's own hash; any other is
    /// folded into a new string first (hashing the folded bytes directly would not match String's
    /// hash of the lowercase spelling).
    private static func combineFolded(_ text: String, into hasher: inout Hasher) {
        let hasUppercase =
            text.utf8.withContiguousStorageIfAvailable { bytes in
                bytes.contains { $0 &- UInt8(ascii: "A") < 26 }
            } ?? text.utf8.contains { $0 &- UInt8(ascii: "A") < 26 }
        if hasUppercase {
            hasher.combine(String(decoding: text.utf8.map(folded), as: UTF8.self))
        } else {
            hasher.combine(text)
        }
    }
}

/// One vault as seen by one identity. `identity` is an opaque stable string (e.g.
/// `wi:<tenant>:<clientId>:<sa-subject>`); different identities never share cache entries.
///
/// Every cache entry and every inode carries its source, so the two strings live in one shared
/// object: a copy is a pointer (8 bytes rather than 32, in tables of tens of thousands of rows).
public struct SourceID: Hashable, Sendable, Codable, CustomStringConvertible {
    private final class Storage: Sendable {
        let vault: String
        let identity: String

        init(vault: String, identity: String) {
            self.vault = vault
            self.identity = identity
        }
    }

    private let storage: Storage

    public var vault: String { storage.vault }
    public var identity: String { storage.identity }

    public init(vault: String, identity: String) {
        storage = Storage(vault: vault, identity: identity)
    }

    public var description: String { "\(vault) as \(identity)" }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.storage === rhs.storage || (lhs.vault == rhs.vault && lhs.identity == rhs.identity)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(vault)
        hasher.combine(identity)
    }

    private enum CodingKeys: String, CodingKey {
        case vault, identity
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            vault: try container.decode(String.self, forKey: .vault),
            identity: try container.decode(String.self, forKey: .identity))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(vault, forKey: .vault)
        try container.encode(identity, forKey: .identity)
    }
}

/// What Key Vault says about one version of an object. Times are Unix seconds.
///
/// Every cache entry holds one: each flag follows an optional time, in the padding that would
/// otherwise follow its ninth byte (120 bytes rather than 136).
public struct ObjectMetadata: Sendable, Equatable {
    /// The full object id, `https://<vault>/<collection>/<name>/<version>`.
    public var id: String
    public var version: String
    public var contentType: String?
    public var tags: [String: String]
    public var created: Int64?
    public var enabled: Bool
    public var updated: Int64?
    /// A secret or key that Key Vault keeps for a certificate.
    public var certificateBacked: Bool
    public var notBefore: Int64?
    public var managed: Bool
    public var expires: Int64?

    public init(
        id: String, version: String, enabled: Bool = true, contentType: String? = nil,
        created: Int64? = nil, updated: Int64? = nil, notBefore: Int64? = nil, expires: Int64? = nil,
        tags: [String: String] = [:], certificateBacked: Bool = false, managed: Bool = false
    ) {
        self.id = id
        self.version = version
        self.enabled = enabled
        self.contentType = contentType
        self.created = created
        self.updated = updated
        self.notBefore = notBefore
        self.expires = expires
        self.tags = tags
        self.certificateBacked = certificateBacked
        self.managed = managed
    }
}

/// An object's content: a secret's value (its UTF-8 bytes), a key's public JWK, or a certificate's DER.
///
/// Secret values are `SecretBytes` rather than a String so that a plain rendering shares the
/// buffer (one copy in memory, not two) and the buffer is zeroed when its last holder lets go.
public enum Payload: Sendable {
    case secret(SecretBytes)
    /// Indirect: a JSON Web Key's fourteen optional members inline would make every cache entry,
    /// secrets' too, about 230 bytes larger.
    indirect case key(JSONWebKey)
    case certificate([UInt8])

    /// A secret value given as text.
    public static func secret(_ text: String) -> Payload { .secret(SecretBytes(utf8: text)) }
}

public struct FetchedObject: Sendable {
    public var metadata: ObjectMetadata
    public var payload: Payload

    public init(metadata: ObjectMetadata, payload: Payload) {
        self.metadata = metadata
        self.payload = payload
    }
}

/// One row of a listing: the latest version of an object, or one version of it.
public struct ListedObject: Sendable, Equatable {
    public var name: String
    public var version: String?
    public var contentType: String?
    public var tags: [String: String]
    // Each flag after an optional time, in its padding (88 bytes a row rather than 96).
    public var created: Int64?
    public var enabled: Bool
    public var updated: Int64?
    public var managed: Bool

    public init(
        name: String, version: String? = nil, enabled: Bool = true, managed: Bool = false, contentType: String? = nil,
        created: Int64? = nil, updated: Int64? = nil, tags: [String: String] = [:]
    ) {
        self.name = name
        self.version = version
        self.enabled = enabled
        self.managed = managed
        self.contentType = contentType
        self.created = created
        self.updated = updated
        self.tags = tags
    }
}
