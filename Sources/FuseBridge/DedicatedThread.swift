import Glibc

/// Runs blocking work on a new POSIX thread and awaits its result, keeping it off Swift's
/// cooperative thread pool.
enum DedicatedThread {
    private final class Work: @unchecked Sendable {
        // @unchecked: written by the new thread once, before the continuation is resumed.
        let body: @Sendable () -> Int32
        let continuation: CheckedContinuation<Int32, Never>
        init(body: @escaping @Sendable () -> Int32, continuation: CheckedContinuation<Int32, Never>) {
            self.body = body
            self.continuation = continuation
        }
    }

    static func run(_ body: @escaping @Sendable () -> Int32) async -> Int32 {
        await withCheckedContinuation { continuation in
            let work = Unmanaged.passRetained(Work(body: body, continuation: continuation)).toOpaque()
            var thread = pthread_t()
            let status = pthread_create(
                &thread, nil,
                { context in
                    let work = Unmanaged<Work>.fromOpaque(context!).takeRetainedValue()
                    work.continuation.resume(returning: work.body())
                    return nil
                }, work)
            if status == 0 {
                pthread_detach(thread)
            } else {
                let work = Unmanaged<Work>.fromOpaque(work).takeRetainedValue()
                work.continuation.resume(returning: -status)
            }
        }
    }
}
