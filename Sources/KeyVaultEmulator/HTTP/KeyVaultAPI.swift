import FoundationEssentials
import HTTPTypes
import Hummingbird
import PKI

/// The Key Vault data plane for one request on `<vault>.vault.localhost`, after authentication.
struct KeyVaultAPI: Sendable {
    let state: EmulatorState

    /// Request facts every operation uses.
    struct Call {
        var request: IncomingRequest
        var vault: String
        /// `https://<vault>.vault.localhost:<port>`: ids and nextLinks point back at the emulator.
        var baseURL: String
        var apiVersion: String
        /// The vault's emulated timing says to put empty pages between pages.
        var emptyMiddlePages = false
    }

    func handle(_ request: IncomingRequest, vault: String, principal: Principal, apiVersion: String)
        async throws(KeyVaultFailure) -> Response
    {
        let operation = try KeyVaultOperation.route(method: request.method, segments: request.pathSegments)
        try state.access.check(
            principal,
            tenantId: state.tenantId,
            vault: vault,
            kind: operation.kind,
            permission: operation.permission,
            objectName: operation.objectName
        )
        let timing = try await state.timing.admit(operation, vault: vault)
        let call = Call(
            request: request, vault: vault, baseURL: "https://\(request.authority)", apiVersion: apiVersion,
            emptyMiddlePages: timing.emptyMiddlePages)
        let response = try await perform(operation, call)
        await state.timing.completed(operation, vault: vault)
        return response
    }

    private func perform(_ operation: KeyVaultOperation, _ call: Call) async throws(KeyVaultFailure) -> Response {
        switch operation {
        case .list(let kind): return try await list(kind.servedVersion, call)
        case .get(let kind, let name, let version): return try await get(kind, name: name, version: version, call)
        case .listVersions(let kind, let name): return try await listVersions(kind.servedVersion, name: name, call)
        case .update(let kind, let name, let version):
            return try await update(kind.servedVersion, name: name, version: version, call)
        case .delete(let kind, let name): return try await delete(kind.servedVersion, name: name, call)
        case .listDeleted(let kind): return try await listDeleted(kind.servedVersion, call)
        case .getDeleted(let kind, let name): return try await getDeleted(kind.servedVersion, name: name, call)
        case .purge(let kind, let name): return try await purge(kind.servedVersion, name: name, call)
        case .recover(let kind, let name): return try await recover(kind.servedVersion, name: name, call)
        case .setSecret(let name): return try await setSecret(name: name, call)
        case .createKey(let name): return try await createKey(name: name, call)
        case .importKey(let name): return try await importKey(name: name, call)
        case .createCertificate(let name): return try await createCertificate(name: name, call)
        case .importCertificate(let name): return try await importCertificate(name: name, call)
        case .certificateOperation(let name): return try await certificateOperation(name: name, call)
        case .certificatePolicy(let name): return try await certificatePolicy(name: name, call)
        }
    }

    // MARK: Reads

    private func get(_ kind: ObjectKind, name: String, version: String?, _ call: Call) async throws(KeyVaultFailure)
        -> Response
    {
        let store = state.store
        switch kind {
        case .secrets:
            let (storedName, record) = try await store.get(
                SecretVersion.self, vault: call.vault, name: name, version: version, rejectDisabled: true)
            var bundle = record.bundle(storedName, call, includeValue: true)
            if let wanted = call.request.query["outContentType"] {
                bundle = try convertSecret(bundle, record: record, to: wanted)
            }
            return .json(bundle)
        case .keys:
            let (storedName, record) = try await store.get(
                KeyVersion.self, vault: call.vault, name: name, version: version, rejectDisabled: true)
            return .json(record.bundle(storedName, call))
        case .certificates:
            let (storedName, record) = try await store.get(
                CertificateVersion.self, vault: call.vault, name: name, version: version, rejectDisabled: false)
            return .json(record.bundle(storedName, call, includePolicy: version == nil))
        }
    }

