extension SecretProviderClassParser {
    /// Expands objects with objectVersionHistory > 1 into files `<alias or name>/<index>` once the versions are known:
    /// disabled versions (and ones without an ID) skipped, newest first by `created` (missing = epoch; ties keep the
    /// listed order), index 0 = the newest, or `object.version` when one is named; at most `versionHistory` files
    /// (the provider writes N+1: docs/secretproviderclass.md, Differs: at most N versions). Each result is a
    /// single-version object for one file. An object with versionHistory <= 1 comes back unchanged.
    public static func expandHistory(
        _ object: VolumeObject, versions: [(version: String, created: Int64?, enabled: Bool)]
    ) throws(VolumeError) -> [VolumeObject] {
        guard !object.isSingleVersion else { return [object] }
        let newestFirst = versions.enumerated()
            .filter { $0.element.enabled && !$0.element.version.isEmpty }
            .sorted { lhs, rhs in
                let (left, right) = (lhs.element.created ?? 0, rhs.element.created ?? 0)
                return left != right ? left > right : lhs.offset < rhs.offset
            }
            .map(\.element.version)
        guard !newestFirst.isEmpty else {
            throw object.failure(
                .notFound,
                "no enabled versions to mount (objectVersionHistory \(object.versionHistory)); enable a version in Key Vault"
            )
        }
        var start = 0
        if let wanted = object.version {
            guard let index = newestFirst.firstIndex(where: { $0.lowercased() == wanted.lowercased() }) else {
                throw object.failure(
                    .notFound,
                    "version \(wanted) is not among the \(newestFirst.count) enabled versions; objectVersion names the newest "
                        + "version to mount (empty or \"latest\" for the current one)")
            }
            start = index
        }
        let base = object.path.joined(separator: "/")
        return newestFirst[start...].prefix(object.versionHistory).enumerated().map { index, version in
            var file = object
            file.version = version
            file.versionHistory = 1
            file.alias = "\(base)/\(index)"
            file.path = object.path + [String(index)]
            return file
        }
    }
}
