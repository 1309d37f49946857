import Foundation
import Testing
@testable import Liveness

/// The L2 figures from hand-written event logs: feed lag per block, the root check, forced inclusion.
@Suite struct RollupAnalysisTests {
    func write(_ lines: [String]) throws -> String {
        let dir = NSTemporaryDirectory() + "rollup-analysis-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try (lines.joined(separator: "\n") + "\n").write(toFile: dir + "/events.jsonl", atomically: true, encoding: .utf8)
        return dir
    }

    @Test func feedLagRootsAndForcedInclusion() throws {
        let sequencer = try write([
            #"{"t":1000,"node":"seq","event":"l2_block","l2Height":1,"txs":5,"stateRoot":"aa"}"#,
            #"{"t":1100,"node":"seq","event":"l2_block","l2Height":2,"txs":5,"stateRoot":"bb"}"#,
            #"{"t":1200,"node":"seq","event":"l2_block","l2Height":3,"txs":5,"stateRoot":"cc"}"#,
            #"{"t":1300,"node":"seq","event":"l2_block","l2Height":4,"txs":5,"stateRoot":"dd"}"#,
            #"{"t":1500,"node":"seq","event":"l2_sample","role":"sequencer","queue":40,"waitP99Ms":90,"admitted":15,"rejected":{"backlog":3},"backlogBytes":2048,"l2Unsafe":3,"l2Safe":1,"rssKiB":1024}"#,
        ])
        // r1 gets blocks 1 and 2 from the feed, misses 3, and reaches it only when its batch lands.
        let r1 = try write([
            #"{"t":1010,"node":"r1","event":"feed_block","l2Height":1,"rootOk":true}"#,
            #"{"t":1120,"node":"r1","event":"feed_block","l2Height":2,"rootOk":true}"#,
            #"{"t":4200,"node":"r1","event":"l2_safe","lastHeight":3,"stateRoot":"cc"}"#,
            #"{"t":4300,"node":"r1","event":"forced_included","index":0,"l1Blocks":40,"l1WaitMs":1000,"bySequencer":false}"#,
            // Derivation's own block 4 replaces the sequencer's unposted block 4: not a mismatch.
            #"{"t":4300,"node":"r1","event":"l2_forced_block","l2Height":4,"stateRoot":"ee"}"#,
        ])
        let r2 = try write([
            #"{"t":1020,"node":"r2","event":"feed_block","l2Height":3,"rootOk":true}"#,
            #"{"t":4250,"node":"r2","event":"l2_safe","lastHeight":3,"stateRoot":"cd"}"#,
        ])
        let rollup = RollupAnalysis.analyze(nodeDirs: [("seq", sequencer), ("r1", r1), ("r2", r2)], recordsDir: nil)
        #expect(rollup.sequencer == "seq" && rollup.replicas.sorted() == ["r1", "r2"])
        #expect(rollup.feedLagMaxMs([0...1_250], endMs: 10_000) == 3_000, "block 3 reached r1 at 4200, made at 1200")
        #expect(rollup.feedLagMaxMs([0...1_050], endMs: 10_000) == 20, "only block 1: r2 had it at 1020")
        let (checked, mismatches) = rollup.rootCheck()
        #expect(checked == 2)
        #expect(mismatches.count == 2 && mismatches.allSatisfy { $0.contains("r2 at L2 height 3") })
        #expect(rollup.forced.map(\.l1Blocks) == [40] && rollup.forced.first?.bySequencer == false)
        #expect(rollup.samples.first?.rejected == ["backlog": 3])
    }

    /// Each submitted transaction followed to its block, the batch that posted it, the first replica
    /// that derived it and the first that counted it final; one never included counts as submitted only.
    @Test func latencyStagesJoinSubmissionsWithBlocksBatchesAndReplicas() throws {
        let sequencer = try write([
            #"{"t":1100,"node":"seq","event":"l2_block","l2Height":1,"txs":2,"stateRoot":"aa","txIds":["t1","t2"]}"#,
            #"{"t":1300,"node":"seq","event":"l2_block","l2Height":2,"txs":1,"stateRoot":"bb","txIds":["t3"]}"#,
            #"{"t":2000,"node":"seq","event":"batch_landed","batch":0,"lastHeight":1,"l1Height":9}"#,
            #"{"t":2500,"node":"seq","event":"batch_landed","batch":1,"lastHeight":2,"l1Height":12}"#,
        ])
        let r1 = try write([
            #"{"t":1000,"node":"r1","event":"l2_sample","role":"replica","l2Unsafe":0}"#,
            #"{"t":2100,"node":"r1","event":"l2_safe","lastHeight":1,"stateRoot":"aa"}"#,
            #"{"t":2900,"node":"r1","event":"l2_safe","lastHeight":2,"stateRoot":"bb"}"#,
            #"{"t":4000,"node":"r1","event":"l2_final","l2Height":2,"safeL1Height":12}"#,
        ])
        let r2 = try write([
            #"{"t":1000,"node":"r2","event":"l2_sample","role":"replica","l2Unsafe":0}"#,
            #"{"t":2050,"node":"r2","event":"l2_safe","lastHeight":2,"stateRoot":"bb"}"#,
        ])
        let submissions = sequencer + "/l2-submissions.jsonl"
        try ([#"{"t":1000,"tx":"t1"}"#, #"{"t":1050,"tx":"t2"}"#, #"{"t":1200,"tx":"t3"}"#, #"{"t":1250,"tx":"lost"}"#]
            .joined(separator: "\n") + "\n").write(toFile: submissions, atomically: true, encoding: .utf8)
        let rollup = RollupAnalysis.analyze(nodeDirs: [("seq", sequencer), ("r1", r1), ("r2", r2)], recordsDir: nil,
                                            loadSubmissionsPath: submissions)
        let load = try #require(rollup.latencies.first)
        #expect(load.source == "load" && load.submitted == 4)
        #expect(load.included?.count == 3 && load.included?.maxMs == 100, "t1 1000→1100, t2 1050→1100, t3 1200→1300")
        #expect(load.posted?.maxMs == 1_300, "t3: its batch landed at 2500")
        // r2 derived height 2 at 2050, before r1 had height 1: the first replica counts, for every height.
        #expect(load.safe?.maxMs == 1_050 && load.safe?.count == 3)
        // HdrHistogram keeps three significant digits.
        #expect(load.final?.count == 3 && abs((load.final?.maxMs ?? 0) - 3_000) <= 3, "final through 2 at 4000; t1 sent at 1000")
        #expect(rollup.replicaFinal == ["r1": 2, "r2": 0])
        // With L1 commit times, a batch counts as posted when its L1 block was first committed.
        let timed = RollupAnalysis.analyze(nodeDirs: [("seq", sequencer), ("r1", r1), ("r2", r2)], recordsDir: nil,
                                           loadSubmissionsPath: submissions, l1CommitMs: [9: 1_900, 12: 2_400])
        #expect(timed.latencies.first?.posted?.maxMs == 1_200, "t3: L1 height 12 committed at 2400")
    }
}
