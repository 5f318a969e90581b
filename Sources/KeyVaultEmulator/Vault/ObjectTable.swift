/// What every stored version has in common, so listing, paging and soft delete are written once
/// for secrets, keys and certificates.
protocol VersionRecord: Sendable {
    static var kind: ObjectKind { get }
    /// Where a vault keeps this kind's objects.
    static var table: WritableKeyPath<Vault, ObjectTable<Self>> { get }
    var version: String { get }
    var attributes: ObjectAttributes { get set }
    var tags: [String: String]? { get set }
    /// What an update request changes in a version of this kind.
    mutating func apply(_ update: UpdateInput)
}

struct ObjectAttributes: Sendable, Equatable {
    var enabled: Bool = true
    var notBefore: Int64?
    var expires: Int64?
    var created: Int64
    var updated: Int64
}

/// One named object with its versions, oldest first; the last one is "latest".
struct VersionedObject<Version: VersionRecord>: Sendable {
    var name: String
    var versions: [Version]

    var latest: Version { versions[versions.count - 1] }

    func version(_ id: String) -> Version? {
        versions.first { $0.version.equalsIgnoringCase(id) }
    }

    mutating func update(version id: String, _ change: (inout Version) -> Void) -> Version? {
        guard let index = versions.firstIndex(where: { $0.version.equalsIgnoringCase(id) }) else { return nil }
        change(&versions[index])
        return versions[index]
    }
}

struct DeletedObject<Version: VersionRecord>: Sendable {
    var object: VersionedObject<Version>
    var deletedDate: Int64
    var scheduledPurgeDate: Int64
}

/// Objects of one kind in one vault. Names are case-insensitive in Key Vault, so entries are keyed
/// by the lower-cased name and remember the spelling they were created with.
struct ObjectTable<Version: VersionRecord>: Sendable {
    private(set) var live: [String: VersionedObject<Version>] = [:]
    private(set) var deleted: [String: DeletedObject<Version>] = [:]
    /// Sorted keys of `live` and `deleted`, rebuilt lazily: listing 10,000 objects page by page
    /// must not sort on every page.
    private var sortedLiveKeys: [String]?
    private var sortedDeletedKeys: [String]?

    static func key(_ name: String) -> String { name.lowercased() }

    func object(named name: String) -> VersionedObject<Version>? { live[Self.key(name)] }
    func deletedObject(named name: String) -> DeletedObject<Version>? { deleted[Self.key(name)] }
    func isDeleted(_ name: String) -> Bool { deleted[Self.key(name)] != nil }

    /// Adds a new latest version, creating the object if needed.
    /// Adds a new latest version. Versions of one object are created at strictly increasing
    /// seconds, so "newest by created" (objectVersionHistory) is well defined even for versions
    /// a seed or a fast client writes within one second.
    mutating func append(name: String, version: Version) {
        let key = Self.key(name)
        if live[key] == nil {
            live[key] = VersionedObject(name: name, versions: [version])
            sortedLiveKeys = nil
        } else {
            var version = version
            let previous = live[key]!.latest.attributes.created
            if version.attributes.created <= previous {
                version.attributes.created = previous + 1
                version.attributes.updated = max(version.attributes.updated, previous + 1)
            }
            live[key]!.versions.append(version)
        }
    }

    mutating func modify<Result>(named name: String, _ change: (inout VersionedObject<Version>) -> Result) -> Result? {
        let key = Self.key(name)
        guard live[key] != nil else { return nil }
        return change(&live[key]!)
    }

    mutating func softDelete(named name: String, now: Int64, retentionDays: Int) -> DeletedObject<Version>? {
        let key = Self.key(name)
        guard let object = live.removeValue(forKey: key) else { return nil }
        let entry = DeletedObject(
            object: object, deletedDate: now, scheduledPurgeDate: now + Int64(retentionDays) * 86_400)
        deleted[key] = entry
        sortedLiveKeys = nil
        sortedDeletedKeys = nil
        return entry
    }

    mutating func purge(named name: String) -> DeletedObject<Version>? {
        let removed = deleted.removeValue(forKey: Self.key(name))
        if removed != nil { sortedDeletedKeys = nil }
        return removed
    }

    mutating func recover(named name: String) -> VersionedObject<Version>? {
        let key = Self.key(name)
        guard let entry = deleted.removeValue(forKey: key) else { return nil }
        live[key] = entry.object
        sortedLiveKeys = nil
        sortedDeletedKeys = nil
        return entry.object
    }

    /// Live objects in name order, starting after `afterKey`.
    mutating func livePage(after afterKey: String?, limit: Int) -> (objects: [VersionedObject<Version>], hasMore: Bool)
    {
        if sortedLiveKeys == nil { sortedLiveKeys = live.keys.sorted() }
        let keys = sortedLiveKeys!
        let slice = Self.page(of: keys, after: afterKey, limit: limit)
        return (slice.keys.map { live[$0]! }, slice.hasMore)
    }

    mutating func deletedPage(after afterKey: String?, limit: Int) -> (objects: [DeletedObject<Version>], hasMore: Bool)
    {
        if sortedDeletedKeys == nil { sortedDeletedKeys = deleted.keys.sorted() }
        let keys = sortedDeletedKeys!
        let slice = Self.page(of: keys, after: afterKey, limit: limit)
        return (slice.keys.map { deleted[$0]! }, slice.hasMore)
    }

    private static func page(of keys: [String], after afterKey: String?, limit: Int) -> (
        keys: ArraySlice<String>, hasMore: Bool
    ) {
        var start = 0
        if let afterKey {
            // First key strictly greater than the last one already returned.
            var low = 0
            var high = keys.count
            while low < high {
                let mid = (low + high) / 2
                if keys[mid] <= afterKey { low = mid + 1 } else { high = mid }
            }
            start = low
        }
        let end = min(keys.count, start + limit)
        return (keys[start..<end], end < keys.count)
    }
}

extension String {
    func equalsIgnoringCase(_ other: String) -> Bool {
        lowercased() == other.lowercased()
    }
}
