import Formats
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import Wire
@testable import Liveness

/// Windows, halts and metrics over a synthetic run: blocks every 100 ms except a 3 s gap while a
/// partition was active, healed at 5.5 s, the next block 0.4 s later.
@Suite struct EvaluatorTests {
    static let start: UInt64 = 1_000_000

    static func analysis() -> RunAnalysis {
        var times: [RunAnalysis.HeightTime] = []
        var height: UInt64 = 0
        for ms in stride(from: 100, through: 10_000, by: 100) where ms <= 3_000 || ms >= 5_900 {
            height += 1
            times.append(.init(height: height, timeMs: start + UInt64(ms), round: ms == 5_900 ? 2 : 0, txs: 10))
        }
        return RunAnalysis(
            nodes: [], heightsChecked: times.count, conflicts: [], txsCommitted: times.count * 10,
            firstCommitMs: times.first?.timeMs, lastCommitMs: times.last?.timeMs, maxFinalityGapMs: 2_900,
            meanBlockIntervalMs: 100, submitted: 0, latency: nil, throughputTxPerSecond: 0, unreadableLines: 0,
            heightTimes: times, nodeSeries: [:],
            txLatencies: [.init(submitMs: start + 1_000, latencyMs: 20), .init(submitMs: start + 3_500, latencyMs: 2_500)])
    }

    static func evaluator() -> Evaluator {
        let windows = Evaluator.windows(from: [
            FaultEvent(t: start + 3_000, event: "start", id: "split", action: "partition", description: "partition a | b",
                       nodes: []),
            FaultEvent(t: start + 5_500, event: "end", id: "split", action: "heal", description: "partition a | b", nodes: []),
        ])
        return Evaluator(analysis: analysis(), windows: windows, startMs: start, endMs: start + 10_000,
                         haltThresholdSeconds: 1, crashed: [])
    }

    func check(_ metric: String, _ window: ExpectationSpec.Window, _ bound: ExpectationSpec.Bound) -> ExpectationResult {
        Self.evaluator().evaluate(ExpectationSpec(name: metric, metric: metric, window: window, bound: bound))
    }

    @Test func haltIsFoundWithItsCauseAndRecovery() {
        let halts = Self.evaluator().halts()
        #expect(halts.count == 1)
        #expect(halts[0].startMs == Self.start + 3_000 && halts[0].endMs == Self.start + 5_900)
        #expect(halts[0].cause == "partition a | b")
        #expect(halts[0].recoverySeconds == 0.4)
    }

    /// A window as scheduled (a remote run): its fault took effect up to `slackMs` late. Blocks in that
    /// first stretch do not count against "during", and the stretch after its end is not "outside".
    @Test func aScheduledWindowsSlackTrimsDuringAndWidensItsShadow() {
        var start = FaultEvent(t: Self.start + 2_700, event: "start", id: "split", action: "partition",
                               description: "partition a | b (as scheduled)", nodes: [])
        let end = FaultEvent(t: Self.start + 5_300, event: "end", id: "split", action: "partition",
                             description: "partition a | b (as scheduled)", nodes: [])
        func evaluate(_ metric: String, _ window: ExpectationSpec.Window, _ bound: ExpectationSpec.Bound,
                      slack: UInt64?) -> ExpectationResult {
            start.slackMs = slack
            let evaluator = Evaluator(analysis: Self.analysis(), windows: Evaluator.windows(from: [start, end]),
                                      startMs: Self.start, endMs: Self.start + 10_000, haltThresholdSeconds: 1, crashed: [])
            return evaluator.evaluate(ExpectationSpec(name: metric, metric: metric, window: window, bound: bound))
        }
        // Scheduled 0.3 s before the blocks stopped: 3 blocks "during" without slack, none with it.
        #expect(!evaluate("blocks_finalized", .during("split"), .max(0), slack: nil).passed)
        #expect(evaluate("blocks_finalized", .during("split"), .max(0), slack: 500).passed)
        // The blocks resumed 0.6 s after the scheduled end: a gap "outside" without slack, none with it.
        #expect(!evaluate("max_finality_gap_s", .outsideFaults, .max(0.5), slack: nil).passed)
        #expect(evaluate("max_finality_gap_s", .outsideFaults, .max(0.5), slack: 1_000).passed)
        #expect(evaluate("halt", .during("split"), .equals(true), slack: 1_000).passed)
    }

    @Test func windowedMetricsPassAndFailAsTheyShould() {
        #expect(check("halt", .during("split"), .equals(true)).passed)
        #expect(!check("halt", .outsideFaults, .equals(true)).passed)
        #expect(check("max_finality_gap_s", .outsideFaults, .max(0.5)).passed)
        #expect(!check("max_finality_gap_s", .whole, .max(2)).passed)
        #expect(check("recovery_s", .after("split"), .max(0.5)).passed)
        #expect(!check("recovery_s", .after("split"), .max(0.3)).passed)
        #expect(check("blocks_finalized", .during("split"), .max(0)).passed)
        #expect(check("max_rounds", .after("split"), .min(2)).passed)
        #expect(check("commit_latency_p99_ms", .during("split"), .min(2_000)).passed)
        #expect(!check("commit_latency_p99_ms", .whole, .max(100)).passed)
        #expect(check("agreement", .whole, .equals(true)).passed)
        let never = check("halt", .during("nonexistent"), .equals(false))
        #expect(!never.passed && never.observed == "window never happened")
    }

