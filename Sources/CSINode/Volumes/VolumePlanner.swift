import ObjectCache
import ObjectFormats
import SecretProviderClass
import VaultFS

/// Turns a validated volume request into the files of its view.
enum VolumePlanner {
    /// The driver's default mode for files without filePermission.
    static let defaultFileMode: UInt16 = 0o644

    /// Objects with objectVersionHistory list their versions (through the cache, so a republish
    /// costs no call until the listing is due) and become one file per version.
    static func files(for request: VolumeRequest, source: SourceID, cache: ObjectCache) async throws(VolumeError)
        -> [VolumeFile]
    {
        var files: [VolumeFile] = []
        for object in request.objects {
            for single in try await expanded(object, source: source, cache: cache) {
                files.append(
                    VolumeFile(
                        path: single.path,
                        reference: ObjectReference(
                            kind: kind(of: single.type), name: single.name, version: single.version),
                        rendering: .standard(format: single.format, encoding: single.encoding),
                        permissions: single.permission ?? defaultFileMode))
            }
        }
        return files
    }

    private static func expanded(_ object: VolumeObject, source: SourceID, cache: ObjectCache) async throws(VolumeError)
        -> [VolumeObject]
    {
        guard !object.isSingleVersion else { return [object] }
        let versions: [ListedObject]
        do {
            versions = try await cache.versions(kind(of: object.type), name: object.name, in: source)
        } catch {
            throw object.failure(
                code(for: error.kind), "listing its versions for objectVersionHistory failed: \(error.message)")
        }
        return try SecretProviderClassParser.expandHistory(
            object, versions: versions.map { (version: $0.version ?? "", created: $0.created, enabled: $0.enabled) })
    }

    static func kind(of type: ObjectType) -> ObjectKind {
        switch type {
        case .secret: .secret
        case .key: .key
        case .cert: .certificate
        }
    }

    static func type(of kind: ObjectKind) -> ObjectType {
        switch kind {
        case .secret: .secret
        case .key: .key
        case .certificate: .cert
        }
    }

    /// The gRPC status for a cache failure: kubelet retries every one of them, the codes say why.
    static func code(for kind: SourceError.Kind) -> VolumeError.Code {
        switch kind {
        case .notFound, .disabled: .notFound
        case .forbidden: .permissionDenied
        case .throttled, .unavailable: .unavailable
        case .timedOut: .deadlineExceeded
        case .invalid: .invalidArgument
        }
    }
}
