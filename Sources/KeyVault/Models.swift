import FoundationEssentials
import PKI

/// Attributes Key Vault returns with every object; times are Unix seconds.
public struct ObjectAttributes: Sendable, Decodable, Equatable {
    public var enabled: Bool?
    public var notBefore: Int64?
    public var expires: Int64?
    public var created: Int64?
    public var updated: Int64?
    public var recoveryLevel: String?

    enum CodingKeys: String, CodingKey {
        case enabled
        case notBefore = "nbf"
        case expires = "exp"
        case created, updated, recoveryLevel
    }

    public init(enabled: Bool? = true, notBefore: Int64? = nil, expires: Int64? = nil, created: Int64? = nil, updated: Int64? = nil, recoveryLevel: String? = nil) {
        self.enabled = enabled
        self.notBefore = notBefore
        self.expires = expires
        self.created = created
        self.updated = updated
        self.recoveryLevel = recoveryLevel
    }

    /// Absent means enabled, as the service treats it.
    public var isEnabled: Bool { enabled ?? true }
}

/// The parts of an object id: `https://<vault>/<secrets|keys|certificates>/<name>[/<version>]`.
public struct ObjectIdentifier: Sendable, Hashable {
    public var collection: String
    public var name: String
    public var version: String?

    public init?(_ id: String) {
        // Bytes, not Characters: a listing parses every item's id, and splitting by Character
        // (grapheme breaking) made this the costliest step of listing a large vault.
        let utf8 = id.utf8
        guard let scheme = utf8.firstRange(of: "://".utf8) else { return nil }
        let path = utf8[scheme.upperBound...].split(separator: UInt8(ascii: "/")).dropFirst()
        guard (2...3).contains(path.count) else { return nil }
        let parts = path.map { String(Substring($0)) }
        collection = parts[0]
        name = parts[1]
        version = parts.count == 3 ? parts[2] : nil
    }
}

public struct SecretBundle: Sendable, Decodable {
    public var value: String?
    public var id: String
    public var contentType: String?
    public var attributes: ObjectAttributes?
    public var tags: [String: String]?
    /// Set when the secret backs a certificate.
    public var kid: String?
    public var managed: Bool?

    public init(value: String?, id: String, contentType: String? = nil, attributes: ObjectAttributes? = nil, tags: [String: String]? = nil, kid: String? = nil, managed: Bool? = nil) {
        self.value = value
        self.id = id
        self.contentType = contentType
        self.attributes = attributes
        self.tags = tags
        self.kid = kid
        self.managed = managed
    }

    public var version: String? { ObjectIdentifier(id)?.version }
    public var isCertificateBacked: Bool { kid != nil }
}

public struct SecretItem: Sendable, Decodable {
    public var id: String
    public var attributes: ObjectAttributes?
    public var tags: [String: String]?
    public var contentType: String?
    public var managed: Bool?

    public var name: String { ObjectIdentifier(id)?.name ?? id }
    public var version: String? { ObjectIdentifier(id)?.version }
}

public struct KeyBundle: Sendable, Decodable {
    public var key: JSONWebKey
    public var attributes: ObjectAttributes?
    public var tags: [String: String]?
    public var managed: Bool?

    public init(key: JSONWebKey, attributes: ObjectAttributes? = nil, tags: [String: String]? = nil, managed: Bool? = nil) {
        self.key = key
        self.attributes = attributes
        self.tags = tags
        self.managed = managed
    }

    public var id: String? { key.kid }
    public var version: String? { key.kid.flatMap { ObjectIdentifier($0)?.version } }
}

public struct KeyItem: Sendable, Decodable {
    public var kid: String
    public var attributes: ObjectAttributes?
    public var tags: [String: String]?
    public var managed: Bool?

    public var name: String { ObjectIdentifier(kid)?.name ?? kid }
    public var version: String? { ObjectIdentifier(kid)?.version }
}

public struct CertificateBundle: Sendable, Decodable {
    public var id: String
    public var kid: String?
    public var sid: String?
    public var x5t: String?
    /// The certificate, DER, as standard base64.
    public var cer: String?
    public var contentType: String?
    public var attributes: ObjectAttributes?
    public var tags: [String: String]?

    public init(id: String, cer: String?, kid: String? = nil, sid: String? = nil, x5t: String? = nil, attributes: ObjectAttributes? = nil, tags: [String: String]? = nil) {
        self.id = id
        self.cer = cer
        self.kid = kid
        self.sid = sid
        self.x5t = x5t
        self.attributes = attributes
        self.tags = tags
    }

    public var version: String? { ObjectIdentifier(id)?.version }
    public var certificateDER: [UInt8]? { cer.flatMap { Data(base64Encoded: $0) }.map(Array.init) }
}

public struct CertificateItem: Sendable, Decodable {
    public var id: String
    public var attributes: ObjectAttributes?
    public var tags: [String: String]?
    public var x5t: String?

    public var name: String { ObjectIdentifier(id)?.name ?? id }
    public var version: String? { ObjectIdentifier(id)?.version }
}

/// One page of a list answer.
struct Page<Item: Decodable>: Decodable {
    var value: [Item]?
    var nextLink: String?
}

/// Only a page's link, to request the next page before this one's items are decoded.
struct PageLink: Decodable {
    var nextLink: String?

    /// The link to follow: an empty one ends the listing, as an absent one does.
    var link: String? { nextLink.flatMap { $0.isEmpty ? nil : $0 } }

    /// The link read from the page's tail without decoding its items: Key Vault writes
    /// `"nextLink"` after `"value"`, so the last occurrence of that key, decoded together with
    /// the rest of the object, is the page's link. Nil when the tail does not parse that way (the
    /// caller then decodes the whole page for it; the page's decode checks the result anyway).
    static func scan(_ body: [UInt8]) -> PageLink? {
        let key = Array(#""nextLink""#.utf8)
        guard body.count > key.count else { return nil }
        var start = body.count - key.count
        while start > 0, !body[start..<start + key.count].elementsEqual(key) { start -= 1 }
        guard start > 0 else { return nil }
        // A member name follows '{' or ','; inside a string value the quote would follow '\'.
        var before = start - 1
        while before > 0, [0x20, 0x09, 0x0A, 0x0D].contains(body[before]) { before -= 1 }
        guard body[before] == UInt8(ascii: ",") || body[before] == UInt8(ascii: "{") else { return nil }
        return try? JSONDecoder().decode(PageLink.self, from: Data([UInt8(ascii: "{")] + body[start...]))
    }
}

/// Key Vault's error envelope.
struct ErrorEnvelope: Decodable {
    struct Body: Decodable {
        struct Inner: Decodable { var code: String? }
        var code: String?
        var message: String?
        var innererror: Inner?
    }
    var error: Body?
}
