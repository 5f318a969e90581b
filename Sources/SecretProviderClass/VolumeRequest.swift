import KeyVault
import ObjectFormats

/// Key Vault collection; `cert` = certificate. `objectType` accepts these in any case.
public enum ObjectType: String, Sendable, Equatable, CaseIterable, Codable {
    case secret, key, cert

    /// Case-insensitive: "secret", "Secret", "KEY", "cert".
    public init?(parameter: String) {
        self.init(rawValue: parameter.lowercased())
    }
}

/// One requested file (or, with version history, one directory of files, one per version).
public struct VolumeObject: Sendable, Equatable, Codable {
    /// Key Vault object name.
    public var name: String
    public var type: ObjectType
    /// nil = latest ("" and "latest" mean latest).
    public var version: String?
    public var alias: String?
    /// Default .pem.
    public var format: CertificateFormat
    /// nil = as stored.
    public var encoding: ObjectEncoding?
    /// filePermission, nil = the volume default (0644).
    public var permission: UInt16?
    /// objectVersionHistory; <= 1 means single version.
    public var versionHistory: Int
    /// The file path inside the volume: alias or name, as path components (alias may contain '/').
    /// With `versionHistory > 1` it is a directory holding the files `0`, `1`, … (see `expandHistory`).
    public var path: [String]

    public init(
        name: String, type: ObjectType, version: String? = nil, alias: String? = nil, format: CertificateFormat = .pem,
        encoding: ObjectEncoding? = nil, permission: UInt16? = nil, versionHistory: Int = 0, path: [String]? = nil
    ) {
        self.name = name
        self.type = type
        self.version = version
        self.alias = alias
        self.format = format
        self.encoding = encoding
        self.permission = permission
        self.versionHistory = versionHistory
        self.path = path ?? (alias ?? name).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    }

    /// True when the object is one file (objectVersionHistory 0 or 1).
    public var isSingleVersion: Bool { versionHistory <= 1 }

    /// The provider's per-object error text, `failed to get objectType:<t>, objectName:<n>, objectVersion:<v>: <cause>`,
    /// for failures after parsing (fetching, decoding), so they read like the ones `parse` reports.
    public func failure(_ code: VolumeError.Code, _ cause: String) -> VolumeError {
        VolumeError(code, ObjectFailure.message(type: type.rawValue, name: name, version: version ?? "", cause: cause))
    }
}

public enum VolumeIdentity: Sendable, Equatable, Codable {
    /// Pod's service-account token (audience api://AzureADTokenExchange) exchanged for `clientId`'s token.
    case workloadIdentity(clientId: String, serviceAccountToken: String, tokenExpiration: String?)
    /// nodePublishSecretRef with clientid/clientsecret.
    case servicePrincipal(clientId: String, clientSecret: String)
    /// The node's managed identity (system-assigned when clientId is nil), allowed only when the plugin allows it.
    case nodeManagedIdentity(clientId: String?)
}

public struct VolumeRequest: Sendable, Equatable, Codable {
    /// The most files the volume can have: one per object, one per version for a version history.
    public var fileCountAtMost: Int {
        objects.reduce(0) { $0 + ($1.isSingleVersion ? 1 : $1.versionHistory) }
    }

    public var podName: String
    public var podNamespace: String
    public var podUID: String?
    public var serviceAccountName: String?
    public var keyVaultName: String
    public var tenantId: String
    /// As given (validated against AzureCloud names); nil = public cloud.
    public var cloudName: String?
    public var cloudEnvironmentFile: String?
    public var identity: VolumeIdentity
    public var objects: [VolumeObject]
    /// The SecretProviderClass named by the pod's volumeAttributes, when parameters came from one.
    public var secretProviderClass: String?
    /// Owner of the volume's files and directories (volumeAttributes uid, gid); nil = the plugin's default.
    public var uid: UInt32?
    public var gid: UInt32?
    /// The class's `secretObjects`: Kubernetes Secrets to fill from the volume's files (nil: none).
    public var secretObjects: [SecretObject]?

