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

    // MARK: Generic reads shared by secrets, keys and certificates

    func get<Version>(
        _ table: WritableKeyPath<Vault, ObjectTable<Version>>,
        _ kind: ObjectKind,
        vault: String,
        name: String,
        version: String?,
        rejectDisabled: Bool
    ) throws(KeyVaultFailure) -> (name: String, record: Version) {
        try withVault(vault) { (vault: inout Vault) throws(KeyVaultFailure) in
            guard let object = vault[keyPath: table].object(named: name) else {
                throw .notFound(kind, name: name, version: version)
            }
            let record: Version
            if let version {
                guard let found = object.version(version) else { throw .notFound(kind, name: name, version: version) }
                record = found
            } else {
                record = object.latest
            }
            if rejectDisabled, !record.attributes.enabled { throw .disabled(kind) }
            return (object.name, record)
        }
    }

    func listLatest<Version>(
        _ table: WritableKeyPath<Vault, ObjectTable<Version>>,
        vault: String,
        after: String?,
        limit: Int
    ) throws(KeyVaultFailure) -> (objects: [VersionedObject<Version>], hasMore: Bool) {
        try withVault(vault) { (vault: inout Vault) throws(KeyVaultFailure) in
            vault[keyPath: table].livePage(after: after, limit: limit)
        }
    }

    /// Versions in creation order; `after` is the last version id already returned.
    func listVersions<Version>(
        _ table: WritableKeyPath<Vault, ObjectTable<Version>>,
        _ kind: ObjectKind,
        vault: String,
        name: String,
        after: String?,
        limit: Int
    ) throws(KeyVaultFailure) -> (name: String, versions: [Version], hasMore: Bool) {
        try withVault(vault) { (vault: inout Vault) throws(KeyVaultFailure) in
            guard let object = vault[keyPath: table].object(named: name) else { throw .notFound(kind, name: name) }
            var start = 0
            if let after, let index = object.versions.firstIndex(where: { $0.version == after }) {
                start = index + 1
            }
            let end = min(object.versions.count, start + limit)
            return (object.name, Array(object.versions[start..<end]), end < object.versions.count)
        }
    }

    func listDeleted<Version>(
        _ table: WritableKeyPath<Vault, ObjectTable<Version>>,
        vault: String,
        after: String?,
        limit: Int
    ) throws(KeyVaultFailure) -> (objects: [DeletedObject<Version>], hasMore: Bool) {
        try withVault(vault) { (vault: inout Vault) throws(KeyVaultFailure) in
            vault[keyPath: table].deletedPage(after: after, limit: limit)
        }
    }

    func getDeleted<Version>(
        _ table: WritableKeyPath<Vault, ObjectTable<Version>>,
        _ kind: ObjectKind,
        vault: String,
        name: String
    ) throws(KeyVaultFailure) -> DeletedObject<Version> {
        try withVault(vault) { (vault: inout Vault) throws(KeyVaultFailure) in
            guard let entry = vault[keyPath: table].deletedObject(named: name) else {
                throw .deletedNotFound(kind, name: name)
            }
            return entry
        }
    }

    // MARK: Generic writes

    func updateAttributes<Version>(
        _ table: WritableKeyPath<Vault, ObjectTable<Version>>,
        _ kind: ObjectKind,
        vault: String,
        name: String,
        version: String?,
        change: (inout Version) -> Void
    ) throws(KeyVaultFailure) -> (name: String, record: Version) {
        let updated = timestamp()
        return try withVault(vault) { (vault: inout Vault) throws(KeyVaultFailure) in
            let result = vault[keyPath: table].modify(named: name) { object -> (String, Version)? in
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
            guard let found = result ?? nil else { throw .notFound(kind, name: name, version: version) }
            return found
        }
    }

    /// Soft-deletes an object; deleting a certificate also deletes its key and secret, as Key Vault does.
    func delete<Version>(
        _ table: WritableKeyPath<Vault, ObjectTable<Version>>,
        _ kind: ObjectKind,
        vault: String,
        name: String
    ) throws(KeyVaultFailure) -> DeletedObject<Version> {
        let deletedAt = timestamp()
        return try withVault(vault) { (vault: inout Vault) throws(KeyVaultFailure) in
            guard
                let entry = vault[keyPath: table].softDelete(
                    named: name, now: deletedAt, retentionDays: Self.retentionDays)
            else {
                throw .notFound(kind, name: name)
            }
            if kind == .certificates {
                _ = vault.keys.softDelete(named: name, now: deletedAt, retentionDays: Self.retentionDays)
                _ = vault.secrets.softDelete(named: name, now: deletedAt, retentionDays: Self.retentionDays)
            }
            return entry
        }
    }

    func purge<Version>(
        _ table: WritableKeyPath<Vault, ObjectTable<Version>>,
        _ kind: ObjectKind,
        vault: String,
        name: String
    ) throws(KeyVaultFailure) {
        try withVault(vault) { (vault: inout Vault) throws(KeyVaultFailure) in
            guard vault[keyPath: table].purge(named: name) != nil else { throw .deletedNotFound(kind, name: name) }
            if kind == .certificates {
                _ = vault.keys.purge(named: name)
                _ = vault.secrets.purge(named: name)
                vault.certificateOperations[name.lowercased()] = nil
            }
        }
    }

    func recover<Version>(
        _ table: WritableKeyPath<Vault, ObjectTable<Version>>,
        _ kind: ObjectKind,
        vault: String,
        name: String
    ) throws(KeyVaultFailure) -> VersionedObject<Version> {
        try withVault(vault) { (vault: inout Vault) throws(KeyVaultFailure) in
            guard let object = vault[keyPath: table].recover(named: name) else {
                throw .deletedNotFound(kind, name: name)
            }
            if kind == .certificates {
                _ = vault.keys.recover(named: name)
                _ = vault.secrets.recover(named: name)
            }
            return object
        }
    }

    // MARK: Object-specific writes

    func setSecret(
        vault: String,
        name: String,
        value: String,
        contentType: String?,
        tags: [String: String]?,
        attributes: WireAttributesInput?
    ) throws(KeyVaultFailure) -> (name: String, record: SecretVersion) {
        let created = timestamp()
        return try withVault(vault) { (vault: inout Vault) throws(KeyVaultFailure) in
            if vault.secrets.isDeleted(name) { throw .conflictDeleted(.secrets, name: name) }
            if let existing = vault.secrets.object(named: name), existing.latest.managed {
                throw KeyVaultFailure(
                    status: 403,
                    code: "Forbidden",
                    message:
                        "Secret \(name) is managed by certificate \(existing.name); update the certificate instead."
                )
            }
            let record = SecretVersion(
                version: Identifiers.newVersion(),
                value: value,
                contentType: contentType,
                tags: tags,
                attributes: ObjectAttributes(input: attributes, now: created),
                backingKey: nil
            )
            vault.secrets.append(name: name, version: record)
            return (vault.secrets.object(named: name)!.name, record)
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
        let created = timestamp()
        return try withVault(vault) { (vault: inout Vault) throws(KeyVaultFailure) in
            if vault.keys.isDeleted(name) { throw .conflictDeleted(.keys, name: name) }
            let record = KeyVersion(
                version: Identifiers.newVersion(),
                publicKey: publicKey.publicOnly,
                keyOperations: keyOperations,
                tags: tags,
                attributes: ObjectAttributes(input: attributes, now: created),
                exportable: attributes?.exportable,
                managed: false
            )
            vault.keys.append(name: name, version: record)
            return (vault.keys.object(named: name)!.name, record)
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

    /// Applies attribute changes to a certificate version and the key and secret that back it.
    func updateCertificate(
        vault: String,
        name: String,
        version: String?,
        tags: [String: String]?,
        attributes: WireAttributesInput?
    ) throws(KeyVaultFailure) -> (name: String, record: CertificateVersion) {
        let result = try updateAttributes(\.certificates, .certificates, vault: vault, name: name, version: version) {
            record in
            record.attributes.apply(attributes)
            if let tags { record.tags = tags }
        }
        let backing = result.record.version
        _ = try? updateAttributes(\.keys, .keys, vault: vault, name: name, version: backing) { record in
            record.attributes.apply(attributes)
            if let tags { record.tags = tags }
        }
        _ = try? updateAttributes(\.secrets, .secrets, vault: vault, name: name, version: backing) { record in
            record.attributes.apply(attributes)
            if let tags { record.tags = tags }
        }
        return result
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
