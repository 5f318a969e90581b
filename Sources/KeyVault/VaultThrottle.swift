/// A vault's pause after Key Vault throttled it. Key Vault limits requests per vault, whoever
/// sends them, so when one request is answered 429 with `Retry-After`, every request to that
/// vault holds back until then instead of each learning of the limit with a 429 of its own
/// (which Key Vault counts too). Share one per vault between all its clients; a client made
/// without one has its own.
public actor VaultThrottle {
    private let elapsed: @Sendable () -> Duration
    private var pausedUntil: Duration = .zero

    public init(clock: any Clock<Duration> = ContinuousClock()) {
        elapsed = Self.measure(clock)
    }

    private static func measure<C: Clock<Duration>>(_ clock: C) -> @Sendable () -> Duration {
        let start = clock.now
        return { start.duration(to: clock.now) }
    }

    /// Key Vault asked for `wait`: no request goes to the vault before it has passed.
    func pause(for wait: Duration) {
        pausedUntil = max(pausedUntil, elapsed() + wait)
    }

    /// How long a request must still hold back; zero when the vault is not paused.
    func remainingPause() -> Duration {
        max(.zero, pausedUntil - elapsed())
    }
}
