/// Why mounting, serving or unmounting failed, with what to do about it.
public struct FuseError: Error, CustomStringConvertible, Sendable {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
