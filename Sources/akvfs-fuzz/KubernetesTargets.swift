import FoundationEssentials
import KeyVault
import ObjectFormats
import PKI
import SecretProviderClass

#if FuzzCSINode
    import CSINode
#endif

extension FuzzTarget {
    static let kubernetesTargets: [FuzzTarget] = {
        var targets = [
            FuzzTarget(
                name: "csi-parameters",
                summary: "NodePublishVolume parameters, volume attributes and secrets (CSIRequestText format)",
                run: { input throws(InvariantFailure) in try checkParse(CSIRequestText.parse(text(input))) }),
            FuzzTarget(
                name: "spc-objects",
                summary: "the objects YAML of a SecretProviderClass",
                run: { input throws(InvariantFailure) in
                    var request = CSIRequestText.servicePrincipalVolume
                    request.parameters["objects"] = text(input)
                    try checkParse(request)
                }),
            FuzzTarget(name: "jws", summary: "a compact JWS (service-account token)", run: checkJWS),
        ]
        #if FuzzCSINode
            targets += [
                FuzzTarget(
                    name: "spc-json", summary: "a SecretProviderClass object from the Kubernetes API (JSON)",
                    run: checkSecretProviderClassJSON),
                FuzzTarget(
                    name: "sa-tokens",
                    summary:
                        "kubelet's csi.storage.k8s.io/serviceAccount.tokens JSON, then its token's claims as the verifier checks them",
                    run: checkServiceAccountTokens),
                FuzzTarget(
                    name: "k8s-secret", summary: "a Secret from the Kubernetes API, as the Secret sync reads it",
                    run: checkStoredSecret),
            ]
        #endif
        return targets
    }()
}

// MARK: - CSI requests

/// What `SecretProviderClassParser.parse` takes, written as text that a fuzzer mutates well and a
/// person can read: `[parameters]`, `[attributes]` and `[secrets]` sections of `key=value` lines
/// (lines before any section are parameters); a line starting with `|` continues the previous
/// value on a new line (for `objects`); a `[allow-node-identity]` line turns that option on.
struct CSIRequestText {
    var parameters: [String: String] = [:]
    var attributes: [String: String] = [:]
    var secrets: [String: String] = [:]
    var options = ParserOptions()

    static func parse(_ text: String) -> CSIRequestText {
        var request = CSIRequestText()
        var section = \CSIRequestText.parameters
        var lastKey: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            switch line {
            case "[parameters]": (section, lastKey) = (\.parameters, nil)
            case "[attributes]": (section, lastKey) = (\.attributes, nil)
            case "[secrets]": (section, lastKey) = (\.secrets, nil)
            case "[allow-node-identity]": request.options.allowNodeManagedIdentity = true
            case _ where line.hasPrefix("|"):
                if let lastKey { request[keyPath: section][lastKey]? += "\n" + line.dropFirst() }
            default:
                guard let equals = line.firstIndex(of: "=") else { continue }
                let key = String(line[..<equals])
                request[keyPath: section][key] = String(line[line.index(after: equals)...])
                lastKey = key
            }
        }
        return request
    }

    /// A valid volume of the service-principal kind, for targets that fuzz one of its parts.
    static let servicePrincipalVolume = CSIRequestText(
        parameters: [
            "keyvaultName": "contoso-kv", "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "objects": "array:\n  - |\n    objectName: secret1\n    objectType: secret\n",
        ],
        attributes: [
            "csi.storage.k8s.io/pod.name": "web-0", "csi.storage.k8s.io/pod.namespace": "default",
            "secretProviderClass": "azure-kvname",
        ],
        secrets: ["clientid": "00000000-0000-0000-0000-000000000001", "clientsecret": "fuzz-client-secret-0123456789"])

    /// Node-publish secrets and service-account tokens: never to appear in a message.
    var secretValues: [String] {
        struct Entry: Decodable { var token: String? }
        let tokensKey = SecretProviderClassParser.serviceAccountTokensKey
        // The client ID comes with the secrets but is no secret: messages may name it.
        let isClientID = { (key: String) in key.lowercased() == "clientid" }
        var values = secrets.filter { !isClientID($0.key) && $0.key != tokensKey }.map(\.value)
        // The tokens in kubelet's JSON, not the JSON around them: the audiences it is keyed by are
        // the CSIDriver's, public, and named in messages.
        var audiences: [String] = []
        for map in [parameters, attributes, secrets] {
            guard let json = map[tokensKey],
                let entries = try? JSONDecoder().decode([String: Entry].self, from: Data(json.utf8))
            else { continue }
            values += entries.values.compactMap(\.token)
            audiences += entries.keys
        }
        // Short values turn up in messages by chance, and values the request also carries in the
        // open (a secret pasted into a parameter) may be quoted from there.
        let open =
            [parameters, attributes].flatMap { $0.filter { $0.key != tokensKey }.flatMap { [$0.key, $0.value] } }
            + secrets.keys + secrets.filter { isClientID($0.key) }.map(\.value) + audiences + [
                SecretProviderClassParser.workloadIdentityAudience
            ]
        return values.map { String($0.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed()) }
            .filter { value in value.utf8.count >= 24 && !open.contains { $0.contains(value) } }
    }
}

