import Foundation

extension Report {
    /// The L2 figures of a run with a sequencer (Topologies/README.md, "L2 sequencer"), over the whole run.
    public struct RollupEntry: Codable, Sendable {
        public struct AirdropEntry: Codable, Sendable {
            public var id: String
            public var count: Int
            public var sent: Int
            public var seconds: Double
            /// Refusals the client was told about, by reason.
            public var answeredRejects: [String: Int]
        }

        public struct ForcedEntry: Codable, Sendable {
            public var index: UInt64
            public var l1Blocks: UInt64
            public var l1WaitMs: UInt64
            public var bySequencer: Bool
        }

        public var sequencer: String
        public var replicas: [String]
        public var airdrops: [AirdropEntry]
        public var admitted: UInt64
        public var rejected: [String: UInt64]
        public var included: UInt64
        public var queueMax: UInt64
        public var waitP99MaxMs: UInt64
        public var backlogMaxKiB: Double
        public var unsafeSafeGapMax: UInt64
        public var feedLagMaxSeconds: Double?
        public var batchesChecked: Int
        public var problems: [String]
        public var forced: [ForcedEntry]
        /// Nil where no sample measured it (simulated).
        public var sequencerRssMaxMiB: Double?
        /// L2 heights whose claimed root differs from what L1's transactions give (any replica).
        public var rootMismatchHeights: [UInt64]
        /// Submit → included → posted → safe → final, for the L2 load and each airdrop.
        public var latencies: [L2Latency]
        /// Per replica: the highest L2 height it counts final (safe and past the challenge window).
        public var finalHeights: [String: UInt64]
        /// Per sequencer sample: [second, queue, backlog KiB, unsafe height, safe height, wait p99 ms].
        public var series: [[Double]]
    }

    static func rollupEntry(_ evaluator: Evaluator) -> RollupEntry? {
        guard let rollup = evaluator.analysis.rollup, let sequencer = rollup.sequencer else { return nil }
        let start = evaluator.startMs
        let samples = rollup.samples
        var rejected: [String: UInt64] = [:]
        for sample in samples { rejected.merge(sample.rejected, uniquingKeysWith: +) }
        let (checked, mismatches) = rollup.rootCheck()
        var worstForced: [UInt64: RollupAnalysis.Forced] = [:]
        for entry in rollup.forced where entry.l1Blocks >= (worstForced[entry.index]?.l1Blocks ?? 0) {
            worstForced[entry.index] = entry
        }
        return RollupEntry(
            sequencer: sequencer, replicas: rollup.replicas.sorted(),
            airdrops: rollup.airdrops.map {
                .init(id: $0.id, count: $0.count, sent: $0.sent, seconds: $0.seconds, answeredRejects: $0.rejected)
            },
            admitted: samples.reduce(0) { $0 + $1.admitted }, rejected: rejected,
            included: rollup.blocks.reduce(0) { $0 + $1.txs }, queueMax: samples.map(\.queue).max() ?? 0,
            waitP99MaxMs: samples.map(\.waitP99Ms).max() ?? 0,
            backlogMaxKiB: Double(samples.map(\.backlogBytes).max() ?? 0) / 1024,
            unsafeSafeGapMax: samples.map { $0.unsafeHeight > $0.safeHeight ? $0.unsafeHeight - $0.safeHeight : 0 }.max() ?? 0,
            feedLagMaxSeconds: rollup.feedLagMaxMs([start...evaluator.endMs], endMs: evaluator.endMs).map { Double($0) / 1000 },
            batchesChecked: checked, problems: mismatches + rollup.problems,
            forced: worstForced.values.sorted { $0.index < $1.index }.map {
                .init(index: $0.index, l1Blocks: $0.l1Blocks, l1WaitMs: $0.l1WaitMs, bySequencer: $0.bySequencer)
            },
            sequencerRssMaxMiB: samples.compactMap(\.rssKiB).max().map { Double($0) / 1024 },
            rootMismatchHeights: rollup.rootMismatches.values.reduce(into: Set<UInt64>()) { $0.formUnion($1) }.sorted(),
            latencies: rollup.latencies, finalHeights: rollup.replicaFinal,
            series: samples.map {
                [(Double($0.timeMs) - Double(start)) / 1000, Double($0.queue), Double($0.backlogBytes) / 1024,
                 Double($0.unsafeHeight), Double($0.safeHeight), Double($0.waitP99Ms)]
            })
    }

