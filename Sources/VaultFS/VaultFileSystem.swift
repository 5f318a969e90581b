import FoundationEssentials
import Logging
import ObjectCache
import PKI
import Synchronization

public struct FileSystemConfiguration: Sendable {
    public enum Root: Sendable, Equatable {
        /// The root is this view's root (a node mount of one vault).
        case singleView(String)
        /// The root holds one directory per view (the CSI plugin's shared mount).
        case viewDirectories
    }

    public var root: Root
    /// How long the kernel may trust names and attributes without asking again. Short, because
    /// lookups are also how the cache learns a file is still being read.
    public var metadataTimeout: Double = 1
    /// How long the kernel may remember that a name does not exist.
    public var negativeTimeout: Double = 1

    public init(root: Root) {
        self.root = root
    }

    /// The kernel's timeouts from the daemon's: names and attributes are trusted for the metadata
    /// TTL; a missing name is remembered for the negative TTL, but never longer than names are
    /// trusted, since a name can appear with the next listing. Both daemons build it here.
    public init(root: Root, metadataTTL: Double, negativeTTL: Double) {
        self.root = root
        metadataTimeout = metadataTTL
        negativeTimeout = min(negativeTTL, metadataTTL)
    }
}

/// The filesystem without FUSE: views, the inode table, layout, attributes, extended
/// attributes and errno mapping, answering from the object cache. The FUSE bridge calls it;
/// tests call it directly.
public final class VaultFileSystem: Sendable {
    public let configuration: FileSystemConfiguration
    let cache: ObjectCache
    let table: InodeTable
    private let views: Mutex<[String: ViewDefinition]>
    private let cacheObserver = Mutex<(@Sendable (CacheEvent) -> Void)?>(nil)
    private let mountTime: Int64
    private let logger = Logger(label: "akvfs.fs")
    public let invalidations: AsyncStream<Invalidation>
    private let invalidationSink: AsyncStream<Invalidation>.Continuation