    public init(
        podName: String, podNamespace: String, podUID: String? = nil, serviceAccountName: String? = nil,
        keyVaultName: String,
        tenantId: String, cloudName: String? = nil, cloudEnvironmentFile: String? = nil, identity: VolumeIdentity,
        objects: [VolumeObject], secretProviderClass: String? = nil, uid: UInt32? = nil, gid: UInt32? = nil
    ) {
        self.podName = podName
        self.podNamespace = podNamespace
        self.podUID = podUID
        self.serviceAccountName = serviceAccountName
        self.keyVaultName = keyVaultName
        self.tenantId = tenantId
        self.cloudName = cloudName
        self.cloudEnvironmentFile = cloudEnvironmentFile
        self.identity = identity
        self.objects = objects
        self.secretProviderClass = secretProviderClass
        self.uid = uid
        self.gid = gid
    }

    /// The cloud named by cloudName/cloudEnvFileName. Reads the environment file for AzureStackCloud
    /// (a local file, no network); the process environment is never touched.
    public func resolveCloud() throws(VolumeError) -> AzureCloud {
        do {
            return try AzureCloud.resolve(name: cloudName, environmentFile: cloudEnvironmentFile)
        } catch {
            let name = cloudName ?? AzureCloud.stackCloudName
            throw VolumeError(.failedPrecondition, "cloudName \(name) is not valid, error: \(error.detail)")
        }
    }

    /// `https://<keyvaultName>.<the cloud's Key Vault DNS suffix>`.
    public func vaultEndpoint() throws(VolumeError) -> VaultEndpoint {
        let cloud = try resolveCloud()
        do {
            return try VaultEndpoint.resolve(keyVaultName, cloud: cloud)
        } catch {
            throw VolumeError(.invalidArgument, "failed to get vault: \(error.detail)")
        }
    }
}

/// Path-component and total limits as the driver checks them, and who may use the node's identity.
public struct ParserOptions: Sendable {
    /// Allow useVMManagedIdentity (any pod on the node could then use the node's identity: Azure provider issue #837); default false.
    public var allowNodeManagedIdentity = false
    /// Longest path component in bytes (the driver's limit, NAME_MAX).
    public var maxPathComponentBytes = 255
    /// Longest file path in bytes (the driver's limit, PATH_MAX).
    public var maxPathBytes = 4096
    /// Most files one volume may have (the plugin's --max-objects-per-volume).
    public var maxFilesPerVolume = 1000

    public init(allowNodeManagedIdentity: Bool = false) {
        self.allowNodeManagedIdentity = allowNodeManagedIdentity
    }
}

// MARK: - Descriptions that never show credentials

private let redacted = "<redacted>"

extension VolumeIdentity: CustomStringConvertible, CustomReflectable {
    public var description: String {
        switch self {
        case .workloadIdentity(let clientId, _, let expiration):
            "workloadIdentity(clientId: \(clientId), serviceAccountToken: \(redacted), tokenExpiration: \(expiration ?? "none"))"
        case .servicePrincipal(let clientId, _):
            "servicePrincipal(clientId: \(clientId), clientSecret: \(redacted))"
        case .nodeManagedIdentity(let clientId):
            "nodeManagedIdentity(clientId: \(clientId ?? "system-assigned"))"
        }
    }

    /// `dump` and debuggers show this instead of the associated values.
    public var customMirror: Mirror {
        Mirror(self, children: ["identity": description], displayStyle: .enum)
    }
}

extension VolumeObject: CustomStringConvertible {
    public var description: String {
        var text = "\(type.rawValue)/\(name)"
        if let version { text += "@\(version)" }
        text += " -> \(path.joined(separator: "/"))"
        if versionHistory > 1 { text += "/ (\(versionHistory) versions)" }
        return text
    }
}

extension VolumeRequest: CustomStringConvertible, CustomReflectable {
    public var description: String {
        var text = "VolumeRequest(pod: \(podNamespace)/\(podName), vault: \(keyVaultName), tenant: \(tenantId)"
        if let cloudName { text += ", cloud: \(cloudName)" }
        if let secretProviderClass { text += ", secretProviderClass: \(secretProviderClass)" }
        text += ", identity: \(identity), objects: [\(objects.map(\.description).joined(separator: ", "))])"
        return text
    }

    public var customMirror: Mirror {
        Mirror(self, children: ["request": description], displayStyle: .struct)
    }
}
