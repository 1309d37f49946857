import Consensus
import Foundation
import Formats
import Testing
import Wire
@testable import Simulation

/// Each byzantine mode has the effect it names: run alone on v4 of four validators, the honest nodes count
/// what it sends (against the same run with v4 honest), or its lie shows where it must (double signs, evidence,
/// missing signatures), and the honest nodes stay safe and live.
@Suite struct ByzantineEffectTests {
    struct Run {
        var simulator: Simulator
        var outcome: Simulator.Outcome
        /// The honest nodes' replica rejects, summed by reason.
        var rejects: [String: Int]
    }

    /// The run with v4 honest, made once (these tests run beside the end-to-end clusters: keep them light).
    nonisolated(unsafe) static var honestRun: Run?
    static let honestLock = NSLock()

    static func honest() throws -> Run {
        try honestLock.withLock {
            if let honestRun { return honestRun }
            let made = try run(nil)
            honestRun = made
            return made
        }
    }

    static func run(_ mode: ByzantineMode?) throws -> Run {
        let v4 = "[[node]]\nname = \"v4\"\n" + (mode.map { "byzantine = [\"\($0.rawValue)\"]\n" } ?? "")
        let scenario = try SimulationTests.scenario("[limits]\ngossip_relay_fanout = 2", validators: 3, duration: 2,
                                                    extraNodes: v4)
        var settings = Simulator.Settings(seed: 1)
        settings.eventLogs = false
        let simulator = try Simulator(scenario: scenario, settings: settings, logDir: nil)
        simulator.monitor.ignore(nodes: ["v4"], validators: ["v4"])
        let outcome = try simulator.run()
        var rejects: [String: Int] = [:]
        for node in simulator.nodes where node.name != "v4" {
            for (reason, count) in node.replicaRejects { rejects[reason, default: 0] += count }
        }
        return Run(simulator: simulator, outcome: outcome, rejects: rejects)
    }

    /// The modes honest nodes refuse and count, with the counter each must raise.
    @Test(arguments: [(ByzantineMode.invalidProposal, "reject_invalid_proposal", 5), (.badParts, "reject_bad_part", 5),
                      (.replay, "reject_stale_height", 100), (.otherChain, "reject_wrong_chain", 100),
                      (.staleFlood, "reject_stale_height", 100), (.futureFlood, "reject_future_height", 100)])
    func refusedAndCounted(mode: ByzantineMode, counter: String, least: Int) throws {
        let honest = try Self.honest()
        let lying = try Self.run(mode)
        let before = honest.rejects[counter] ?? 0, after = lying.rejects[counter] ?? 0
        #expect(after >= before + least, "\(mode): \(counter) \(before) honest, \(after) with v4 lying; all: \(lying.rejects)")
        #expect(lying.outcome.violations.isEmpty, "\(lying.outcome.violations)")
        #expect((lying.outcome.heights["v1"] ?? 0) >= 15, "v1 at \(lying.outcome.heights["v1"] ?? 0)")
    }

    /// `equivocate`: two votes per step, and the honest nodes commit the evidence against v4.
    @Test func equivocationBecomesEvidence() throws {
        let lying = try Self.run(.equivocate)
        let offenders = Set(lying.simulator.nodes[0].ledger.recordedEvidence.map(\.evidence.validator))
        #expect(offenders == [lying.simulator.nodes[3].publicKey], "evidence against \(offenders)")
        #expect(lying.outcome.violations.isEmpty)
    }

    /// `double_propose` alone: two proposals (two block ids) signed for one height and round, and the honest
    /// nodes still agree.
    @Test func doubleProposalSignsTwoBlocks() throws {
        var settings = Simulator.Settings(seed: 1)
        settings.eventLogs = false
        let lying = try Self.run(.doublePropose)
        #expect(lying.outcome.violations.isEmpty)
        // The monitor ignores v4 above; the same run watched in full shows its double-signed proposals.
        let watched = try Simulator(scenario: lying.simulator.scenario, settings: settings, logDir: nil)
        let outcome = try watched.run()
        let proposals = outcome.violations.filter { $0.kind == .doubleSign && $0.detail.contains("signed proposal") }
        #expect(!proposals.isEmpty && proposals.allSatisfy { $0.detail.hasPrefix("v4 ") }, "\(outcome.violations.prefix(3))")
    }

    /// `withhold_votes`: v4 signs but sends nothing, so no commit certificate carries its signature (with v4
    /// honest, most do), and the others still finalize.
    @Test func withheldVotesAreMissingFromEveryCertificate() throws {
        func v4Signed(_ run: Run) -> Int {
            let v4 = UInt16(run.simulator.validators.index(of: run.simulator.nodes[3].publicKey)!)
            return run.simulator.nodes[0].store.filter { $0.commit.signatures.contains { $0.validator == v4 } }.count
        }
        let honest = try Self.honest(), lying = try Self.run(.withholdVotes)
        #expect(v4Signed(honest) * 2 > honest.simulator.nodes[0].store.count, "v4 in \(v4Signed(honest)) certificates")
        #expect(v4Signed(lying) == 0, "v4's signature in \(v4Signed(lying)) certificates while withholding")
        #expect(lying.simulator.nodes[0].store.count >= 30)
    }
}
