import Foundation

/// What a sequencer bench run shows in the sequencer's event log: claims admitted to the queue and
/// included in L2 blocks per second, and where the rest were lost (the kernel's socket buffer, the
/// edge's bounded queue).
public struct SequencerBenchFigures: Codable, Sendable, Equatable {
    /// Admitted per second: the median and best of the one-second samples while claims arrived.
    public var admittedPerSecondMedian: Double
    public var admittedPerSecondBest: Double
    public var admitted: UInt64
    public var included: UInt64
    /// Included per second over the span from the first to the last block that held claims.
    public var includedPerSecond: Double
    public var kernelDrops: UInt64
    public var ingressDrops: [String: UInt64]
    public var rssMaxMiB: Double

    /// Reads `events.jsonl` of the sequencer for samples and blocks from `startMs` on (samples up to
    /// `endMs` count for the per-second figures: the seconds claims were arriving).
    public static func read(eventsPath: String, startMs: UInt64, endMs: UInt64) -> SequencerBenchFigures {
        var perSecond: [UInt64] = []
        var admitted: UInt64 = 0
        var included: UInt64 = 0
        var firstBlockMs: UInt64?
        var lastBlockMs: UInt64 = 0
        var kernelBefore: UInt64 = 0
        var kernelAfter: UInt64 = 0
        var dropsBefore: [String: UInt64]?
        var dropsAfter: [String: UInt64] = [:]
        var rssKiB: UInt64 = 0
        var unreadable = 0
        var previousSampleMs: UInt64?
        RunAnalysis.forEachJSONLine(eventsPath, unreadable: &unreadable) { object in
            let time = RunAnalysis.uint(object["t"]) ?? 0
            switch object["event"] as? String {
            case "l2_sample" where object["role"] as? String == "sequencer":
                defer { previousSampleMs = time }
                guard time > startMs else { return }
                let count = RunAnalysis.uint(object["admitted"]) ?? 0
                admitted += count
                rssKiB = max(rssKiB, RunAnalysis.uint(object["rssKiB"]) ?? 0)
                // A whole second inside the burst (the first sample after the start is partial).
                if let previous = previousSampleMs, previous >= startMs, time <= endMs + 500 {
                    perSecond.append(count * 1_000 / max(time - previous, 1))
                }
            case "l2_block" where time >= startMs:
                let txs = RunAnalysis.uint(object["txs"]) ?? 0
                guard txs > 0 else { return }
                included += txs
                firstBlockMs = firstBlockMs ?? time
                lastBlockMs = time
            case "sample":
                let drops = (object["kernelDrops"] ?? object["kernel_userDrops"]).flatMap(RunAnalysis.uint) ?? 0
                if time <= startMs { kernelBefore = drops }
                kernelAfter = drops
            case "drops":
                let total = ((object["total"] as? [String: Any]) ?? [:]).compactMapValues { RunAnalysis.uint($0) }
                if time <= startMs { dropsBefore = total } else { dropsAfter = total }
            default:
                break
            }
        }
        let sorted = perSecond.sorted()
        var ingress: [String: UInt64] = [:]
        for (reason, count) in dropsAfter where count > (dropsBefore?[reason] ?? 0) {
            ingress[reason] = count - (dropsBefore?[reason] ?? 0)
        }
        ingress["coalesced_votes"] = nil
        let span = Double(lastBlockMs - (firstBlockMs ?? lastBlockMs)) / 1000
        return SequencerBenchFigures(
            admittedPerSecondMedian: sorted.isEmpty ? 0 : Double(sorted[sorted.count / 2]),
            admittedPerSecondBest: Double(sorted.last ?? 0), admitted: admitted, included: included,
            includedPerSecond: span > 0 ? Double(included) / span : 0,
            kernelDrops: kernelAfter > kernelBefore ? kernelAfter - kernelBefore : 0,
            ingressDrops: ingress, rssMaxMiB: Double(rssKiB) / 1024)
    }
}
