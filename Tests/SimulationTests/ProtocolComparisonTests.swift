import Consensus
import Formats
import Foundation
@testable import Simulation
import Testing

/// Both protocols on one scenario in simulated time, read from the nodes' event logs as the reports read them:
/// both decide and stay safe through a crashed validator (whose leader turns fail), and HotStuff-2's votes go to
/// the leader only and come back as certificates, for fewer messages but about as many signature checks.
@Suite struct ProtocolComparisonTests {
    struct Run {
        var heights: UInt64
        var rounds: Int
        /// Per finalized height, all nodes together.
        var messages: [String: Double]
        var signatures: Double
    }

    static func run(_ consensus: BFT.ProtocolName) throws -> Run {
        let scenario = try SimulationTests.scenario("""
            [[step]]
            id = "crash"
            at_s = 2
            action = "kill"
            targets = ["v2"]
            duration_s = 2
            """, duration: 6)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("compare-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var settings = Simulator.Settings(seed: 1)
        settings.consensus = consensus
        let outcome = try Simulator(scenario: scenario, settings: settings, logDir: dir).run()
        #expect(outcome.violations.isEmpty, "\(consensus): \(outcome.violations)")
        var heights: UInt64 = 0, rounds = 0, signatures = 0.0
        var messages: [String: Double] = [:]
        for node in scenario.topology.nodes.map(\.name) {
            let text = try String(contentsOfFile: dir + "/nodes/\(node)/events.jsonl", encoding: .utf8)
            var last: [String: Any]?
            for line in text.split(separator: "\n") {
                guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
                switch object["event"] as? String {
                case "commit": heights = max(heights, (object["height"] as? NSNumber)?.uint64Value ?? 0)
                case "round": rounds += 1
                case "traffic": last = object
                default: break
                }
            }
            // v2 restarts from zero counts; the test only needs the totals' order of magnitude, so the last
            // event of each node (v2's after its restart) is enough.
            for (kind, count) in (last?["received"] as? [String: NSNumber]) ?? [:] { messages[kind, default: 0] += count.doubleValue }
            signatures += (last?["signaturesChecked"] as? NSNumber)?.doubleValue ?? 0
        }
        let blocks = Double(max(heights, 1))
        return Run(heights: heights, rounds: rounds, messages: messages.mapValues { $0 / blocks },
                   signatures: signatures / blocks)
    }

    @Test func bothDecideThroughACrashAndHotStuffSendsFewerMessagesForAsManySignatureChecks() throws {
        let tendermint = try Self.run(.tendermint)
        let hotStuff = try Self.run(.hotstuff2)
        for (name, run) in [("tendermint", tendermint), ("hotstuff2", hotStuff)] {
            #expect(run.heights > 50, "\(name): \(run.heights) heights")
            #expect(run.rounds > 0, "\(name): the crashed validator's leader turns changed no round")
        }
        // Tendermint: every validator's votes reach every other (about n(n-1) = 12 prevotes per block with 4);
        // HotStuff-2: to the leader only (about n-1 = 3), and certificates come back instead.
        #expect((tendermint.messages["prevote"] ?? 0) > 7, "\(tendermint.messages)")
        #expect((hotStuff.messages["prevote"] ?? 0) < 4, "\(hotStuff.messages)")
        #expect((hotStuff.messages["certificate"] ?? 0) > 3 && tendermint.messages["certificate"] == nil)
        #expect(hotStuff.messages.values.reduce(0, +) < tendermint.messages.values.reduce(0, +))
        let ratio = hotStuff.signatures / tendermint.signatures
        #expect(ratio > 0.7 && ratio < 1.5, "signature checks per block, HotStuff-2 ÷ Tendermint: \(ratio)")
    }
}
