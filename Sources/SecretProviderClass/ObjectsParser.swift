import KeyVault
import ObjectFormats

extension SecretProviderClassParser {
    /// The fields of one object in `objects`; any other key is an error
    /// (docs/secretproviderclass.md, Stricter: unknown object fields).
    public static let objectFieldKeys = [
        "objectName", "objectAlias", "objectType", "objectVersion", "objectVersionHistory", "objectFormat",
        "objectEncoding",
        "filePermission",
    ]
    /// Largest objectVersionHistory: every version is a file and a list call per refresh; more than this is a mistake.
    public static let maxVersionHistory = 50
}

/// `objects`: a YAML map whose key `array` holds YAML strings, each a flat map of one object's fields
/// (docs/secretproviderclass.md, The objects parameter).
enum ObjectsParser {
    private static let unmarshalPrefix = "failed to yaml unmarshal objects, error: "

    static func parse(_ text: String, options: ParserOptions) throws(VolumeError) -> [VolumeObject] {
        let items = try arrayItems(text)
        guard !items.isEmpty else {
            throw .invalidArgument(
                "objects is empty: list at least one object under array:, each a YAML string (\"- |\") with objectName and objectType"
            )
        }
        var objects: [VolumeObject] = []
        for (index, item) in items.enumerated() {
            objects.append(try object(item, index: index, options: options))
        }
        try VolumePaths.checkConflicts(objects)
        return objects
    }

    private static func arrayItems(_ text: String) throws(VolumeError) -> [String] {
        let root: YAMLNode?
        do {
            root = try YAMLParser.parse(text)
        } catch {
            throw .invalidArgument(unmarshalPrefix + error.description)
        }
        guard let root, !root.isNull else { return [] }
        guard case .mapping(let mapping, _) = root else {
            throw .invalidArgument(
                unmarshalPrefix + "yaml: unmarshal errors: line \(root.line): cannot unmarshal \(root.kind) "
                    + "into the objects map: objects must be a map with the key array holding one YAML string per object "
                    + "(array: followed by \"- |\" items)")
        }
        var items: [String] = []
        for entry in mapping {
            let value = entry.value
            let name = entry.key.scalarText ?? entry.key.kind
            guard name == "array" else {
                throw .invalidArgument(
                    "objects has the unknown key \(MessageText.quoted(name))\(MessageText.didYouMean(name, among: ["array"])): "
                        + "objects is a map with the single key array")
            }
            switch value {
            case .scalar where value.isNull:
                continue
            case .sequence(let sequence, _):
                for (index, item) in sequence.enumerated() {
                    guard case .scalar(let scalar) = item else {
                        throw .invalidArgument(
                            unmarshalPrefix + "yaml: unmarshal errors: line \(item.line): array item \(index) is a "
                                + "\(item.kind), not a string: write each object as a YAML string, \"- |\" "
                                + "followed by its fields indented on the next lines")
                    }
                    items.append(item.isNull ? "" : scalar.text)
                }
            default:
                throw .invalidArgument(
                    unmarshalPrefix + "yaml: unmarshal errors: line \(value.line): cannot unmarshal "
                        + "\(value.kind) into array: array must be a list of YAML strings, one per object")
            }
        }
        return items
    }