    /// `outContentType=application/x-pem-file` turns a PKCS#12 certificate secret into PEM (2025-07-01+).
    private func convertSecret(_ bundle: SecretBundleJSON, record: SecretVersion, to wanted: String)
        throws(KeyVaultFailure) -> SecretBundleJSON
    {
        guard record.managed else {
            throw .badParameter("outContentType is only supported for secrets that back a certificate.")
        }
        guard wanted == CertificatePolicy.pemContentType else {
            throw .badParameter("Unsupported outContentType '\(wanted)'. Allowed: \(CertificatePolicy.pemContentType).")
        }
        guard record.contentType == CertificatePolicy.pkcs12ContentType else { return bundle }
        var converted = bundle
        do {
            let contents = try PKCS12.parse(Array(Data(base64Encoded: record.value) ?? Data()), password: "")
            converted.value =
                (try contents.privateKeys.first?.pkcs8PEM() ?? "") + contents.certificates.map { $0.pem() }.joined()
        } catch {
            throw KeyVaultFailure(
                status: 500, code: "InternalServerError",
                message: "The stored PKCS#12 could not be converted: \(error.reason)")
        }
        converted.contentType = CertificatePolicy.pemContentType
        return converted
    }

    /// Answers a list request with an empty page where the vault's timing puts one in place of the
    /// items (`emptyMiddlePages`, or the emulator's `emptyFirstPage` on a first page), and otherwise
    /// with `items`, given the request's paging.
    private func answerList(
        _ call: Call, emptyFirstPage: Bool, items: (Paging) async throws(KeyVaultFailure) -> Response
    ) async throws(KeyVaultFailure) -> Response {
        let paging = try Paging(
            call.request.query, emptyFirstPage: emptyFirstPage, emptyMiddlePages: call.emptyMiddlePages)
        if let empty = paging.emptyPage(call) { return empty }
        return try await items(paging)
    }

    private func list<Version: ServedVersion>(_: Version.Type, _ call: Call) async throws(KeyVaultFailure) -> Response {
        try await answerList(call, emptyFirstPage: state.emptyFirstPage) { paging throws(KeyVaultFailure) in
            let page = try await state.store.listLatest(
                Version.self, vault: call.vault, after: paging.after, limit: paging.limit)
            let items = page.objects.map { $0.latest.item($0.name, call, versioned: false) }
            return paging.page(items, call, hasMore: page.hasMore, after: page.objects.last?.name)
        }
    }

    private func listVersions<Version: ServedVersion>(_: Version.Type, name: String, _ call: Call)
        async throws(KeyVaultFailure) -> Response
    {
        try await answerList(call, emptyFirstPage: false) { paging throws(KeyVaultFailure) in
            let page = try await state.store.listVersions(
                Version.self, vault: call.vault, name: name, after: paging.after, limit: paging.limit)
            let items = page.versions.map { $0.item(page.name, call, versioned: true) }
            return paging.page(items, call, hasMore: page.hasMore, after: page.versions.last?.version)
        }
    }

    private func listDeleted<Version: ServedVersion>(_: Version.Type, _ call: Call) async throws(KeyVaultFailure)
        -> Response
    {
        try await answerList(call, emptyFirstPage: false) { paging throws(KeyVaultFailure) in
            let page = try await state.store.listDeleted(
                Version.self, vault: call.vault, after: paging.after, limit: paging.limit)
            let items = page.objects.map { entry in
                inRecycleBin(entry.object.latest.item(entry.object.name, call, versioned: false), entry, call)
            }
            return paging.page(items, call, hasMore: page.hasMore, after: page.objects.last?.object.name)
        }
    }

    private func getDeleted<Version: ServedVersion>(_: Version.Type, name: String, _ call: Call)
        async throws(KeyVaultFailure) -> Response
    {
        .json(deletedBundle(try await state.store.getDeleted(Version.self, vault: call.vault, name: name), call))
    }

