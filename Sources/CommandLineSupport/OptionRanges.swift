import ArgumentParser

/// Checks a whole-number option against the values it allows, with one wording for every option:
/// `--ttl must be between 1 and 86400 seconds; got 0.`
public func requireOption(_ name: String, _ value: Int, in allowed: ClosedRange<Int>, unit: String? = nil) throws {
    guard !allowed.contains(value) else { return }
    let bounds = "\(allowed.lowerBound) and \(allowed.upperBound)" + (unit.map { " " + $0 } ?? "")
    throw ValidationError("--\(name) must be between \(bounds); got \(value).")
}
