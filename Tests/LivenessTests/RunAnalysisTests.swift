import Foundation
import Testing
@testable import Liveness

/// The checkers must be able to fail: feed them logs with a fork, a lost block and known latencies.
@Suite struct RunAnalysisTests {
    func write(_ lines: [String], to path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }

    func commit(_ node: String, _ height: Int, _ hash: String, t: Int, ids: [String] = []) -> String {
        let list = ids.map { "\"\($0)\"" }.joined(separator: ",")
        return "{\"t\":\(t),\"node\":\"\(node)\",\"event\":\"commit\",\"height\":\(height),\"hash\":\"\(hash)\","
            + "\"round\":0,\"txs\":\(ids.count),\"txIds\":[\(list)],\"source\":\"consensus\"}"
    }

    func start(_ node: String, height: Int, t: Int) -> String {
        "{\"t\":\(t),\"node\":\"\(node)\",\"event\":\"start\",\"height\":\(height)}"
    }

    @Test func detectsConflictsLostBlocksGapsAndLatency() throws {
        let root = NSTemporaryDirectory() + "faultline-analysis-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try write([
            start("a", height: 0, t: 0),
            commit("a", 1, "h1", t: 1_000, ids: ["tx1"]),
            commit("a", 2, "h2", t: 1_100, ids: ["tx2"]),
            commit("a", 3, "h3", t: 3_100),
        ], to: root + "/a/events.jsonl")
        try write([
            start("b", height: 0, t: 0),
            commit("b", 1, "h1", t: 1_010, ids: ["tx1"]),
            commit("b", 2, "FORK", t: 1_120, ids: ["tx2"]),
            start("b", height: 1, t: 2_000), // came back below height 2, which it had committed
            "{\"t\":2500,\"node\":\"b\",\"event\":\"drops\",\"total\":{\"bad_signature\":7}}",
            "{not json — a line torn by kill -9",
        ], to: root + "/b/events.jsonl")
        try write(["{\"t\":990,\"tx\":\"tx1\"}", "{\"t\":1000,\"tx\":\"tx2\"}", "{\"t\":1000,\"tx\":\"never\"}"],
                  to: root + "/load/submissions.jsonl")
        let analysis = RunAnalysis.analyze(nodeDirs: [("a", root + "/a"), ("b", root + "/b")],
                                           submissionsPath: root + "/load/submissions.jsonl")
        #expect(!analysis.agreement)
        #expect(analysis.conflicts.map(\.height) == [2])
        #expect(analysis.conflicts.first?.sides == ["h2": ["a"], "FORK": ["b"]])
        #expect(!analysis.noCommittedBlockLost)
        #expect(analysis.nodes[1].lostOnRestart.count == 1)
        #expect(analysis.nodes[1].drops == ["bad_signature": 7])
        #expect(analysis.maxFinalityGapMs == 2_000)
        #expect(analysis.unreadableLines == 1)
        #expect(analysis.submitted == 3)
        #expect(analysis.latency?.count == 2)
        #expect(analysis.latency?.maxMs == 100)
        #expect(analysis.finalizedHeight == 3)
    }

    @Test func cleanRunPasses() throws {
        let root = NSTemporaryDirectory() + "faultline-analysis-clean-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        for node in ["a", "b"] {
            try write([start(node, height: 0, t: 0), commit(node, 1, "h1", t: 100), commit(node, 2, "h2", t: 130),
                       start(node, height: 2, t: 200), commit(node, 3, "h3", t: 260)],
                      to: root + "/\(node)/events.jsonl")
        }
        let analysis = RunAnalysis.analyze(nodeDirs: [("a", root + "/a"), ("b", root + "/b")], submissionsPath: nil)
        #expect(analysis.agreement && analysis.noCommittedBlockLost)
        #expect(analysis.heightsChecked == 3 && analysis.maxFinalityGapMs == 130)
    }
}
