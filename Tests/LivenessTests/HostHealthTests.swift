import Formats
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import Wire
@testable import Liveness

/// Verdicts on an overloaded host, over the synthetic run of `EvaluatorTests` (blocks every 100 ms but a
/// 2.9 s gap from 3.0 s, while a partition was open 3.0–5.5 s; `faults: false` is the same run with no
/// fault recorded): a timing expectation that failed where the host was overloaded is inconclusive with its
/// evidence; one that failed elsewhere, or the other way, or where a fault explains it, or a safety or
/// mechanism expectation, stays failed.
@Suite struct HostHealthTests {
    static let start = EvaluatorTests.start

    /// The host's CPU pressure per second: `busy` seconds (relative to the start) at 95%, the rest at 5%.
    static func host(busy: Set<Int>, timersLate: [Int: UInt64] = [:]) -> HostHealth {
        let samples = (1...10).map { second in
            HostHealth.HostSample(timeMs: start + UInt64(second) * 1_000,
                                  cpuSomePercent: busy.contains(second) ? 95 : 5, runQueue: 2, stealPercent: 0, cores: 2)
        }
        let timers = timersLate.map { HostHealth.TimerSample(timeMs: start + UInt64($0.key) * 1_000, node: "v3", lateP99Ms: $0.value) }
        return HostHealth(host: samples, timers: timers)
    }

    /// `faults: true` records the partition and says (as a scenario expecting a halt during it would) that
    /// it stops finality.
    static func evaluator(_ host: HostHealth?, faults: Bool = true) -> Evaluator {
        let base = EvaluatorTests.evaluator()
        return Evaluator(analysis: base.analysis, windows: faults ? base.windows : [], startMs: base.startMs,
                         endMs: base.endMs, haltThresholdSeconds: 1, crashed: [], host: host,
                         haltingSteps: faults ? ["split"] : [])
    }

    static func verdict(_ host: HostHealth?, _ metric: String, _ window: ExpectationSpec.Window,
                        _ bound: ExpectationSpec.Bound, timing: Bool? = nil, faults: Bool = true) -> ExpectationResult {
        evaluator(host, faults: faults).evaluate(ExpectationSpec(name: metric, metric: metric, window: window,
                                                                 bound: bound, timing: timing))
    }

    @Test func aGapThatLinesUpWithAnOverloadedHostIsInconclusiveWithItsEvidence() throws {
        // No fault explains the gap (3.0–5.9 s); the host was at 95% in (3, 4] and (4, 5].
        let result = Self.verdict(Self.host(busy: [4, 5]), "max_finality_gap_s", .whole, .max(2), faults: false)
        #expect(!result.passed)
        #expect(result.verdict == .inconclusive)
        let evidence = try #require(result.inconclusive)
        #expect(evidence.overloadedSeconds == 2)
        #expect(evidence.cpuPressurePeakPercent == 95)
        #expect(evidence.summary.contains("host CPU pressure ≥ 90% for 2.0 s"), "\(evidence.summary)")
    }

    @Test func aFaultExplainsItsOwnHaltWhateverTheHost() {
        // The same host, but the partition, which the scenario says halts finality, was open for all but the
        // gap's last 0.4 s: failed.
        #expect(Self.verdict(Self.host(busy: [4, 5]), "max_finality_gap_s", .whole, .max(2)).verdict == .failed)
        #expect(Self.verdict(Self.host(busy: Set(1...10)), "halt", .during("split"), .equals(false)).verdict == .failed)
        // A fault the cluster should ride out (nothing says it halts) explains nothing: the host may have.
        let base = EvaluatorTests.evaluator()
        let riddenOut = Evaluator(analysis: base.analysis, windows: base.windows, startMs: base.startMs,
                                  endMs: base.endMs, haltThresholdSeconds: 1, crashed: [], host: Self.host(busy: [4, 5]))
        let result = riddenOut.evaluate(ExpectationSpec(name: "gap", metric: "max_finality_gap_s", window: .whole,
                                                        bound: .max(2)))
        #expect(result.verdict == .inconclusive)
    }