    /// Bounds in the protocol's terms: the run's block interval with no fault open is 100 ms here (the
    /// 2.9 s gap lies in the partition), the propose timeout 300 ms; the longest gap is 2.9 s.
    @Test func boundsInBlockIntervalsAndProposeTimeouts() {
        let base = Self.evaluator()
        let evaluator = Evaluator(analysis: base.analysis, windows: base.windows, startMs: base.startMs, endMs: base.endMs,
                                  haltThresholdSeconds: 1, crashed: [], timeoutProposeMs: 300)
        #expect(evaluator.noFaultBlockIntervalMs() == 100)
        func check(_ bound: ExpectationSpec.Bound, _ unit: ExpectationSpec.Unit) -> ExpectationResult {
            evaluator.evaluate(ExpectationSpec(name: "gap", metric: "max_finality_gap_s", window: .whole, bound: bound, unit: unit))
        }
        #expect(check(.max(30), .blockInterval).passed)
        let tight = check(.max(28), .blockInterval)
        #expect(!tight.passed && tight.bound == "<= 28 block intervals (100 ms measured) = <= 2.8")
        #expect(check(.max(10), .timeoutPropose).passed)
        #expect(!check(.max(9), .timeoutPropose).passed)
        // Milliseconds scale without the division: p99 2,500 ms is 25 block intervals.
        let latency = evaluator.evaluate(ExpectationSpec(name: "p99", metric: "commit_latency_p99_ms", window: .whole,
                                                         bound: .max(25), unit: .blockInterval))
        #expect(latency.passed && latency.bound.hasSuffix("= <= 2500"))
        // No propose timeout known: the bound cannot be resolved, and that is a failure that says so.
        let unknown = Self.evaluator().evaluate(ExpectationSpec(name: "gap", metric: "max_finality_gap_s", window: .whole,
                                                                bound: .max(10), unit: .timeoutPropose))
        #expect(!unknown.passed && unknown.observed.contains("could not be measured"))
    }

    @Test func junitIsWellFormedAndCountsFailures() throws {
        let specs = [
            ExpectationSpec(name: "halts <during>", metric: "halt", window: .during("split"), bound: .equals(true)),
            ExpectationSpec(name: "no long gap & \"quotes\"", metric: "max_finality_gap_s", window: .whole, bound: .max(1)),
        ]
        let report = Report(scenario: "synthetic", seed: 3, evaluator: Self.evaluator(), expectations: specs)
        #expect(!report.passed)
        let xml = report.junit()
        let parser = XMLParser(data: Data(xml.utf8))
        #expect(parser.parse(), "junit.xml is not well-formed: \(xml)")
        #expect(xml.contains("tests=\"2\" failures=\"1\""))
        #expect(xml.components(separatedBy: "<testcase ").count == 3)
        let html = report.html()
        #expect(html.contains("<svg") && html.contains("halt 2.9 s") && html.contains("partition a | b"))
        let decoded = try JSONSerialization.jsonObject(with: report.json()) as? [String: Any]
        #expect((decoded?["liveness"] as? [String: Any])?["halts"] != nil)
    }
}

@Suite struct VoteInclusionTests {
    /// Validator 3's precommit is missing from heights 1–3 and lands again at 4; validator 2's is never
    /// seen after height 1. Latency counts the heights until a certificate carries each vote.
    @Test func heightsUntilEachValidatorsVoteLands() {
        let signers: [[Int]] = [[0, 1, 2], [0, 1, 3], [0, 1, 3], [0, 1, 3], [0, 1, 3]]
        let times = signers.enumerated().map { index, who in
            RunAnalysis.HeightTime(height: UInt64(index + 1), timeMs: 1_000 + UInt64(index) * 100, round: 0, txs: 0,
                                   signers: who)
        }
        let analysis = RunAnalysis(
            nodes: [], heightsChecked: times.count, conflicts: [], txsCommitted: 0, firstCommitMs: 1_000,
            lastCommitMs: 1_400, maxFinalityGapMs: 100, meanBlockIntervalMs: 100, submitted: 0, latency: nil,
            throughputTxPerSecond: 0, unreadableLines: 0, heightTimes: times, nodeSeries: [:], txLatencies: [])
        let evaluator = Evaluator(analysis: analysis, windows: [], startMs: 900, endMs: 1_500,
                                  haltThresholdSeconds: 1, crashed: [])
        let latencies = evaluator.voteInclusionHeights([900...1_500])
        // Validators 0 and 1: 0 at all five heights. Validator 3: 1 (height 1), then 0 ×4.
        // Validator 2: 0 at height 1, then never again: counted as the heights left, 4, 3, 2, 1.
        #expect(latencies == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4])
        #expect(Evaluator.percentile(latencies, 0.5) == 0)
        #expect(Evaluator.percentile(latencies, 0.99) == 4)
        let spec = ExpectationSpec(name: "p99", metric: "vote_inclusion_heights_p99", window: .whole, bound: .max(2))
        let result = evaluator.evaluate(spec)
        #expect(!result.passed)
    }
}