    private static func object(_ text: String, index: Int, options: ParserOptions) throws(VolumeError) -> VolumeObject {
        let indexPrefix = "unmarshal failed for keyVaultObjects at index \(index), error: "
        let root: YAMLNode?
        do {
            root = try YAMLParser.parse(text)
        } catch {
            throw .invalidArgument(indexPrefix + error.description)
        }
        var fields: [String: String] = [:]
        var keys: [String] = []
        if let root, !root.isNull {
            guard case .mapping(let mapping, _) = root else {
                throw .invalidArgument(
                    indexPrefix + "yaml: unmarshal errors: line \(root.line): cannot unmarshal \(root.kind) "
                        + "into an object: each array item is a map of fields such as objectName and objectType")
            }
            for entry in mapping {
                // yaml.v3 applies a merge key; akvfs reads no anchors, so one here is always a map written inline.
                if case .scalar(let key) = entry.key, key.style == .plain, key.text == "<<" {
                    throw .invalidArgument(
                        indexPrefix + "yaml: line \(entry.key.line): merge keys (<<) are not supported in objects; "
                            + "write the object's fields out in full")
                }
                guard case .scalar(let keyScalar) = entry.key, case .scalar(let valueScalar) = entry.value else {
                    let field = entry.key.scalarText ?? entry.key.kind
                    throw .invalidArgument(
                        indexPrefix + "yaml: unmarshal errors: line \(entry.value.line): cannot unmarshal "
                            + "\(entry.value.kind) into \(field): object fields are single values")
                }
                keys.append(keyScalar.text)
                fields[keyScalar.text] = entry.value.isNull ? "" : valueScalar.text.trimmed
            }
        }

        let historyText = fields["objectVersionHistory"] ?? ""
        let history: Int
        if historyText.isEmpty {
            history = 0
        } else if let number = YAMLScalar.integer(historyText) {
            history = number
        } else {
            throw .invalidArgument(
                indexPrefix
                    + "objectVersionHistory \(MessageText.quoted(historyText)) is not an integer: give the number of "
                    + "versions to mount, 2 to \(SecretProviderClassParser.maxVersionHistory)")
        }

        let name = fields["objectName"] ?? ""
        let typeText = fields["objectType"] ?? ""
        let versionText = fields["objectVersion"] ?? ""
        let aliasText = fields["objectAlias"] ?? ""
        func failure(_ cause: String) -> VolumeError {
            let located = name.isEmpty ? "\(cause) (objects array item \(index))" : cause
            return .invalidArgument(
                ObjectFailure.message(type: typeText, name: name, version: versionText, cause: located))
        }

        let allowed = SecretProviderClassParser.objectFieldKeys
        if let unknown = keys.first(where: { !allowed.contains($0) }) {
            throw failure(
                "unknown field \(unknown)\(MessageText.didYouMean(unknown, among: allowed)): the fields are "
                    + allowed.joined(separator: ", "))
        }

        guard !name.isEmpty else {
            throw failure(
                aliasText.isEmpty
                    ? "file name must not be empty: set objectName to the Key Vault object's name"
                    : "objectName is not set: objectAlias only names the file; objectName names the Key Vault object")
        }
        guard KeyVaultNames.isObjectName(name) else {
            throw failure(
                "objectName \(MessageText.quoted(name)) is not a valid Key Vault object name: names are 1-127 characters "
                    + "of letters, digits and '-' (use objectAlias to choose the file name)")
        }

        guard let type = ObjectType(parameter: typeText) else {
            let got = typeText.isEmpty ? "objectType is not set" : "got \(MessageText.quoted(typeText))"
            let certificateHint = typeText.lowercased().hasPrefix("certificate") ? "; use cert for a certificate" : ""
            throw failure("Invalid vaultObjectTypes. Should be secret, key, or cert (\(got)\(certificateHint))")
        }

        let formatText = fields["objectFormat"] ?? ""
        let format: CertificateFormat
        if formatText.isEmpty {
            format = .pem
        } else if let parsed = CertificateFormat(parameter: formatText) {
            format = parsed
        } else {
            throw failure("invalid objectFormat: \(formatText), should be PEM or PFX")
        }
        if format == .pfx, type != .secret {
            throw failure(
                "PFX format only supported for objectType: secret (a certificate's PFX, with its key, is its secret; "
                    + "objectType \(type.rawValue) has no PFX)")
        }

        let encodingText = fields["objectEncoding"] ?? ""
        var encoding: ObjectEncoding?
        if !encodingText.isEmpty {
            guard let parsed = ObjectEncoding(parameter: encodingText) else {
                throw failure("invalid objectEncoding: \(encodingText), should be hex, base64 or utf-8")
            }
            guard type == .secret else {
                throw failure(
                    "objectEncoding only supported for objectType: secret (remove it for objectType \(type.rawValue))")
            }
            encoding = parsed
        }

        let permissionText = fields["filePermission"] ?? ""
        var permission: UInt16?
        if !permissionText.isEmpty {
            // As the provider reads it (Go's strconv.ParseInt(text, 8, 32)): an optional "+", then octal digits,
            // leading zeros allowed ("00600"). A negative mode means nothing on a file and is refused.
            let digits = permissionText.hasPrefix("+") ? permissionText.dropFirst() : Substring(permissionText)
            guard !digits.isEmpty, digits.allSatisfy({ ("0"..."7").contains($0) }),
                let parsed = UInt32(digits, radix: 8), parsed <= 0o7777
            else {
                throw failure(
                    "invalid filePermission \(MessageText.quoted(permissionText)): use an octal mode, digits 0-7 up to 0777, "
                        + "such as \"0600\", \"600\" or \"0440\"")
            }
            let mode = UInt16(parsed)
            guard mode <= 0o777 else {
                throw failure(
                    "invalid filePermission \(MessageText.quoted(permissionText)): setuid, setgid and sticky bits are not "
                        + "allowed on secret files; use at most 0777")
            }
            permission = mode
        }

        guard (0...SecretProviderClassParser.maxVersionHistory).contains(history) else {
            throw failure(
                "objectVersionHistory \(history) is not valid: use 0 or 1 for one file, or 2 to "
                    + "\(SecretProviderClassParser.maxVersionHistory) for a directory with that many recent versions")
        }

        var version: String?
        if !versionText.isEmpty, versionText.lowercased() != "latest" {
            guard KeyVaultNames.isVersion(versionText) else {
                throw failure(
                    "objectVersion \(MessageText.quoted(versionText)) is not valid: give the version's ID (32 letters and "
                        + "digits, the last part of the object's URL), or leave it empty or \"latest\" for the current version"
                )
            }
            version = versionText
        }

        // With a version history the provider names the files filepath.Join(alias, "<index>"), which cleans the
        // alias: "d/" and "./d" give "d/0". Clean it the same way; ".." stays, for the path check to refuse.
        var aliasWritten = aliasText
        if history > 1, !aliasText.hasPrefix("/") {
            let cleaned = SecretProviderClassParser.withoutEmptyComponents(aliasText)
            if !cleaned.isEmpty { aliasWritten = cleaned }
        }
        let alias = aliasWritten.isEmpty ? nil : aliasWritten
        let path: [String]
        do {
            path = try SecretProviderClassParser.validateFilePath(alias ?? name, options: options)
        } catch {
            throw failure(error.message)
        }
        return VolumeObject(
            name: name, type: type, version: version, alias: alias, format: format, encoding: encoding,
            permission: permission,
            versionHistory: history, path: path)
    }
}
