import ArgumentParser
import ObjectCache

/// How long content is trusted and how much of it is kept.
public struct CacheOptions: ParsableArguments {
    public init() {}

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Revalidate latest content and listings this often while they are being read.", valueName: "seconds"))
    public var ttl = 120

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "When Key Vault fails, keep serving the last good content for up to this long.", valueName: "seconds"))
    public var maxStale = 86_400

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Forget (and wipe) content not read for this long (default 600; content a published CSI volume shows is kept while it is published).",
            valueName: "seconds"))
    public var idleTimeout: Int?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "A read of content not cached yet fails with 'Connection timed out' when Key Vault has not answered by then; the next read tries again. Cached content is served without waiting.",
            valueName: "seconds"))
    public var fetchTimeout = 10

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Remember that a name does not exist for this long.", valueName: "seconds"))
    public var negativeTTL = 10

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("How long the kernel trusts names and attributes before asking again.", valueName: "seconds")
    )
    public var metadataTTL: Double = 1

    @Option(parsing: .unconditional, help: ArgumentHelp("Memory bound for cached content.", valueName: "MiB"))
    public var cacheSize = 64

    @Option(
        parsing: .unconditional,
        help: "Concurrent requests (and keep-alive connections) to one vault at most.")
    public var maxConcurrency = 32

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Requests per second to one vault at most, each page of a listing included (Key Vault allows 4000 per 10 s per vault).",
            valueName: "n"))
    public var rateLimit: Double = 200

    public func validate() throws {
        try requireOption("ttl", ttl, in: 1...86_400, unit: "seconds")
        guard maxStale >= 0 else { throw ValidationError("--max-stale must not be negative.") }
        if let idleTimeout, idleTimeout < ttl {
            throw ValidationError("--idle-timeout (\(idleTimeout)) must be at least --ttl (\(ttl)).")
        }
        try requireOption("fetch-timeout", fetchTimeout, in: 1...600, unit: "seconds")
        try requireOption("negative-ttl", negativeTTL, in: 0...3600, unit: "seconds")
        guard metadataTTL > 0, metadataTTL <= 3600 else {
            throw ValidationError("--metadata-ttl must be above 0 and at most 3600 seconds.")
        }
        try requireOption("cache-size", cacheSize, in: 1...65_536, unit: "MiB")
        try requireOption("max-concurrency", maxConcurrency, in: 1...256)
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
