/// A SecretProviderClass's `spec.secretObjects` entry: a Kubernetes Secret in the pod's namespace
/// filled from the volume's files, as the Secrets Store CSI driver syncs it.
public struct SecretObject: Sendable, Equatable, Codable {
    public struct DataEntry: Sendable, Equatable, Codable {
        /// The file it is filled from: an object's alias or name (`<alias>/0` in a version history).
        public var objectName: String
        /// The Secret's data key.
        public var key: String

        public init(objectName: String, key: String) {
            self.objectName = objectName
            self.key = key
        }
    }

    public var secretName: String
    public var type: String
    public var labels: [String: String]
    public var annotations: [String: String]
    public var data: [DataEntry]

    public init(
        secretName: String, type: String, labels: [String: String] = [:], annotations: [String: String] = [:],
        data: [DataEntry]
    ) {
        self.secretName = secretName
        self.type = type
        self.labels = labels
        self.annotations = annotations
        self.data = data
    }

    public static let tlsType = "kubernetes.io/tls"
    /// The label the driver puts on every Secret it syncs; akvfs puts it there too.
    public static let managedLabel = "secrets-store.csi.k8s.io/managed"

    /// Checks the entries against the volume's files (paths joined with "/"), as the API server
    /// and the driver would, so that a bad entry fails the publish before any Secret is written.
    /// `reference` names the SecretProviderClass in messages.
    public static func validate(_ objects: [SecretObject], files: Set<String>, reference: String) throws(VolumeError) {
        var names: Set<String> = []
        for (index, object) in objects.enumerated() {
            let at = "secretObjects[\(index)] of secretproviderclass \(reference)"
            func invalid(_ detail: String) -> VolumeError { VolumeError(.invalidArgument, "\(at): \(detail)") }
            guard !object.secretName.isEmpty else {
                throw invalid("secretName is empty; name the Kubernetes Secret to create")
            }
            guard isSubdomain(object.secretName) else {
                throw invalid(
                    "secretName \(MessageText.quoted(object.secretName)) is not a valid Secret name: lower-case letters, digits, '-' and '.', "
                        + "starting and ending with a letter or digit, at most 253 characters")
            }
            guard names.insert(object.secretName).inserted else {
                throw invalid("secretName \(object.secretName) appears twice; each Secret is described once")
            }
            guard !object.type.isEmpty else {
                throw invalid(
                    "type is empty; set it to Opaque, kubernetes.io/tls, kubernetes.io/dockerconfigjson, kubernetes.io/basic-auth, …"
                )
            }
            guard isSecretType(object.type) else {
                throw invalid(
                    "type \(MessageText.quoted(object.type)) is not a Secret type: letters, digits, '-', '_', '.' and '/', at most 253 characters "
                        + "(Opaque, kubernetes.io/tls, kubernetes.io/dockerconfigjson, kubernetes.io/basic-auth, …)")
            }
            guard object.type != "kubernetes.io/service-account-token" else {
                throw invalid(
                    "type kubernetes.io/service-account-token is for tokens Kubernetes issues; it cannot be filled from Key Vault"
                )
            }
            guard !object.data.isEmpty else {
                throw invalid("data is empty; list the keys to fill, each with an objectName")
            }
            var keys: Set<String> = []
            for entry in object.data {
                guard !entry.key.isEmpty else { throw invalid("a data entry's key is empty") }
                guard isDataKey(entry.key) else {
                    throw invalid(
                        "data key \(MessageText.quoted(entry.key)) is not a valid Secret key: letters, digits, '-', '_' and '.', at most 253 characters"
                    )
                }
                guard keys.insert(entry.key).inserted else { throw invalid("data key \(entry.key) appears twice") }
                guard !entry.objectName.isEmpty else { throw invalid("data key \(entry.key) has an empty objectName") }
                guard files.contains(entry.objectName) else {
                    throw invalid(
                        "data key \(entry.key) names objectName \(MessageText.quoted(entry.objectName)), which this volume does not mount; "
                            + "use an object's objectAlias, or its objectName when it has no alias (mounted: "
                            + "\(files.sorted().prefix(10).joined(separator: ", "))\(files.count > 10 ? ", …" : ""))")
                }
                if object.type == tlsType, entry.key != "tls.crt", entry.key != "tls.key" {
                    throw invalid(
                        "data key \(entry.key) is not allowed in a kubernetes.io/tls Secret: only tls.crt and tls.key")
                }
            }
            let required: [String] =
                switch object.type {
                case tlsType: ["tls.crt", "tls.key"]
                case "kubernetes.io/dockerconfigjson": [".dockerconfigjson"]
                case "kubernetes.io/dockercfg": [".dockercfg"]
                case "kubernetes.io/ssh-auth": ["ssh-privatekey"]
                default: []
                }
            for key in required where !keys.contains(key) {
                throw invalid("a \(object.type) Secret needs the data key \(key); add it")
            }
            if object.type == "kubernetes.io/basic-auth", !keys.contains("username"), !keys.contains("password") {
                throw invalid("a kubernetes.io/basic-auth Secret needs the data key username or password; add one")
            }
            for (key, value) in object.labels {
                guard isQualifiedName(key) else {
                    throw invalid(
                        "label key \(MessageText.quoted(key)) is not valid: an optional DNS prefix and '/', then a name of at most 63 characters"
                    )
                }
                guard isLabelValue(value) else {
                    throw invalid(
                        "label \(key)'s value \(MessageText.quoted(value)) is not valid: at most 63 letters, digits, '-', '_' and '.', "
                            + "starting and ending with a letter or digit")
                }
            }
            for key in object.annotations.keys where !isQualifiedName(key) {
                throw invalid(
                    "annotation key \(MessageText.quoted(key)) is not valid: an optional DNS prefix and '/', then a name of at most 63 characters"
                )
            }
        }
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39)
    }

    static func isSubdomain(_ text: String) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 253 else { return false }
        return text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            let bytes = Array(label.utf8)
            guard let first = bytes.first, let last = bytes.last, bytes.count <= 63 else { return false }
            let lower = { (byte: UInt8) in (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39) }
            return lower(first) && lower(last) && bytes.allSatisfy { lower($0) || $0 == 0x2D }
        }
    }

    private static func isSecretType(_ text: String) -> Bool {
        text.utf8.count <= 253
            && text.utf8.allSatisfy { isAlphanumeric($0) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E || $0 == 0x2F }
    }

    static func isDataKey(_ text: String) -> Bool {
        text.utf8.count <= 253 && text != "." && text != ".."
            && text.utf8.allSatisfy { isAlphanumeric($0) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E }
    }

    /// A label or annotation key: `[prefix/]name`.
    private static func isQualifiedName(_ text: String) -> Bool {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let name = parts.last else { return false }
        if parts.count == 2, !isSubdomain(String(parts[0])) { return false }
        let bytes = Array(name.utf8)
        guard let first = bytes.first, let last = bytes.last, bytes.count <= 63 else { return false }
        return isAlphanumeric(first) && isAlphanumeric(last)
            && bytes.allSatisfy { isAlphanumeric($0) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E }
    }

    private static func isLabelValue(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, let last = bytes.last else { return true }
        return bytes.count <= 63 && isAlphanumeric(first) && isAlphanumeric(last)
            && bytes.allSatisfy { isAlphanumeric($0) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E }
    }
}
