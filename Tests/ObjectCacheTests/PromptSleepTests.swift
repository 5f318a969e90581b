import ObjectCache
import Testing

@Suite("promptSleep")
struct PromptSleepTests {
    @Test func sleepsAtLeastAsLongAsAsked() async throws {
        let clock = ContinuousClock()
        let start = clock.now
        try await promptSleep(for: .milliseconds(50))
        #expect(start.duration(to: clock.now) >= .milliseconds(50))
    }

    @Test func aZeroOrNegativeSleepReturns() async throws {
        try await promptSleep(for: .zero)
        try await promptSleep(for: .seconds(-1))
    }

    @Test(.timeLimit(.minutes(1)))
    func cancelledWhileAsleepItThrowsAtOnce() async throws {
        let sleeper = Task { try await promptSleep(for: .seconds(3600)) }
        try await Task.sleep(for: .milliseconds(50))
        sleeper.cancel()
        await #expect(throws: CancellationError.self) { try await sleeper.value }
    }

    @Test(.timeLimit(.minutes(1)))
    func cancelledBeforeItStartsItThrows() async throws {
        let sleeper = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await promptSleep(for: .seconds(3600))
        }
        await #expect(throws: CancellationError.self) { try await sleeper.value }
    }

    /// Many sleeps cancelled at every point of their start: each ends, none is lost or resumed twice
    /// (a double resume traps).
    @Test(.timeLimit(.minutes(1)))
    func cancellationRacingTheStartAlwaysEnds() async {
        await withTaskGroup(of: Void.self) { group in
            for round in 0..<2_000 {
                let sleeper = Task { try await promptSleep(for: round.isMultiple(of: 2) ? .seconds(3600) : .zero) }
                group.addTask {
                    sleeper.cancel()
                    _ = await sleeper.result
                }
            }
        }
    }
}
