/// A test's own failure with its reason, for helpers that throw rather than record an issue.
public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
