import Formats
import Foundation
import Testing
import Wire
@testable import Liveness

/// The mixed-version analysis: which height's block executed into several state roots, with the nodes
/// and stake on each side, as the halt's cause; and the metrics the version scenarios assert.
@Suite struct DivergenceTests {
    func write(_ lines: [String], to path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }

    func start(_ node: String, stake: Int, t: Int, version: Int = 1) -> String {
        "{\"t\":\(t),\"event\":\"start\",\"height\":0,\"stake\":\(stake),\"rulesVersionMax\":\(version)}"
    }

    func commit(_ height: Int, root: String, t: Int, rules: Int = 1) -> String {
        "{\"t\":\(t),\"event\":\"commit\",\"height\":\(height),\"hash\":\"b\(height)\",\"round\":0,\"txs\":1,"
            + "\"stateRoot\":\"\(root)\",\"rules\":\(rules)}"
    }

    func analyze(_ logs: [String: [String]]) throws -> RunAnalysis {
        let root = NSTemporaryDirectory() + "faultline-divergence-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        for (node, lines) in logs { try write(lines, to: root + "/\(node)/events.jsonl") }
        return RunAnalysis.analyze(nodeDirs: logs.keys.sorted().map { ($0, root + "/" + $0) }, submissionsPath: nil)
    }

