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
