import FoundationEssentials
import KeyVault

/// Turns a CSI NodePublishVolume request into a validated `VolumeRequest` before any network call.
///
/// Two ways to call `parse`:
/// - with a SecretProviderClass: `parameters` = its `spec.parameters`, `podAttributes` = kubelet's volume_context
///   (pod info, service-account tokens, the pod's `volumeAttributes` such as `secretProviderClass`);
/// - without one (the parameters written directly as the pod's `volumeAttributes`): `parameters` = volume_context,
///   `podAttributes` = `[:]` (or the volume_context without the SecretProviderClass parameter keys).
///
/// Kubelet's keys (`csi.storage.k8s.io/…`) are read from `podAttributes` first, then `parameters`; service-account
/// tokens from `secrets` first (serviceAccountTokenInSecrets), then `podAttributes`, then `parameters`.
/// Unlike the Azure provider, `podAttributes` never override SecretProviderClass parameters: a parameter key there
/// is an error (docs/secretproviderclass.md, Stricter: pod volumeAttributes).
///
/// Unknown keys are errors so typos do not pass silently (docs/secretproviderclass.md, Stricter: unknown parameters);
/// `ignoredLegacyKeys` are accepted and ignored because old manifests carry them, and any `csi.storage.k8s.io/` key
/// is kubelet's and accepted.
public enum SecretProviderClassParser {
    /// The SecretProviderClass parameters akvfs reads (the Azure provider's names).
    public static let parameterKeys = [
        "keyvaultName", "tenantID", "tenantId", "cloudName", "cloudEnvFileName", "clientID", "usePodIdentity",
        "useVMManagedIdentity", "userAssignedIdentityID", "useAzureTokenProxy", "objects",
    ]
    /// Accepted and ignored: old manifests still carry them, and the provider ignores them.
    public static let ignoredLegacyKeys = ["resourceGroup", "subscriptionId"]
    /// The pod's own volumeAttributes next to kubelet's keys: the SecretProviderClass's name, the driver's provider name.
    public static let volumeAttributeKeys = ["secretProviderClass", "providerName"] + ownerKeys
    /// akvfs's own volumeAttributes: the numeric owner of the volume's files (the pod's runAsUser, runAsGroup).
    public static let ownerKeys = ["uid", "gid"]
    /// Prefix of the keys kubelet puts into volume_context (and of the token key in secrets).
    public static let kubeletKeyPrefix = "csi.storage.k8s.io/"
    public static let serviceAccountTokensKey = "csi.storage.k8s.io/serviceAccount.tokens"
    /// The audience whose token workload identity exchanges (the CSIDriver's tokenRequests must list it).
    public static let workloadIdentityAudience = "api://AzureADTokenExchange"

    static let podNameKey = "csi.storage.k8s.io/pod.name"
    static let podNamespaceKey = "csi.storage.k8s.io/pod.namespace"
    static let podUIDKey = "csi.storage.k8s.io/pod.uid"
    static let serviceAccountNameKey = "csi.storage.k8s.io/serviceAccount.name"

    /// Kubelet's description of the pod is checked like the rest: these values end up in logs,
    /// messages and identity keys, so a request cannot smuggle line breaks or lookalikes in.
    static func checkPodInfo(name: String, namespace: String, uid: String?, serviceAccount: String?) throws(VolumeError)
    {
        guard isDNSSubdomain(name) else {
            throw .invalidArgument(
                "pod name \(MessageText.quoted(name)) is not a Kubernetes object name (lower-case letters, digits, '-' and '.', at most 253)"
            )
        }
        guard isDNSLabel(namespace) else {
            throw .invalidArgument(
                "pod namespace \(MessageText.quoted(namespace)) is not a Kubernetes namespace name (lower-case letters, digits and '-', at most 63)"
            )
        }
        if let serviceAccount, !isDNSSubdomain(serviceAccount) {
            throw .invalidArgument(
                "service account name \(MessageText.quoted(serviceAccount)) is not a Kubernetes object name (lower-case letters, digits, '-' and '.', at most 253)"
            )
        }
        if let uid,
            uid.utf8.count > 128
                || !uid.utf8.allSatisfy({ isLowerAlphanumeric($0) || (0x41...0x5A).contains($0) || $0 == 0x2D })
        {
            throw .invalidArgument(
                "pod uid \(MessageText.quoted(uid)) is not a Kubernetes UID (letters, digits and '-')")
        }
    }