    @Test func theStepsAScenarioSaysHaltAreTheOnesWithAHaltExpected() {
        let specs = [
            ExpectationSpec(name: "a", metric: "halt", window: .during("split"), bound: .equals(true)),
            ExpectationSpec(name: "b", metric: "halt", window: .during("minority"), bound: .equals(false)),
            ExpectationSpec(name: "c", metric: "max_finality_gap_s", window: .during("upgrade"), bound: .min(5)),
            ExpectationSpec(name: "d", metric: "max_finality_gap_s", window: .during("kill"), bound: .max(1)),
            ExpectationSpec(name: "e", metric: "halt", window: .whole, bound: .equals(true)),
        ]
        #expect(Evaluator.haltingSteps(specs) == ["split", "upgrade"])
    }

    @Test func overloadElsewhereInTheRunDoesNotExplainTheGap() {
        // Busy at 8–10 s, long after the gap: the failure is the product's.
        let late = Self.host(busy: [8, 9, 10])
        #expect(Self.verdict(late, "max_finality_gap_s", .whole, .max(2), faults: false).verdict == .failed)
        // No host figures at all (simulated time): failed.
        #expect(Self.verdict(nil, "max_finality_gap_s", .whole, .max(2), faults: false).verdict == .failed)
    }

    @Test func aSequencersWorstSecondIsJudgedByTheStretchItsClaimsWaited() {
        // Claims wait 100 ms a second, but those leaving the queue in (7, 8] s waited 2.5 s: that second's
        // claims were queued from 5.5 s on. The host was saturated in (5, 8]: most of that stretch, though
        // under a third of the 10 s window.
        let start = Self.start
        var base = EvaluatorTests.evaluator().analysis
        var rollup = RollupAnalysis(sequencer: "seq", replicas: [])
        rollup.samples = (1...10).map { second in
            RollupAnalysis.Sample(timeMs: start + UInt64(second) * 1_000, queue: 10, waitP99Ms: second == 8 ? 2_500 : 100,
                                  admitted: 100, rejected: [:], backlogBytes: 0, unsafeHeight: 0, safeHeight: 0, rssKiB: 0)
        }
        base.rollup = rollup
        func verdict(_ busy: Set<Int>) -> ExpectationResult {
            Evaluator(analysis: base, windows: [], startMs: start, endMs: start + 10_000, haltThresholdSeconds: 1,
                      crashed: [], host: Self.host(busy: busy))
                .evaluate(ExpectationSpec(name: "w", metric: "l2_wait_p99_ms", window: .whole, bound: .max(2_000)))
        }
        #expect(verdict([6, 7, 8]).verdict == .inconclusive)
        // The same three saturated seconds elsewhere explain nothing.
        #expect(verdict([1, 2, 3]).verdict == .failed)
    }

    /// A client's p99 over its bound is explained by the host when the answers over the bound were in
    /// flight while it was overloaded: a stalled gateway answers everything sent in its stall late at
    /// once. A policy that is slow all through the window is not, however busy some of its seconds were.
    @Test func aClientsSlowAnswersAreJudgedByWhenTheyWereInFlight() {
        let start = Self.start
        var base = EvaluatorTests.evaluator().analysis
        func verdict(slowAt: [Int], busy: Set<Int>) -> ExpectationResult {
            // Ten answers a second for 10 s, 5 ms each, but 400 ms for those sent in the `slowAt` seconds.
            let requests = (0..<100).map { index in
                let t = start + UInt64(index) * 100
                let slow = slowAt.contains(index / 10)
                return RPCRequestRecord(t: t, client: "gateway", method: "eth_blockNumber", ok: true, ms: slow ? 400 : 5,
                                        attempts: 1)
            }
            base.rpc = RPCAnalysis(requests: requests, clients: ["gateway"], staleBlocks: 16, gatewaySamples: [:],
                                   upstreamEvents: [], heads: [])
            var spec = ExpectationSpec(name: "p99", metric: "rpc_latency_p99_ms", window: .whole, bound: .max(100))
            spec.client = "gateway"
            return Evaluator(analysis: base, windows: [], startMs: start, endMs: start + 10_000, haltThresholdSeconds: 1,
                             crashed: [], host: Self.host(busy: busy)).evaluate(spec)
        }
        // A 1 s stall (seconds 7–8 busy) made one second's answers late: the host explains it, though two
        // busy seconds are a fifth of the window.
        #expect(verdict(slowAt: [7], busy: [7, 8]).verdict == .inconclusive)
        // The same two busy seconds, with late answers in five other seconds: a slow policy, not the host.
        #expect(verdict(slowAt: [1, 3, 5, 7, 9], busy: [7, 8]).verdict == .failed)
        // Late answers while nothing was busy: failed.
        #expect(verdict(slowAt: [7], busy: []).verdict == .failed)
    }

