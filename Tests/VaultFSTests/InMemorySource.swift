import ObjectCache
import PKI
import Synchronization

/// A vault in memory, counting what the filesystem asks of it and failing on demand.
final class InMemorySource: ObjectSource, Sendable {
    struct Version: Sendable {
        var id: String
        var payload: Payload
        var contentType: String?
        var enabled = true
        var updated: Int64
        var tags: [String: String] = [:]
        var certificateBacked = false
    }

    private struct State {
        var objects: [ObjectKind: [String: [Version]]] = [:]
        var fetches = 0
        var lists = 0
        var failure: SourceError.Kind?
        var listFailure: SourceError.Kind?
    }

    private let state = Mutex(State())

    var fetches: Int { state.withLock { $0.fetches } }
    var lists: Int { state.withLock { $0.lists } }

    /// Adds a new latest version.
    func put(
        _ kind: ObjectKind, _ name: String, _ payload: Payload, contentType: String? = nil, enabled: Bool = true,
        certificateBacked: Bool = false, tags: [String: String] = [:]
    ) {
        state.withLock { state in
            let count = state.objects[kind]?[name]?.count ?? 0
            let version = Version(
                id: "v\(count + 1)-\(name)".filter { $0.isLetter || $0.isNumber }, payload: payload,
                contentType: contentType,
                enabled: enabled, updated: 1_700_000_000 + Int64(count), tags: tags,
                certificateBacked: certificateBacked)
            state.objects[kind, default: [:]][name, default: []].append(version)
        }
    }

    func fail(with kind: SourceError.Kind?) { state.withLock { $0.failure = kind } }
    func failListing(with kind: SourceError.Kind?) { state.withLock { $0.listFailure = kind } }

    func fetch(_ reference: ObjectReference) async throws(SourceError) -> FetchedObject {
        let outcome: Result<FetchedObject, SourceError> = state.withLock { state in
            state.fetches += 1
            if let failure = state.failure {
                return .failure(SourceError(kind: failure, message: "injected \(failure)"))
            }
            guard let versions = state.objects[reference.kind]?[reference.name], let latest = versions.last else {
                return .failure(SourceError(kind: .notFound, message: "\(reference.name) not found"))
            }
            let chosen =
                reference.version.flatMap { wanted in versions.first { $0.id == wanted } }
                ?? (reference.version == nil ? latest : nil)
            guard let chosen else { return .failure(SourceError(kind: .notFound, message: "version not found")) }
            guard chosen.enabled else { return .failure(SourceError(kind: .disabled, message: "disabled")) }
            return .success(
                FetchedObject(
                    metadata: ObjectMetadata(
                        id: "https://memory.vault.test/\(reference.kind.rawValue)s/\(reference.name)/\(chosen.id)",
                        version: chosen.id, enabled: chosen.enabled,
                        contentType: chosen.contentType, created: chosen.updated - 100, updated: chosen.updated,
                        notBefore: nil, expires: nil,
                        tags: chosen.tags, certificateBacked: chosen.certificateBacked,
                        managed: chosen.certificateBacked),
                    payload: chosen.payload))
        }
        return try outcome.get()
    }

    // Everything comes in one page, so there is nothing to pace.
    func list(_ kind: ObjectKind, pacer: @escaping @Sendable () async throws -> Void) async throws(SourceError)
        -> [ListedObject]
    {
        let outcome: Result<[ListedObject], SourceError> = state.withLock { state in
            state.lists += 1
            if let failure = state.listFailure ?? state.failure {
                return .failure(SourceError(kind: failure, message: "injected \(failure)"))
            }
            return .success(
                (state.objects[kind] ?? [:]).compactMap { name, versions in
                    versions.last.map {
                        ListedObject(
                            name: name, version: nil, enabled: $0.enabled, managed: $0.certificateBacked,
                            contentType: $0.contentType, created: nil, updated: $0.updated, tags: $0.tags)
                    }
                })
        }
        return try outcome.get()
    }

    func listVersions(
        _ kind: ObjectKind, name: String, pacer: @escaping @Sendable () async throws -> Void
    ) async throws(SourceError) -> [ListedObject] {
        let outcome: Result<[ListedObject], SourceError> = state.withLock { state in
            state.lists += 1
            if let failure = state.listFailure ?? state.failure {
                return .failure(SourceError(kind: failure, message: "injected \(failure)"))
            }
            guard let versions = state.objects[kind]?[name] else {
                return .failure(SourceError(kind: .notFound, message: "not found"))
            }
            return .success(
                versions.map {
                    ListedObject(
                        name: name, version: $0.id, enabled: $0.enabled, managed: false, contentType: $0.contentType,
                        created: nil, updated: $0.updated, tags: $0.tags)
                })
        }
        return try outcome.get()
    }
}

/// Monotonic time the test moves by hand.
final class ManualClock: Sendable {
    private let current = Mutex<Duration>(.seconds(1000))
    var now: Duration { current.withLock { $0 } }
    func advance(_ duration: Duration) { current.withLock { $0 += duration } }
}
