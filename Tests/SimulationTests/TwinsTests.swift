import Consensus
import Sodium
import Testing
import Wire
@testable import Simulation

/// Twins-style schedules: the network does what a case says, correct rules pass, planted bugs are caught.
@Suite struct TwinsTests {
    static func prevote(height: UInt64 = 1, round: UInt32 = 0) -> SimMessage {
        let vote = Vote(height: height, round: round, blockId: nil)
        return .made(Envelope(kind: .prevote, payload: vote.encoded, domain: Domain(chainId: "twins-test"),
                              sender: Twins.Case.testKey, signature: .zero))
    }

    static func drawn(partitions: [Twins.Case.Key: [[String]]] = [:], cuts: [Twins.Case.Key: Set<Twins.Case.Link>] = [:])
        -> Twins.Case {
        var drawn = Twins.draw(seed: 1)
        drawn.nodes = ["v1", "v2", "v3", "v4"]
        drawn.twinOf = [:]
        drawn.partitions = partitions
        drawn.cuts = cuts
        drawn.finalDelayMs = 150
        return drawn
    }

    @Test func aPartitionedStepReachesOnlyTheSendersGroup() {
        let key = Twins.Case.Key(height: 1, round: 0, phase: .prevote)
        let schedule = RoundSchedule(Self.drawn(partitions: [key: [["v1", "v2"], ["v3", "v4"]]]),
                                     slots: ["v1", "v2", "v3", "v4"])
        #expect(schedule.fate(from: 0, to: 1, Self.prevote(), nowUs: 0, senderAt: nil) == 0)
        #expect(schedule.fate(from: 0, to: 2, Self.prevote(), nowUs: 0, senderAt: nil) == nil)
        #expect(schedule.fate(from: 3, to: 1, Self.prevote(), nowUs: 0, senderAt: nil) == nil)
        // Another round, or the same round once the network is whole (slower then, as drawn).
        #expect(schedule.fate(from: 0, to: 2, Self.prevote(round: 1), nowUs: 0, senderAt: nil) == 0)
        #expect(schedule.fate(from: 0, to: 2, Self.prevote(), nowUs: 3_000_000, senderAt: nil) == 150)
    }

    @Test func aCutLinkDropsOneWayOnly() {
        let key = Twins.Case.Key(height: 1, round: 0, phase: .prevote)
        let schedule = RoundSchedule(Self.drawn(cuts: [key: [Twins.Case.Link(from: "v1", to: "v3")]]),
                                     slots: ["v1", "v2", "v3", "v4"])
        #expect(schedule.fate(from: 0, to: 2, Self.prevote(), nowUs: 0, senderAt: nil) == nil)
        #expect(schedule.fate(from: 2, to: 0, Self.prevote(), nowUs: 0, senderAt: nil) == 0)
        #expect(schedule.fate(from: 0, to: 1, Self.prevote(), nowUs: 0, senderAt: nil) == 0)
    }

    @Test func theSameSeedDrawsTheSameCase() {
        #expect(Twins.draw(seed: 42) == Twins.draw(seed: 42))
        #expect(Twins.draw(seed: 42) != Twins.draw(seed: 43))
    }

    /// The real rules: safe and live in every case (twins, split rounds, a crash, a slow final stretch). Few
    /// cases: they run beside the end-to-end clusters, and CI runs thousands (`simulate --twins`).
    @Test func correctRulesPassTwinsCases() throws {
        for seed in UInt64(1)...4 {
            let (verdict, _) = try Twins.check(Twins.draw(seed: seed))
            #expect(verdict == .passed, "seed \(seed): \(verdict)")
        }
    }

    /// A majority quorum (unsafe with twins once there are 5 validators), signing without a durable sign state
    /// (a crashed validator signs again) and a prevote at L22 that ignores the lock break safety in the cases
    /// `faultline simulate --twins 100000 --plant NAME` found first (replayed by seed: a case is a pure function
    /// of it); the correct rules pass those cases.
    @Test(arguments: [(Tendermint.PlantedBug.quorumHalf, UInt64(72)), (.signStateUnpersisted, 6), (.lockL22, 167)])
    func twinsCatchPlantedSafetyBugs(bug: Tendermint.PlantedBug, seed: UInt64) throws {
        let (verdict, _) = try Twins.check(Twins.draw(seed: seed), planted: bug)
        #expect(verdict.kind == "safety", "\(bug.rawValue), seed \(seed): \(verdict)")
        let (correct, _) = try Twins.check(Twins.draw(seed: seed))
        #expect(correct == .passed, "seed \(seed) without the bug: \(correct)")
    }
}

/// The safety monitor's fork check: two commit certificates for different blocks at one height.
@Suite struct ForkCheckTests {
    static let a = Bytes32(storage: (1, 0, 0, 0)), b = Bytes32(storage: (2, 0, 0, 0))

    static func monitor(liars: Set<String> = []) -> SafetyMonitor {
        var monitor = SafetyMonitor()
        monitor.checkCertificates(stakes: ["v1": 10, "v2": 10, "v3": 10, "v4": 10], liars: liars)
        return monitor
    }

    static func precommit(_ monitor: inout SafetyMonitor, _ validators: [String], round: UInt32, _ value: Bytes32?) {
        for validator in validators {
            monitor.signed(validator: validator, node: validator, height: 5, round: round, kind: .precommit, value: value,
                           timeMs: 0)
        }
    }

    @Test func twoCertificatesForDifferentBlocksAreAFork() {
        var monitor = Self.monitor()
        Self.precommit(&monitor, ["v1", "v2", "v3"], round: 0, Self.a)
        Self.precommit(&monitor, ["v2", "v3"], round: 1, Self.b)
        #expect(monitor.violations.isEmpty, "two of four precommits are no certificate: \(monitor.violations)")
        Self.precommit(&monitor, ["v4"], round: 1, Self.b)
        #expect(monitor.violations.map(\.kind) == [.fork], "\(monitor.violations)")
        #expect(monitor.violations.first?.detail.contains("round 0 (v1,v2,v3)") == true)
    }

    @Test func certificatesForOneBlockInTwoRoundsAndNilQuorumsAreNoFork() {
        var monitor = Self.monitor()
        Self.precommit(&monitor, ["v1", "v2", "v3"], round: 0, Self.a)
        Self.precommit(&monitor, ["v2", "v3", "v4"], round: 2, Self.a)
        Self.precommit(&monitor, ["v1", "v2", "v3", "v4"], round: 3, nil)
        #expect(monitor.violations.isEmpty, "\(monitor.violations)")
    }

    /// A twin's (ignored) precommits count in a certificate; liars holding a third or more of the stake can make
    /// two certificates legitimately, so the check is off.
    @Test func liarsCountInCertificatesUnlessTheyHoldAThird() {
        var twin = Self.monitor()
        twin.ignore(nodes: ["v1", "v1b"], validators: ["v1"])
        Self.precommit(&twin, ["v1", "v2", "v3"], round: 0, Self.a)
        Self.precommit(&twin, ["v1", "v3", "v4"], round: 1, Self.b)
        #expect(twin.violations.map(\.kind) == [.fork], "\(twin.violations)")
        var many = Self.monitor(liars: ["v3"])
        many.ignore(nodes: ["v1"], validators: ["v1"])
        Self.precommit(&many, ["v1", "v2", "v3"], round: 0, Self.a)
        Self.precommit(&many, ["v1", "v3", "v4"], round: 1, Self.b)
        #expect(!many.violations.contains { $0.kind == .fork }, "\(many.violations)")
    }
}

extension Twins.Case {
    static let testKey = SigningKey(label: "twins-test").publicKey
}
