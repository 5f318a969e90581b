/// gRPC status the CSI server answers with; messages never contain secrets or tokens.
///
/// Messages reuse the Azure provider's texts (docs/kubernetes.md) where it has one, so people can
/// search for them, and add what to do about it.
public struct VolumeError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// A parameter, volume attribute or object field is wrong: fix the manifest.
        case invalidArgument
        /// The request is well-formed but the plugin's configuration refuses it (node identity not allowed).
        case failedPrecondition
        /// The credentials the identity mode needs are missing or malformed (service-account token, secret).
        case unauthenticated
        /// Something the request names does not exist (a version for objectVersionHistory).
        case notFound
        /// The volume is already published at the target with other arguments.
        case alreadyExists
        /// Key Vault refused the identity (403).
        case permissionDenied
        /// Another operation on the same volume is in progress: retry.
        case aborted
        /// A limit of the plugin is reached (concurrent publishes, memory for published content).
        case resourceExhausted
        /// Key Vault or Entra ID did not answer in time.
        case deadlineExceeded
        /// Key Vault, Entra ID or the Kubernetes API failed or throttled: retry.
        case unavailable
        case internalError

        /// The numeric gRPC status code (google.rpc.Code).
        public var grpcStatus: Int32 {
            switch self {
            case .invalidArgument: 3
            case .deadlineExceeded: 4
            case .notFound: 5
            case .alreadyExists: 6
            case .permissionDenied: 7
            case .resourceExhausted: 8
            case .failedPrecondition: 9
            case .aborted: 10
            case .internalError: 13
            case .unavailable: 14
            case .unauthenticated: 16
            }
        }
    }

    public var code: Code
    public var message: String
    public var description: String { message }

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    static func invalidArgument(_ message: String) -> VolumeError { VolumeError(.invalidArgument, message) }
    static func unauthenticated(_ message: String) -> VolumeError { VolumeError(.unauthenticated, message) }
}