    @Test func aBriefSpikeInALongStretchIsNoEvidence() {
        // One saturated second in a 2.9 s gap is not half of it, nor as long as the 1.9 s it is over a 1 s bound.
        #expect(Self.verdict(Self.host(busy: [4]), "max_finality_gap_s", .whole, .max(1), faults: false).verdict == .failed)
    }

    /// A gap over its bound by less than the time the host was overloaded in it would have been within the bound
    /// without that time: the overload can explain the miss even when it covers under half of the gap.
    @Test func anOverloadAsLongAsTheMissExplainsIt() throws {
        // The 2.9 s gap is 0.9 s over a 2 s bound; the host was saturated for 1 s of it.
        let result = Self.verdict(Self.host(busy: [4]), "max_finality_gap_s", .whole, .max(2), faults: false)
        #expect(result.verdict == .inconclusive)
        #expect(try #require(result.inconclusive).summary.contains("more than the 0.9 s over the bound"))
        // A halt by a 2 s threshold, the same way; by a 1 s threshold (1.9 s over) that second is not enough.
        let base = EvaluatorTests.evaluator()
        for (threshold, verdict) in [(2.0, Verdict.inconclusive), (1.0, .failed)] {
            let evaluator = Evaluator(analysis: base.analysis, windows: [], startMs: base.startMs, endMs: base.endMs,
                                      haltThresholdSeconds: threshold, crashed: [], host: Self.host(busy: [4]))
            let halt = evaluator.evaluate(ExpectationSpec(name: "no halt", metric: "halt", window: .whole,
                                                          bound: .equals(false)))
            #expect(!halt.passed)
            #expect(halt.verdict == verdict, "threshold \(threshold) s")
        }
    }