/// Parses `request` and checks whatever comes out.
private func checkParse(_ request: CSIRequestText) throws(InvariantFailure) {
    if let result = try parseKeepingSecrets(request) { try checkVolumeRequest(result, options: request.options) }
}

/// The parsed request, or nil when the parser refused it; either way no secret may show in what it says.
private func parseKeepingSecrets(_ request: CSIRequestText) throws(InvariantFailure) -> VolumeRequest? {
    let result: VolumeRequest
    do {
        result = try SecretProviderClassParser.parse(
            parameters: request.parameters, podAttributes: request.attributes, secrets: request.secrets,
            options: request.options)
    } catch {
        try requireNoSecret(in: error.message, request)
        return nil
    }
    try requireNoSecret(in: result.description, request)
    return result
}

private func requireNoSecret(in message: String, _ request: CSIRequestText) throws(InvariantFailure) {
    for secret in request.secretValues where message.contains(secret) {
        throw InvariantFailure(message: "a secret or token value appears in the message: \(message.prefix(300))")
    }
}

/// What a successful parse promises the rest of the plugin.
func checkVolumeRequest(_ request: VolumeRequest, options: ParserOptions) throws(InvariantFailure) {
    try require(
        VaultEndpoint.isValidName(request.keyVaultName),
        "keyvaultName '\(request.keyVaultName)' passed but KeyVault rejects it")
    if request.cloudName?.lowercased() != AzureCloud.stackCloudName.lowercased() {
        // (Azure Stack reads its environment file from the node, which this must not do.)
        let endpoint: VaultEndpoint
        do {
            endpoint = try request.vaultEndpoint()
        } catch {
            throw InvariantFailure(message: "a parsed request has no vault endpoint: \(error.message)")
        }
        try require(
            endpoint.name == request.keyVaultName.lowercased(), "the vault endpoint \(endpoint) does not name the vault"
        )
    }
    let paths = Set(request.objects.map(\.path))
    try require(paths.count == request.objects.count, "two objects write the same path")
    for object in request.objects {
        let name = "object \(object.name)"
        let validated = try? SecretProviderClassParser.validateFilePath(object.alias ?? object.name, options: options)
        try require(validated == object.path, "\(name): path \(object.path) is not its validated alias or name")
        try require(
            object.path.allSatisfy {
                !$0.isEmpty && !$0.hasPrefix("..") && $0 != "." && !$0.contains("/") && !$0.utf8.contains(0)
            },
            "\(name): unsafe path \(object.path)")
        for length in 1..<max(object.path.count, 1) {
            try require(!paths.contains(Array(object.path.prefix(length))), "\(name) is inside another object's file")
        }
        try require((object.permission ?? 0) <= 0o777, "\(name): file mode \(object.permission ?? 0) has special bits")
        try require(
            (0...SecretProviderClassParser.maxVersionHistory).contains(object.versionHistory),
            "\(name): history out of range")
        try require(
            object.type == .secret || (object.format == .pem && object.encoding == nil),
            "\(name): pfx or encoding on a \(object.type)")
        try require(
            object.version.map { !$0.isEmpty && $0.lowercased() != "latest" } ?? true,
            "\(name): 'latest' kept as a version")

        let versions: [(version: String, created: Int64?, enabled: Bool)] = [
            ("a1", 30, true), ("b2", nil, true), ("c3", 20, false), (object.version ?? "d4", 10, true),
        ]
        if let files = try? SecretProviderClassParser.expandHistory(object, versions: versions), !object.isSingleVersion
        {
            try require(!files.isEmpty && files.count <= object.versionHistory, "\(name): \(files.count) history files")
            for file in files {
                try require(
                    file.isSingleVersion && file.path.count == object.path.count + 1
                        && file.path.starts(with: object.path),
                    "\(name): history file \(file.path) is not one file inside \(object.path)")
            }
        }
    }
}

// MARK: - Service-account tokens

/// Test keys that signed nothing: no input may verify under them.
private let unrelatedKeys: [(PublicKey, SignatureAlgorithm)] = {
    guard let ec = try? PrivateKey.generate(.ec(.p256)), let rsa = try? PrivateKey.generate(.rsa(bits: 2048)) else {
        return []
    }
    return [(ec.publicKey, .es256), (rsa.publicKey, .rs256), (rsa.publicKey, .ps256)]
}()

@Sendable
private func checkJWS(_ input: [UInt8]) throws(InvariantFailure) {
    let compact = text(input)
    guard let jws = try? JWS(compact: compact) else { return }
    try require(!jws.headerJSON.isEmpty, "a JWS with an empty header passed")
    // The signature covers the first two parts exactly as received.
    let parts = compact.trimmingCharacters(in: [" ", "\t", "\r"]).split(
        separator: ".", omittingEmptySubsequences: false)
    try require(
        parts.count == 3 && jws.signingInput == Array("\(parts[0]).\(parts[1])".utf8),
        "signingInput is not the first two parts")
    // Canonical base64url of the decoded parts reads back the same.
    let canonical = [jws.headerJSON, jws.payloadJSON, jws.signature].map(Base64URL.encode).joined(separator: ".")
    guard let again = try? JWS(compact: canonical) else {
        throw InvariantFailure(message: "canonical re-encoding does not parse")
    }
    try require(
        again.headerJSON == jws.headerJSON && again.payloadJSON == jws.payloadJSON && again.signature == jws.signature,
        "canonical re-encoding reads back differently")
    for (key, algorithm) in unrelatedKeys {
        try require(
            !jws.verify(with: key, algorithm: algorithm),
            "a token verified under a key that signed nothing (\(algorithm))")
    }
}

