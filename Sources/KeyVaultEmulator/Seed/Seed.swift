import FoundationEssentials

/// The emulator's starting state, read from a JSON seed file (see docs/emulator.md for the format).
/// Every object is decoded strictly: an unknown field is an error naming the field and what is allowed.
public struct Seed: Sendable, Decodable {
    public var tenantId: String
    public var allowUnknownIdentities: Bool
    public var createVaultsOnFirstUse: Bool
    public var emptyFirstPage: Bool
    /// Accept any well-formed api-version instead of only those the service knows (for a client
    /// newer than this emulator's list).
    public var acceptAnyAPIVersion: Bool
    public var tokenLifetimeSeconds: Int
    /// Announced in 401 challenges instead of `https://vault.localhost:<port>`, to test that
    /// clients refuse to send tokens for a resource outside the vault's domain.
    public var challengeResource: String?
    public var identities: [SeedIdentity]
    public var vaults: [SeedVault]

    public static let defaultTenantId = "72f988bf-86f1-41af-91ab-2d7cd011db47"

    public init(
        tenantId: String = Seed.defaultTenantId,
        allowUnknownIdentities: Bool = true,
        createVaultsOnFirstUse: Bool = true,
        emptyFirstPage: Bool = false,
        acceptAnyAPIVersion: Bool = false,
        tokenLifetimeSeconds: Int = 3600,
        challengeResource: String? = nil,
        identities: [SeedIdentity] = [],
        vaults: [SeedVault] = []
    ) {
        self.tenantId = tenantId
        self.allowUnknownIdentities = allowUnknownIdentities
        self.createVaultsOnFirstUse = createVaultsOnFirstUse
        self.emptyFirstPage = emptyFirstPage
        self.acceptAnyAPIVersion = acceptAnyAPIVersion
        self.tokenLifetimeSeconds = tokenLifetimeSeconds
        self.challengeResource = challengeResource
        self.identities = identities
        self.vaults = vaults
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case tenantId, allowUnknownIdentities, createVaultsOnFirstUse, emptyFirstPage, acceptAnyAPIVersion,
            tokenLifetimeSeconds, challengeResource
        case identities, vaults
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
        self.init(
            tenantId: try c.decodeIfPresent(String.self, forKey: .tenantId) ?? Seed.defaultTenantId,
            allowUnknownIdentities: try c.decodeIfPresent(Bool.self, forKey: .allowUnknownIdentities) ?? true,
            createVaultsOnFirstUse: try c.decodeIfPresent(Bool.self, forKey: .createVaultsOnFirstUse) ?? true,
            emptyFirstPage: try c.decodeIfPresent(Bool.self, forKey: .emptyFirstPage) ?? false,
            acceptAnyAPIVersion: try c.decodeIfPresent(Bool.self, forKey: .acceptAnyAPIVersion) ?? false,
            tokenLifetimeSeconds: try c.decodeIfPresent(Int.self, forKey: .tokenLifetimeSeconds) ?? 3600,
            challengeResource: try c.decodeIfPresent(String.self, forKey: .challengeResource),
            identities: try c.decodeIfPresent([SeedIdentity].self, forKey: .identities) ?? [],
            vaults: try c.decodeIfPresent([SeedVault].self, forKey: .vaults) ?? []
        )
    }

    /// Reads and validates a seed file; the error names the file, the place and the problem.
    public static func load(path: String) throws(SeedError) -> Seed {
        guard FileManager.default.fileExists(atPath: path) else {
            throw SeedError(path: path, problem: "does not exist")
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw SeedError(path: path, problem: "cannot be read (\(error))")
        }
        return try parse(data, path: path)
    }

    public static func parse(_ data: Data, path: String = "<seed>") throws(SeedError) -> Seed {
        let seed: Seed
        do {
            seed = try JSONDecoder().decode(Seed.self, from: data)
        } catch let error as DecodingError {
            throw SeedError(path: path, problem: error.readableDescription)
        } catch {
            throw SeedError(path: path, problem: "is not valid JSON")
        }
        try seed.validate(path: path)
        return seed
    }
}

