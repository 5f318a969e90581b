import KeyVault
import ObjectCache

/// Where a node is in a view. Together with the view's id it identifies a directory's inode; a
/// file's inode is identified by its key and the version it shows (see `InodeTable`).
enum NodePath: Hashable, Sendable {
    /// The root when the filesystem shows several views, one directory each.
    case viewsRoot
    case viewRoot
    // Vault layout
    case collection(ObjectKind)
    case latest(ObjectKind, String)
    case versionsRoot(ObjectKind)
    case versionList(ObjectKind, String)
    /// Boxed: rare, and the only case with two strings; inline it would make every key 24 bytes larger.
    indirect case version(ObjectKind, String, String)
    case tlsRoot
    case tlsBundle(String)
    case tlsFile(String, TLSPart)
    // Volume layout
    case volumeDirectory([String])
    /// A file of a volume, by its path components inside the volume.
    case volumeFile([String])

    var type: FileType {
        switch self {
        case .latest, .version, .tlsFile, .volumeFile: .regular
        default: .directory
        }
    }

    /// A file's name in its directory; nil for directories.
    var fileName: String? {
        switch self {
        case .latest(_, let name): name
        case .version(_, _, let version): version
        case .tlsFile(_, let part): part.rawValue
        case .volumeFile(let path): path.last
        default: nil
        }
    }
}

struct NodeKey: Hashable, Sendable {
    /// nil only for `.viewsRoot`.
    var view: String?
    var path: NodePath
}

/// A Kubernetes volume's files.
enum VolumeLayout {
    /// The Secrets Store CSI driver writes a volume's files through the symlink `..data`, so
    /// `..data/<file>` reads the file too, and programs and tests rely on it. A volume shows its
    /// files again under a directory of that name; no alias may start with `..`, so none collides.
    static let dataDirectory = "..data"

    /// The file or directory of the volume that `path` shows: itself, or its own path under `..data`.
    static func shownPath(_ path: [String]) -> [String] {
        path.first == dataDirectory ? Array(path.dropFirst()) : path
    }
}

/// Directory names of the vault layout.
enum VaultLayout {
    static let versionsDirectory = ".versions"
    static let tlsDirectory = "tls"

    static func directoryName(_ kind: ObjectKind) -> String {
        switch kind {
        case .secret: "secrets"
        case .key: "keys"
        case .certificate: "certs"
        }
    }

    static func kind(directory name: String) -> ObjectKind? {
        ObjectKind.allCases.first { directoryName($0) == name }
    }

    /// A name Key Vault cannot have cannot exist, so it is answered without asking Key Vault.
    static func isObjectName(_ name: String) -> Bool { KeyVaultNames.isObjectName(name) }

    static func isVersion(_ name: String) -> Bool { KeyVaultNames.isVersion(name) }
}