    private static func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
        (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte)
    }

    /// RFC 1123 label, as Kubernetes checks namespace names.
    static func isDNSLabel(_ text: String) -> Bool {
        text.utf8.count <= 63 && isLabel(Substring(text))
    }

    /// RFC 1123 subdomain, as Kubernetes checks most object names (its labels are not limited to 63).
    static func isDNSSubdomain(_ text: String) -> Bool {
        text.utf8.count <= 253 && text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy(isLabel)
    }

    private static func isLabel(_ text: Substring) -> Bool {
        guard let first = text.utf8.first, let last = text.utf8.last else { return false }
        return isLowerAlphanumeric(first) && isLowerAlphanumeric(last)
            && text.utf8.allSatisfy { isLowerAlphanumeric($0) || $0 == 0x2D }
    }

    public static func parse(
        parameters: [String: String], podAttributes: [String: String], secrets: [String: String], options: ParserOptions
    ) throws(VolumeError) -> VolumeRequest {
        let parameters = parameters.mapValues(\.trimmed)
        let podAttributes = podAttributes.mapValues(\.trimmed)
        func kubeletValue(_ key: String) -> String? { nonEmpty(podAttributes[key]) ?? nonEmpty(parameters[key]) }
        func parameter(_ key: String) -> String { parameters[key] ?? "" }

        guard let podName = kubeletValue(podNameKey) else {
            throw .invalidArgument("pod name is not provided: the CSIDriver object must set podInfoOnMount: true")
        }
        guard let podNamespace = kubeletValue(podNamespaceKey) else {
            throw .invalidArgument("pod namespace is not provided: the CSIDriver object must set podInfoOnMount: true")
        }
        try checkPodInfo(
            name: podName, namespace: podNamespace, uid: kubeletValue(podUIDKey),
            serviceAccount: kubeletValue(serviceAccountNameKey))
        let secretProviderClass =
            nonEmpty(podAttributes["secretProviderClass"]) ?? nonEmpty(parameters["secretProviderClass"])
        try checkKeys(parameters: parameters, podAttributes: podAttributes, secretProviderClass: secretProviderClass)

        // Checked above: parameters hold uid and gid only when they are the volume's attributes.
        let uid = try ownerID("uid", podAttributes["uid"] ?? parameters["uid"])
        let gid = try ownerID("gid", podAttributes["gid"] ?? parameters["gid"])

        let usePodIdentity = try flag("usePodIdentity", parameter("usePodIdentity"))
        let useVMManagedIdentity = try flag("useVMManagedIdentity", parameter("useVMManagedIdentity"))
        let useAzureTokenProxy = try flag("useAzureTokenProxy", parameter("useAzureTokenProxy"))
        guard [usePodIdentity, useVMManagedIdentity, useAzureTokenProxy].filter({ $0 }).count <= 1 else {
            throw .invalidArgument(
                "only one identity mode can be enabled at a time: usePodIdentity, useVMManagedIdentity, or useAzureTokenProxy"
            )
        }

        let keyVaultName = parameter("keyvaultName")
        guard !keyVaultName.isEmpty else {
            throw .invalidArgument("keyvaultName is not provided: set it to the name of the Key Vault")
        }
        try checkVaultName(keyVaultName)

        let tenantId = nonEmpty(parameters["tenantID"]) ?? parameter("tenantId")
        guard !tenantId.isEmpty else {
            throw .invalidArgument(
                "tenantId is not provided: set tenantId to the directory (tenant) ID of the Key Vault")
        }
        try checkTenant(tenantId)

        let cloudName = nonEmpty(parameters["cloudName"])
        let cloudEnvironmentFile = nonEmpty(parameters["cloudEnvFileName"])
        try checkCloud(name: cloudName, environmentFile: cloudEnvironmentFile)

        let identity: VolumeIdentity
        if usePodIdentity {
            throw .invalidArgument(
                "usePodIdentity is not supported: AAD pod identity is deprecated and akvfs does not implement it; "
                    + "use workload identity: set clientID to the identity's client ID and add the audience "
                    + "\(workloadIdentityAudience) to the CSIDriver's tokenRequests")
        } else if useAzureTokenProxy {
            throw .invalidArgument(
                "identity binding (useAzureTokenProxy) is not supported by akvfs; use workload identity")
        } else if useVMManagedIdentity {
            guard options.allowNodeManagedIdentity else {
                throw VolumeError(
                    .failedPrecondition,
                    "useVMManagedIdentity is not allowed on this cluster: with it any pod on the node could read what the node's "
                        + "managed identity can read (Azure provider issue #837). Use workload identity (clientID) instead; or, to allow it, "
                        + "a cluster operator sets AKVFS_ALLOW_NODE_IDENTITY to \"true\" in the akvfs container of the akvfs-csi DaemonSet "
                        + "(kube-system; or starts akvfs csi with --allow-node-identity)")
            }
            let clientId = nonEmpty(parameters["userAssignedIdentityID"])
            if let clientId { try checkClientID(clientId, parameter: "userAssignedIdentityID") }
            identity = .nodeManagedIdentity(clientId: clientId)
        } else if let clientId = nonEmpty(parameters["clientID"]) {
            try checkClientID(clientId, parameter: "clientID")
            let tokens = nonEmpty(secrets[serviceAccountTokensKey]?.trimmed) ?? kubeletValue(serviceAccountTokensKey)
            let token = try workloadIdentityToken(tokens)
            identity = .workloadIdentity(
                clientId: clientId, serviceAccountToken: token.token, tokenExpiration: token.expiration)
        } else {
            identity = try servicePrincipal(
                secrets: secrets, userAssignedIdentityID: nonEmpty(parameters["userAssignedIdentityID"]))
        }

        let objectsText = parameter("objects")
        guard !objectsText.isEmpty else {
            throw .invalidArgument(
                "objects is not set: list the Key Vault objects to mount in the objects parameter, a YAML map whose key "
                    + "array holds one \"- |\" item per object")
        }
        let objects = try ObjectsParser.parse(objectsText, options: options)

        let request = VolumeRequest(
            podName: podName, podNamespace: podNamespace, podUID: kubeletValue(podUIDKey),
            serviceAccountName: kubeletValue(serviceAccountNameKey), keyVaultName: keyVaultName, tenantId: tenantId,
            cloudName: cloudName, cloudEnvironmentFile: cloudEnvironmentFile, identity: identity, objects: objects,
            secretProviderClass: secretProviderClass, uid: uid, gid: gid)
        // Checked before any call: every file is a fetch and stays in memory while published.
        guard request.fileCountAtMost <= options.maxFilesPerVolume else {
            throw .invalidArgument(
                "the volume asks for \(request.fileCountAtMost) files (\(objects.count) objects, each version of an objectVersionHistory "
                    + "a file); the plugin serves at most \(options.maxFilesPerVolume) per volume (--max-objects-per-volume): split "
                    + "the objects over several SecretProviderClasses and volumes, or raise the limit")
        }
        return request
    }

    // MARK: - Keys

    private static func checkKeys(
        parameters: [String: String], podAttributes: [String: String], secretProviderClass: String?
    ) throws(VolumeError) {
        let overriding = podAttributes.keys.filter { parameterKeys.contains($0) }.sorted()
        if !overriding.isEmpty {
            let target = secretProviderClass.map { "the SecretProviderClass \($0)" } ?? "the SecretProviderClass"
            throw .invalidArgument(
                "volumeAttributes may not set \(overriding.joined(separator: ", ")): pod volumeAttributes never override "
                    + "SecretProviderClass parameters; set \(overriding.count == 1 ? "it" : "them") in \(target)")
        }
        // A class's parameters are shared by every pod that names it; who owns a pod's files is
        // that pod's choice (volumeAttributes or fsGroup), never the class's.
        let ownerInClass = ownerKeys.filter { parameters[$0] != nil }
        if let secretProviderClass = nonEmpty(podAttributes["secretProviderClass"]), !ownerInClass.isEmpty {
            let keys = ownerInClass.joined(separator: " and ")
            throw .invalidArgument(
                "the SecretProviderClass \(secretProviderClass) sets \(keys) in its parameters: the files' owner is "
                    + "chosen by each pod, with \(keys) in its volumeAttributes or its fsGroup; remove \(keys) from the class"
            )
        }
        let known = parameterKeys + ignoredLegacyKeys + volumeAttributeKeys
        func unknown(_ keys: Dictionary<String, String>.Keys) -> [String] {
            keys.filter { !known.contains($0) && !$0.hasPrefix(kubeletKeyPrefix) }.sorted()
        }
        let unknownParameters = unknown(parameters.keys)
        if !unknownParameters.isEmpty {
            let named = unknownParameters.map { "\($0)\(MessageText.didYouMean($0, among: parameterKeys))" }
            throw .invalidArgument(
                "unknown parameter\(named.count == 1 ? "" : "s") \(named.joined(separator: ", ")): akvfs rejects unknown "
                    + "parameters so that typos do not pass silently; the parameters are \(parameterKeys.joined(separator: ", ")); "
                    + "\(ignoredLegacyKeys.joined(separator: " and ")) are accepted and ignored")
        }
        let unknownAttributes = unknown(podAttributes.keys)
        if !unknownAttributes.isEmpty {
            let named = unknownAttributes.map {
                "\($0)\(MessageText.didYouMean($0, among: volumeAttributeKeys + parameterKeys))"
            }
            throw .invalidArgument(
                "unknown volumeAttributes key\(named.count == 1 ? "" : "s") \(named.joined(separator: ", ")): a pod's "
                    + "volumeAttributes name the SecretProviderClass (secretProviderClass, providerName) and the files' "
                    + "owner (uid, gid); all other settings belong in the SecretProviderClass's parameters")
        }
    }

    // MARK: - Values

    private static func nonEmpty(_ value: String?) -> String? {
        guard let value, !value.isEmpty else { return nil }
        return value
    }

    /// A numeric user or group ID; names cannot be resolved because the pod's /etc/passwd is not the node's.
    static func ownerID(_ key: String, _ value: String?) throws(VolumeError) -> UInt32? {
        guard let value = nonEmpty(value) else { return nil }
        guard value.allSatisfy(\.isASCII), let id = UInt32(value), id < UInt32.max else {
            let what = key == "uid" ? "user" : "group"
            throw .invalidArgument(
                "\(key) \(MessageText.quoted(value)) is not valid: use the numeric \(what) ID that should own the volume's files "
                    + "(0 to 4294967294), e.g. the pod's \(key == "uid" ? "runAsUser" : "runAsGroup")")
        }
        return id
    }

    /// Go's strconv.ParseBool, which the provider uses; "" is false.
    static func flag(_ name: String, _ value: String) throws(VolumeError) -> Bool {
        switch value {
        case "", "0", "f", "F", "false", "FALSE", "False": return false
        case "1", "t", "T", "true", "TRUE", "True": return true
        default:
            throw .invalidArgument(
                "failed to parse \(name) flag, error: strconv.ParseBool: parsing \(MessageText.quoted(value)): invalid syntax "
                    + "(use \"true\" or \"false\")")
        }
    }

    static let vaultNameRule =
        "Key Vault names are 3-24 characters of letters, digits and '-', start with a letter, end with a letter or digit, "
        + "and have no '--'"

    /// Key Vault's own naming rules, stricter than the provider's 3-24 `[-a-zA-Z0-9]`, so a wrong name fails here
    /// and not at DNS lookup (docs/secretproviderclass.md, Stricter: vault names).
    static func checkVaultName(_ name: String) throws(VolumeError) {
        let prefix = "failed to get vault: Invalid vault name: \(MessageText.quoted(name)), "
        let hint =
            name.contains(".") || name.contains("/")
            ? "; keyvaultName is the vault's name (e.g. contoso-kv), not its URL or host name" : ""
        let characters = Array(name)
        guard (3...24).contains(characters.count) else {
            throw .invalidArgument(prefix + "must be between 3 and 24 chars (\(vaultNameRule))\(hint)")
        }
        guard characters.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
            throw .invalidArgument(prefix + "must match [-a-zA-Z0-9]{3,24} (\(vaultNameRule))\(hint)")
        }
        guard characters[0].isLetter else {
            throw .invalidArgument(prefix + "must start with a letter (\(vaultNameRule))")
        }
        guard characters[characters.count - 1] != "-" else {
            throw .invalidArgument(prefix + "must end with a letter or digit (\(vaultNameRule))")
        }
        guard !name.contains("--") else { throw .invalidArgument(prefix + "must not contain '--' (\(vaultNameRule))") }
    }

    /// The tenant goes into the authority URL's path, so only what a tenant ID or domain can hold passes.
    static func checkTenant(_ tenant: String) throws(VolumeError) {
        guard tenant.count <= 256,
            tenant.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") })
        else {
            throw .invalidArgument(
                "tenantId \(MessageText.quoted(tenant)) is not valid: use the directory (tenant) ID, a GUID, or a verified "
                    + "domain such as contoso.onmicrosoft.com (\"adfs\" for AD FS)")
        }
    }

    static func isGUID(_ text: String) -> Bool {
        let groups = text.split(separator: "-", omittingEmptySubsequences: false)
        return groups.map(\.count) == [8, 4, 4, 4, 12] && groups.allSatisfy { $0.allSatisfy(\.isHexDigit) }
    }

    private static func checkClientID(_ clientId: String, parameter: String) throws(VolumeError) {
        guard isGUID(clientId) else {
            throw .invalidArgument(
                "\(parameter) \(MessageText.quoted(clientId)) is not valid: it must be the client (application) ID of the "
                    + "identity, a GUID like 00000000-0000-0000-0000-000000000000")
        }
    }

    static let cloudNames = AzureCloud.named.map(\.name) + [AzureCloud.stackCloudName]

    private static func checkCloud(name: String?, environmentFile: String?) throws(VolumeError) {
        let isStack = name?.lowercased() == AzureCloud.stackCloudName.lowercased()
        if let name, !cloudNames.contains(where: { $0.lowercased() == name.lowercased() }) {
            throw .invalidArgument(
                "cloudName \(name) is not valid, error: there is no cloud environment matching the name "
                    + "\(MessageText.quoted(name)); use one of \(cloudNames.joined(separator: ", ")) (case-insensitive), "
                    + "or leave it empty for the plugin's --cloud (AzurePublicCloud unless set)")
        }
        if isStack {
            guard let environmentFile else {
                throw .invalidArgument(
                    "cloudName \(AzureCloud.stackCloudName) is not valid, error: cloudEnvFileName is not set; "
                        + "AzureStackCloud needs the path of a JSON file on the node with keyVaultDNSSuffix, keyVaultEndpoint "
                        + "and activeDirectoryEndpoint")
            }
            guard environmentFile.hasPrefix("/"), !environmentFile.contains("\0") else {
                throw .invalidArgument(
                    "cloudEnvFileName \(MessageText.quoted(environmentFile)) is not valid: it must be an absolute path of a file on the node"
                )
            }
        } else if environmentFile != nil {
            throw .invalidArgument(
                "cloudEnvFileName is only used with cloudName \(AzureCloud.stackCloudName), not "
                    + "\(name ?? "the plugin's --cloud"): remove it, or set cloudName: \(AzureCloud.stackCloudName)"
            )
        }
    }

    // MARK: - Credentials

    private static let workloadIdentityPrefix =
        "failed to build auth config for mode None: failed to parse workload identity tokens, error: "

    /// The token for `workloadIdentityAudience` from kubelet's `{"<audience>":{"token":…,"expirationTimestamp":…}}`.
    /// Messages never contain the JSON: it is all token.
    static func workloadIdentityToken(_ json: String?) throws(VolumeError) -> (token: String, expiration: String?) {
        struct Entry: Decodable {
            var token: String
            var expirationTimestamp: String?
        }
        let tokenRequestHint =
            "add the audience \(workloadIdentityAudience) to the CSIDriver's spec.tokenRequests (and keep podInfoOnMount: true)"
        guard let json else {
            throw .unauthenticated(workloadIdentityPrefix + "service account tokens not found: \(tokenRequestHint)")
        }
        let entries: [String: Entry]
        do {
            entries = try JSONDecoder().decode([String: Entry].self, from: Data(json.utf8))
        } catch let error as DecodingError {
            throw .unauthenticated(
                workloadIdentityPrefix + "failed to unmarshal service account tokens, error: \(shape(of: error))")
        } catch {
            throw .unauthenticated(
                workloadIdentityPrefix + "failed to unmarshal service account tokens, error: not valid JSON")
        }
        guard let entry = entries[workloadIdentityAudience] else {
            // Audiences are URIs chosen by the cluster operator; anything that looks like a token is left out.
            let audiences = entries.keys.filter { $0.count <= 128 && !$0.hasPrefix("eyJ") }.sorted()
            let present = audiences.isEmpty ? "" : " (tokens present for \(audiences.joined(separator: ", ")))"
            throw .unauthenticated(
                workloadIdentityPrefix
                    + "token for audience \(workloadIdentityAudience) not found\(present): \(tokenRequestHint)")
        }
        let token = entry.token.trimmed
        guard !token.isEmpty else {
            throw .unauthenticated(workloadIdentityPrefix + "token for audience \(workloadIdentityAudience) is empty")
        }
        return (token, entry.expirationTimestamp.flatMap { nonEmpty($0.trimmed) })
    }

    /// Where the JSON went wrong, in words that cannot contain any of its text.
    private static func shape(of error: DecodingError) -> String {
        let expected = #"expected {"\#(workloadIdentityAudience)":{"token":"…","expirationTimestamp":"…"}}"#
        switch error {
        case .dataCorrupted(let context) where context.codingPath.isEmpty:
            return "not valid JSON; \(expected)"
        case .keyNotFound(let key, _) where key.stringValue == "token":
            return "an audience entry has no \"token\"; \(expected)"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            let field = context.codingPath.last?.stringValue
            return field == "token" || field == "expirationTimestamp"
                ? "\"\(field ?? "")\" of an audience entry is not a string; \(expected)"
                : "not an object of audience entries; \(expected)"
        case .keyNotFound:
            return "an audience entry is incomplete; \(expected)"
        @unknown default:
            return expected
        }
    }

    /// The provider's service-principal mode: `clientid` and `clientsecret` from nodePublishSecretRef, keys in any case.
    private static func servicePrincipal(secrets: [String: String], userAssignedIdentityID: String?) throws(VolumeError)
        -> VolumeIdentity
    {
        let credentials = secrets.filter { $0.key != serviceAccountTokensKey }
        let modeHint =
            "without clientID the identity is a service principal from the pod's nodePublishSecretRef (keys clientid, clientsecret); "
            + "for workload identity set clientID"
            + (userAssignedIdentityID == nil
                ? "" : "; userAssignedIdentityID is only used with useVMManagedIdentity: \"true\"")
        guard !credentials.isEmpty else {
            throw .unauthenticated("failed to get credentials, nodePublishSecretRef secret is not set: \(modeHint)")
        }
        func value(_ key: String) -> String? {
            if let exact = nonEmpty(credentials[key]?.trimmed) { return exact }
            let matching = credentials.keys.filter { $0.lowercased() == key }.sorted()
            return matching.lazy.compactMap { nonEmpty(credentials[$0]?.trimmed) }.first
        }
        guard let clientId = value("clientid") else {
            throw .unauthenticated("could not find clientid in secrets: \(modeHint)")
        }
        guard let clientSecret = value("clientsecret") else {
            throw .unauthenticated("could not find clientsecret in secrets: \(modeHint)")
        }
        guard isGUID(clientId) else {
            throw .unauthenticated(
                "clientid in secrets is not valid: it must be the service principal's client (application) ID, a GUID")
        }
        return .servicePrincipal(clientId: clientId, clientSecret: clientSecret)
    }
}