public struct SeedError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var problem: String
    public var description: String { "seed file \(path): \(problem)" }
}

public struct SeedIdentity: Sendable, Decodable {
    public enum Kind: String, Sendable, Decodable, CaseIterable {
        case servicePrincipal
        case managedIdentity
    }

    public var name: String
    public var type: Kind
    public var clientId: String?
    public var objectId: String?
    /// Service principals: accepted client secrets. When absent, any secret is accepted.
    public var clientSecret: String?
    /// Service principals: a PEM certificate whose key must sign client assertions.
    public var certificate: String?
    /// Service principals: service-account subjects accepted in federated assertions
    /// (`system:serviceaccount:<namespace>:<name>`). When absent, any subject is accepted.
    public var federatedSubjects: [String]?
    /// Managed identities: true for the machine's system-assigned identity.
    public var systemAssigned: Bool?
    /// Managed identities: the ARM resource id of a user-assigned identity.
    public var resourceId: String?

    public init(
        name: String,
        type: Kind,
        clientId: String? = nil,
        objectId: String? = nil,
        clientSecret: String? = nil,
        certificate: String? = nil,
        federatedSubjects: [String]? = nil,
        systemAssigned: Bool? = nil,
        resourceId: String? = nil
    ) {
        self.name = name
        self.type = type
        self.clientId = clientId
        self.objectId = objectId
        self.clientSecret = clientSecret
        self.certificate = certificate
        self.federatedSubjects = federatedSubjects
        self.systemAssigned = systemAssigned
        self.resourceId = resourceId
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, type, clientId, objectId, clientSecret, certificate, federatedSubjects, systemAssigned, resourceId
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
        let typeName = try c.decode(String.self, forKey: .type)
        guard let type = Kind(rawValue: typeName) else {
            throw DecodingError.dataCorruptedError(
                forKey: .type,
                in: c,
                debugDescription: "unknown identity type '\(typeName)'; allowed: servicePrincipal, managedIdentity"
            )
        }
        self.init(
            name: try c.decode(String.self, forKey: .name),
            type: type,
            clientId: try c.decodeIfPresent(String.self, forKey: .clientId),
            objectId: try c.decodeIfPresent(String.self, forKey: .objectId),
            clientSecret: try c.decodeIfPresent(String.self, forKey: .clientSecret),
            certificate: try c.decodeIfPresent(String.self, forKey: .certificate),
            federatedSubjects: try c.decodeIfPresent([String].self, forKey: .federatedSubjects),
            systemAssigned: try c.decodeIfPresent(Bool.self, forKey: .systemAssigned),
            resourceId: try c.decodeIfPresent(String.self, forKey: .resourceId)
        )
    }
}

public struct SeedVault: Sendable, Decodable {
    public var name: String
    /// When present, only these grants apply in this vault and everything else answers 403
    /// ForbiddenByRbac. When absent the vault is open to every identity.
    public var access: [SeedAccessRule]?
    public var secrets: [SeedSecret]
    public var keys: [SeedKey]
    public var certificates: [SeedCertificate]
    /// The service's timing in this vault; off when absent.
    public var timing: VaultTiming?

    public init(
        name: String, access: [SeedAccessRule]? = nil, secrets: [SeedSecret] = [], keys: [SeedKey] = [],
        certificates: [SeedCertificate] = [],
        timing: VaultTiming? = nil
    ) {
        self.name = name
        self.timing = timing
        self.access = access
        self.secrets = secrets
        self.keys = keys
        self.certificates = certificates
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case name, access, secrets, keys, certificates, timing }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
        self.init(
            name: try c.decode(String.self, forKey: .name),
            access: try c.decodeIfPresent([SeedAccessRule].self, forKey: .access),
            secrets: try c.decodeIfPresent([SeedSecret].self, forKey: .secrets) ?? [],
            keys: try c.decodeIfPresent([SeedKey].self, forKey: .keys) ?? [],
            certificates: try c.decodeIfPresent([SeedCertificate].self, forKey: .certificates) ?? [],
            timing: try c.decodeIfPresent(VaultTiming.self, forKey: .timing)
        )
    }
}

