import HTTPTransport
import HTTPTypes

extension KeyVaultClient {
    /// Repeats `attempt` while its failure may pass: transport errors that are retryable, and
    /// the statuses in `isRetryable`, with backoff (or the server's `Retry-After`, capped) within
    /// the call's deadline. Returns the last answer, which is a retryable status when retries or
    /// time ran out; throws when the transport failed for good.
    func retrying(
        operation: String, _ attempt: () async throws -> HTTPClientResponse
    ) async throws(KeyVaultError) -> HTTPClientResponse {
        let budget = RetryBudget(clock: options.clock, budget: options.retry.deadline)
        var retries = 0  // every retry: the backoff grows with them
        var countedRetries = 0  // the ones maxRetries limits
        while true {
            let outcome: Result<HTTPClientResponse, HTTPTransportError>
            do {
                outcome = .success(try await attempt())
            } catch let error as HTTPTransportError {
                outcome = .failure(error)
            } catch let error as KeyVaultError {
                throw error
            } catch {
                throw KeyVaultError(kind: .invalidResponse, operation: operation, vault: vault.url, detail: "\(error)")
            }
            let wait: Duration
            // Throttling that says when to come back is waited out for as long as the deadline
            // allows, however often: requests sharing a throttled vault each get through only now
            // and then, and a count would fail the unlucky ones early.
            var counts = true
            switch outcome {
            case .success(let response):
                let retryAfter = RetryAfter.parse(response.head.headerFields)
                counts = !(response.head.status.code == 429 && retryAfter != nil)
                guard Self.isRetryable(response.head.status.code), !counts || countedRetries < options.retry.maxRetries
                else {
                    return response
                }
                wait =
                    retryAfter.map { min($0, options.retry.maxRetryAfter) }
                    ?? options.retry.backoff.delay(beforeRetry: retries)
                guard budget.allows(waiting: wait) else { return response }
            case .failure(let transport):
                if transport.kind == .cancelled {
                    throw KeyVaultError(
                        kind: .cancelled, operation: operation, vault: vault.url, detail: transport.reason)
                }
                let failure = KeyVaultError(
                    kind: .transport, operation: operation, vault: vault.url, detail: transport.description)
                wait = options.retry.backoff.delay(beforeRetry: retries)
                guard transport.isRetryable, countedRetries < options.retry.maxRetries, budget.allows(waiting: wait)
                else {
                    throw failure
                }
            }
            do {
                try await budget.sleep(for: wait)
            } catch {
                throw KeyVaultError(
                    kind: .cancelled, operation: operation, vault: vault.url, detail: "cancelled while waiting to retry"
                )
            }
            retries += 1
            if counts { countedRetries += 1 }
        }
    }

    /// 408, 429 and the 5xx statuses Azure's SDKs retry.
    static func isRetryable(_ status: Int) -> Bool {
        [408, 429, 500, 502, 503, 504].contains(status)
    }
}