    @Test func lateNodeTimersAloneAreEvidence() throws {
        let result = Self.verdict(Self.host(busy: [], timersLate: [4: 340, 5: 200]), "max_finality_gap_s", .whole,
                                  .max(2), faults: false)
        #expect(result.verdict == .inconclusive)
        #expect(try #require(result.inconclusive).summary.contains("node timers p99 340 ms late (v3"))
        // Below the threshold (50 ms), they are not.
        #expect(Self.verdict(Self.host(busy: [], timersLate: [4: 40, 5: 40]), "max_finality_gap_s", .whole, .max(2),
                             faults: false).verdict == .failed)
    }

    /// A pressure peak just under the threshold is not printed as the threshold itself.
    @Test func aPeakJustUnderTheThresholdKeepsItsDecimal() throws {
        let threshold = HostHealth.Thresholds.standard.cpuPressurePercent
        let samples = (1...10).map { second in
            HostHealth.HostSample(timeMs: Self.start + UInt64(second) * 1_000, cpuSomePercent: threshold - 0.4,
                                  runQueue: 2, stealPercent: 0, cores: 2)
        }
        let host = HostHealth(host: samples, timers: [HostHealth.TimerSample(timeMs: Self.start + 5_000, node: "v3", lateP99Ms: 2_500)])
        let result = Self.verdict(host, "max_finality_gap_s", .whole, .max(2), faults: false)
        let summary = try #require(result.inconclusive).summary
        #expect(summary.contains(String(format: "(peak %.1f%%)", threshold - 0.4)), "\(summary)")
        #expect(summary.contains("for 0.0 s of this window"), "\(summary)")
    }

    /// A starved node writes no sample until it runs again; the one it then writes says how long its
    /// ticks waited, and that whole stretch counts (here: nothing from 3 s, then "2,500 ms late" at 6 s).
    @Test func aLateSampleCoversTheStretchItWaited() throws {
        let result = Self.verdict(Self.host(busy: [], timersLate: [6: 2_500]), "max_finality_gap_s", .whole, .max(2),
                                  faults: false)
        #expect(result.verdict == .inconclusive)
        #expect(try #require(result.inconclusive).overloadedSeconds == 2.9)  // (2.5, 6.0] covers the whole gap 3.0–5.9
    }

    @Test func safetyAndMechanismExpectationsAreNeverInconclusive() {
        let busy = Self.host(busy: Set(1...10))
        // A halt that must happen and did not (outside faults: no halt) is a mechanism failure.
        #expect(Self.verdict(busy, "halt", .outsideFaults, .equals(true)).verdict == .failed)
        // No halt expected, but there was one, on a busy host: timing.
        #expect(Self.verdict(busy, "halt", .whole, .equals(false), faults: false).verdict == .inconclusive)
        // A gap shorter than a minimum asked for is not what overload does.
        #expect(Self.verdict(busy, "max_finality_gap_s", .whole, .min(5), faults: false).verdict == .failed)
        // Blocks finalized in a minority partition: a bound that must hold at any speed.
        #expect(Self.verdict(busy, "blocks_finalized", .whole, .max(3)).verdict == .failed)
        // Too few blocks on a busy host: timing.
        #expect(Self.verdict(busy, "blocks_finalized", .whole, .min(1_000)).verdict == .inconclusive)
        // A file can say a metric is not about timing.
        #expect(Self.verdict(busy, "blocks_finalized", .whole, .min(1_000), timing: false).verdict == .failed)
        #expect(Self.verdict(busy, "recovery_s", .after("split"), .max(0.3)).verdict == .inconclusive)
        #expect(Self.verdict(busy, "recovery_s", .after("split"), .max(0.5)).verdict == .passed)
    }

    @Test func reportVerdictJUnitAndHTMLCarryTheInconclusive() throws {
        let specs = [
            ExpectationSpec(name: "short gaps", metric: "max_finality_gap_s", window: .whole, bound: .max(2)),
            ExpectationSpec(name: "agreement", metric: "agreement", window: .whole, bound: .equals(true)),
        ]
        let report = Report(scenario: "busy", seed: 1, evaluator: Self.evaluator(Self.host(busy: [4, 5]), faults: false),
                            expectations: specs)
        #expect(report.verdict == .inconclusive && !report.passed && report.inconclusiveCount == 1)
        let xml = report.junit()
        #expect(XMLParser(data: Data(xml.utf8)).parse(), "junit.xml is not well-formed: \(xml)")
        #expect(xml.contains("failures=\"0\" skipped=\"1\""))
        #expect(xml.contains("<skipped message=\"inconclusive: max_finality_gap_s"))
        let host = try #require(report.host)
        #expect(host.overloadedSeconds == 2 && host.cpuPressurePeakPercent == 95)
        let html = report.html()
        #expect(html.contains("INCONCLUSIVE") && html.contains("Host load"))
        let json = try #require(try JSONSerialization.jsonObject(with: report.json()) as? [String: Any])
        #expect(json["verdict"] as? String == "inconclusive")
        // The stretches judged overloaded travel with the report (the fidelity check reads them): (3, 5] s.
        #expect((json["host"] as? [String: Any])?["overloaded"] as? [[Double]] == [[3, 5]])
        // A failure beside an inconclusive makes the run failed.
        let failing = specs + [ExpectationSpec(name: "a min gap", metric: "max_finality_gap_s", window: .whole, bound: .min(9))]
        #expect(Report(scenario: "busy", seed: 1, evaluator: Self.evaluator(Self.host(busy: [4, 5]), faults: false),
                       expectations: failing).verdict == .failed)
    }

    @Test func pausedNodesLateTimersAreTheFaultNotTheHost() {
        var node = RunAnalysis.NodeSummary(name: "v2", height: 0, commits: 0, syncedCommits: 0, starts: 1, maxRound: 0,
                                           lostOnRestart: [], drops: [:])
        node.timerLateP99 = [.init(timeMs: Self.start + 4_000, height: 2_000), .init(timeMs: Self.start + 9_000, height: 500)]
        var analysis = EvaluatorTests.analysis()
        analysis.nodes = [node]
        let pause = FaultWindow(id: "p", action: "pause", description: "pause v2", nodes: ["v2"],
                                startMs: Self.start + 1_500, endMs: Self.start + 3_500)
        let health = HostHealth.load(dir: "/nonexistent", analysis: analysis, windows: [pause])
        #expect(health.timers.map(\.lateP99Ms) == [500])
    }
}
