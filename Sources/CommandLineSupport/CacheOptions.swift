import ArgumentParser
import ObjectCache

/// How long content is trusted and how much of it is kept.
public struct CacheOptions: ParsableArguments {
    public init() {}

    @Option(
        help: ArgumentHelp(
            "Revalidate latest content and listings this often while they are being read.", valueName: "seconds"))
    public var ttl = 120

    @Option(
        name: .customLong("max-stale"),
        help: ArgumentHelp(
            "When Key Vault fails, keep serving the last good content for up to this long.", valueName: "seconds"))
    public var maxStale = 86_400

    @Option(
        name: .customLong("idle-timeout"),
        help: ArgumentHelp(
            "Forget (and wipe) content not read for this long (default 600; content a published CSI volume shows is kept while it is published).",
            valueName: "seconds"))
    public var idleTimeout: Int?

    @Option(
        name: .customLong("fetch-timeout"),
        help: ArgumentHelp(
            "A read of content not cached yet fails with 'Connection timed out' when Key Vault has not answered by then; the next read tries again. Cached content is served without waiting.",
            valueName: "seconds"))
    public var fetchTimeout = 10

    @Option(
        name: .customLong("negative-ttl"),
        help: ArgumentHelp("Remember that a name does not exist for this long.", valueName: "seconds"))
    public var negativeTTL = 10

    @Option(
        name: .customLong("metadata-ttl"),
        help: ArgumentHelp("How long the kernel trusts names and attributes before asking again.", valueName: "seconds")
    )
    public var metadataTTL: Double = 1

    @Option(name: .customLong("cache-size"), help: ArgumentHelp("Memory bound for cached content.", valueName: "MiB"))
    public var cacheSize = 64

    @Option(
        name: .customLong("max-concurrency"),
        help: "Concurrent requests (and keep-alive connections) to one vault at most.")
    public var maxConcurrency = 32

    @Option(
        name: .customLong("rate-limit"),
        help: ArgumentHelp(
            "Requests per second to one vault at most, each page of a listing included (Key Vault allows 4000 per 10 s per vault).",
            valueName: "n"))
    public var rateLimit: Double = 200

    public func validate() throws {
        guard (1...86_400).contains(ttl) else {
            throw ValidationError("--ttl must be between 1 and 86400 seconds; got \(ttl).")
        }
        guard maxStale >= 0 else { throw ValidationError("--max-stale must not be negative.") }
        if let idleTimeout, idleTimeout < ttl {
            throw ValidationError("--idle-timeout (\(idleTimeout)) must be at least --ttl (\(ttl)).")
        }
        guard (1...600).contains(fetchTimeout) else {
            throw ValidationError("--fetch-timeout must be between 1 and 600 seconds; got \(fetchTimeout).")
        }
        guard (0...3600).contains(negativeTTL) else {
            throw ValidationError("--negative-ttl must be between 0 and 3600 seconds.")
        }
        guard metadataTTL > 0, metadataTTL <= 3600 else {
            throw ValidationError("--metadata-ttl must be above 0 and at most 3600 seconds.")
        }
        guard (1...65_536).contains(cacheSize) else {
            throw ValidationError("--cache-size must be between 1 and 65536 MiB.")
        }
        guard (1...256).contains(maxConcurrency) else {
            throw ValidationError("--max-concurrency must be between 1 and 256.")
        }
        guard rateLimit > 0, rateLimit <= 10_000 else {
            throw ValidationError("--rate-limit must be above 0 and at most 10000.")
        }
    }

    /// `defaultIdleTimeout` applies when --idle-timeout is not given.
    public func configuration(defaultIdleTimeout: Duration) -> CacheConfiguration {
        var configuration = CacheConfiguration()
        configuration.ttl = .seconds(ttl)
        configuration.maxStaleness = .seconds(maxStale)
        configuration.idleTimeout = idleTimeout.map { .seconds($0) } ?? max(defaultIdleTimeout, .seconds(ttl))
        configuration.negativeTTL = .seconds(negativeTTL)
        configuration.fetchTimeout = .seconds(fetchTimeout)
        configuration.maxBytes = cacheSize << 20
        configuration.maxConcurrentRequestsPerVault = maxConcurrency
        configuration.requestsPerSecondPerVault = rateLimit
        return configuration
    }
}