    /// Terminal lines for the L2 figures.
    public var rollupLines: [String] {
        guard let rollup else { return [] }
        var lines: [String] = []
        for airdrop in rollup.airdrops {
            let answered = airdrop.answeredRejects.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
            lines.append(String(format: "airdrop %@: %d of %d claims sent in %.1f s; answered refusals: %@", airdrop.id,
                                airdrop.sent, airdrop.count, airdrop.seconds,
                                answered.isEmpty ? "none" : answered.joined(separator: ", ")))
        }
        let refused = rollup.rejected.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
        let sent = rollup.airdrops.reduce(0) { $0 + $1.sent }
        let answered = rollup.airdrops.reduce(0) { $0 + $1.answeredRejects.values.reduce(0, +) }
        if sent > 0 {
            lines.append("of the claims sent, \(answered) were refused with an answer; the rest were queued or lost "
                         + "unanswered before the queue (kernel and ingress drops: see the node table)")
        }
        lines.append("L2 (\(rollup.sequencer)): \(rollup.admitted) queued, \(rollup.included) included, refused: "
                     + (refused.isEmpty ? "none" : refused.joined(separator: ", ")))
        lines.append(String(format: "L2 queue peak %llu, wait p99 peak %llu ms, backlog peak %.0f KiB, unsafe−safe gap peak %llu blocks, ",
                            rollup.queueMax, rollup.waitP99MaxMs, rollup.backlogMaxKiB, rollup.unsafeSafeGapMax)
                     + (rollup.sequencerRssMaxMiB.map { String(format: "sequencer RSS peak %.1f MiB", $0) }
                        ?? "sequencer RSS not measured (simulated)"))
        if let lag = rollup.feedLagMaxSeconds {
            lines.append(String(format: "feed: every replica (%@) had each L2 block within %.2f s; roots checked for %d posted batches%@",
                                rollup.replicas.joined(separator: ", "), lag, rollup.batchesChecked,
                                rollup.problems.isEmpty ? ", all equal" : ""))
        }
        for latency in rollup.latencies {
            let stages = latency.stages.map { name, stage in
                stage.map { String(format: "%@ %.0f/%.0f ms (%d)", name, $0.p50Ms, $0.p99Ms, $0.count) } ?? "\(name) none"
            }
            lines.append("L2 latency, \(latency.source) (\(latency.submitted) sent), p50/p99 from submission: "
                         + stages.joined(separator: ", "))
        }
        if !rollup.finalHeights.isEmpty {
            lines.append("L2 final heads: " + rollup.finalHeights.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
                .joined(separator: ", "))
        }
        if let first = rollup.rootMismatchHeights.first, let last = rollup.rootMismatchHeights.last {
            lines.append("L2 roots: \(rollup.rootMismatchHeights.count) block(s) between heights \(first) and \(last) claim a root "
                         + "other than L1's transactions give; replicas derived on from L1")
        }
        for problem in rollup.problems.prefix(3) { lines.append("L2 problem: \(problem)") }
        for forced in rollup.forced {
            lines.append("forced transaction \(forced.index): in the L2 chain \(forced.l1Blocks) L1 blocks (\(forced.l1WaitMs) ms) after the inbox took it, "
                         + (forced.bySequencer ? "by the sequencer" : "by derivation (sequencer absent)"))
        }
        return lines
    }
}
