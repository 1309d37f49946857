import Foundation

extension Evaluator {
    /// The L2 metrics (Topologies/README.md, "L2 sequencer"); nil for a metric this does not know.
    func evaluateRollup(_ metric: String, ranges: [ClosedRange<UInt64>]) -> (Double?, String)? {
        guard metric.hasPrefix("l2_") || metric == "airdrop_sent" || metric == "airdrop_refusals_heard" else { return nil }
        guard let rollup = analysis.rollup, rollup.sequencer != nil else { return (nil, "no sequencer in this run") }
        let samples = rollup.samples(in: ranges)
        func fromSamples(_ value: (RollupAnalysis.Sample) -> UInt64, _ describe: (UInt64) -> String) -> (Double?, String) {
            guard let peak = samples.map(value).max() else { return (nil, "no sequencer samples in the window") }
            return (Double(peak), describe(peak))
        }
        switch metric {
        case "l2_queue_max":
            return fromSamples(\.queue) { "\($0) transactions queued (peak)" }
        case "l2_wait_p99_ms":
            return fromSamples(\.waitP99Ms) { "\($0) ms (worst second)" }
        case "l2_backlog_max_kib":
            let peak = samples.map(\.backlogBytes).max()
            return (peak.map { Double($0) / 1024 }, peak.map { String(format: "%.0f KiB not yet on L1 (peak)", Double($0) / 1024) }
                ?? "no sequencer samples in the window")
        case "l2_unsafe_safe_gap_max":
            return fromSamples({ $0.unsafeHeight > $0.safeHeight ? $0.unsafeHeight - $0.safeHeight : 0 }) {
                "\($0) L2 blocks made but not yet derived from L1 (peak)"
            }
        case "l2_sequencer_rss_max_mib":
            let peak = samples.compactMap(\.rssKiB).max()
            return (peak.map { Double($0) / 1024 }, peak.map { String(format: "%.1f MiB", Double($0) / 1024) }
                ?? (samples.isEmpty ? "no samples" : "not measured (no process: simulated)"))
        case "l2_admitted":
            let total = samples.reduce(0) { $0 + $1.admitted }
            return (Double(total), "\(total) transactions queued")
        case "l2_rejected":
            var reasons: [String: UInt64] = [:]
            for sample in samples { reasons.merge(sample.rejected, uniquingKeysWith: +) }
            let total = reasons.values.reduce(0, +)
            let detail = reasons.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            return (Double(total), "\(total) refused" + (detail.isEmpty ? "" : " (\(detail))"))
        case "l2_included":
            let total = rollup.blocks.filter { block in ranges.contains { $0.contains(block.timeMs) } }.reduce(0) { $0 + $1.txs }
            return (Double(total), "\(total) transactions in L2 blocks")
        case "l2_feed_lag_max_s":
            guard let lag = rollup.feedLagMaxMs(ranges, endMs: endMs) else { return (nil, "no L2 blocks or no replicas in the window") }
            return (Double(lag) / 1000, String(format: "%.2f s until every replica had each L2 block (worst block)", Double(lag) / 1000))
        case "l2_roots_agree":
            let (checked, mismatches) = rollup.rootCheck()
            let problems = mismatches + rollup.problems
            guard checked > 0 || !problems.isEmpty else { return (nil, "no batch was derived by a replica") }
            return (problems.isEmpty ? 1 : 0, problems.isEmpty
                ? "replicas derived the sequencer's root for all \(checked) posted batches"
                : problems.prefix(3).joined(separator: "; "))
        case "l2_root_mismatches":
            let heights = rollup.rootMismatches.values.reduce(into: Set<UInt64>()) { $0.formUnion($1) }
            return (Double(heights.count), heights.isEmpty ? "every L2 block's claimed root is the one L1's transactions give"
                : "\(heights.count) L2 block(s) claim a root other than L1's transactions give (heights \(heights.min()!)–\(heights.max()!))")
        case "l2_diverged_at_end":
            let diverged = rollup.divergedAtEnd.filter(\.value).keys.sorted()
            return (diverged.isEmpty ? 0 : 1, diverged.isEmpty
                ? "the last batch every replica derived had the sequencer's roots right"
                : "the last batch derived by \(diverged.joined(separator: ", ")) still claims other roots")
        case "l2_forced_included":
            let indexes = Set(rollup.forced.map(\.index))
            let onAll = indexes.filter { index in rollup.replicas.allSatisfy { replica in
                rollup.forced.contains { $0.node == replica && $0.index == index }
            } }
            return (Double(onAll.count), "\(onAll.count) forced transaction(s) in every replica's L2 chain")
        case "l2_forced_l1_blocks_max":
            guard let worst = rollup.forced.max(by: { $0.l1Blocks < $1.l1Blocks }) else {
                return (nil, "no forced transaction was included")
            }
            return (Double(worst.l1Blocks), "\(worst.l1Blocks) L1 blocks (\(worst.l1WaitMs) ms) from the inbox to the L2 chain, "
                    + (worst.bySequencer ? "by the sequencer" : "by derivation"))
        case "l2_forced_by_derivation":
            let count = Set(rollup.forced.filter { !$0.bySequencer }.map(\.index)).count
            return (Double(count), "\(count) included by derivation without the sequencer")
        case "l2_included_p99_ms", "l2_posted_p99_ms", "l2_safe_p99_ms", "l2_final_p99_ms":
            // Whole run: each transaction is followed through every stage, whenever it gets there.
            guard let load = rollup.latencies.first(where: { $0.source == "load" }) else {
                return (nil, "no L2 load submissions in this run")
            }
            let name = String(metric.dropFirst(3).dropLast(7))
            guard let stage = load.stages.first(where: { $0.name == name })?.stage else {
                return (nil, "no L2 load transaction reached \(name)")
            }
            return (stage.p99Ms, String(format: "%.0f ms submit → %@ (p99 of %d of %d; p50 %.0f ms)", stage.p99Ms, name,
                                        stage.count, load.submitted, stage.p50Ms))
        case "airdrop_included":
            let airdrop = rollup.latencies.filter { $0.source != "load" }
            let included = airdrop.reduce(0) { $0 + ($1.included?.count ?? 0) }
            let sent = airdrop.reduce(0) { $0 + $1.submitted }
            return (Double(included), "\(included) of \(sent) claims sent are in L2 blocks")
        case "airdrop_included_p99_ms":
            let stages = rollup.latencies.filter { $0.source != "load" }.compactMap(\.included)
            guard let worst = stages.map(\.p99Ms).max() else { return (nil, "no airdrop claim was included") }
            return (worst, String(format: "%.0f ms from sending a claim to its L2 block (p99)", worst))
        case "l2_final_height":
            let finals = rollup.replicaFinal.values
            guard let lowest = finals.min() else { return (nil, "no replica counted an L2 block final") }
            return (Double(lowest), "every replica counts L2 blocks through \(lowest) final")
        case "airdrop_sent":
            let sent = rollup.airdrops.reduce(0) { $0 + $1.sent }
            let asked = rollup.airdrops.reduce(0) { $0 + $1.count }
            return (Double(sent), "\(sent) of \(asked) claims sent")
        case "airdrop_refusals_heard":
            // What the claimers heard: refusals signed by the sequencer that reached the client.
            var reasons: [String: Int] = [:]
            for airdrop in rollup.airdrops { reasons.merge(airdrop.rejected, uniquingKeysWith: +) }
            let total = reasons.values.reduce(0, +)
            let sent = rollup.airdrops.reduce(0) { $0 + $1.sent }
            let detail = reasons.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            return (Double(total), "\(total) of \(sent) claims heard a signed refusal" + (detail.isEmpty ? "" : " (\(detail))"))
        default:
            return nil
        }
    }
}
