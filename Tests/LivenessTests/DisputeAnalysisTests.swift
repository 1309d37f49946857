import Formats
import Foundation
import Testing
import Wire
@testable import Liveness

/// The fraud-proof figures from hand-written event logs: events counted once across nodes and replays,
/// roots judged against what replicas derived, and the expectations that must fail on a bad game.
@Suite struct DisputeAnalysisTests {
    func write(_ lines: [String]) throws -> String {
        let dir = NSTemporaryDirectory() + "dispute-analysis-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try (lines.joined(separator: "\n") + "\n").write(toFile: dir + "/events.jsonl", atomically: true, encoding: .utf8)
        return dir
    }

    static func line(_ t: UInt64, _ event: String, _ fields: [String: Any]) -> String {
        var object = fields
        object["t"] = t
        object["event"] = event
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// What every rollup node logs as it applies L1: batch 0 asserted with the right root and confirmed;
    /// batch 1 asserted with a wrong root at L1 30, challenged at 32, bisected over a trace of 8 (3
    /// bisections), decided by a one-step proof at 40 and removed; batch 1 asserted again and confirmed
    /// at 65; batch 2 challenged by a liar who then lets its clock run out after one bisection.
    /// `bisections`, `toWinner`, `confirmWrong` plant faults.
    static func disputeLog(bisections: Int = 3, toWinner: Int = 5_000, confirmWrong: Bool = false) -> [String] {
        let line = Self.line
        var lines = [
            line(100, "dispute_asserted", ["assertion": "a0", "batch": 0, "root": "r0", "length": 8, "windowEnd": 30,
                                            "bond": 10_000, "l1Height": 10]),
            line(200, "dispute_asserted", ["assertion": "a1", "batch": 1, "root": "bad", "length": 8, "windowEnd": 50,
                                            "bond": 10_000, "l1Height": 30]),
            line(220, "dispute_challenged", ["assertion": "a1", "game": 0, "challenger": "c1", "bond": 4_000, "clock": 20,
                                              "l1Height": 32]),
        ]
        var low = 0, high = 8, height = 33
        for _ in 0..<bisections {
            let mid = (low + high) / 2
            lines.append(line(UInt64(height * 10), "dispute_move", ["assertion": "a1", "game": 0, "side": "proposer",
                                                                     "index": mid, "low": low, "high": high, "clockProposer": 19,
                                                                     "clockChallenger": 20, "l1Height": height]))
            high = mid
            lines.append(line(UInt64(height * 10 + 10), "dispute_move", ["assertion": "a1", "game": 0, "side": "challenger",
                                                                          "index": mid, "low": low, "high": high,
                                                                          "clockProposer": 19, "clockChallenger": 19,
                                                                          "l1Height": height + 1]))
            height += 2
        }
        lines += [
            line(400, "dispute_one_step", ["assertion": "a1", "game": 0, "step": 1, "l1Height": 40]),
            line(400, "dispute_game_ended", ["assertion": "a1", "game": 0, "batch": 1, "challenger": "c1", "winner": "challenger",
                                              "reason": "step 1 executes to another state than the proposer's",
                                              "bisections": bisections, "clockProposer": 17, "clockChallenger": 16,
                                              "toWinner": toWinner, "burned": 5_000, "refunded": 0, "l1Height": 40]),
            line(400, "dispute_rejected", ["assertion": "a1", "batch": 1, "root": "bad", "reason": "defeated", "l1Height": 40]),
            line(410, "dispute_confirmed", ["assertion": "a0", "batch": 0, "root": "r0", "lastHeight": 5, "l1Height": 41]),
            line(450, "dispute_asserted", ["assertion": "a1b", "batch": 1, "root": "r1", "length": 8, "windowEnd": 65,
                                            "bond": 10_000, "l1Height": 45]),
            line(460, "dispute_asserted", ["assertion": "a2", "batch": 2, "root": "r2", "length": 4, "windowEnd": 70,
                                            "bond": 10_000, "l1Height": 50]),
            line(470, "dispute_challenged", ["assertion": "a2", "game": 0, "challenger": "liar", "bond": 4_000, "clock": 20,
                                              "l1Height": 52]),
            line(480, "dispute_move", ["assertion": "a2", "game": 0, "side": "proposer", "index": 2, "low": 0, "high": 4,
                                        "clockProposer": 19, "clockChallenger": 20, "l1Height": 53]),
            line(490, "dispute_move", ["assertion": "a2", "game": 0, "side": "challenger", "index": 2, "low": 2, "high": 4,
                                        "clockProposer": 19, "clockChallenger": 19, "l1Height": 54]),
            line(700, "dispute_game_ended", ["assertion": "a2", "game": 0, "batch": 2, "challenger": "liar", "winner": "proposer",
                                              "reason": "the challenger's clock ran out", "bisections": 1, "clockProposer": 19,
                                              "clockChallenger": 0, "toWinner": 2_000, "burned": 2_000, "refunded": 0,
                                              "l1Height": 74]),
            line(650, "dispute_confirmed", ["assertion": "a1b", "batch": 1, "root": "r1", "lastHeight": 9, "l1Height": 65]),
        ]
        if confirmWrong {
            lines.append(line(800, "dispute_confirmed", ["assertion": "a1", "batch": 1, "root": "bad", "lastHeight": 9,
                                                          "l1Height": 80]))
        }
        return lines
    }

    static let derived = [
        line(90, "l2_sample", ["role": "replica", "l2Unsafe": 0]),
        line(95, "l2_safe", ["batch": 0, "lastHeight": 5, "stateRoot": "r0"]),
        line(195, "l2_safe", ["batch": 1, "lastHeight": 9, "stateRoot": "r1"]),
        line(455, "l2_safe", ["batch": 2, "lastHeight": 12, "stateRoot": "r2"]),
    ]

    func evaluator(_ log: [String]) throws -> (RollupAnalysis, Evaluator) {
        // r1 logs everything; r2 was restarted and logs the same L1 blocks again, at other times.
        let r1 = try write(Self.derived + log)
        let r2 = try write(Self.derived + log.map { $0.replacingOccurrences(of: "\"t\":", with: "\"t\":9") })
        let rollup = RollupAnalysis.analyze(nodeDirs: [("r1", r1), ("r2", r2)], recordsDir: nil)
        var analysis = RunAnalysis(
            nodes: [], heightsChecked: 0, conflicts: [], txsCommitted: 0, firstCommitMs: 0, lastCommitMs: 800,
            maxFinalityGapMs: 0, meanBlockIntervalMs: 10, submitted: 0, latency: nil, throughputTxPerSecond: 0,
            unreadableLines: 0, heightTimes: [], nodeSeries: [:], txLatencies: [])
        analysis.rollup = rollup
        return (rollup, Evaluator(analysis: analysis, windows: [], startMs: 0, endMs: 1_000, haltThresholdSeconds: 1, crashed: []))
    }

    func value(_ evaluator: Evaluator, _ metric: String) -> Double? {
        let isBool = ExpectationSpec.metrics[metric]
        #expect(isBool != nil, "\(metric) is a metric a topology can name")
        return evaluator.evaluateDisputes(metric)?.0
    }

    @Test func gamesCountedOnceAndJudgedAgainstDerivedRoots() throws {
        let (rollup, evaluator) = try evaluator(Self.disputeLog())
        let disputes = rollup.disputes
        #expect(disputes.assertions.map(\.id) == ["a0", "a1", "a1b", "a2"], "each assertion once, across two logs")
        #expect(disputes.assertions.map(\.valid) == [true, false, true, true])
        #expect(disputes.games.count == 2 && disputes.games[0].moves.count == 6 && disputes.games[1].moves.count == 2)
        // Times come from the first log that saw the event (no L1 commit times given here).
        #expect(disputes.games[0].timeMs == 220 && disputes.games[0].end?.timeMs == 400)
        #expect(disputes.games.map { disputes.honestWon($0) } == [true, true])
        #expect(disputes.games.map { disputes.shapeProblem($0) } == [nil, nil], "3 bisections + one step; 1 + a timeout")
        #expect(disputes.games.map { disputes.bondProblem($0) } == [nil, nil])
        #expect(value(evaluator, "dispute_games") == 2)
        #expect(value(evaluator, "dispute_honest_losses") == 0)
        #expect(value(evaluator, "dispute_invalid_confirmed") == 0)
        #expect(value(evaluator, "dispute_invalid_rejected") == 1)
        #expect(value(evaluator, "dispute_bisections_exact") == 1)
        #expect(value(evaluator, "dispute_bonds_settled") == 1)
        #expect(value(evaluator, "dispute_detection_l1_blocks_max") == 2, "asserted at 30, challenged at 32")
        #expect(value(evaluator, "dispute_resolution_l1_blocks_max") == 22, "the liar's game: 52 → 74")
        #expect(value(evaluator, "dispute_confirm_l1_blocks_max") == 31, "a0: 10 → 41")
        #expect(value(evaluator, "dispute_games_open") == 0)
        let report = Report(scenario: "disputes", seed: 1, evaluator: evaluator, expectations: [])
        let entry = try #require(report.disputes)
        #expect(entry.invalid == 1 && entry.confirmed == 2 && entry.rejected == 1 && entry.confirmBlocks == [20, 31])
        let lines = report.disputeLines
        #expect(lines.contains { $0.contains("3 bisection(s) (log2 8 = 3) then a one-step proof of step 1") })
        #expect(lines.contains { $0.contains("proposer won (honest): the challenger's clock ran out") })
        #expect(report.html().contains("Batch 1, game 0: disputed range and clocks"))
    }

    @Test func aBadGameFailsItsExpectations() throws {
        let (_, short) = try evaluator(Self.disputeLog(bisections: 2))
        #expect(value(short, "dispute_bisections_exact") == 0, "2 bisections before a one-step proof over 8 steps")
        let (_, overpaid) = try evaluator(Self.disputeLog(toWinner: 6_000))
        #expect(value(overpaid, "dispute_bonds_settled") == 0, "6,000 + 5,000 burned from a 10,000 bond")
        let (_, confirmed) = try evaluator(Self.disputeLog(confirmWrong: true))
        #expect(value(confirmed, "dispute_invalid_confirmed") == 1)
        // Without the one-step proof and the end, the game is open and the liar has not paid.
        let open = Self.disputeLog().filter { !$0.contains("\"assertion\":\"a1\",\"batch\":1,\"bisections\"") }
        let (_, unfinished) = try evaluator(open)
        #expect(value(unfinished, "dispute_games_open") == 1)
    }
}
