import Foundation

/// Runs blocking work (waitpid, reads of a FUSE mount, read loops) on a thread of its own.
///
/// Not on `DispatchQueue.global()`: on Linux its worker threads are the ones Swift's
/// cooperative pool runs on, only about one per core. A test whose readers block there starves
/// the emulator in the same process, so a daemon's request to it stalls until some 10 s timeout.
public func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.stackSize = 1 << 20
        thread.start()
    }
}

/// Runs `body(0..<count)` on `count` threads at once and waits for all of them.
public func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) async {
    await withTaskGroup(of: Void.self) { group in
        for index in 0..<count {
            group.addTask { _ = try? await onOwnThread { body(index) } }
        }
    }
}
