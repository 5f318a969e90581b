extension SecretProviderClassParser {
    /// `path` without empty and `.` components, as Go's filepath.Clean writes it, except that `..`
    /// is kept (for the path check to refuse).
    static func withoutEmptyComponents(_ path: String) -> String {
        path.split(separator: "/").filter { $0 != "." }.joined(separator: "/")
    }

    /// The path components of a file in the volume (`objectAlias`, or `objectName` without one), checked by the
    /// driver's stricter rules (docs/secretproviderclass.md, File paths): not empty, relative, no `..` component
    /// (`a..b` is fine), no component starting with `..` (the atomic writer's `..data` and `..<timestamp>`), already
    /// clean (no `//`, `./`, trailing `/`), no NUL or other control character, components and path within
    /// `options`' byte limits. Errors name the rule broken.
    public static func validateFilePath(_ path: String, options: ParserOptions = ParserOptions()) throws(VolumeError)
        -> [String]
    {
        guard !path.isEmpty else { throw .invalidArgument("file name must not be empty") }
        let shown = MessageText.quoted(path)
        guard !path.utf8.contains(0) else { throw .invalidArgument("invalid path: must not contain NUL: \(shown)") }
        // A newline, tab or escape in a file name breaks or forges what tools show of the volume.
        if let control = path.unicodeScalars.first(where: { $0.properties.generalCategory == .control }) {
            let hex = String(control.value, radix: 16, uppercase: true)
            throw .invalidArgument(
                "invalid path: must not contain control characters (newline, tab, escape, …; found U+\(String(repeating: "0", count: max(0, 4 - hex.count)) + hex)): \(shown)"
            )
        }
        guard !path.hasPrefix("/") else {
            throw .invalidArgument("file name must be a relative path: \(shown) (paths are relative to the volume)")
        }
        let components = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !components.contains("..") else { throw .invalidArgument("file name must not contain '..': \(shown)") }
        if let reserved = components.first(where: { $0.hasPrefix("..") }) {
            throw .invalidArgument(
                "invalid path: must not start with '..': \(reserved == path ? shown : "\(MessageText.quoted(reserved)) in \(shown)") "
                    + "(names starting with '..' are reserved for the volume's ..data and ..<timestamp> entries)")
        }
        guard !components.contains(where: { $0.isEmpty || $0 == "." }) else {
            let clean = withoutEmptyComponents(path)
            let cleanHint = clean.isEmpty ? "" : "; write it as \(MessageText.quoted(clean))"
            throw .invalidArgument(
                "invalid filepath: \(shown) (no empty or '.' components and no trailing '/'\(cleanHint))")
        }
        if let long = components.first(where: { $0.utf8.count > options.maxPathComponentBytes }) {
            throw .invalidArgument(
                "invalid path: the component \(MessageText.quoted(long, limit: 32)) is \(long.utf8.count) bytes, longer than "
                    + "\(options.maxPathComponentBytes)")
        }
        guard path.utf8.count <= options.maxPathBytes else {
            throw .invalidArgument(
                "invalid path: \(MessageText.quoted(path, limit: 32)) is \(path.utf8.count) bytes, longer than \(options.maxPathBytes)"
            )
        }
        return components
    }
}

enum VolumePaths {
    /// Two objects writing the same path, or one writing a file where another needs a directory, would overwrite
    /// each other silently in the driver (docs/secretproviderclass.md, Stricter: files that collide). A
    /// version-history object owns its whole directory.
    static func checkConflicts(_ objects: [VolumeObject]) throws(VolumeError) {
        var owners: [[String]: Int] = [:]
        for (index, object) in objects.enumerated() {
            if let first = owners[object.path] {
                throw .invalidArgument(
                    "objects \(describe(objects, first)) and \(describe(objects, index)) both write "
                        + "\(MessageText.quoted(object.path.joined(separator: "/"))): give one of them a different objectAlias"
                )
            }
            owners[object.path] = index
        }
        for (index, object) in objects.enumerated() where object.path.count > 1 {
            for length in 1..<object.path.count {
                guard let owner = owners[Array(object.path.prefix(length))] else { continue }
                let directory = MessageText.quoted(object.path.prefix(length).joined(separator: "/"))
                let file = MessageText.quoted(object.path.joined(separator: "/"))
                if objects[owner].isSingleVersion {
                    throw .invalidArgument(
                        "object \(describe(objects, owner)) writes the file \(directory), but object \(describe(objects, index)) "
                            + "needs \(directory) to be a directory for \(file): give one of them a different objectAlias"
                    )
                }
                throw .invalidArgument(
                    "object \(describe(objects, owner)) keeps its \(objects[owner].versionHistory) versions in the directory "
                        + "\(directory), so object \(describe(objects, index)) cannot write \(file) inside it: give it an "
                        + "objectAlias outside \(directory)")
            }
        }
    }

    private static func describe(_ objects: [VolumeObject], _ index: Int) -> String {
        "objectName:\(objects[index].name) (objectType:\(objects[index].type.rawValue), array item \(index))"
    }
}
