import ObjectCache
import ObjectFormats

/// Which part of a certificate-backed secret a TLS file holds.
public enum TLSPart: String, Sendable, CaseIterable, Codable {
    case privateKey = "key.pem"
    case certificate = "cert.pem"
    case chain = "chain.pem"
    case fullChain = "fullchain.pem"
}

/// How an object becomes file bytes.
public enum Rendering: Hashable, Sendable, Codable {
    /// As `akvfs get` and the CSI provider write it: `format` and `encoding` apply to secrets only.
    case standard(format: CertificateFormat, encoding: ObjectEncoding?)
    /// One part of a certificate-backed secret's TLS material.
    case tls(TLSPart)

    public static let plain = Rendering.standard(format: .pem, encoding: nil)

    /// The cache memoizes renderings under this key.
    var key: String {
        switch self {
        case .standard(let format, let encoding): "\(format.rawValue)|\(encoding?.rawValue ?? "raw")"
        case .tls(let part): "tls|\(part.rawValue)"
        }
    }
}

/// A file of a volume view: where it is, what it shows, with which mode.
public struct VolumeFile: Sendable, Equatable, Codable {
    /// Path components inside the volume, e.g. ["certs", "tls.crt"].
    public var path: [String]
    public var reference: ObjectReference
    public var rendering: Rendering
    public var permissions: UInt16

    public init(path: [String], reference: ObjectReference, rendering: Rendering, permissions: UInt16) {
        self.path = path
        self.reference = reference
        self.rendering = rendering
        self.permissions = permissions
    }
}

/// What a view shows.
public enum ViewLayout: Sendable, Equatable {
    /// A whole vault: `secrets/`, `keys/`, `certs/`, `tls/`, with `.versions/` under each collection.
    case vault
    /// A fixed set of files (a Kubernetes volume).
    case volume([VolumeFile])
}

/// Ownership and modes of a view's files and directories.
public struct Ownership: Sendable, Equatable, Codable {
    public var uid: UInt32
    public var gid: UInt32
    public var fileMode: UInt16
    public var directoryMode: UInt16

    public init(uid: UInt32 = 0, gid: UInt32 = 0, fileMode: UInt16 = 0o440, directoryMode: UInt16 = 0o550) {
        self.uid = uid
        self.gid = gid
        self.fileMode = fileMode
        self.directoryMode = directoryMode
    }
}

/// One view of the filesystem: a vault read with one identity, laid out for one consumer.
public struct ViewDefinition: Sendable, Equatable {
    /// A directory name under the root when the filesystem shows several views.
    public var id: String
    public var source: SourceID
    public var layout: ViewLayout
    public var ownership: Ownership

    public init(id: String, source: SourceID, layout: ViewLayout, ownership: Ownership = Ownership()) {
        self.id = id
        self.source = source
        self.layout = layout
        self.ownership = ownership
    }
}