    private func certificateOperation(name: String, _ call: Call) async throws(KeyVaultFailure) -> Response {
        let (storedName, operation) = try await state.store.certificateOperation(vault: call.vault, name: name)
        return .json(operationJSON(storedName, operation, call))
    }

    private func certificatePolicy(name: String, _ call: Call) async throws(KeyVaultFailure) -> Response {
        let (storedName, record) = try await state.store.get(
            CertificateVersion.self, vault: call.vault, name: name, version: nil, rejectDisabled: false)
        var policy = record.policy
        policy.id = "\(call.baseURL)/certificates/\(storedName)/policy"
        return .json(policy)
    }

    // MARK: Writes

    private func setSecret(name: String, _ call: Call) async throws(KeyVaultFailure) -> Response {
        let input = try JSON.decode(SetSecretInput.self, from: call.request.body)
        guard let value = input.value else {
            throw .badParameter("The request body must contain the secret's 'value'.")
        }
        guard value.utf8.count <= 25 * 1024 else {
            throw .badParameter("The secret value is \(value.utf8.count) bytes; Key Vault allows at most 25 KB.")
        }
        if let contentType = input.contentType, contentType.count > 255 {
            throw .badParameter("The content type is longer than 255 characters.")
        }
        try validateTags(input.tags)
        let (storedName, record) = try await state.store.setSecret(
            vault: call.vault,
            name: name,
            value: value,
            contentType: input.contentType,
            tags: input.tags,
            attributes: input.attributes
        )
        return .json(record.bundle(storedName, call, includeValue: true))
    }

    private func update<Version: ServedVersion>(_: Version.Type, name: String, version: String?, _ call: Call)
        async throws(KeyVaultFailure) -> Response
    {
        let input = try JSON.decode(UpdateInput.self, from: call.request.body)
        try validateTags(input.tags)
        let (storedName, record) = try await state.store.update(
            Version.self, vault: call.vault, name: name, version: version, with: input)
        return .json(record.bundle(storedName, call))
    }

    private func delete<Version: ServedVersion>(_: Version.Type, name: String, _ call: Call)
        async throws(KeyVaultFailure) -> Response
    {
        .json(deletedBundle(try await state.store.delete(Version.self, vault: call.vault, name: name), call))
    }

    private func purge<Version: ServedVersion>(_: Version.Type, name: String, _ call: Call)
        async throws(KeyVaultFailure) -> Response
    {
        try await state.store.purge(Version.self, vault: call.vault, name: name)
        return .empty(status: 204)
    }

    private func recover<Version: ServedVersion>(_: Version.Type, name: String, _ call: Call)
        async throws(KeyVaultFailure) -> Response
    {
        let object = try await state.store.recover(Version.self, vault: call.vault, name: name)
        return .json(object.latest.bundle(object.name, call))
    }

    private func createKey(name: String, _ call: Call) async throws(KeyVaultFailure) -> Response {
        let input = try JSON.decode(CreateKeyInput.self, from: call.request.body)
        try validateTags(input.tags)
        let (key, keyType) = try KeyFactory.generate(keyType: input.keyType, size: input.keySize, curve: input.curve)
        var publicJWK: JSONWebKey
        do {
            publicJWK = try key.publicKey.jwk()
        } catch {
            throw KeyVaultFailure(
                status: 500, code: "InternalServerError", message: "Reading the new key failed: \(error.reason)")
        }
        publicJWK.kty = keyType
        var attributes = input.attributes
        if let exportable = input.exportable {
            attributes = attributes ?? WireAttributesInput()
            attributes?.exportable = exportable
        }
        let (storedName, record) = try await state.store.addKey(
            vault: call.vault,
            name: name,
            publicKey: publicJWK,
            keyOperations: input.keyOperations ?? KeyFactory.defaultOperations(for: keyType),
            tags: input.tags,
            attributes: attributes
        )
        return .json(record.bundle(storedName, call))
    }