/// A grant in the vocabulary of Key Vault access policies.
public struct SeedAccessRule: Sendable, Decodable {
    /// An identity's seed name, client id or object id.
    public var identity: String
    public var secrets: [String]
    public var keys: [String]
    public var certificates: [String]

    public init(identity: String, secrets: [String] = [], keys: [String] = [], certificates: [String] = []) {
        self.identity = identity
        self.secrets = secrets
        self.keys = keys
        self.certificates = certificates
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case identity, secrets, keys, certificates }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
        self.init(
            identity: try c.decode(String.self, forKey: .identity),
            secrets: try c.decodeIfPresent([String].self, forKey: .secrets) ?? [],
            keys: try c.decodeIfPresent([String].self, forKey: .keys) ?? [],
            certificates: try c.decodeIfPresent([String].self, forKey: .certificates) ?? []
        )
    }
}

public struct SeedSecretVersion: Sendable, Decodable {
    public var value: String
    public var contentType: String?
    public var enabled: Bool?
    public var tags: [String: String]?

    public init(value: String, contentType: String? = nil, enabled: Bool? = nil, tags: [String: String]? = nil) {
        self.value = value
        self.contentType = contentType
        self.enabled = enabled
        self.tags = tags
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case value, contentType, enabled, tags }

    public init(from decoder: any Decoder) throws {
        try self.init(fields: decoder.strictContainer(keyedBy: CodingKeys.self))
    }

    /// Reads a version's fields; a secret with a single value has them in its own object.
    init(fields c: KeyedDecodingContainer<CodingKeys>) throws {
        self.init(
            value: try c.decode(String.self, forKey: .value),
            contentType: try c.decodeIfPresent(String.self, forKey: .contentType),
            enabled: try c.decodeIfPresent(Bool.self, forKey: .enabled),
            tags: try c.decodeIfPresent([String: String].self, forKey: .tags)
        )
    }
}

/// A secret with one value, or with several versions (oldest first).
public struct SeedSecret: Sendable, Decodable {
    public var name: String
    public var versions: [SeedSecretVersion]

    public init(
        name: String, value: String, contentType: String? = nil, enabled: Bool? = nil, tags: [String: String]? = nil
    ) {
        self.name = name
        self.versions = [SeedSecretVersion(value: value, contentType: contentType, enabled: enabled, tags: tags)]
    }

    public init(name: String, versions: [SeedSecretVersion]) {
        self.name = name
        self.versions = versions
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case name, value, versions, contentType, enabled, tags }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
        let name = try c.decode(String.self, forKey: .name)
        let value = try c.decodeIfPresent(String.self, forKey: .value)
        let versions = try c.decodeIfPresent([SeedSecretVersion].self, forKey: .versions)
        switch (value, versions) {
        case (_?, nil):
            // The strict container above has already checked this object's keys.
            let fields = try decoder.container(keyedBy: SeedSecretVersion.CodingKeys.self)
            self.init(name: name, versions: [try SeedSecretVersion(fields: fields)])
        case (nil, let versions?) where !versions.isEmpty:
            self.init(name: name, versions: versions)
        default:
            throw DecodingError.dataCorruptedError(
                forKey: .value,
                in: c,
                debugDescription: "secret '\(name)' needs exactly one of 'value' or a non-empty 'versions' list"
            )
        }
    }
}

public struct SeedKey: Sendable, Decodable {
    public var name: String
    public var keyType: String
    public var size: Int?
    public var curve: String?
    public var enabled: Bool?
    public var tags: [String: String]?