    /// Two of four on each side (v3, v4 with twice the stake): block 2 executes into two roots and
    /// nothing is finalized after it.
    @Test func aSplitIsNamedAsTheHaltsCause() throws {
        var logs: [String: [String]] = [:]
        for (node, stake, root) in [("v1", 10, "aa"), ("v2", 10, "aa"), ("v3", 20, "bb"), ("v4", 20, "bb")] {
            logs[node] = [start(node, stake: stake, t: 0), commit(1, root: "r1", t: 100), commit(2, root: root, t: 200),
                          "{\"t\":900,\"event\":\"round\",\"height\":3,\"round\":4}"]
        }
        let analysis = try analyze(logs)
        #expect(analysis.agreement) // the same blocks: safety holds
        let divergence = try #require(analysis.divergences.first)
        #expect(divergence.height == 2 && analysis.divergences.count == 1)
        #expect(divergence.sides.map(\.nodes) == [["v3", "v4"], ["v1", "v2"]])
        #expect(divergence.sides.map(\.stake) == [40, 20])
        let evaluator = Evaluator(analysis: analysis, windows: [], startMs: 0, endMs: 5_000, haltThresholdSeconds: 1,
                                  crashed: [])
        let halt = try #require(evaluator.halts().first)
        #expect(halt.cause.hasPrefix("state roots diverged at height 2: bb… on v3, v4 (stake 40, 67%); aa… on v1, v2 "
                                     + "(stake 20, 33%)"), "\(halt.cause)")
        #expect(halt.cause.contains("no side holds +2/3"))
        func check(_ metric: String, _ bound: ExpectationSpec.Bound) -> ExpectationResult {
            evaluator.evaluate(ExpectationSpec(name: metric, metric: metric, window: .whole, bound: bound))
        }
        #expect(check("state_roots_agree", .equals(false)).passed)
        #expect(!check("state_roots_agree", .equals(true)).passed)
        #expect(check("heights_after_divergence", .max(0)).passed)
        #expect(check("max_round_reached", .between(4, 4)).passed)
        #expect(!check("max_round_reached", .min(5)).passed)
    }

    /// A node restarted on another binary re-executes its last block: the split as it stood when the
    /// second root appeared is kept, and how it ended is reported too.
    @Test func reexecutionsMoveNodesBetweenSides() throws {
        let logs: [String: [String]] = [
            "v1": [start("v1", stake: 20, t: 0), commit(5, root: "old", t: 100),
                   "{\"t\":1000,\"event\":\"reexecuted\",\"height\":5,\"from\":1,\"to\":2,\"stateRoot\":\"new\"}"],
            "v2": [start("v2", stake: 10, t: 0), commit(5, root: "old", t: 100),
                   "{\"t\":4000,\"event\":\"reexecuted\",\"height\":5,\"from\":1,\"to\":2,\"stateRoot\":\"new\"}"],
            "v3": [start("v3", stake: 5, t: 0), commit(5, root: "old", t: 100),
                   "{\"t\":4100,\"event\":\"state_mismatch\",\"height\":6,\"reason\":\"wrong state root at height 6\"}"],
        ]
        let analysis = try analyze(logs)
        let divergence = try #require(analysis.divergences.first)
        #expect(divergence.timeMs == 1_000)
        #expect(divergence.sides.map(\.nodes) == [["v1"], ["v2", "v3"]])
        #expect(divergence.sidesAtEnd.map(\.nodes) == [["v1", "v2"], ["v3"]])
        #expect(analysis.describe(divergence).contains("(at the end: new… on v1, v2 (stake 30, 86%)"))
        #expect(analysis.nodes.first { $0.name == "v3" }?.stopped == "wrong state root at height 6")
        // The report carries both views, the stopped node, and draws them.
        let evaluator = Evaluator(analysis: analysis, windows: [], startMs: 0, endMs: 5_000, haltThresholdSeconds: 1,
                                  crashed: [])
        let report = Report(scenario: "split", seed: 1, evaluator: evaluator, expectations: [])
        let entry = try #require(report.safety.stateRootDivergences.first)
        #expect(entry.height == 5 && entry.at == 1.0)
        let shares: [Double] = [20.0 / 35.0, 15.0 / 35.0]
        #expect(entry.sides.map(\.stakeShare) == shares)
        #expect(report.nodes.first { $0.name == "v3" }?.stoppedAt == 4.1)
        let html = report.html()
        #expect(html.contains("State roots diverged") && html.contains("v3 stopped") && html.contains("diverged at 5"))
    }

    /// The node table shows what the kernel dropped at a node's sockets (a sequencer under an airdrop) before
    /// the drops the node counted itself.
    @Test func theNodeTableShowsKernelDropsFirst() throws {
        let logs: [String: [String]] = [
            "seq": [start("seq", stake: 0, t: 0), commit(1, root: "a", t: 100),
                    "{\"t\":1000,\"event\":\"sample\",\"votes\":0,\"kernel_userDrops\":42}",
                    "{\"t\":1100,\"event\":\"drops\",\"total\":{\"reject_stale_height\":3}}"],
        ]
        let analysis = try analyze(logs)
        let evaluator = Evaluator(analysis: analysis, windows: [], startMs: 0, endMs: 2_000, haltThresholdSeconds: 1,
                                  crashed: [])
        let report = Report(scenario: "drops", seed: 1, evaluator: evaluator, expectations: [])
        #expect(report.nodes.first?.kernelDrops == ["user": 42])
        #expect(report.html().contains("<td>kernel_user 42, reject_stale_height 3</td>"))
    }

    /// The gap around the first height under newer rules, against the run's median gap.
    @Test func upgradeGapRatio() throws {
        var lines = [start("v1", stake: 10, t: 0)]
        for height in 1...20 {
            let slow = height == 11 ? 400 : 0
            lines.append(commit(height, root: "r\(height)", t: height * 100 + slow + (height > 11 ? 400 : 0),
                                rules: height >= 11 ? 2 : 1))
        }
        let analysis = try analyze(["v1": lines])
        let evaluator = Evaluator(analysis: analysis, windows: [], startMs: 0, endMs: 3_000, haltThresholdSeconds: 1,
                                  crashed: [])
        let result = evaluator.evaluate(ExpectationSpec(name: "g", metric: "upgrade_gap_ratio", window: .whole,
                                                        bound: .max(2)))
        #expect(!result.passed, "\(result.observed)") // 500 ms against a 100 ms median: ratio 5
        #expect(result.observed.hasPrefix("height 11 first under rules v2"))
        let none = try analyze(["v1": [start("v1", stake: 10, t: 0), commit(1, root: "a", t: 10), commit(2, root: "b", t: 20)]])
        let noSwitch = Evaluator(analysis: none, windows: [], startMs: 0, endMs: 100, haltThresholdSeconds: 1, crashed: [])
            .evaluate(ExpectationSpec(name: "g", metric: "upgrade_gap_ratio", window: .whole, bound: .max(2)))
        #expect(!noSwitch.passed && noSwitch.observed == "no height was finalized under newer rules")
    }
}
