import FoundationEssentials
import PKI

/// One vault's objects.
struct Vault: Sendable {
    let name: String
    var secrets = ObjectTable<SecretVersion>()
    var keys = ObjectTable<KeyVersion>()
    var certificates = ObjectTable<CertificateVersion>()
    var certificateOperations: [String: CertificateOperation] = [:]
}

/// All vaults of the emulator. Every read and write of object state goes through this actor, so
/// a request never sees half of another request's change (a certificate, its key and its secret
/// appear together). Cryptographic work happens before calling in, never inside.
actor VaultStore {
    /// Soft-delete retention, as on a vault created with default settings.
    static let retentionDays = 90

    private var vaults: [String: Vault] = [:]
    private let createVaultsOnFirstUse: Bool
    private let now: @Sendable () -> Int64

    init(createVaultsOnFirstUse: Bool, now: @escaping @Sendable () -> Int64) {
        self.createVaultsOnFirstUse = createVaultsOnFirstUse
        self.now = now
    }

    func createVault(_ name: String) {
        let key = name.lowercased()
        if vaults[key] == nil { vaults[key] = Vault(name: key) }
    }

    var vaultNames: [String] { vaults.keys.sorted() }

    /// Runs `body` on the named vault, creating it first when the emulator allows that.
    private func withVault<Result>(
        _ name: String,
        _ body: (inout Vault) throws(KeyVaultFailure) -> Result
    ) throws(KeyVaultFailure) -> Result {
        let key = name.lowercased()
        if vaults[key] == nil {
            guard createVaultsOnFirstUse else {
                throw KeyVaultFailure(
                    status: 404,
                    code: "VaultNotFound",
                    message:
                        "Vault '\(name)' does not exist in this emulator; create it in the seed file or allow vaults to be created on first use."
                )
            }
            vaults[key] = Vault(name: key)
        }
        return try body(&vaults[key]!)
    }

    private func timestamp() -> Int64 { now() }

    /// Runs `body` on the named vault's table of `Version`'s kind.
    private func withTable<Version: VersionRecord, Result>(
        _ vault: String,
        _ body: (inout ObjectTable<Version>) throws(KeyVaultFailure) -> Result
    ) throws(KeyVaultFailure) -> Result {
        try withVault(vault) { (vault: inout Vault) throws(KeyVaultFailure) in
            try body(&vault[keyPath: Version.table])
        }
    }

    // MARK: Generic reads shared by secrets, keys and certificates

    func get<Version: VersionRecord>(
        _: Version.Type,
        vault: String,
        name: String,
        version: String?,
        rejectDisabled: Bool
    ) throws(KeyVaultFailure) -> (name: String, record: Version) {
        try withTable(vault) { (table: inout ObjectTable<Version>) throws(KeyVaultFailure) in
            guard let object = table.object(named: name) else {
                throw .notFound(Version.kind, name: name, version: version)
            }
            let record: Version
            if let version {
                guard let found = object.version(version) else {
                    throw .notFound(Version.kind, name: name, version: version)
                }
                record = found
            } else {
                record = object.latest
            }
            if rejectDisabled, !record.attributes.enabled { throw .disabled(Version.kind) }
            return (object.name, record)
        }
    }

    func listLatest<Version: VersionRecord>(_: Version.Type, vault: String, after: String?, limit: Int)
        throws(KeyVaultFailure) -> (objects: [VersionedObject<Version>], hasMore: Bool)
    {
        try withTable(vault) { (table: inout ObjectTable<Version>) in table.livePage(after: after, limit: limit) }
    }

    /// Versions in creation order; `after` is the last version id already returned.
    func listVersions<Version: VersionRecord>(
        _: Version.Type,
        vault: String,
        name: String,
        after: String?,
        limit: Int
    ) throws(KeyVaultFailure) -> (name: String, versions: [Version], hasMore: Bool) {
        try withTable(vault) { (table: inout ObjectTable<Version>) throws(KeyVaultFailure) in
            guard let object = table.object(named: name) else { throw .notFound(Version.kind, name: name) }
            var start = 0
            if let after, let index = object.versions.firstIndex(where: { $0.version == after }) {
                start = index + 1
            }
            let end = min(object.versions.count, start + limit)
            return (object.name, Array(object.versions[start..<end]), end < object.versions.count)
        }
    }

    func listDeleted<Version: VersionRecord>(_: Version.Type, vault: String, after: String?, limit: Int)
        throws(KeyVaultFailure) -> (objects: [DeletedObject<Version>], hasMore: Bool)
    {
        try withTable(vault) { (table: inout ObjectTable<Version>) in table.deletedPage(after: after, limit: limit) }
    }

    func getDeleted<Version: VersionRecord>(_: Version.Type, vault: String, name: String)
        throws(KeyVaultFailure) -> DeletedObject<Version>
    {
        try withTable(vault) { (table: inout ObjectTable<Version>) throws(KeyVaultFailure) in
            guard let entry = table.deletedObject(named: name) else {
                throw .deletedNotFound(Version.kind, name: name)
            }
            return entry
        }
    }

    // MARK: Generic writes

    /// Applies an update request to one version. A certificate's new attributes and tags also
    /// reach the key and secret that back it, as Key Vault does.
    func update<Version: VersionRecord>(
        _: Version.Type,
        vault: String,
        name: String,
        version: String?,
        with input: UpdateInput
    ) throws(KeyVaultFailure) -> (name: String, record: Version) {
        let result = try updateAttributes(Version.self, vault: vault, name: name, version: version) { $0.apply(input) }
        if Version.kind == .certificates {
            func change<Backing: VersionRecord>(_ record: inout Backing) {
                record.apply(input.attributes, tags: input.tags)
            }
            let backing = result.record.version
            _ = try? updateAttributes(KeyVersion.self, vault: vault, name: name, version: backing, change: change)
            _ = try? updateAttributes(SecretVersion.self, vault: vault, name: name, version: backing, change: change)
        }
        return result
    }

    private func updateAttributes<Version: VersionRecord>(
        _: Version.Type,
        vault: String,
        name: String,
        version: String?,
        change: (inout Version) -> Void
    ) throws(KeyVaultFailure) -> (name: String, record: Version) {
        let updated = timestamp()
        return try withTable(vault) { (table: inout ObjectTable<Version>) throws(KeyVaultFailure) in
            let result = table.modify(named: name) { object -> (String, Version)? in
                let target = version ?? object.latest.version
                guard
                    let record = object.update(
                        version: target,
                        { record in
                            change(&record)
                            record.attributes.updated = updated
                        })
                else { return nil }
                return (object.name, record)
            }
            guard let found = result ?? nil else { throw .notFound(Version.kind, name: name, version: version) }
            return found
        }
    }

    /// Soft-deletes an object; deleting a certificate also deletes its key and secret, as Key Vault does.
    func delete<Version: VersionRecord>(_: Version.Type, vault: String, name: String)
        throws(KeyVaultFailure) -> DeletedObject<Version>
    {
        let deletedAt = timestamp()
        return try withVault(vault) { (vault: inout Vault) throws(KeyVaultFailure) in
            guard
                let entry = vault[keyPath: Version.table].softDelete(
                    named: name, now: deletedAt, retentionDays: Self.retentionDays)
            else {
                throw .notFound(Version.kind, name: name)
            }
            if Version.kind == .certificates {
                _ = vault.keys.softDelete(named: name, now: deletedAt, retentionDays: Self.retentionDays)
                _ = vault.secrets.softDelete(named: name, now: deletedAt, retentionDays: Self.retentionDays)
            }
            return entry
        }
    }

    func purge<Version: VersionRecord>(_: Version.Type, vault: String, name: String) throws(KeyVaultFailure) {
        try withVault(vault) { (vault: inout Vault) throws(KeyVaultFailure) in
            guard vault[keyPath: Version.table].purge(named: name) != nil else {
                throw .deletedNotFound(Version.kind, name: name)
            }
            if Version.kind == .certificates {
                _ = vault.keys.purge(named: name)
                _ = vault.secrets.purge(named: name)
                vault.certificateOperations[name.lowercased()] = nil
            }
        }
    }

    func recover<Version: VersionRecord>(_: Version.Type, vault: String, name: String)
        throws(KeyVaultFailure) -> VersionedObject<Version>
    {
        try withVault(vault) { (vault: inout Vault) throws(KeyVaultFailure) in
            guard let object = vault[keyPath: Version.table].recover(named: name) else {
                throw .deletedNotFound(Version.kind, name: name)
            }
            if Version.kind == .certificates {
                _ = vault.keys.recover(named: name)
                _ = vault.secrets.recover(named: name)
            }
            return object
        }
    }

    // MARK: Object-specific writes

    /// Adds the version `make` builds from the object's table and the creation time, refusing a
    /// name that is in the recycle bin.
    private func addVersion<Version: VersionRecord>(
        vault: String,
        name: String,
        _ make: (ObjectTable<Version>, _ created: Int64) throws(KeyVaultFailure) -> Version
    ) throws(KeyVaultFailure) -> (name: String, record: Version) {
        let created = timestamp()
        return try withTable(vault) { (table: inout ObjectTable<Version>) throws(KeyVaultFailure) in
            if table.isDeleted(name) { throw .conflictDeleted(Version.kind, name: name) }
            let record = try make(table, created)
            table.append(name: name, version: record)
            return (table.object(named: name)!.name, record)
        }
    }

    func setSecret(
        vault: String,
        name: String,
        value: String,
        contentType: String?,
        tags: [String: String]?,
        attributes: WireAttributesInput?
    ) throws(KeyVaultFailure) -> (name: String, record: SecretVersion) {
        try addVersion(vault: vault, name: name) { secrets, created throws(KeyVaultFailure) in
            if let existing = secrets.object(named: name), existing.latest.managed {
                throw KeyVaultFailure(
                    status: 403,
                    code: "Forbidden",
                    message:
                        "Secret \(name) is managed by certificate \(existing.name); update the certificate instead."
                )
            }
            return SecretVersion(
                version: Identifiers.newVersion(),
                value: value,
                contentType: contentType,
                tags: tags,
                attributes: ObjectAttributes(input: attributes, now: created),
                backingKey: nil
            )
        }
    }

    func addKey(
        vault: String,
        name: String,
        publicKey: JSONWebKey,
        keyOperations: [String],
        tags: [String: String]?,
        attributes: WireAttributesInput?
    ) throws(KeyVaultFailure) -> (name: String, record: KeyVersion) {
        try addVersion(vault: vault, name: name) { _, created in
            KeyVersion(
                version: Identifiers.newVersion(),
                publicKey: publicKey.publicOnly,
                keyOperations: keyOperations,
                tags: tags,
                attributes: ObjectAttributes(input: attributes, now: created),
                exportable: attributes?.exportable,
                managed: false
            )
        }
    }

    /// Stores a new certificate version together with its backing key and secret, all with the
    /// same version id, as Key Vault does.
    func addCertificate(
        vault: String,
        name: String,
        material: IssuedCertificate,
        policy: CertificatePolicy,
        tags: [String: String]?,
        attributes: WireAttributesInput?,
        preserveCertOrder: Bool?
    ) throws(KeyVaultFailure) -> (name: String, record: CertificateVersion) {
        let created = timestamp()
        return try withVault(vault) { (vault: inout Vault) throws(KeyVaultFailure) in
            for (table, kind) in [
                (vault.certificates.isDeleted(name), ObjectKind.certificates), (vault.keys.isDeleted(name), .keys),
                (vault.secrets.isDeleted(name), .secrets),
            ] where table {
                throw .conflictDeleted(kind, name: name)
            }
            if let existing = vault.secrets.object(named: name), !existing.latest.managed {
                throw KeyVaultFailure(
                    status: 409,
                    code: "Conflict",
                    message:
                        "A secret named \(existing.name) already exists and is not managed by a certificate; choose another certificate name."
                )
            }
            let version = Identifiers.newVersion()
            var objectAttributes = ObjectAttributes(input: attributes, now: created)
            // The service takes a certificate's nbf and exp from its X.509 validity, and gives its
            // key and secret the same.
            objectAttributes.notBefore = Int64(material.certificate.notBefore.timeIntervalSince1970)
            objectAttributes.expires = Int64(material.certificate.notAfter.timeIntervalSince1970)
            let certificateName = vault.certificates.object(named: name)?.name ?? name
            var policy = policy
            if policy.attributes == nil {
                policy.attributes = .object([
                    "enabled": .bool(true), "created": .number(Double(created)), "updated": .number(Double(created)),
                ])
            }
            let record = CertificateVersion(
                version: version,
                certificate: material.certificate,
                policy: policy,
                tags: tags,
                attributes: objectAttributes,
                preserveCertOrder: preserveCertOrder
            )
            vault.certificates.append(name: certificateName, version: record)
            vault.keys.append(
                name: certificateName,
                version: KeyVersion(
                    version: version,
                    publicKey: material.publicJWK,
                    keyOperations: material.keyOperations,
                    tags: tags,
                    attributes: objectAttributes,
                    exportable: policy.keyProperties?.exportable,
                    managed: true
                )
            )
            vault.secrets.append(
                name: certificateName,
                version: SecretVersion(
                    version: version,
                    value: material.secretValue,
                    contentType: material.secretContentType,
                    tags: tags,
                    attributes: objectAttributes,
                    backingKey: ObjectReference(kind: .keys, name: certificateName, version: version)
                )
            )
            vault.certificateOperations[certificateName.lowercased()] = CertificateOperation(
                requestID: Identifiers.newVersion(),
                issuerName: policy.issuer?.name ?? "Self",
                status: "completed",
                targetVersion: version,
                signingRequest: material.signingRequest
            )
            return (certificateName, record)
        }
    }

    func certificateOperation(vault: String, name: String) throws(KeyVaultFailure) -> (
        name: String, operation: CertificateOperation
    ) {
        try withVault(vault) { (vault: inout Vault) throws(KeyVaultFailure) in
            guard let certificate = vault.certificates.object(named: name),
                let operation = vault.certificateOperations[name.lowercased()]
            else {
                throw KeyVaultFailure(
                    status: 404,
                    code: "CertificateOperationNotFound",
                    message: "Pending certificate not found: \(name)"
                )
            }
            return (certificate.name, operation)
        }
    }
}