extension StringProtocol {
    fileprivate func trimmingCharacters(in set: Set<Character>) -> String {
        String(drop(while: set.contains).reversed().drop(while: set.contains).reversed())
    }
}

#if FuzzCSINode
    /// kubelet's tokens JSON through the parser (workload identity), then the token through the
    /// checks the plugin makes before any key is needed: claims that pass name the pod's service
    /// account and a future expiry, and no refusal quotes the token.
    @Sendable
    private func checkServiceAccountTokens(_ input: [UInt8]) throws(InvariantFailure) {
        var request = CSIRequestText.servicePrincipalVolume
        request.parameters["clientID"] = "00000000-0000-0000-0000-000000000002"
        request.secrets = [SecretProviderClassParser.serviceAccountTokensKey: text(input)]
        guard let result = try parseKeepingSecrets(request) else { return }
        try checkVolumeRequest(result, options: request.options)
        guard case .workloadIdentity(_, let token, _) = result.identity else {
            throw InvariantFailure(message: "clientID with tokens did not give workload identity")
        }
        try require(!token.isEmpty, "an empty token was accepted")

        let pod = PodIdentity(
            namespace: result.podNamespace, name: result.podName, uid: result.podUID, serviceAccount: "reader")
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        let checked: Result<(subject: String, expiresAt: Date), TokenRefusal>
        do throws(TokenRefusal) {
            checked = .success(try ServiceAccountToken(token).checkClaims(pod: pod, now: now, skew: 60))
        } catch {
            checked = .failure(error)
        }
        switch checked {
        case .success(let (subject, expiresAt)):
            try require(
                subject == "system:serviceaccount:\(result.podNamespace):reader",
                "claims of \(subject) passed for the pod's reader")
            try require(expiresAt > now, "an expired token passed")
        case .failure(let refusal):
            try require(
                token.count < 16 || !refusal.reason.contains(token) && !refusal.check.contains(token),
                "a refusal quotes the token")
        }
    }

    /// A SecretProviderClass as the API server returns it: decoded, re-encoded, then parsed as the
    /// plugin parses a pod's volume of that class.
    @Sendable
    /// `StoredSecret` splits a Secret without decoding its data; what it accepts must be JSON that a
    /// whole decode reads the same, its data only base64 text.
    private func checkStoredSecret(_ input: [UInt8]) throws(InvariantFailure) {
        guard var stored = StoredSecret(json: input) else { return }
        defer { stored.wipe() }
        try require(stored.object["data"] == nil && stored.object["stringData"] == nil, "data left in the object")
        guard let whole = try? JSONDecoder().decode([String: JSONValue].self, from: Data(input)) else {
            throw InvariantFailure(message: "accepted what a whole JSON decode refuses")
        }
        var rest = whole
        rest["data"] = nil
        rest["stringData"] = nil
        try require(rest == stored.object, "the object differs from a whole decode's")
        let data = whole["data"]?.object ?? [:]
        try require(
            data.count == stored.data.count
                && data.allSatisfy { key, value in value.string.map { Array($0.utf8) } == stored.data[key] },
            "the data differs from a whole decode's")
        let alphabet = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=".utf8)
        try require(stored.data.values.allSatisfy { $0.allSatisfy(alphabet.contains) }, "data that is not base64 text")
    }

    private func checkSecretProviderClassJSON(_ input: [UInt8]) throws(InvariantFailure) {
        guard let object = try? SecretProviderClassReader.decode(input, namespace: "default", name: "azure-kvname")
        else { return }
        try require(
            SecretProviderClassReader.providers.contains(object.provider.lowercased()),
            "provider \(object.provider) accepted")
        try require(!object.parameters.isEmpty, "a class without parameters accepted")

        struct Document: Encodable {
            struct Spec: Encodable {
                var provider: String
                var parameters: [String: String]
                var secretObjects: [SecretObject]?
            }
            var spec: Spec
        }
        let document = Document(
            spec: .init(
                provider: object.provider, parameters: object.parameters,
                secretObjects: object.secretObjects.isEmpty ? nil : object.secretObjects))
        guard let encoded = try? JSONEncoder().encode(document) else {
            throw InvariantFailure(message: "the class does not re-encode")
        }
        let again = try? SecretProviderClassReader.decode(Array(encoded), namespace: "default", name: "azure-kvname")
        try require(again == object, "the re-encoded class reads back differently")

        var request = CSIRequestText.servicePrincipalVolume
        request.parameters = object.parameters
        try checkParse(request)
    }
#endif