    public init(cache: ObjectCache, configuration: FileSystemConfiguration, views: [ViewDefinition] = []) {
        self.cache = cache
        self.configuration = configuration
        switch configuration.root {
        case .singleView(let id): table = InodeTable(root: NodeKey(view: id, path: .viewRoot))
        case .viewDirectories: table = InodeTable(root: NodeKey(view: nil, path: .viewsRoot))
        }
        self.views = Mutex(Dictionary(uniqueKeysWithValues: views.map { ($0.id, $0) }))
        mountTime = Int64(Date().timeIntervalSince1970)
        (invalidations, invalidationSink) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(100_000))
    }

    /// A file inode's link count now: 0 once the kernel is told no name shows it.
    public func linkCount(of inode: UInt64) -> UInt32 {
        table.isLinked(inode) ? 1 : 0
    }

    // MARK: Taking over from another process

    /// Writes the inode table to `journal` from now on (see `InodeJournal`).
    public func journalInodes(to journal: any InodeJournal) {
        table.startJournal(journal)
    }

    /// Stops writing to the journal: another process takes it over.
    public func stopJournal() {
        table.stopJournal()
    }

    /// Writes the journal anew (after a value written to it did not fit).
    public func compactJournal() {
        table.compactJournal()
    }

    /// Takes over the inode table another process journaled, before serving its connection.
    public func restoreInodes(from records: [[UInt8]]) throws(JournalError) {
        try table.restore(from: records)
    }

    // MARK: Views

    /// Adds or replaces a view. A replaced view keeps its directories' inodes; its files get new
    /// inodes at their next lookup (processes reading the old ones keep what they read).
    public func setView(_ view: ViewDefinition) {
        let previous = views.withLock { views in
            defer { views[view.id] = view }
            return views[view.id]
        }
        guard let previous, previous != view else { return }
        for (inode, key) in table.shownFiles(inView: view.id) { invalidateEntry(inode, key) }
        for inode in table.inodes(inView: view.id, where: { $0.type == .directory }) {
            invalidationSink.yield(.inode(inode))
        }
    }

    public func removeView(_ id: String) {
        views.withLock { _ = $0.removeValue(forKey: id) }
        table.removeView(id)
    }

    public func view(_ id: String) -> ViewDefinition? {
        views.withLock { $0[id] }
    }

    /// Turns cache events into kernel invalidations until the cache's event stream ends.
    public func watchCache() -> Task<Void, Never> {
        let cache = self.cache
        return Task { [weak self] in
            for await event in cache.events {
                guard let self else { return }
                self.handle(event)
            }
        }
    }

    /// Sees every cache event after the filesystem has (the CSI plugin: rotations of volumes).
    public func observeCacheEvents(_ observer: @escaping @Sendable (CacheEvent) -> Void) {
        cacheObserver.withLock { $0 = observer }
    }

    func handle(_ event: CacheEvent) {
        defer { cacheObserver.withLock { $0 }?(event) }
        switch event {
        case .refreshFailed:
            break
        case .contentChanged(let source, let reference):
            // Every name showing the object, whatever its rendering (a secret's TLS files
            // included), moves on to a new inode; readers of the old one keep their version.
            for (inode, key) in table.shownInodes(showing: .init(source: source, reference: reference)) {
                invalidateEntry(inode, key)
            }
        case .listingChanged(let source, let kind):
            let viewIds = views.withLock { $0.values.filter { $0.source == source }.map(\.id) }
            for id in viewIds {
                let directories = table.inodes(inView: id) { path in
                    switch path {
                    case .collection(let k), .versionsRoot(let k): k == kind
                    case .tlsRoot: kind == .certificate
                    default: false
                    }
                }
                for inode in directories { invalidationSink.yield(.inode(inode)) }
            }
        }
    }

    /// Asks for the kernel to be told that `key`'s name no longer shows `inode`; the key moves
    /// on once it has been (`invalidationDelivered`), so watchers of `inode` hear of it first.
    private func invalidateEntry(_ inode: UInt64, _ key: NodeKey) {
        guard let name = key.path.fileName, let parentKey = parent(of: key),
            let parentInode = table.existingInode(for: parentKey)
        else {
            table.detach(inode)
            return
        }
        // From now on its attributes say no name shows it, whichever reply reaches the kernel last.
        table.markReplaced(inode)
        invalidationSink.yield(.entry(parent: parentInode, name: name, inode: inode))
    }

    /// The FUSE glue told the kernel about `invalidation` (or found that the kernel had nothing to forget).
    public func invalidationDelivered(_ invalidation: Invalidation) {
        if case .entry(_, _, let inode) = invalidation { table.detach(inode) }
    }

    // MARK: Operations

    public func lookup(parent: UInt64, name: String) async throws(Errno) -> EntryReply {
        let (parentKey, view) = try resolve(parent)
        guard let childPath = try child(of: parentKey.path, named: name, in: view) else { throw .noEntry }
        let key = NodeKey(view: childPath == .viewRoot ? name : parentKey.view, path: childPath)
        let childView = key.view.flatMap { self.view($0) }
        try await confirmObjectDirectory(childPath, in: childView)
        let (inode, attributes) = try await inodeAndAttributes(of: key, in: childView)
        table.remember(inode)
        return EntryReply(
            attributes: attributes, entryTimeout: configuration.metadataTimeout,
            attributeTimeout: configuration.metadataTimeout)
    }

    /// `tls/NAME/` and `.versions/NAME/` stand for an object, so they exist only when it does:
    /// a certificate's secret (fetched, as its files need it, but not rendered), or an object
    /// with versions (the listing `ls` of the directory would make).
    private func confirmObjectDirectory(_ path: NodePath, in view: ViewDefinition?) async throws(Errno) {
        guard let view else { return }
        switch path {
        case .tlsBundle(let name):
            let metadata: ObjectMetadata
            do {
                metadata = try await cache.metadata(ObjectReference(kind: .secret, name: name), in: view.source)
            } catch {
                throw Self.errno(for: error, logger: logger, context: "look up tls/\(name)")
            }
            guard metadata.certificateBacked else { throw .noEntry }
        case .versionList(let kind, let name):
            do {
                _ = try await cache.versions(kind, name: name, in: view.source)
            } catch {
                throw Self.errno(for: error, logger: logger, context: "list versions of \(kind.rawValue) \(name)")
            }
        default:
            return
        }
    }

    /// A directory's inode, or the inode of the version a file shows now (found in the cache,
    /// fetched when it has none), with its attributes.
    private func inodeAndAttributes(of key: NodeKey, in view: ViewDefinition?) async throws(Errno) -> (
        UInt64, FileAttributes
    ) {
        guard key.path.type == .regular else {
            let inode = table.inode(for: key)
            return (inode, directoryAttributes(inode, view: view))
        }
        guard let view, let shown = file(key.path, in: view) else { throw .noEntry }
        let content = try await fileContent(shown.reference, shown.rendering, in: view)
        let updated = content.metadata.updated ?? content.metadata.created ?? mountTime
        let version = InodeTable.FileVersion(
            version: content.metadata.version, rendering: shown.rendering, size: content.bytes.count, modified: updated,
            created: content.metadata.created ?? updated)
        switch table.fileInode(
            for: key, showing: .init(source: view.source, reference: shown.reference), version: version)
        {
        case .current(let inode):
            return (inode, fileAttributes(inode, version: version, permissions: shown.permissions, view: view))
        case .replaced(let inode):
            // The name shows the old version until the kernel has heard that it is gone.
            invalidateEntry(inode, key)
            return (
                inode,
                fileAttributes(
                    inode, version: table.node(inode)?.file ?? version, permissions: shown.permissions, view: view)
            )
        }
    }

    public func forget(_ inode: UInt64, count: UInt64) {
        table.forget(inode, count: count)
    }

    /// A file inode's attributes are those of its version, answered without asking Key Vault;
    /// the object is marked as being read, so it stays fresh while the kernel keeps asking.
    public func attributes(_ inode: UInt64) async throws(Errno) -> FileAttributes {
        let (node, view) = try resolveNode(inode)
        guard node.key.path.type == .regular else { return directoryAttributes(inode, view: view) }
        guard let view else { throw .noEntry }
        guard let object = node.object, let pinned = node.file else {
            return try await inodeAndAttributes(of: node.key, in: view).1
        }
        await cache.touch(object.reference, in: object.source)
        // A file the view no longer has (a republish dropped it) keeps being readable while open.
        let permissions = file(node.key.path, in: view)?.permissions ?? view.ownership.fileMode
        return fileAttributes(inode, version: pinned, permissions: permissions, view: view)
    }

    public func listDirectory(_ inode: UInt64) async throws(Errno) -> [DirectoryEntry] {
        let (key, view) = try resolve(inode)
        guard key.path.type == .directory else { throw .notDirectory }
        let parentInode = parent(of: key).map { table.inode(for: $0) } ?? InodeTable.rootInode
        var entries = [
            DirectoryEntry(name: ".", inode: inode, type: .directory),
            DirectoryEntry(name: "..", inode: parentInode, type: .directory),
        ]
        for (name, path) in try await children(of: key.path, in: view) {
            let childKey = NodeKey(view: path == .viewRoot ? name : key.view, path: path)
            let childView = childKey.view.flatMap { self.view($0) }
            let childInode = table.inode(for: childKey, showing: childView.flatMap { object(shownBy: path, in: $0) })
            entries.append(DirectoryEntry(name: name, inode: childInode, type: path.type))
        }
        return entries
    }

    /// Hands `reply` at most `size` bytes from `offset` of the version the inode shows, straight
    /// from the cached buffer. No copy is made: a copy of secret bytes would go back to the
    /// allocator without being zeroed.
    public func read<Reply>(
        _ inode: UInt64, offset: Int, size: Int, _ reply: (UnsafeBufferPointer<UInt8>) -> Reply
    ) async throws(Errno) -> Reply {
        let (node, view) = try resolveNode(inode)
        guard node.key.path.type == .regular, let view else { throw .isDirectory }
        let content = try await versionContent(node, in: view)
        return content.bytes.withUnsafeBufferPointer { all in
            let start = min(max(offset, 0), all.count)
            let end = min(all.count, start + max(size, 0))
            return reply(UnsafeBufferPointer(rebasing: all[start..<end]))
        }
    }

    public func extendedAttributeNames(_ inode: UInt64) async throws(Errno) -> [String] {
        try await extendedAttributes(inode).map(\.name)
    }

    public func extendedAttribute(_ inode: UInt64, name: String) async throws(Errno) -> [UInt8] {
        guard let value = try await extendedAttributes(inode).first(where: { $0.name == name })?.value else {
            throw .noAttribute
        }
        return Array(value.utf8)
    }

    public func statistics() -> FileSystemStatistics {
        FileSystemStatistics(files: UInt64(table.count))
    }

    // MARK: Layout

    private func resolve(_ inode: UInt64) throws(Errno) -> (NodeKey, ViewDefinition?) {
        let (node, view) = try resolveNode(inode)
        return (node.key, view)
    }

    private func resolveNode(_ inode: UInt64) throws(Errno) -> (InodeTable.Node, ViewDefinition?) {
        guard let node = table.node(inode) else { throw .noEntry }
        guard let id = node.key.view else { return (node, nil) }
        guard let view = view(id) else { throw .noEntry }
        return (node, view)
    }

    /// The child called `name`, without asking Key Vault; nil when it cannot exist.
    private func child(of path: NodePath, named name: String, in view: ViewDefinition?) throws(Errno) -> NodePath? {
        switch path {
        case .viewsRoot:
            return self.view(name) == nil ? nil : .viewRoot
        case .viewRoot:
            guard let view else { return nil }
            switch view.layout {
            case .vault:
                if name == VaultLayout.tlsDirectory { return .tlsRoot }
                return VaultLayout.kind(directory: name).map(NodePath.collection)
            case .volume(let files):
                return volumeChild(prefix: [], name: name, files: files)
            }
        case .collection(let kind):
            if name == VaultLayout.versionsDirectory { return .versionsRoot(kind) }
            return VaultLayout.isObjectName(name) ? .latest(kind, name) : nil
        case .versionsRoot(let kind):
            return VaultLayout.isObjectName(name) ? .versionList(kind, name) : nil
        case .versionList(let kind, let object):
            return VaultLayout.isVersion(name) ? .version(kind, object, name) : nil
        case .tlsRoot:
            return VaultLayout.isObjectName(name) ? .tlsBundle(name) : nil
        case .tlsBundle(let object):
            return TLSPart(rawValue: name).map { .tlsFile(object, $0) }
        case .volumeDirectory(let prefix):
            guard case .volume(let files) = view?.layout else { return nil }
            return volumeChild(prefix: prefix, name: name, files: files)
        case .latest, .version, .tlsFile, .volumeFile:
            throw .notDirectory
        }
    }

    private func volumeChild(prefix: [String], name: String, files: [VolumeFile]) -> NodePath? {
        let path = prefix + [name]
        if path == [VolumeLayout.dataDirectory] { return .volumeDirectory(path) }
        let shown = VolumeLayout.shownPath(path)
        if files.contains(where: { $0.path == shown }) { return .volumeFile(path) }
        if files.contains(where: { $0.path.count > shown.count && Array($0.path.prefix(shown.count)) == shown }) {
            return .volumeDirectory(path)
        }
        return nil
    }

    /// A directory's children in name order. Listing asks for names only, never values.
    private func children(of path: NodePath, in view: ViewDefinition?) async throws(Errno) -> [(String, NodePath)] {
        switch path {
        case .viewsRoot:
            return views.withLock { $0.keys.sorted() }.map { ($0, NodePath.viewRoot) }
        case .viewRoot:
            guard let view else { return [] }
            switch view.layout {
            case .vault:
                return [
                    ("certs", .collection(.certificate)), ("keys", .collection(.key)),
                    ("secrets", .collection(.secret)), ("tls", .tlsRoot),
                ]
            case .volume(let files):
                return volumeChildren(prefix: [], files: files)
            }
        case .collection(let kind):
            let names = try await enabledNames(kind, in: view)
            return [(VaultLayout.versionsDirectory, NodePath.versionsRoot(kind))]
                + names.map { ($0, NodePath.latest(kind, $0)) }
        case .versionsRoot(let kind):
            return try await enabledNames(kind, in: view).map { ($0, NodePath.versionList(kind, $0)) }
        case .versionList(let kind, let name):
            guard let view else { return [] }
            let versions: [ListedObject]
            do {
                versions = try await cache.versions(kind, name: name, in: view.source)
            } catch {
                throw Self.errno(for: error, logger: logger, context: "list versions of \(kind.rawValue) \(name)")
            }
            return versions.filter(\.enabled).compactMap(\.version).sorted().map {
                ($0, NodePath.version(kind, name, $0))
            }
        case .tlsRoot:
            return try await enabledNames(.certificate, in: view).map { ($0, NodePath.tlsBundle($0)) }
        case .tlsBundle(let name):
            return TLSPart.allCases.map { ($0.rawValue, NodePath.tlsFile(name, $0)) }.sorted { $0.0 < $1.0 }
        case .volumeDirectory(let prefix):
            guard case .volume(let files) = view?.layout else { return [] }
            return volumeChildren(prefix: prefix, files: files)
        case .latest, .version, .tlsFile, .volumeFile:
            throw .notDirectory
        }
    }

    private func volumeChildren(prefix: [String], files: [VolumeFile]) -> [(String, NodePath)] {
        let shown = VolumeLayout.shownPath(prefix)
        var seen: [String: NodePath] = [:]
        if prefix.isEmpty { seen[VolumeLayout.dataDirectory] = .volumeDirectory([VolumeLayout.dataDirectory]) }
        for file in files where file.path.count > shown.count && Array(file.path.prefix(shown.count)) == shown {
            let name = file.path[shown.count]
            if seen[name] != nil { continue }
            seen[name] =
                file.path.count == shown.count + 1 ? .volumeFile(prefix + [name]) : .volumeDirectory(prefix + [name])
        }
        return seen.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    private func enabledNames(_ kind: ObjectKind, in view: ViewDefinition?) async throws(Errno) -> [String] {
        guard let view else { return [] }
        do {
            return try await cache.listing(kind, in: view.source).filter(\.enabled).map(\.name).sorted()
        } catch {
            throw Self.errno(for: error, logger: logger, context: "list \(kind.rawValue)s")
        }
    }

    private func parent(of key: NodeKey) -> NodeKey? {
        let path: NodePath
        switch key.path {
        case .viewsRoot: return nil
        case .viewRoot:
            if case .viewDirectories = configuration.root { return NodeKey(view: nil, path: .viewsRoot) }
            return nil
        case .collection, .tlsRoot: path = .viewRoot
        case .latest(let kind, _), .versionsRoot(let kind): path = .collection(kind)
        case .versionList(let kind, _): path = .versionsRoot(kind)
        case .version(let kind, let name, _): path = .versionList(kind, name)
        case .tlsBundle: path = .tlsRoot
        case .tlsFile(let name, _): path = .tlsBundle(name)
        case .volumeDirectory(let components):
            path = components.count <= 1 ? .viewRoot : .volumeDirectory(Array(components.dropLast()))
        case .volumeFile(let components):
            path = components.count <= 1 ? .viewRoot : .volumeDirectory(Array(components.dropLast()))
        }
        return NodeKey(view: key.view, path: path)
    }

    // MARK: Content and attributes

    /// The object a file shows, and how it is rendered.
    private func file(_ path: NodePath, in view: ViewDefinition) -> (
        reference: ObjectReference, rendering: Rendering, permissions: UInt16
    )? {
        switch path {
        case .latest(let kind, let name):
            return (ObjectReference(kind: kind, name: name, version: nil), .plain, view.ownership.fileMode)
        case .version(let kind, let name, let version):
            return (ObjectReference(kind: kind, name: name, version: version), .plain, view.ownership.fileMode)
        case .tlsFile(let name, let part):
            return (ObjectReference(kind: .secret, name: name, version: nil), .tls(part), view.ownership.fileMode)
        case .volumeFile(let path):
            let shown = VolumeLayout.shownPath(path)
            guard case .volume(let files) = view.layout, let file = files.first(where: { $0.path == shown }) else {
                return nil
            }
            return (file.reference, file.rendering, file.permissions)
        default:
            return nil
        }
    }

    private func object(shownBy path: NodePath, in view: ViewDefinition) -> InodeTable.ObjectIdentity? {
        file(path, in: view).map { .init(source: view.source, reference: $0.reference) }
    }

    private func fileContent(_ reference: ObjectReference, _ rendering: Rendering, in view: ViewDefinition)
        async throws(Errno) -> RenderedContent
    {
        do {
            return try await render(reference, rendering, from: view.source)
        } catch {
            throw Self.errno(for: error, logger: logger, context: "read \(reference.kind.rawValue) \(reference.name)")
        }
    }

    /// The content of the version a file inode shows, rendered as it was when first looked up
    /// (the view may have changed since); the object is marked as being read.
    private func versionContent(_ node: InodeTable.Node, in view: ViewDefinition) async throws(Errno) -> RenderedContent
    {
        guard let object = node.object, let pinned = node.file else {
            guard let shown = file(node.key.path, in: view) else { throw .noEntry }
            return try await fileContent(shown.reference, shown.rendering, in: view)
        }
        guard object.reference.version == nil, !pinned.version.isEmpty else {
            return try await fileContent(object.reference, pinned.rendering, in: view)
        }
        await cache.touch(object.reference, in: object.source)
        var exact = object.reference
        exact.version = pinned.version
        return try await fileContent(exact, pinned.rendering, in: view)
    }

    private func render(
        _ reference: ObjectReference, _ rendering: Rendering, from source: SourceID, wait: Duration? = nil
    ) async throws(CacheError) -> RenderedContent {
        let content = try await cache.content(reference, in: source, renderingKey: rendering.key, wait: wait) {
            object throws(ObjectCache.RenderError) in
            try rendering.render(object)
        }
        for warning in content.warnings {
            logger.warning("\(reference.kind.rawValue) \(reference.name): \(warning)")
        }
        return content
    }

    /// A volume file's bytes as a reader of it gets them now (for filling a Kubernetes Secret).
    public func content(of file: VolumeFile, from source: SourceID, wait: Duration) async throws(CacheError)
        -> SecretBytes
    {
        try await render(file.reference, file.rendering, from: source, wait: wait).bytes
    }

    /// Fetches and renders every file of a volume, all at once, as reading them would, each
    /// waiting at most `wait` for Key Vault; answers the files that could not be, with why. Empty
    /// when the whole volume is readable. Cancelling the calling task calls the fetches off.
    public func load(_ files: [VolumeFile], from source: SourceID, wait: Duration) async -> [(
        file: VolumeFile, error: CacheError
    )] {
        await withTaskGroup(of: (VolumeFile, CacheError?).self) { group in
            for file in files {
                group.addTask {
                    do throws(CacheError) {
                        _ = try await self.render(file.reference, file.rendering, from: source, wait: wait)
                        return (file, nil)
                    } catch {
                        return (file, error)
                    }
                }
            }
            var failures: [(file: VolumeFile, error: CacheError)] = []
            for await (file, error) in group {
                if let error { failures.append((file, error)) }
            }
            return failures
        }
    }

    private func directoryAttributes(_ inode: UInt64, view: ViewDefinition?) -> FileAttributes {
        // The root of views (the CSI plugin's shared mount) leads to every pod's volume: root only, whatever
        // mode its mountpoint's parents have. Pods reach their own view through its bind mount.
        let ownership = view?.ownership ?? Ownership(uid: 0, gid: 0, fileMode: 0o444, directoryMode: 0o700)
        return FileAttributes(
            inode: inode, type: .directory, permissions: ownership.directoryMode, size: 0,
            uid: ownership.uid, gid: ownership.gid, modified: mountTime, created: mountTime, linkCount: 2)
    }

    /// A file's attributes. An earlier version's inode has no link left: the kernel keeps it that
    /// way (a link count of 1 here would undo what it was told), so its watchers hear it deleted.
    private func fileAttributes(
        _ inode: UInt64, version: InodeTable.FileVersion, permissions: UInt16, view: ViewDefinition
    ) -> FileAttributes {
        FileAttributes(
            inode: inode, type: .regular, permissions: permissions, size: version.size,
            uid: view.ownership.uid, gid: view.ownership.gid, modified: version.modified, created: version.created,
            linkCount: table.isLinked(inode) ? 1 : 0)
    }

    /// `user.*` attributes of a file: what Key Vault says about the version it shows.
    private func extendedAttributes(_ inode: UInt64) async throws(Errno) -> [(name: String, value: String)] {
        let (node, view) = try resolveNode(inode)
        guard let view, let object = node.object ?? self.object(shownBy: node.key.path, in: view) else { return [] }
        var reference = object.reference
        if reference.version == nil, let version = node.file?.version, !version.isEmpty { reference.version = version }
        let metadata: ObjectMetadata
        do {
            metadata = try await cache.metadata(reference, in: object.source)
        } catch {
            throw Self.errno(
                for: error, logger: logger, context: "read attributes of \(reference.kind.rawValue) \(reference.name)")
        }
        return ExtendedAttributes.list(for: metadata)
    }

    /// Key Vault's answer as an errno: gone or disabled objects do not exist here, refusals are
    /// EACCES, and outages without stale content to fall back on are EIO.
    static func errno(for error: CacheError, logger: Logger, context: String) -> Errno {
        switch error.kind {
        case .notFound:
            return .noEntry
        case .disabled:
            logger.info("\(context): the object is disabled in Key Vault")
            return .noEntry
        case .forbidden:
            logger.warning("\(context): \(error.message)")
            return .accessDenied
        case .timedOut, .throttled, .unavailable:
            // Key Vault may answer later: the reader sees the same error whether the fetch timeout ran
            // out or Key Vault asked for a longer wait than was left (docs/semantics.md, When Key Vault fails).
            logger.error("\(context): \(error.message) The next read tries again.")
            return .timedOut
        case .invalid:
            logger.error("\(context): \(error.message)")
            return .inputOutput
        }
    }
}
