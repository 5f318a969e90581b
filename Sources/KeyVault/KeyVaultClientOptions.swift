import HTTPTransport

/// How hard to try before giving up.
public struct RetryOptions: Sendable {
    /// Retries after the first attempt.
    public var maxRetries = 8
    public var backoff = Backoff(base: .milliseconds(800), maximum: .seconds(60))
    /// A server's `Retry-After` is honoured up to this long (longer asks are shortened to it).
    public var maxRetryAfter: Duration = .seconds(120)
    /// The whole call, retries and waits included, ends by then.
    public var deadline: Duration = .seconds(180)

    public init() {}
}

public struct KeyVaultClientOptions: Sendable {
    public var apiVersion = "7.6"
    public var retry = RetryOptions()
    public var requestTimeout: Duration = .seconds(30)
    /// Refuse to send a token when the challenge's resource is not the vault's domain. Turn off
    /// only for a vault behind a custom domain you trust.
    public var verifyChallengeResource = true
    /// How many concurrent first requests to a vault ask it unauthenticated on their own (each
    /// answered 401 with the challenge) before the rest wait for one answer. Over pooled HTTP/1.1
    /// each opens a connection the burst reuses once the token comes; set it to the concurrency
    /// the burst may have. 1: one probe, every other first request waits for it.
    public var parallelFirstContacts = 1
    public var clock: any Clock<Duration> = ContinuousClock()

    public init() {}
}
