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

    public init(
        enabled: Bool? = true, notBefore: Int64? = nil, expires: Int64? = nil, created: Int64? = nil,
        updated: Int64? = nil, recoveryLevel: String? = nil
    ) {
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
        // A listing parses every item's id: plain byte loops, because Character-wise splitting
        // (grapheme breaking) and the generic substring search both cost more than the decode.
        guard let parts = Array(id.utf8).withUnsafeBufferPointer(Self.pathSegments), (2...3).contains(parts.count)
        else { return nil }
        collection = parts[0]
        name = parts[1]
        version = parts.count == 3 ? parts[2] : nil
    }

    /// The non-empty path segments after `scheme://host`; nil without a scheme.
    private static func pathSegments(_ bytes: UnsafeBufferPointer<UInt8>) -> [String]? {
        let slash = UInt8(ascii: "/")
        guard var start = authorityStart(in: bytes) else { return nil }
        var segments: [String] = []
        for end in start...bytes.count where end == bytes.count || bytes[end] == slash {
            if end > start {
                segments.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self))
            }
            start = end + 1
        }
        return Array(segments.dropFirst())  // the host
    }
}

/// The index just past `scheme://` in an absolute URL's bytes; nil when there is none. Byte-wise,
/// because a large listing reads thousands of ids and links.
func authorityStart<Bytes: RandomAccessCollection<UInt8>>(in bytes: Bytes) -> Int? where Bytes.Index == Int {
    let slash = UInt8(ascii: "/")
    var index = bytes.startIndex
    while index + 2 < bytes.endIndex {
        if bytes[index] == UInt8(ascii: ":"), bytes[index + 1] == slash, bytes[index + 2] == slash { return index + 3 }
        index += 1
    }
    return nil
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

    public init(
        value: String?, id: String, contentType: String? = nil, attributes: ObjectAttributes? = nil,
        tags: [String: String]? = nil, kid: String? = nil, managed: Bool? = nil
    ) {
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

    public var identifier: ObjectIdentifier? { ObjectIdentifier(id) }
    public var name: String { identifier?.name ?? id }
    public var version: String? { identifier?.version }
}

public struct KeyBundle: Sendable, Decodable {
    public var key: JSONWebKey
    public var attributes: ObjectAttributes?
    public var tags: [String: String]?
    public var managed: Bool?

    public init(
        key: JSONWebKey, attributes: ObjectAttributes? = nil, tags: [String: String]? = nil, managed: Bool? = nil
    ) {
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

    public var identifier: ObjectIdentifier? { ObjectIdentifier(kid) }
    public var name: String { identifier?.name ?? kid }
    public var version: String? { identifier?.version }
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

    public init(
        id: String, cer: String?, kid: String? = nil, sid: String? = nil, x5t: String? = nil,
        attributes: ObjectAttributes? = nil, tags: [String: String]? = nil
    ) {
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

    public var identifier: ObjectIdentifier? { ObjectIdentifier(id) }
    public var name: String { identifier?.name ?? id }
    public var version: String? { identifier?.version }
}

/// One page of a list answer.
struct Page<Item: Decodable>: Decodable {
    var value: [Item]?
    var nextLink: String?
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
