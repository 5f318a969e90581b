/// Why the emulator could not start, or refused a setting.
public enum EmulatorError: Error, CustomStringConvertible, Sendable {
    case cannotWriteCA(path: String, reason: String)
    case cannotListen(port: Int, reason: String)
    case invalidSeed(SeedError)
    case cryptography(String)
    case invalidTiming(String)

    public var description: String {
        switch self {
        case .cannotWriteCA(let path, let reason):
            "cannot write the CA certificate to \(path): \(reason). Choose a writable path with --ca-out."
        case .cannotListen(let port, let reason):
            "cannot listen on port \(port): \(reason). Pick another port, or 0 for any free port."
        case .invalidSeed(let error):
            error.description
        case .cryptography(let reason):
            "generating the emulator's keys or certificates failed: \(reason)"
        case .invalidTiming(let problem):
            "invalid vault timing: \(problem)"
        }
    }
}