    private func importKey(name: String, _ call: Call) async throws(KeyVaultFailure) -> Response {
        let input = try JSON.decode(ImportKeyInput.self, from: call.request.body)
        guard let jwk = input.key else {
            throw .badParameter("The request body must contain the JSON Web Key to import in 'key'.")
        }
        try validateTags(input.tags)
        let publicJWK = try KeyFactory.importPublicPart(of: jwk)
        let (storedName, record) = try await state.store.addKey(
            vault: call.vault,
            name: name,
            publicKey: publicJWK,
            keyOperations: jwk.key_ops ?? KeyFactory.defaultOperations(for: publicJWK.kty),
            tags: input.tags,
            attributes: input.attributes
        )
        return .json(record.bundle(storedName, call))
    }

    private func createCertificate(name: String, _ call: Call) async throws(KeyVaultFailure) -> Response {
        let input = try JSON.decode(CreateCertificateInput.self, from: call.request.body)
        try validateTags(input.tags)
        let (material, policy) = try CertificateFactory.create(
            policy: input.policy ?? CertificatePolicy(), now: state.now())
        let (storedName, _) = try await addCertificate(name: name, material, policy, from: input, call)
        let (_, operation) = try await state.store.certificateOperation(vault: call.vault, name: storedName)
        var headers = HTTPFields()
        headers[.location] = "\(call.baseURL)/certificates/\(storedName)/pending?api-version=\(call.apiVersion)"
        headers[.retryAfter] = "10"
        // Key Vault always answers a create with an operation in progress, and SDK pollers rely on
        // it: they fetch the certificate only after seeing the operation move to "completed".
        return .json(operationJSON(storedName, operation, call, asCreated: true), status: 202, headers: headers)
    }

    private func importCertificate(name: String, _ call: Call) async throws(KeyVaultFailure) -> Response {
        let input = try JSON.decode(ImportCertificateInput.self, from: call.request.body)
        guard let value = input.value, !value.isEmpty else {
            throw .badParameter(
                "The request body must contain the certificate in 'value' (base64 PFX, or PEM text with the PEM content type)."
            )
        }
        try validateTags(input.tags)
        let (material, policy) = try CertificateFactory.importing(
            value: value, password: input.password, policy: input.policy)
        let (storedName, record) = try await addCertificate(name: name, material, policy, from: input, call)
        return .json(record.bundle(storedName, call))
    }

    /// Stores a created or imported certificate with the attributes, tags and chain order the
    /// request asks for.
    private func addCertificate(
        name: String,
        _ material: IssuedCertificate,
        _ policy: CertificatePolicy,
        from input: some NewCertificateInput,
        _ call: Call
    ) async throws(KeyVaultFailure) -> (name: String, record: CertificateVersion) {
        try await state.store.addCertificate(
            vault: call.vault,
            name: name,
            material: material,
            policy: policy,
            tags: input.tags,
            attributes: input.attributes,
            preserveCertOrder: input.preserveCertOrder
        )
    }

    private func validateTags(_ tags: [String: String]?) throws(KeyVaultFailure) {
        guard let tags else { return }
        guard tags.count <= 15 else { throw .badParameter("At most 15 tags are allowed; got \(tags.count).") }
        for (name, value) in tags where name.count > 512 || value.count > 512 {
            throw .badParameter("Tag '\(name.prefix(40))' is too long: names and values are limited to 512 characters.")
        }
    }

    // MARK: JSON shapes

    /// The stored operation, or with `asCreated` as the create answers it: still in progress.
    private func operationJSON(_ name: String, _ operation: CertificateOperation, _ call: Call, asCreated: Bool = false)
        -> CertificateOperationJSON
    {
        CertificateOperationJSON(
            id: "\(call.baseURL)/certificates/\(name)/pending",
            issuer: .init(name: operation.issuerName),
            csr: operation.signingRequest.map { Data($0).base64EncodedString() },
            cancellationRequested: false,
            status: asCreated ? "inProgress" : operation.status,
            statusDetails: asCreated ? CertificateOperationJSON.pendingDetails : nil,
            target: "\(call.baseURL)/certificates/\(name)",
            requestId: operation.requestID
        )
    }

