import Liveness
import Testing

/// The fidelity comparison: the same story (halts per fault, the end, safety) agrees; a halt on one
/// side only is a mismatch unless it is too short to call; over several seeds the real outcome must
/// be among the simulated ones.
@Suite struct FidelityTests {
    static func outcome(_ halts: [String: Double], end: Double? = nil, agreement: Bool = true, doubleSigns: Int = 0,
                        expectations: [String: Bool] = [:]) -> Fidelity.Outcome {
        Fidelity.Outcome(haltSecondsByFault: halts, unendedHaltSeconds: end, agreement: agreement,
                         doubleSigns: doubleSigns, stateRootDivergences: 0, expectations: expectations)
    }

    @Test func theSameStoryAgreesWhateverTheExactLengths() {
        let real = Self.outcome(["split": 5.2, "crash": 0], expectations: ["p99 latency under 300 ms": true])
        let simulated = Self.outcome(["split": 4.9, "crash": 0], expectations: ["p99 latency under 300 ms": false])
        let comparison = Fidelity.compare(real: real, simulated: [simulated], haltThresholdSeconds: 1)
        #expect(comparison.agrees)
        #expect(comparison.agreements.contains("fault split: real halted 5.2 s, simulated halted 4.9 s"))
        // An expectation on a timing figure may differ; it is a note, not a mismatch.
        #expect(comparison.notes == ["expectation \"p99 latency under 300 ms\": real passed, simulated failed"])
    }

    @Test func aMechanismExpectationThatDiffersIsAMismatch() {
        var real = Self.outcome(["spam": 0], expectations: ["no vote is dropped": true, "p99 latency under 300 ms": true])
        real.mechanisms = ["no vote is dropped"]
        let simulated = Self.outcome(["spam": 0], expectations: ["no vote is dropped": false,
                                                                 "p99 latency under 300 ms": false])
        let comparison = Fidelity.compare(real: real, simulated: [simulated, simulated], haltThresholdSeconds: 1)
        #expect(!comparison.agrees)
        #expect(comparison.mismatches == ["expectation \"no vote is dropped\": real passed, simulated failed in every "
                                          + "seed (a mechanism, not timing)"])
        #expect(comparison.notes == ["expectation \"p99 latency under 300 ms\": real passed, simulated failed in every seed"])
        // One seed that agrees is enough: a real run is one sample.
        let mixed = Fidelity.compare(real: real, simulated: [simulated, real], haltThresholdSeconds: 1)
        #expect(mixed.agrees)
    }

    @Test func eachExpectationsFigureIsShownBesideTheSimulatedOnesWithoutBeingJudged() {
        var real = Self.outcome(["burst": 0], expectations: ["the queue grows": true])
        real.observed = ["the queue grows": "18015 transactions queued (peak)"]
        var first = Self.outcome(["burst": 0], expectations: ["the queue grows": true])
        first.observed = ["the queue grows": "43905 transactions queued (peak)"]
        var second = first
        second.observed = ["the queue grows": "41200 transactions queued (peak)"]
        let one = Fidelity.compare(real: real, simulated: [first, first], haltThresholdSeconds: 1)
        #expect(one.agrees && one.notes.isEmpty)
        #expect(one.figures == ["the queue grows: real 18015 transactions queued (peak); simulated 43905 transactions queued (peak)"])
        let two = Fidelity.compare(real: real, simulated: [first, second], haltThresholdSeconds: 1)
        #expect(two.figures == ["the queue grows: real 18015 transactions queued (peak); simulated 43905 transactions "
                                + "queued (peak) (the first seed's; 2 different figures over 2 seeds)"])
    }

    @Test func aHaltOnOneSideOnlyIsAMismatchUnlessTooCloseToCall() {
        let real = Self.outcome(["split": 0, "pause": 1.3])
        let simulated = Self.outcome(["split": 6, "pause": 0])
        let comparison = Fidelity.compare(real: real, simulated: [simulated], haltThresholdSeconds: 1)
        #expect(!comparison.agrees)
        #expect(comparison.mismatches == ["fault split: real did not halt, simulated halted 6.0 s"])
        #expect(comparison.notes.count == 1 && comparison.notes[0].hasPrefix("fault pause: real halted 1.3 s"))
    }

    /// A real halt the simulation never shows is a note when the real host was overloaded during it (the
    /// simulator has no CPU to run short of); the other way round it stays a mismatch.
    @Test func aRealHaltOnAnOverloadedHostIsANote() {
        var real = Self.outcome(["split": 0, "crash": 4.5])
        real.haltsOnOverloadedHost = ["crash"]
        let simulated = Self.outcome(["split": 6, "crash": 0])
        let comparison = Fidelity.compare(real: real, simulated: [simulated], haltThresholdSeconds: 1)
        #expect(comparison.mismatches == ["fault split: real did not halt, simulated halted 6.0 s"])
        #expect(comparison.notes == ["fault crash: real halted 4.5 s, simulated did not halt (the real halt came while "
                                     + "the host was overloaded)"])
    }

    @Test func endingHaltedAndSafetyMustMatch() {
        let real = Self.outcome(["split": 2], end: nil)
        let stuck = Self.outcome(["split": 9], end: 9)
        #expect(Fidelity.compare(real: real, simulated: [stuck], haltThresholdSeconds: 1).mismatches
            == ["end of the run: real did not halt, simulated halted 9.0 s"])
        let forked = Self.outcome(["split": 2], agreement: false, doubleSigns: 3)
        let mismatches = Fidelity.compare(real: real, simulated: [forked], haltThresholdSeconds: 1).mismatches
        #expect(mismatches == ["nodes agree on every block: real true, simulated false",
                               "some validator signed two values: real false, simulated true"])
        let missing = Self.outcome(["other": 0])
        #expect(Fidelity.compare(real: real, simulated: [missing], haltThresholdSeconds: 1).mismatches.count == 2)
    }

    /// A kill storm halts finality in some runs and not others: the real run agrees with the simulation
    /// when its outcome is among the seeds'; a partition halts on every seed, so it stays strict.
    @Test func overSeedsTheRealOutcomeMustBeAmongTheSimulatedOnes() {
        let real = Self.outcome(["storm": 4.2, "split": 0])
        let seeds = [Self.outcome(["storm": 0, "split": 0]), Self.outcome(["storm": 2.7, "split": 0]),
                     Self.outcome(["storm": 3.3, "split": 0])]
        let comparison = Fidelity.compare(real: real, simulated: seeds, haltThresholdSeconds: 2)
        #expect(comparison.agrees, "\(comparison.mismatches)")
        #expect(comparison.agreements.contains("fault storm: real halted 4.2 s, simulated halted in 2 of 3 seeds (2.7–3.3 s)"))
        let neverHalts = Array(repeating: Self.outcome(["storm": 0, "split": 0]), count: 3)
        #expect(Fidelity.compare(real: real, simulated: neverHalts, haltThresholdSeconds: 2).mismatches
            == ["fault storm: real halted 4.2 s, simulated did not halt in any of 3 seeds"])
        let alwaysHalts = Array(repeating: Self.outcome(["storm": 3, "split": 5]), count: 3)
        #expect(Fidelity.compare(real: real, simulated: alwaysHalts, haltThresholdSeconds: 2).mismatches
            == ["fault split: real did not halt, simulated halted in 3 of 3 seeds (5.0 s)"])
    }
}
