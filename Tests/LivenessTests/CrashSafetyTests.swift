import Foundation
import Testing
import Wire
@testable import Liveness

/// The crash-safety checks must be able to fail: a validator's own signature log with two values
/// for one height/round/step is a double sign; the same vote signed again after a restart is not.
@Suite struct CrashSafetyTests {
    let root = NSTemporaryDirectory() + "faultline-crash-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"

    func write(_ lines: [String], to path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }

    func signed(_ node: String, _ height: Int, _ round: Int, _ kind: String, _ value: String, t: Int) -> String {
        "{\"t\":\(t),\"node\":\"\(node)\",\"event\":\"signed\",\"height\":\(height),\"round\":\(round),"
            + "\"kind\":\"\(kind)\",\"value\":\"\(value)\"}"
    }

    func start(_ node: String, height: Int, torn: Int = 0, t: Int) -> String {
        "{\"t\":\(t),\"node\":\"\(node)\",\"event\":\"start\",\"height\":\(height),\"discardedTailBytes\":\(torn)}"
    }

    @Test func doubleSignsAreFoundAcrossRestartsAndRepeatsAreNot() throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        try write([
            start("a", height: 0, t: 0),
            signed("a", 1, 0, "prevote", "aa", t: 10),
            signed("a", 1, 0, "precommit", "aa", t: 20),
            start("a", height: 0, t: 30),
            signed("a", 1, 0, "precommit", "aa", t: 40), // the restored vote: the same value again
            signed("a", 1, 1, "prevote", "nil", t: 50),
        ], to: root + "/a/events.jsonl")
        try write([
            start("b", height: 0, t: 0),
            signed("b", 1, 0, "prevote", "aa", t: 10),
            start("b", height: 0, torn: 37, t: 15),
            signed("b", 1, 0, "prevote", "bb", t: 20), // after a restart that forgot: a double sign
            signed("b", 1, 0, "precommit", "nil", t: 25),
            signed("b", 1, 0, "proposal", "cc", t: 26),
            signed("b", 1, 0, "proposal", "cc", t: 27),
            "{\"t\":30,\"node\":\"b\",\"event\":\"signed\",\"height\":1}", // fields missing: unreadable
        ], to: root + "/b/events.jsonl")
        try write([
            "{\"t\":5,\"event\":\"kill\",\"node\":\"a\",\"pid\":10,\"storm\":\"s\"}",
            "{\"t\":6,\"event\":\"restart\",\"node\":\"a\",\"pid\":11,\"storm\":\"s\"}",
            "{\"t\":12,\"event\":\"kill\",\"node\":\"b\",\"pid\":12,\"storm\":\"s\"}",
            "{\"t\":13,\"event\":\"torn\",\"node\":\"b\",\"pid\":12,\"storm\":\"s\",\"bytes\":37}",
            "{\"t\":14,\"event\":\"kill\",\"no",
        ], to: root + "/kills.jsonl")
        let analysis = RunAnalysis.analyze(nodeDirs: [("a", root + "/a"), ("b", root + "/b")], submissionsPath: nil,
                                           killsPath: root + "/kills.jsonl")
        #expect(!analysis.noDoubleSign)
        #expect(analysis.doubleSigns == [RunAnalysis.DoubleSign(node: "b", nodes: ["b"], height: 1, round: 0, kind: "prevote",
                                                                values: ["aa", "bb"])])
        #expect(analysis.signaturesRecorded == 9)
        #expect(analysis.unreadableLines == 2)
        #expect(analysis.doubleSignSummary.hasPrefix("1 double signs: b prevote at 1/0: aa vs bb"))
        #expect(analysis.killCount == 2)
        #expect(analysis.kills.map(\.event) == ["kill", "restart", "kill", "torn"])
        #expect(analysis.nodes.map(\.tornTails) == [[], [37]])
        #expect(analysis.tornTailsMissed.isEmpty)

        let evaluator = Evaluator(analysis: analysis, windows: [], startMs: 0, endMs: 100, haltThresholdSeconds: 1,
                                  crashed: [])
        let doubles = evaluator.evaluate(.init(name: "n", metric: "double_signs", window: .whole, bound: .max(0)))
        #expect(!doubles.passed)
        let kills = evaluator.evaluate(.init(name: "k", metric: "kills", window: .whole, bound: .min(2)))
        #expect(kills.passed)
        #expect(kills.observed.hasPrefix("2 SIGKILLs (a 1, b 1); 2 restarts logged"))
    }

    func start(_ node: String, stake: Int, t: Int = 0) -> String {
        "{\"t\":\(t),\"node\":\"\(node)\",\"event\":\"start\",\"height\":0,\"stake\":\(stake)}"
    }

    func precommit(_ node: String, _ round: Int, _ value: String, validator: String? = nil) -> String {
        "{\"t\":10,\"node\":\"\(node)\",\"event\":\"signed\",\"height\":7,\"round\":\(round),"
            + "\"kind\":\"precommit\",\"value\":\"\(value)\",\"validator\":\"\(validator ?? node)\"}"
    }

    /// The same fork check as the simulator's, on a real run's signature logs: +2/3 precommitting "aa" in round 0
    /// and "bb" in round 1 at one height is a fork even though no node's log says it committed either; a twin's
    /// process does not count its validator's stake twice; liars holding a third make forks possible, so none
    /// is reported then.
    @Test func forksAreFoundInTheSignatureLogsWhileTheLiarsHoldUnderAThird() throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let logs: [String: [String]] = [
            "v1": [start("v1", stake: 10), precommit("v1", 0, "aa"), precommit("v1", 1, "bb")],
            "v2": [start("v2", stake: 10), precommit("v2", 0, "aa"), precommit("v2", 2, "nil")],
            "v3": [start("v3", stake: 10), precommit("v3", 0, "aa"), precommit("v3", 1, "bb")],
            "v4": [start("v4", stake: 10), precommit("v4", 1, "bb")],
            "rpc": [start("rpc", stake: 0)],
        ]
        for (node, lines) in logs { try write(lines, to: root + "/\(node)/events.jsonl") }
        let dirs = logs.keys.sorted().map { ($0, root + "/" + $0) }
        let analysis = RunAnalysis.analyze(nodeDirs: dirs, submissionsPath: nil)
        #expect(analysis.doubleSigns.isEmpty)
        #expect(analysis.forks.count == 1, "\(analysis.forks)")
        #expect(Set(analysis.forks.first?.values ?? []) == ["aa", "bb"])
        #expect(analysis.forkSummary.hasPrefix("1 forks: height 7: "), "\(analysis.forkSummary)")
        let evaluator = Evaluator(analysis: analysis, windows: [], startMs: 0, endMs: 100, haltThresholdSeconds: 1,
                                  crashed: [])
        #expect(!evaluator.evaluate(.init(name: "f", metric: "forks", window: .whole, bound: .max(0))).passed)

        // v4 signs only "bb" with a twin process v4b that also signs "aa" for it: v4 lied (a quarter of the stake),
        // and the certificates are v1,v2,v3 for "aa" and v1,v3,v4 for "bb" — still a fork.
        try write([start("v4b", stake: 10), precommit("v4b", 0, "aa", validator: "v4")], to: root + "/v4b/events.jsonl")
        let twin = RunAnalysis.analyze(nodeDirs: dirs + [("v4b", root + "/v4b")], submissionsPath: nil)
        #expect(twin.forks.count == 1, "a twin's process must not double its validator's stake: \(twin.forks)")
        // v1 also signs two values in round 1: v1 and v4 lied, half the stake, and no fork is reported.
        try write([start("v1", stake: 10), precommit("v1", 0, "aa"), precommit("v1", 1, "bb"), precommit("v1", 1, "cc")],
                  to: root + "/v1/events.jsonl")
        let many = RunAnalysis.analyze(nodeDirs: dirs + [("v4b", root + "/v4b")], submissionsPath: nil)
        #expect(many.doubleSigns.count == 1 && many.forks.isEmpty, "\(many.doubleSigns) \(many.forks)")
        #expect(many.forkSummary.hasPrefix("forks not checked: the validators that lied (v1, v4)"), "\(many.forkSummary)")
    }

    @Test func aTornTailTheNextStartDidNotCutIsReported() throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        try write([start("a", height: 3, t: 0), start("a", height: 3, torn: 20, t: 30), start("a", height: 3, t: 60)],
                  to: root + "/a/events.jsonl")
        try write([
            "{\"t\":10,\"event\":\"torn\",\"node\":\"a\",\"pid\":1,\"storm\":\"s\",\"bytes\":12}",
            "{\"t\":20,\"event\":\"torn\",\"node\":\"a\",\"pid\":1,\"storm\":\"s\",\"bytes\":8}",
            "{\"t\":40,\"event\":\"torn\",\"node\":\"a\",\"pid\":2,\"storm\":\"s\",\"bytes\":50}",
        ], to: root + "/kills.jsonl")
        let analysis = RunAnalysis.analyze(nodeDirs: [("a", root + "/a")], submissionsPath: nil,
                                           killsPath: root + "/kills.jsonl")
        // The first two tears (20 bytes) were cut at t=30; the third was trusted by the start at t=60.
        #expect(analysis.tornTailsMissed.map(\.t) == [40])
        let evaluator = Evaluator(analysis: analysis, windows: [], startMs: 0, endMs: 100, haltThresholdSeconds: 1,
                                  crashed: [])
        #expect(!evaluator.evaluate(.init(name: "t", metric: "torn_tails_missed", window: .whole, bound: .max(0))).passed)
    }

    @Test func aCleanSignatureLogPasses() throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        try write([signed("a", 1, 0, "prevote", "aa", t: 1), signed("a", 1, 1, "prevote", "bb", t: 2),
                   signed("a", 2, 0, "prevote", "bb", t: 3)], to: root + "/a/events.jsonl")
        let analysis = RunAnalysis.analyze(nodeDirs: [("a", root + "/a")], submissionsPath: nil)
        #expect(analysis.noDoubleSign)
        #expect(analysis.signaturesRecorded == 3)
        #expect(analysis.killCount == 0)
    }
}