    /// Adds the recycle-bin fields Key Vault puts on deleted objects.
    private func inRecycleBin<Object: Encodable, Version: VersionRecord>(
        _ json: Object,
        _ entry: DeletedObject<Version>,
        _ call: Call
    ) -> DeletedJSON<Object> {
        DeletedJSON(
            object: json,
            recoveryId: "\(call.baseURL)/\(Version.kind.deletedPathSegment)/\(entry.object.name)",
            deletedDate: entry.deletedDate,
            scheduledPurgeDate: entry.scheduledPurgeDate
        )
    }

    /// A deleted object as a delete or a read of the recycle bin answers it.
    private func deletedBundle<Version: ServedVersion>(_ entry: DeletedObject<Version>, _ call: Call)
        -> DeletedJSON<Version.Bundle>
    {
        inRecycleBin(entry.object.latest.bundle(entry.object.name, call), entry, call)
    }
}

/// A stored version as the data plane answers with it, so the operations that work alike on
/// secrets, keys and certificates are written once, generic over this.
protocol ServedVersion: VersionRecord {
    associatedtype Bundle: Encodable
    associatedtype Item: Encodable
    /// The bundle that updates, deletes and recoveries answer with: a secret without its value, a
    /// certificate with its policy.
    func bundle(_ name: String, _ call: KeyVaultAPI.Call) -> Bundle
    /// A list entry; `versioned` ids name the version (lists of versions).
    func item(_ name: String, _ call: KeyVaultAPI.Call, versioned: Bool) -> Item
}

extension ObjectKind {
    /// The record type that stores this kind; the generic operations open it.
    var servedVersion: any ServedVersion.Type {
        switch self {
        case .secrets: SecretVersion.self
        case .keys: KeyVersion.self
        case .certificates: CertificateVersion.self
        }
    }
}

extension SecretVersion: ServedVersion {
    func bundle(_ name: String, _ call: KeyVaultAPI.Call) -> SecretBundleJSON {
        bundle(name, call, includeValue: false)
    }

    func bundle(_ name: String, _ call: KeyVaultAPI.Call, includeValue: Bool) -> SecretBundleJSON {
        SecretBundleJSON(
            value: includeValue ? value : nil,
            id: "\(call.baseURL)/secrets/\(name)/\(version)",
            contentType: contentType,
            attributes: WireAttributes(attributes),
            tags: tags,
            kid: backingKey?.url(base: call.baseURL),
            managed: managed ? true : nil
        )
    }

    func item(_ name: String, _ call: KeyVaultAPI.Call, versioned: Bool) -> SecretItemJSON {
        SecretItemJSON(
            id: "\(call.baseURL)/secrets/\(name)" + (versioned ? "/\(version)" : ""),
            attributes: WireAttributes(attributes),
            tags: tags,
            contentType: contentType,
            managed: managed ? true : nil
        )
    }
}

extension KeyVersion: ServedVersion {
    func bundle(_ name: String, _ call: KeyVaultAPI.Call) -> KeyBundleJSON {
        var jwk = publicKey
        jwk.kid = "\(call.baseURL)/keys/\(name)/\(version)"
        jwk.key_ops = keyOperations
        return KeyBundleJSON(
            key: jwk,
            attributes: WireAttributes(attributes, exportable: exportable),
            tags: tags,
            managed: managed ? true : nil
        )
    }

    func item(_ name: String, _ call: KeyVaultAPI.Call, versioned: Bool) -> KeyItemJSON {
        KeyItemJSON(
            kid: "\(call.baseURL)/keys/\(name)" + (versioned ? "/\(version)" : ""),
            attributes: WireAttributes(attributes, exportable: exportable),
            tags: tags,
            managed: managed ? true : nil
        )
    }
}

extension CertificateVersion: ServedVersion {
    func bundle(_ name: String, _ call: KeyVaultAPI.Call) -> CertificateBundleJSON {
        bundle(name, call, includePolicy: true)
    }

