import Formats
import Foundation
import Liveness
@testable import Simulation
import Testing

/// The rollup in simulated time: a sequencer and replicas run the node's own `RollupNode` over the simulated
/// network (derivation from L1, batches through the uplink, the feed, forced inclusion, an airdrop burst
/// against the sequencer's modelled receive path).
@Suite struct SimulationRollupTests {
    static func scenario(rollup: String, steps: String, duration: Double = 8) throws -> Scenario {
        try SimulationTests.scenario("""
            [rollup]
            block_interval_ms = 100
            \(rollup)
            \(steps)
            """, duration: duration, extraNodes: """
            [[node]]
            name = "seq"
            role = "sequencer"
            [[node]]
            name = "r1"
            role = "replica"
            """, load: "layer = \"l2\"\nstart_s = 0.5")
    }

    /// Runs it with event logs in a fresh folder and reads the L2 side back as `faultline report` does.
    static func run(_ scenario: Scenario) throws -> (RollupAnalysis, Simulator) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sim-rollup-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let simulator = try Simulator(scenario: scenario, settings: Simulator.Settings(seed: 1), logDir: dir)
        let outcome = try simulator.run()
        #expect(outcome.violations.isEmpty)
        let nodeDirs = scenario.topology.nodes.map { ($0.name, dir + "/nodes/" + $0.name) }
        return (RollupAnalysis.analyze(nodeDirs: nodeDirs, recordsDir: dir + "/rollup",
                                       loadSubmissionsPath: dir + "/load/l2-submissions.jsonl"), simulator)
    }

    @Test func theReplicaDerivesTheSequencersRootsAndForcedClaimsLandWithoutIt() throws {
        let scenario = try Self.scenario(rollup: "forced_inclusion_blocks = 20", steps: """
            [[step]]
            id = "seq-down"
            at_s = 3
            action = "kill"
            targets = ["seq"]
            [[step]]
            id = "forced"
            at_s = 4
            action = "forced_tx"
            count = 2
            """)
        let (rollup, _) = try Self.run(scenario)
        #expect(rollup.sequencer == "seq" && rollup.replicas == ["r1"])
        // Batches landed on L1 and the replica derived them: every batch end it derived has the root the
        // sequencer's block of that height had.
        let made = Dictionary(rollup.blocks.map { ($0.height, $0.stateRoot) }, uniquingKeysWith: { first, _ in first })
        let derived = (rollup.replicaSafeRoots["r1"] ?? []).filter(\.bySequencer)
        #expect(derived.count >= 5, "batches derived: \(derived.count)")
        #expect(derived.allSatisfy { made[$0.height] == $0.root })
        // With the sequencer gone, derivation includes both forced claims itself, within the bound.
        let forced = rollup.forced.filter { $0.node == "r1" }
        #expect(Set(forced.map(\.index)) == [0, 1])
        #expect(forced.allSatisfy { !$0.bySequencer && $0.l1Blocks <= 20 })
    }

    static let airdrop = """
        [[step]]
        id = "claims"
        at_s = 1
        action = "airdrop"
        count = 20000
        k = 2.0
        """

    @Test func anAirdropPastCapacityIsDroppedUnansweredWithoutABudget() throws {
        let (rollup, simulator) = try Self.run(try Self.scenario(rollup: "", steps: Self.airdrop, duration: 4))
        let record = try #require(rollup.airdrops.first)
        #expect(record.sent == 20_000)
        #expect(record.rejected.isEmpty, "no claim is refused with a reason: \(record.rejected)")
        let path = try #require(simulator.airdrops.values.first?.path)
        #expect(path.kernelDrops > 2_000, "twice the reader's rate overflows the buffer: \(path.kernelDrops)")
        #expect(rollup.samples.map(\.queue).max() ?? 0 > 1_000, "the unbounded queue grows")
    }

    @Test func withABudgetTheSurplusIsRefusedBusyAndTheClientHearsIt() throws {
        let (rollup, _) = try Self.run(try Self.scenario(rollup: "verify_share = 0.5\nqueue_txs_max = 1024",
                                                         steps: Self.airdrop, duration: 4))
        let record = try #require(rollup.airdrops.first)
        let busy = record.rejected["busy", default: 0]
        #expect(busy > 8_000, "most of the burst is refused before its check, and answered: \(record.rejected)")
        let admitted = rollup.samples.reduce(0) { $0 + $1.admitted }
        #expect(admitted > 500 && admitted < 20_000 - busy)
        #expect(rollup.samples.allSatisfy { $0.queue <= 1_024 })
    }
}

/// The modelled receive path on its own (`SimClientPath`): a small machine, so the numbers are easy to read.
@Suite struct SimClientPathTests {
    /// 1,000 datagrams received and checked a second (1 ms each), checks alone 2,000 a second (0.5 ms).
    static let capacity = VerificationCapacity(verifyPerCorePerSecond: 2_000, ingressPerCorePerSecond: 1_000,
                                               cores: 2, validators: 4)

    @Test func everyClaimIsCheckedUntilTheBufferIsFullThenTheKernelDrops() {
        var path = SimClientPath(capacity: Self.capacity, verifyShare: 0)
        #expect(path.checkedUs == 1_000 && path.readOnlyUs == 250)
        // All at once: the first is read after 1 ms, each next 1 ms later, until the buffer holds its size.
        var fates: [SimClientPath.Fate] = []
        for _ in 0..<(Int(SimIngress.bufferDatagrams) + 10) { fates.append(path.arrive(nowUs: 0)) }
        #expect(fates[0] == .checked(readUs: 1_000) && fates[1] == .checked(readUs: 2_000))
        #expect(fates.filter { $0 == .dropped }.count == 10 && path.kernelDrops == 10)
        // Once the reader has taken some, there is room again.
        #expect(path.arrive(nowUs: 5_500) != .dropped)
    }

    @Test func withAShareOfTheReadersTimeTheRestIsReadAndRefusedUnchecked() {
        var path = SimClientPath(capacity: Self.capacity, verifyShare: 0.5)
        // A claim every 0.5 ms for 2 s: checks may take half the reader's time (1 ms each, so ~500 a second),
        // the rest are only read (0.25 ms each).
        var checked = 0
        var shed = 0
        for index in 0..<4_000 {
            switch path.arrive(nowUs: UInt64(index) * 500) {
            case .checked: checked += 1
            case .shed: shed += 1
            case .dropped: break
            }
        }
        #expect(checked > 900 && checked < 1_150, "checked \(checked)")
        #expect(shed > 2_800 && path.kernelDrops == 0, "shed \(shed), dropped \(path.kernelDrops)")
    }
}
