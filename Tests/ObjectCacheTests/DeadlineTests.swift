import ObjectCache
import TestSupport
import Testing

@Suite("Deadline")
struct DeadlineTests {
    @Test func answersTheValueWhenItComesFirstAndLeavesNoTimerSleeping() async {
        let clock = ManualClock()
        let task = Task { 42 }
        #expect(await Deadline.value(of: task, within: .seconds(5), sleep: { try await clock.sleep(for: $0) }) == 42)
        await waitUntil("the timer is gone") { clock.sleepers == 0 }
    }

    @Test func answersNilWhenTheLimitPassesAndTheTaskGoesOn() async {
        let clock = ManualClock()
        let gate = AsyncStream<Void>.makeStream()
        let task = Task { () -> Int in
            for await _ in gate.stream { break }
            return 7
        }
        let waiter = Task {
            await Deadline.value(of: task, within: .seconds(5), sleep: { try await clock.sleep(for: $0) })
        }
        await waitUntil("the timer sleeps") { clock.sleepers == 1 }
        clock.advance(by: .seconds(5))
        #expect(await waiter.value == nil)
        gate.continuation.yield()
        #expect(await task.value == 7, "the task was not cancelled")
    }

    @Test func answersNilWhenTheWaiterIsCancelled() async {
        let clock = ManualClock()
        let task = Task { () -> Int in
            try? await Task.sleep(for: .seconds(3600))
            return 1
        }
        let waiter = Task {
            await Deadline.value(of: task, within: .seconds(3600), sleep: { try await clock.sleep(for: $0) })
        }
        await waitUntil("the timer sleeps") { clock.sleepers == 1 }
        waiter.cancel()
        #expect(await waiter.value == nil)
        await waitUntil("the timer is gone") { clock.sleepers == 0 }
        task.cancel()
    }

    @Test func aWaiterCancelledBeforeItStartsAnswersNil() async {
        let task = Task { () -> Int in
            try? await Task.sleep(for: .seconds(3600))
            return 1
        }
        let waiter = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await Deadline.value(of: task, within: .seconds(3600))
        }
        #expect(await waiter.value == nil)
        task.cancel()
    }

    /// The bug this helper once had: the timer was cancelled before the value was handed back,
    /// and a cancelled sleep returns at once, so it could win and answer nil for a value that
    /// came in time. With a real clock and finished tasks, every one of many races must answer.
    @Test func aValueThatCameInTimeIsNeverLostToTheCancelledTimer() async {
        var lost = 0
        for round in 0..<2_000 {
            let task = Task { round }
            _ = await task.value
            if await Deadline.value(of: task, within: .seconds(30)) == nil { lost += 1 }
        }
        #expect(lost == 0)
    }
}