    func bundle(_ name: String, _ call: KeyVaultAPI.Call, includePolicy: Bool) -> CertificateBundleJSON {
        var policy: CertificatePolicy?
        if includePolicy {
            policy = self.policy
            policy?.id = "\(call.baseURL)/certificates/\(name)/policy"
        }
        return CertificateBundleJSON(
            id: "\(call.baseURL)/certificates/\(name)/\(version)",
            kid: "\(call.baseURL)/keys/\(name)/\(version)",
            sid: "\(call.baseURL)/secrets/\(name)/\(version)",
            x5t: Base64URL.encode(certificate.sha1Thumbprint),
            cer: Data(certificate.der).base64EncodedString(),
            attributes: WireAttributes(attributes),
            tags: tags,
            policy: policy,
            preserveCertOrder: preserveCertOrder
        )
    }

    func item(_ name: String, _ call: KeyVaultAPI.Call, versioned: Bool) -> CertificateItemJSON {
        CertificateItemJSON(
            id: "\(call.baseURL)/certificates/\(name)" + (versioned ? "/\(version)" : ""),
            attributes: WireAttributes(attributes),
            tags: tags,
            x5t: Base64URL.encode(certificate.sha1Thumbprint)
        )
    }
}

/// `maxresults` and `$skiptoken` of a list request, and the absolute nextLink that continues it.
/// A `$skiptoken` is `after:<last>` or, once an empty page has been answered in its place,
/// `next:<last>`.
struct Paging {
    static let maximumPageSize = 25

    var limit: Int
    /// The last name (or version) already returned; nil on the first page.
    var after: String?
    /// This request gets an empty page whose nextLink asks for the real one.
    var answerEmpty: Bool

    init(_ query: [String: String], emptyFirstPage: Bool, emptyMiddlePages: Bool = false) throws(KeyVaultFailure) {
        if let text = query["maxresults"] {
            guard let value = Int(text), (1...Self.maximumPageSize).contains(value) else {
                throw .badParameter(
                    "Invalid maxresults '\(text)': it must be an integer from 1 to \(Self.maximumPageSize).")
            }
            limit = value
        } else {
            limit = Self.maximumPageSize
        }
        if let token = query["$skiptoken"] {
            guard let bytes = Base64URL.decode(token), let text = String(validating: bytes, as: UTF8.self) else {
                throw Self.badToken
            }
            if text.hasPrefix("after:") {
                after = String(text.dropFirst("after:".count)).lowercased()
                answerEmpty = emptyMiddlePages
            } else if text.hasPrefix("next:") {
                after = String(text.dropFirst("next:".count)).lowercased()
                answerEmpty = false
            } else {
                throw Self.badToken
            }
        } else {
            after = nil
            answerEmpty = emptyFirstPage
        }
    }

    private static let badToken = KeyVaultFailure.badParameter(
        "Invalid $skiptoken: use the nextLink of the previous page unchanged.")

    func nextLink(_ call: KeyVaultAPI.Call, after last: String?) -> String {
        link(call, token: "after:\(last ?? "")")
    }

    /// A page of `items`, linking to the next when there are more after `last`.
    func page(_ items: [some Encodable], _ call: KeyVaultAPI.Call, hasMore: Bool, after last: String?) -> Response {
        .page(PageJSON(value: items, nextLink: hasMore ? nextLink(call, after: last) : nil))
    }

    /// The empty page this request gets instead of its items, if it gets one.
    func emptyPage(_ call: KeyVaultAPI.Call) -> Response? {
        guard answerEmpty else { return nil }
        return .page(PageJSON<SecretItemJSON>(value: [], nextLink: link(call, token: "next:\(after ?? "")")))
    }

    private func link(_ call: KeyVaultAPI.Call, token: String) -> String {
        "\(call.baseURL)\(call.request.path)?api-version=\(call.apiVersion)&$skiptoken=\(Base64URL.encode(Array(token.utf8)))&maxresults=\(limit)"
    }
}
