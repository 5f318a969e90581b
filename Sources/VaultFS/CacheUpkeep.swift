import ObjectCache
import ServiceLifecycle

/// The filesystem's cache while a daemon serves it: refreshed by the cache's maintenance, and
/// its changes turned into kernel invalidations. A graceful shutdown empties it; a cancelled
/// group (the daemon failing) leaves it to the process's exit.
public struct CacheUpkeep: Service {
    private let filesystem: VaultFileSystem

    public init(filesystem: VaultFileSystem) {
        self.filesystem = filesystem
    }

    public func run() async throws {
        let watcher = filesystem.watchCache()
        defer { watcher.cancel() }
        await filesystem.cache.startMaintenance()
        try await gracefulShutdown()
        await filesystem.cache.shutdown()
    }
}
