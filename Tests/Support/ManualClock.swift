import Foundation
import Synchronization

/// Time that moves only when a test says so, read the two ways the code under test reads time:
/// `now`, monotonic (ObjectCache's configuration counts in Durations), and `date`, wall time
/// (token expiry, the emulator's windows, the service-account verifier). Sleepers wake when it
/// has moved far enough.
public final class ManualClock: Sendable {
    private struct Sleeper {
        var deadline: Duration
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now = ManualClock.start
        var sleepers: [UInt64: Sleeper] = [:]
        var cancelled: Set<UInt64> = []
        var lastID: UInt64 = 0
    }

    /// Where `now` starts: far enough from zero that a test can look back from it.
    private static let start = Duration.seconds(1_000)
    private let startDate: Date
    private let state = Mutex(State())

    /// `date` starts at `date`: a whole second where a test compares times it computes itself.
    public init(date: Date = Date()) {
        startDate = date
    }

    public var now: Duration { state.withLock { $0.now } }

    public var date: Date {
        let elapsed = (now - Self.start).components
        return startDate.addingTimeInterval(Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18)
    }

    /// `date` in whole seconds since 1970, as JWT claims count.
    public var secondsSince1970: Int64 { Int64(date.timeIntervalSince1970.rounded(.down)) }

    public var sleepers: Int { state.withLock { $0.sleepers.count } }

    /// Sleepers that wake within `horizon`: a rate limiter's short waits, say, not long deadlines.
    public func sleepers(dueWithin horizon: Duration) -> Int {
        state.withLock { state in state.sleepers.values.filter { $0.deadline <= state.now + horizon }.count }
    }

    public func advance(by duration: Duration) {
        let ready = state.withLock { state in
            state.now += duration
            let due = state.sleepers.filter { $0.value.deadline <= state.now }
            for id in due.keys { state.sleepers[id] = nil }
            return due.values.map(\.continuation)
        }
        for continuation in ready { continuation.resume() }
    }

    public func sleep(for duration: Duration) async throws {
        let (id, deadline) = state.withLock { state in
            state.lastID += 1
            return (state.lastID, state.now + duration)
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome: Result<Void, any Error>? = state.withLock { state in
                    if state.cancelled.remove(id) != nil { return .failure(CancellationError()) }
                    if deadline <= state.now { return .success(()) }
                    state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let sleeper = state.withLock { state in
                guard let sleeper = state.sleepers.removeValue(forKey: id) else {
                    state.cancelled.insert(id)
                    return nil as Sleeper?
                }
                return sleeper
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }
}
