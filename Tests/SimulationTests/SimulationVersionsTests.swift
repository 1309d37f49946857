import Formats
import Foundation
import Simulation
import Testing

/// Binary versions, upgrades and handshakes in simulated time, with the node's own rules (the replica
/// core's `Replica.Binary`, `Replica.Handshakes`, `Replica.commitRules`): what the library's version
/// scenarios show on real clusters.
@Suite struct SimulationVersionsTests {
    static func events(_ dir: String, node: String) throws -> [[String: Any]] {
        let text = try String(contentsOfFile: dir + "/nodes/\(node)/events.jsonl", encoding: .utf8)
        return text.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    static func logDir(_ name: String) -> String {
        FileManager.default.temporaryDirectory.path + "/faultline-sim-\(name)-\(getpid())"
    }

    @Test func aQuarterOnOtherRulesStopsAtTheFirstFeeBlockAndTheRestGoOn() throws {
        let scenario = try SimulationTests.scenario("", validators: 3, extraNodes: "[[node]]\nname = \"v4\"\nversion = 2\n")
        let dir = Self.logDir("versions")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let outcome = try SimulationTests.run(scenario, seed: 5, logDir: dir)
        #expect(outcome.violations.isEmpty)
        let mismatch = try Self.events(dir, node: "v4").first { $0["event"] as? String == "state_mismatch" }
        let stoppedAt = try #require(mismatch?["height"] as? Int)
        // v4 committed nothing past the block it disagreed on; the others (75% of stake) went on past it.
        #expect(outcome.heights["v4"].map { Int($0) } == stoppedAt - 1)
        #expect(["v1", "v2", "v3"].allSatisfy { (outcome.heights[$0] ?? 0) > UInt64(stoppedAt) + 20 })
        #expect(try Self.events(dir, node: "v1").allSatisfy { $0["event"] as? String != "state_mismatch" })
    }

    @Test func aNodeOnAnotherForkIsRefusedAtTheHandshakeAndReadmittedWhenItComesBack() throws {
        let scenario = try SimulationTests.scenario("""
            [[step]]
            id = "fork-v4"
            at_s = 1
            action = "upgrade"
            targets = "v4"
            version = 1
            fork_id = 1

            [[step]]
            id = "back-v4"
            at_s = 3
            action = "upgrade"
            targets = "v4"
            version = 1
            fork_id = 0
            """)
        let dir = Self.logDir("fork")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let outcome = try SimulationTests.run(scenario, seed: 2, logDir: dir)
        #expect(outcome.violations.isEmpty && outcome.stepsFired == ["fork-v4", "back-v4"])
        let kinds = try Self.events(dir, node: "v1").compactMap { event -> String? in
            guard event["peer"] as? String == "v4" else { return nil }
            return event["event"] as? String
        }
        #expect(kinds == ["handshake_refused", "handshake_accepted"])
        let refusal = try Self.events(dir, node: "v1").first { $0["event"] as? String == "handshake_refused" }
        #expect((refusal?["reason"] as? String)?.contains("fork id 1") == true)
        // Back on fork 0, v4 caught up with the others.
        let heights = outcome.heights.values
        #expect(heights.max()! - heights.min()! <= 2)
    }
}
