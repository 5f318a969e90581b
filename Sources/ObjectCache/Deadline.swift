import Synchronization

/// Waiting for a task with a deadline, without waiting for the task itself to end.
public enum Deadline {
    /// The task's value, or nil when `limit` passes first or the waiting task is cancelled. The
    /// task goes on either way (cancel it yourself if nobody else wants it); the timer does not.
    /// (Not a task group: a group would wait for the task before returning.)
    public static func value<Value: Sendable>(
        of task: Task<Value, Never>, within limit: Duration,
        sleep: @escaping @Sendable (Duration) async throws -> Void = { try await promptSleep(for: $0) }
    ) async -> Value? {
        let race = Race<Value>()
        // Ends when the task does; cancelling it could not make `task.value` return sooner.
        Task { race.finish(await task.value) }
        let timer = Task {
            try? await sleep(limit)
            race.finish(nil)
        }
        let value = await withTaskCancellationHandler {
            await withCheckedContinuation { race.start($0) }
        } onCancel: {
            race.finish(nil)
        }
        timer.cancel()
        return value
    }

    /// Resumes one continuation with the first result, whether it comes before or after the
    /// continuation is installed; later results are ignored.
    private final class Race<Value: Sendable>: Sendable {
        private enum State {
            case idle
            case waiting(CheckedContinuation<Value?, Never>)
            case finished(Value?)
        }

        private let state = Mutex(State.idle)

        func start(_ continuation: CheckedContinuation<Value?, Never>) {
            let early: Value?? = state.withLock { state in
                guard case .finished(let value) = state else {
                    state = .waiting(continuation)
                    return nil
                }
                return .some(value)
            }
            if let early { continuation.resume(returning: early) }
        }

        func finish(_ value: Value?) {
            let waiting: CheckedContinuation<Value?, Never>? = state.withLock { state in
                switch state {
                case .idle:
                    state = .finished(value)
                    return nil
                case .waiting(let continuation):
                    state = .finished(value)
                    return continuation
                case .finished:
                    return nil
                }
            }
            waiting?.resume(returning: value)
        }
    }
}
