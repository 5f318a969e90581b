import Metrics

/// The cache's metrics (docs/metrics.md). Created on first use, which comes after the daemons
/// bootstrap the metrics system; without one they cost nothing.
enum CacheMetrics {
    /// Answers from memory, including remembered absences.
    static let hits = Counter(label: "akvfs_cache_hits_total")
    /// Answers that had to ask Key Vault.
    static let misses = Counter(label: "akvfs_cache_misses_total")
    /// Answers of the last good content while revalidating it fails.
    static let staleAnswers = Counter(label: "akvfs_cache_stale_answers_total")
}
