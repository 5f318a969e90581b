import Dispatch
import Glibc

/// Runs a handler on SIGTERM, SIGINT and SIGHUP instead of dying, so the daemon can unmount
/// cleanly. SIGPIPE is ignored: a closed pipe is an error to handle, not a reason to exit.
public final class SignalWatcher: @unchecked Sendable {
    // @unchecked: the sources are created once and only cancelled in deinit.
    private let sources: [any DispatchSourceSignal]

    public init(_ handler: @escaping @Sendable (Int32) -> Void) {
        signal(SIGPIPE, SIG_IGN)
        sources = [SIGTERM, SIGINT, SIGHUP].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { handler(number) }
            source.resume()
            return source
        }
    }

    deinit {
        sources.forEach { $0.cancel() }
    }
}
