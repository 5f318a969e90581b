/// Why a descriptor or state could not be passed between akvfs processes, or used once passed.
public struct ContinuityError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
