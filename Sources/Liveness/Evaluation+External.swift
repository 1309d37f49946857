import Formats
import Foundation

extension Evaluator {
    /// The metrics of an external system's workload (Topologies/etcd/README.md).
    func evaluateExternal(_ spec: ExpectationSpec, ranges: [ClosedRange<UInt64>]) -> (Double?, String)? {
        let metric = spec.metric
        if metric == "node_progress" { return nodeProgress(spec.node ?? "", ranges: ranges) }
        let metrics: Set<String> = ["writes_acknowledged", "writes_per_s", "max_write_gap_s", "acknowledged_writes_lost",
                                    "members_diverged", "linearizable", "revision_regressions"]
        guard metrics.contains(metric) else { return nil }
        guard let external = analysis.external else { return (nil, "no external workload in this run") }
        let acks = external.ackTimesMs.filter { time in ranges.contains { $0.contains(time) } }
        switch metric {
        case "writes_acknowledged":
            return (Double(acks.count), "\(acks.count) acknowledged writes")
        case "writes_per_s":
            let seconds = Double(ranges.map { $0.upperBound - $0.lowerBound }.reduce(0, +)) / 1000
            guard seconds > 0 else { return (nil, "window never happened") }
            let rate = Double(acks.count) / seconds
            return (rate, String(format: "%.1f acknowledged writes/s over %.1f s", rate, seconds))
        case "max_write_gap_s":
            guard !ranges.isEmpty else { return (nil, "window never happened") }
            let gap = longestGap(ranges, times: external.ackTimesMs)
            let seconds = Double(gap.upperBound - gap.lowerBound) / 1000
            return (seconds, String(format: "no committed write for %.2f s (%.1f–%.1f s)", seconds,
                                    Double(gap.lowerBound - startMs) / 1000, Double(gap.upperBound - startMs) / 1000))
        case "acknowledged_writes_lost":
            guard external.final != nil else { return (nil, "no final reading (the observer did not finish)") }
            let detail = external.lostByMember.sorted { $0.key < $1.key }.map { "\($0.key) misses \($0.value.count)" }
            let unreachable = external.unreachableAtEnd.isEmpty ? ""
                : "; not read at the end: " + external.unreachableAtEnd.joined(separator: ", ")
            return (Double(external.lostCount), (detail.isEmpty ? "every one of \(external.writes.ok) acknowledged writes "
                        + "is on every member read" : detail.joined(separator: ", ")) + unreachable)
        case "members_diverged":
            guard external.final != nil else { return (nil, "no final reading (the observer did not finish)") }
            return (Double(external.divergedMembers.count), external.divergedMembers.isEmpty
                        ? "every member read holds the same registers"
                        : "differ from the majority: " + external.divergedMembers.joined(separator: ", "))
        case "linearizable":
            let text = external.linearizabilityLines.joined(separator: "; ")
            return (external.linearizable.map { $0 ? 1 : 0 }, text.isEmpty ? "no operations" : text)
        case "revision_regressions":
            let first = external.regressions.first.map {
                String(format: "; first: client %d saw %llu after %llu (from %@ at %.1f s)", $0.client, $0.to, $0.from,
                       $0.member, Double($0.atMs - min($0.atMs, startMs)) / 1000)
            } ?? ""
            return (Double(external.regressions.count), "\(external.regressions.count) answers below a revision the "
                    + "same client had already seen" + first)
        default:
            return nil
        }
    }

    /// How far one node's height (an external member's revision) moved inside the window. `leader`: the
    /// member that led when the window began.
    func nodeProgress(_ selector: String, ranges: [ClosedRange<UInt64>]) -> (Double?, String) {
        guard let start = ranges.first?.lowerBound else { return (nil, "window never happened") }
        var node = selector
        if selector == "leader" {
            guard let leader = analysis.external?.leader(at: start) else { return (nil, "no leader known at the window's start") }
            node = leader
        }
        guard let series = analysis.nodeSeries[node] else { return (nil, "\(node) recorded no height") }
        var total: UInt64 = 0
        for range in ranges {
            let before = series.last { $0.timeMs < range.lowerBound }?.height ?? 0
            let inside = series.filter { range.contains($0.timeMs) }.map(\.height).max() ?? before
            total += inside > before ? inside - before : 0
        }
        return (Double(total), "\(node)\(selector == "leader" ? " (the leader then)" : "") moved \(total) "
                + "(its height, or revision for an external member)")
    }
}
