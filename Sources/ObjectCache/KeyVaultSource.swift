import KeyVault
import PKI

/// The cache's view of a real vault: one `KeyVaultClient` (one vault, one credential).
/// Keys are handed on without their private members; certificates as DER.
public struct KeyVaultSource: ObjectSource {
    private let client: KeyVaultClient

    public init(client: KeyVaultClient) {
        self.client = client
    }

    public func fetch(_ reference: ObjectReference) async throws(SourceError) -> FetchedObject {
        let (name, version) = (reference.name, reference.version)
        switch reference.kind {
        case .secret:
            return try Self.object(
                try await mapped { () async throws(KeyVaultError) in try await client.getSecret(name, version: version)
                }, reference)
        case .key:
            return Self.object(
                try await mapped { () async throws(KeyVaultError) in try await client.getKey(name, version: version) },
                reference)
        case .certificate:
            return try Self.object(
                try await mapped { () async throws(KeyVaultError) in
                    try await client.getCertificate(name, version: version)
                }, reference)
        }
    }

    public func list(_ kind: ObjectKind, pacer: @escaping PagePacer) async throws(SourceError) -> [ListedObject] {
        try await mapped { () async throws(KeyVaultError) in
            switch kind {
            case .secret: Self.wellFormed(try await client.listSecrets(pacer: pacer).map(Self.listed))
            case .key: Self.wellFormed(try await client.listKeys(pacer: pacer).map(Self.listed))
            case .certificate: Self.wellFormed(try await client.listCertificates(pacer: pacer).map(Self.listed))
            }
        }
    }

    public func listVersions(_ kind: ObjectKind, name: String, pacer: @escaping PagePacer) async throws(SourceError)
        -> [ListedObject]
    {
        try await mapped { () async throws(KeyVaultError) in
            switch kind {
            case .secret:
                Self.wellFormedVersions(try await client.listSecretVersions(name, pacer: pacer).map(Self.listed))
            case .key: Self.wellFormedVersions(try await client.listKeyVersions(name, pacer: pacer).map(Self.listed))
            case .certificate:
                Self.wellFormedVersions(try await client.listCertificateVersions(name, pacer: pacer).map(Self.listed))
            }
        }
    }

    private func mapped<T>(_ call: () async throws(KeyVaultError) -> T) async throws(SourceError) -> T {
        do {
            return try await call()
        } catch {
            throw SourceError(error)
        }
    }

    // MARK: Converting Key Vault's models

    static func object(_ bundle: SecretBundle, _ reference: ObjectReference) throws(SourceError) -> FetchedObject {
        guard let value = bundle.value else {
            throw SourceError(
                kind: .invalid,
                message: "get \(reference) answered no value; the vault's answer is not what Key Vault sends.")
        }
        let metadata = ObjectMetadata(
            id: bundle.id, version: bundle.version ?? reference.version ?? "", attributes: bundle.attributes,
            contentType: bundle.contentType, tags: bundle.tags, certificateBacked: bundle.isCertificateBacked,
            managed: bundle.managed ?? false
        )
        return FetchedObject(metadata: metadata, payload: .secret(SecretBytes(utf8: value)))
    }

    static func object(_ bundle: KeyBundle, _ reference: ObjectReference) -> FetchedObject {
        // Key Vault marks the key of a certificate as managed.
        let managed = bundle.managed ?? false
        let metadata = ObjectMetadata(
            id: bundle.id ?? "", version: bundle.version ?? reference.version ?? "", attributes: bundle.attributes,
            contentType: nil, tags: bundle.tags, certificateBacked: managed, managed: managed
        )
        return FetchedObject(metadata: metadata, payload: .key(bundle.key.publicOnly))
    }

    static func object(_ bundle: CertificateBundle, _ reference: ObjectReference) throws(SourceError) -> FetchedObject {
        guard let der = bundle.certificateDER, !der.isEmpty else {
            throw SourceError(
                kind: .invalid,
                message:
                    "get \(reference) answered no certificate (cer is missing or not base64); the vault's answer is not what Key Vault sends."
            )
        }
        let metadata = ObjectMetadata(
            id: bundle.id, version: bundle.version ?? reference.version ?? "", attributes: bundle.attributes,
            contentType: bundle.contentType, tags: bundle.tags, certificateBacked: false, managed: false
        )
        return FetchedObject(metadata: metadata, payload: .certificate(der))
    }

    /// What a listing may show. Key Vault names are 1-127 letters, digits and '-', so an item whose
    /// id gives anything else (".", "..", "a/b", a newline) is not an object of this vault and is
    /// dropped, as is a second item of one name: names become file names.
    static func wellFormed(_ listed: [ListedObject]) -> [ListedObject] {
        var seen = Set<String>()
        return listed.filter { KeyVaultNames.isObjectName($0.name) && seen.insert($0.name).inserted }
    }

    /// A listing of versions without versions that cannot be ones, or that come twice.
    static func wellFormedVersions(_ listed: [ListedObject]) -> [ListedObject] {
        var seen = Set<String>()
        return listed.filter { item in
            guard let version = item.version else { return false }
            return KeyVaultNames.isVersion(version) && seen.insert(version).inserted
        }
    }

    // Each item's id is parsed once: a listing of a large vault maps thousands of them.
    static func listed(_ item: SecretItem) -> ListedObject {
        let identifier = item.identifier
        return ListedObject(
            name: identifier?.name ?? item.id, version: identifier?.version, attributes: item.attributes,
            managed: item.managed ?? false, contentType: item.contentType, tags: item.tags)
    }

    static func listed(_ item: KeyItem) -> ListedObject {
        let identifier = item.identifier
        return ListedObject(
            name: identifier?.name ?? item.kid, version: identifier?.version, attributes: item.attributes,
            managed: item.managed ?? false, contentType: nil, tags: item.tags)
    }

    static func listed(_ item: CertificateItem) -> ListedObject {
        let identifier = item.identifier
        return ListedObject(
            name: identifier?.name ?? item.id, version: identifier?.version, attributes: item.attributes,
            managed: false, contentType: nil, tags: item.tags)
    }
}

extension SourceError {
    /// Maps the client's error kinds onto the few the cache acts on; the message is the client's.
    init(_ error: KeyVaultError) {
        let kind: Kind =
            switch error.kind {
            case .notFound: .notFound
            case .forbidden, .unauthorized, .credential, .challengeRejected: .forbidden
            case .disabled: .disabled
            case .throttled: .throttled
            case .transport, .serverError, .cancelled: .unavailable
            case .badRequest, .conflict, .invalidResponse, .configuration: .invalid
            }
        self.init(kind: kind, message: error.description, retryAfter: error.retryAfter)
    }
}

extension ObjectMetadata {
    init(
        id: String, version: String, attributes: ObjectAttributes?, contentType: String?, tags: [String: String]?,
        certificateBacked: Bool, managed: Bool
    ) {
        self.init(
            id: id, version: version, enabled: attributes?.isEnabled ?? true, contentType: contentType,
            created: attributes?.created, updated: attributes?.updated, notBefore: attributes?.notBefore,
            expires: attributes?.expires,
            tags: tags ?? [:], certificateBacked: certificateBacked, managed: managed
        )
    }
}

extension ListedObject {
    init(
        name: String, version: String?, attributes: ObjectAttributes?, managed: Bool, contentType: String?,
        tags: [String: String]?
    ) {
        self.init(
            name: name, version: version, enabled: attributes?.isEnabled ?? true, managed: managed,
            contentType: contentType,
            created: attributes?.created, updated: attributes?.updated, tags: tags ?? [:]
        )
    }
}
