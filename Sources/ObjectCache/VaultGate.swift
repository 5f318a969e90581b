/// Admission for source calls to one vault, shared by every identity that reads it: at most
/// `limit` calls in flight (waiters are served first come, first served) and a token bucket of
/// `rate` calls per second with a burst of twice that.
///
/// The bucket is refilled from `configuration.now` and an empty bucket waits with
/// `configuration.sleep` for exactly the time the next token needs, then looks again. With the
/// real clock that wait is right the first time; with a hand-driven clock in tests the waiter
/// wakes when the test advances time. Nothing here blocks a thread.
actor VaultGate {
    private let limit: Int
    private let rate: Double
    private let burst: Double
    private let now: @Sendable () -> Duration
    private let sleep: @Sendable (Duration) async throws -> Void

    private var inFlight = 0
    private var waiters: [(id: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
    private var lastWaiterID: UInt64 = 0
    private var tokens: Double
    private var refilledAt: Duration

    init(configuration: CacheConfiguration) {
        limit = max(1, configuration.maxConcurrentRequestsPerVault)
        rate = configuration.requestsPerSecondPerVault
        burst = max(1, 2 * configuration.requestsPerSecondPerVault)
        now = configuration.now
        sleep = configuration.sleep
        tokens = burst
        refilledAt = configuration.now()
    }

    private var isRateLimited: Bool { rate > 0 && rate.isFinite }

    /// Waits for a slot and a token. Every successful `enter` must be followed by one `leave`.
    func enter() async throws(CancellationError) {
        try await takeSlot()
        do {
            try await takeToken()
        } catch {
            leave()
            throw error
        }
    }

    /// Another request within a call that entered (a listing's next page): one more token,
    /// on the slot the call already holds.
    func pace() async throws(CancellationError) {
        try await takeToken()
    }

    func leave() {
        if waiters.isEmpty {
            inFlight -= 1
        } else {
            // The slot passes straight to the longest waiter.
            waiters.removeFirst().continuation.resume()
        }
    }

    private func takeSlot() async throws(CancellationError) {
        if inFlight < limit && waiters.isEmpty {
            inFlight += 1
            return
        }
        if Task.isCancelled { throw CancellationError() }
        lastWaiterID += 1
        let id = lastWaiterID
        do {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    waiters.append((id, continuation))
                }
            } onCancel: {
                Task { await self.abandon(id) }
            }
        } catch {
            throw CancellationError()
        }
    }

    /// A cancelled waiter leaves the queue; if it was already handed a slot it keeps it and
    /// its caller leaves as usual.
    private func abandon(_ id: UInt64) {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
        waiters.remove(at: index).continuation.resume(throwing: CancellationError())
    }

    private func takeToken() async throws(CancellationError) {
        guard isRateLimited else { return }
        while true {
            refill()
            if tokens >= 1 {
                tokens -= 1
                return
            }
            do {
                try await sleep(.seconds((1 - tokens) / rate))
            } catch {
                throw CancellationError()
            }
            if Task.isCancelled { throw CancellationError() }
        }
    }

    private func refill() {
        let current = now()
        let elapsed = current - refilledAt
        guard elapsed > .zero else { return }
        tokens = min(burst, tokens + elapsed.seconds * rate)
        refilledAt = current
    }
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) * 1e-18
    }
}
