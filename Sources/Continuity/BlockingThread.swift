import Dispatch
import Glibc
import Synchronization

/// A POSIX thread for work that blocks (accepting on a socket), off Swift's cooperative pool.
enum Thread {
    private final class Body: Sendable {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    static func detached(_ body: @escaping @Sendable () -> Void) {
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        var thread = pthread_t()
        let started = pthread_create(
            &thread, nil,
            { context in
                Unmanaged<Body>.fromOpaque(context!).takeRetainedValue().run()
                return nil
            }, context)
        if started == 0 {
            pthread_detach(thread)
        } else {
            Unmanaged<Body>.fromOpaque(context).release()
        }
    }
}

/// Waits, on a thread that may block, for async work.
func blockOn<Result: Sendable>(_ work: @escaping @Sendable () async -> Result) -> Result {
    let outcome = Mutex<Result?>(nil)
    let done = DispatchSemaphore(value: 0)
    Task {
        let result = await work()
        outcome.withLock { $0 = result }
        done.signal()
    }
    done.wait()
    return outcome.withLock { $0! }
}
