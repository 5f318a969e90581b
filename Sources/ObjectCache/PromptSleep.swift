import Dispatch
import Synchronization

/// `Task.sleep`, except that cancelling it gives its memory back at once.
///
/// The runtime keeps a cancelled `Task.sleep`'s timer, about 750 bytes, until the deadline it
/// was given. The cache sets a deadline on every fetch (`Deadline.value`) and cancels it as soon
/// as Key Vault answers, so a mount that reads 10,000 secrets within `--fetch-timeout` held
/// 7 MiB of dead timers, and the allocator kept most of that memory afterwards. A dispatch timer
/// is freed when it is cancelled.
public func promptSleep(for duration: Duration) async throws {
    let sleeper = Sleeper()
    try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
            sleeper.start(continuation, after: duration)
        }
    } onCancel: {
        sleeper.wake(cancelled: true)
    }
}

private final class Sleeper: Sendable {
    private enum State {
        case idle
        case sleeping(CheckedContinuation<Void, any Error>, Timer)
        /// Cancelled before it started: `start` resumes at once.
        case cancelledEarly
        case woken
    }

    /// Dispatch's timer source does not declare itself Sendable; it is only created in `start`,
    /// and only cancelled once, by whoever takes it out of `state`.
    private struct Timer: @unchecked Sendable {
        let source: any DispatchSourceTimer
    }

    private static let queue = DispatchQueue(label: "akvfs.sleep")
    private let state = Mutex(State.idle)

    func start(_ continuation: CheckedContinuation<Void, any Error>, after duration: Duration) {
        // Made only once it will be resumed: dispatch traps on releasing a source never resumed.
        let source: (any DispatchSourceTimer)? = state.withLock { state in
            guard case .idle = state else { return nil }
            let source = DispatchSource.makeTimerSource(queue: Self.queue)
            state = .sleeping(continuation, Timer(source: source))
            return source
        }
        guard let source else { return continuation.resume(throwing: CancellationError()) }
        source.schedule(deadline: .now() + Self.interval(duration))
        source.setEventHandler { [weak self] in self?.wake(cancelled: false) }
        source.resume()
    }

    func wake(cancelled: Bool) {
        let sleeping: (CheckedContinuation<Void, any Error>, Timer)? = state.withLock { state in
            switch state {
            case .sleeping(let continuation, let timer):
                state = .woken
                return (continuation, timer)
            case .idle:
                if cancelled { state = .cancelledEarly }
                return nil
            case .cancelledEarly, .woken:
                return nil
            }
        }
        guard let (continuation, timer) = sleeping else { return }
        timer.source.cancel()
        if cancelled {
            continuation.resume(throwing: CancellationError())
        } else {
            continuation.resume()
        }
    }

    /// Dispatch counts in nanoseconds up to Int.max (292 years); longer is as good as never.
    private static func interval(_ duration: Duration) -> DispatchTimeInterval {
        let (seconds, attoseconds) = duration.components
        guard seconds > 0 || attoseconds > 0 else { return .nanoseconds(0) }
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow, whole < Int64.max - 1_000_000_000 else { return .never }
        return .nanoseconds(Int(whole + attoseconds / 1_000_000_000))
    }
}