    public init(
        name: String, keyType: String = "RSA", size: Int? = nil, curve: String? = nil, enabled: Bool? = nil,
        tags: [String: String]? = nil
    ) {
        self.name = name
        self.keyType = keyType
        self.size = size
        self.curve = curve
        self.enabled = enabled
        self.tags = tags
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case name, kty, size, curve, enabled, tags }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
        self.init(
            name: try c.decode(String.self, forKey: .name),
            keyType: try c.decodeIfPresent(String.self, forKey: .kty) ?? "RSA",
            size: try c.decodeIfPresent(Int.self, forKey: .size),
            curve: try c.decodeIfPresent(String.self, forKey: .curve),
            enabled: try c.decodeIfPresent(Bool.self, forKey: .enabled),
            tags: try c.decodeIfPresent([String: String].self, forKey: .tags)
        )
    }
}

public struct SeedCertificate: Sendable, Decodable {
    public var name: String
    public var subject: String?
    public var dnsNames: [String]
    /// `application/x-pkcs12` (default) or `application/x-pem-file`; `pkcs12` and `pem` also work.
    public var contentType: String
    public var keyType: String
    public var keySize: Int?
    public var curve: String?
    public var validityMonths: Int
    /// 1: self-signed. 2 or 3: issued by generated CAs (intermediate and root), so the backing
    /// secret holds leaf, intermediate(s) and root.
    public var chain: Int
    /// How many versions to create (each is a fresh certificate).
    public var versions: Int
    public var enabled: Bool?
    public var tags: [String: String]?

    public init(
        name: String,
        subject: String? = nil,
        dnsNames: [String] = [],
        contentType: String = "application/x-pkcs12",
        keyType: String = "RSA",
        keySize: Int? = nil,
        curve: String? = nil,
        validityMonths: Int = 12,
        chain: Int = 1,
        versions: Int = 1,
        enabled: Bool? = nil,
        tags: [String: String]? = nil
    ) {
        self.name = name
        self.subject = subject
        self.dnsNames = dnsNames
        self.contentType = contentType
        self.keyType = keyType
        self.keySize = keySize
        self.curve = curve
        self.validityMonths = validityMonths
        self.chain = chain
        self.versions = versions
        self.enabled = enabled
        self.tags = tags
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, subject, dnsNames, contentType, kty, keySize, curve, validityMonths, chain, versions, enabled, tags
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
        let contentType =
            try c.decodeIfPresent(String.self, forKey: .contentType) ?? CertificatePolicy.pkcs12ContentType
        let normalized: String
        switch contentType.lowercased() {
        case "pkcs12", "pfx", CertificatePolicy.pkcs12ContentType: normalized = CertificatePolicy.pkcs12ContentType
        case "pem", CertificatePolicy.pemContentType: normalized = CertificatePolicy.pemContentType
        default:
            throw DecodingError.dataCorruptedError(
                forKey: .contentType,
                in: c,
                debugDescription:
                    "unknown content type '\(contentType)'; allowed: application/x-pkcs12 (pkcs12), application/x-pem-file (pem)"
            )
        }
        self.init(
            name: try c.decode(String.self, forKey: .name),
            subject: try c.decodeIfPresent(String.self, forKey: .subject),
            dnsNames: try c.decodeIfPresent([String].self, forKey: .dnsNames) ?? [],
            contentType: normalized,
            keyType: try c.decodeIfPresent(String.self, forKey: .kty) ?? "RSA",
            keySize: try c.decodeIfPresent(Int.self, forKey: .keySize),
            curve: try c.decodeIfPresent(String.self, forKey: .curve),
            validityMonths: try c.decodeIfPresent(Int.self, forKey: .validityMonths) ?? 12,
            chain: try c.decodeIfPresent(Int.self, forKey: .chain) ?? 1,
            versions: try c.decodeIfPresent(Int.self, forKey: .versions) ?? 1,
            enabled: try c.decodeIfPresent(Bool.self, forKey: .enabled),
            tags: try c.decodeIfPresent([String: String].self, forKey: .tags)
        )
    }
}
