import Formats
import Simulation
import Testing

/// Vote starvation in simulated time: spam above a validator's capacity starves the votes of a node with
/// one ingress queue, and each fix keeps finality going (the library's four vote-starvation files, small).
@Suite struct SimulationSpamTests {
    static func longestGapMs(ingress: String, k: Double, seed: UInt64 = 1) throws -> (gapMs: UInt64, spamSent: Int) {
        let scenario = try SimulationTests.scenario("""
            [[step]]
            id = "spam"
            at_s = 1
            action = "spam"
            k = \(k)
            duration_s = 3
            """, duration: 6, extraNodes: "[limits]\n" + ingress + "\n")
        let simulator = try Simulator(scenario: scenario, settings: Simulator.Settings(seed: seed), logDir: nil)
        simulator.stopAtFirstViolation = true
        let outcome = try simulator.run()
        #expect(outcome.violations.isEmpty, "\(outcome.violations)")
        return (simulator.longestCommitGapMs, outcome.spam.first?.sent ?? 0)
    }

    @Test func twiceTheCapacityHaltsOneSharedQueueAndNotTheFixes() throws {
        let legacy = try Self.longestGapMs(ingress: "ingress_mode = \"legacy\"", k: 2)
        #expect(legacy.gapMs >= 2_000, "one queue: the spam's 3 s should starve the votes, gap \(legacy.gapMs) ms")
        // 6,400 a validator (12,800 per core × 2 cores ÷ 4) × 2 × 4 validators × 3 s.
        #expect(legacy.spamSent == 153_600)
        let control = try Self.longestGapMs(ingress: "ingress_mode = \"legacy\"", k: 0.5)
        #expect(control.gapMs < 500, "half the capacity is no overload, gap \(control.gapMs) ms")
        let lanes = try Self.longestGapMs(ingress: "ingress_mode = \"lanes\"", k: 2)
        #expect(lanes.gapMs < 500, "a vote lane keeps finality, gap \(lanes.gapMs) ms")
        let votesOnly = try Self.longestGapMs(ingress: "ingress_mode = \"legacy\"\nvotes_only_after_ms = 600", k: 2)
        #expect(votesOnly.gapMs < 1_500 && votesOnly.gapMs > 600,
                "votes-only: short pauses of about its threshold, gap \(votesOnly.gapMs) ms")
    }
}

/// The swarm draws spam too (a quarter of its cases, from a stream of its own).
@Suite struct SwarmSpamTests {
    @Test func aQuarterOfTheCasesSpamAndTheyRunWithoutABreach() throws {
        let drawn = (1...40).map { Swarm.draw(seed: UInt64($0)) }
        let spamming = drawn.filter { $0.steps.contains { $0.id == "spam" } }
        #expect((4...18).contains(spamming.count), "\(spamming.count) of 40 cases spam")
        let first = try #require(spamming.first)
        #expect(first.toml.contains("action = \"spam\""))
        let (verdict, outcome) = try Swarm.check(first)
        #expect(outcome.stepsFired.contains("spam"), "\(outcome.stepsFired)")
        #expect(outcome.spam.count == 1 && outcome.capacity != nil)
        #expect(outcome.violations.isEmpty, "\(verdict)")
    }
}
