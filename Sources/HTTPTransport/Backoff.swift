import FoundationEssentials
import HTTPTypes

/// Exponential backoff with jitter, as Azure's guidance and SDKs do it: the n-th retry waits about
/// `base × 2ⁿ`, scaled by a random factor in [0.8, 1.3) so many clients do not retry in step,
/// and never longer than `maximum`.
public struct Backoff: Sendable, Equatable {
    public var base: Duration
    public var maximum: Duration

    public init(base: Duration = .milliseconds(800), maximum: Duration = .seconds(60)) {
        self.base = base
        self.maximum = maximum
    }

    /// The wait before retry number `retry` (0 for the first retry).
    public func delay(beforeRetry retry: Int, jitter: Double = Double.random(in: 0.8..<1.3)) -> Duration {
        let exponent = min(retry, 30)
        let scaled = base * (1 << exponent)
        let capped = min(scaled, maximum)
        return min(capped * jitter, maximum)
    }
}

/// Reads how long a server asks the client to wait: `retry-after-ms` and `x-ms-retry-after-ms`
/// (milliseconds), then `Retry-After` (seconds, or an HTTP date).
public enum RetryAfter {
    public static func parse(_ headers: HTTPFields, now: Date = Date()) -> Duration? {
        for name in ["retry-after-ms", "x-ms-retry-after-ms"] {
            if let field = HTTPField.Name(name), let text = headers[field], let value = Double(text.trimmingSpaces),
                value >= 0
            {
                return .milliseconds(Int64(value))
            }
        }
        guard let text = headers[.retryAfter]?.trimmingSpaces, !text.isEmpty else { return nil }
        if let seconds = Double(text), seconds >= 0 { return .milliseconds(Int64(seconds * 1000)) }
        if let date = parseHTTPDate(text) {
            let seconds = max(0, date.timeIntervalSince(now))
            return .milliseconds(Int64(seconds * 1000))
        }
        return nil
    }

    /// IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT` (the only form servers may send now).
    static func parseHTTPDate(_ text: String) -> Date? {
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[5] == "GMT",
            let day = Int(parts[1]),
            let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].firstIndex(
                of: String(parts[2])),
            let year = Int(parts[3])
        else { return nil }
        let clock = parts[4].split(separator: ":").compactMap { Int($0) }
        guard clock.count == 3 else { return nil }
        var components = DateComponents()
        components.year = year
        components.month = month + 1
        components.day = day
        components.hour = clock[0]
        components.minute = clock[1]
        components.second = clock[2]
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: 0)!
        return calendar.date(from: components)
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}

/// A time budget for an operation and its retries, on an injectable clock (tests use one that
/// does not really sleep).
public struct RetryBudget: Sendable {
    private let elapsed: @Sendable () -> Duration
    private let sleeper: @Sendable (Duration) async throws -> Void
    public let budget: Duration

    public init(clock: any Clock<Duration>, budget: Duration) {
        (elapsed, sleeper) = Self.measure(clock)
        self.budget = budget
    }

    private static func measure<C: Clock<Duration>>(_ clock: C) -> (
        @Sendable () -> Duration, @Sendable (Duration) async throws -> Void
    ) {
        let start = clock.now
        return ({ start.duration(to: clock.now) }, { try await clock.sleep(for: $0) })
    }

    /// Whether waiting `delay` still ends inside the budget.
    public func allows(waiting delay: Duration) -> Bool {
        elapsed() + delay < budget
    }

    public func sleep(for delay: Duration) async throws {
        try await sleeper(delay)
    }
}