extension ObjectAttributes {
    init(input: WireAttributesInput?, now: Int64) {
        self.init(
            enabled: input?.enabled ?? true, notBefore: input?.nbf, expires: input?.exp, created: now, updated: now)
    }

    mutating func apply(_ input: WireAttributesInput?) {
        guard let input else { return }
        if let enabled = input.enabled { self.enabled = enabled }
        if let nbf = input.nbf { notBefore = nbf }
        if let exp = input.exp { expires = exp }
    }
}

extension VersionRecord {
    /// The changes an update request makes to any kind of object; what it leaves out stays.
    mutating func apply(_ attributes: WireAttributesInput?, tags: [String: String]?) {
        self.attributes.apply(attributes)
        if let tags { self.tags = tags }
    }
}

extension SecretVersion {
    mutating func apply(_ update: UpdateInput) {
        apply(update.attributes, tags: update.tags)
        if let contentType = update.contentType { self.contentType = contentType }
    }
}

extension KeyVersion {
    mutating func apply(_ update: UpdateInput) {
        apply(update.attributes, tags: update.tags)
        if let operations = update.keyOperations { keyOperations = operations }
    }
}

extension CertificateVersion {
    mutating func apply(_ update: UpdateInput) { apply(update.attributes, tags: update.tags) }
}
