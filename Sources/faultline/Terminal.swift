import Cluster
import Formats
import Foundation
import Liveness

enum Terminal {
    static let isTTY = isatty(1) == 1
    nonisolated(unsafe) static var lastPlainProgress = Date.distantPast

    static func error(_ message: String) {
        FileHandle.standardError.write(Data("faultline: \(message)\n".utf8))
    }

    static func ms(_ value: Double) -> String {
        value >= 1000 ? String(format: "%.2f s", value / 1000) : String(format: "%.0f ms", value)
    }

    /// One line rewritten in place on a terminal; one line a second when piped.
    static func progress(_ line: String) {
        if isTTY {
            FileHandle.standardOutput.write(Data("\r\u{1B}[2K\(line)".utf8))
        } else if Date().timeIntervalSince(lastPlainProgress) >= 1 {
            lastPlainProgress = Date()
            print(line)
        }
    }

    static func endProgress() {
        if isTTY { print("") }
    }

    static func statusTable(_ states: [ClusterOps.NodeState]) -> String {
        var rows = [["node", "pid", "state", "rules", "height", "round", "step", "peers", "mempool", "last commit"]]
        var notes: [String] = []
        let now = Date().timeIntervalSince1970 * 1000
        for state in states {
            let status = state.status
            let age = status.map { $0.lastCommitTimeMs > 0 ? ms(now - Double($0.lastCommitTimeMs)) + " ago" : "-" } ?? "-"
            if let stopped = status?.stopped { notes.append("\(state.node.name) stopped: \(stopped)") }
            if let rpc = status?.rpcFault { notes.append("\(state.node.name): \(rpc.hasPrefix("upstreams") ? rpc : "rpc fault " + rpc)") }
            for (peer, reason) in (status?.refusedPeers ?? [:]).sorted(by: { $0.key < $1.key }) {
                notes.append("\(state.node.name) refuses \(peer): \(reason)")
            }
            rows.append([
                state.node.name, state.pid.map(String.init) ?? "-",
                state.alive ? (status == nil ? "no answer" : (status?.stopped == nil ? "running" : "stopped")) : "down",
                status.map { $0.role == "external" ? $0.version : "v\($0.rulesApplied) (bin v\($0.rulesVersionMin)...v\($0.rulesVersionMax)\($0.forkId == 0 ? "" : ", fork \($0.forkId)"))" } ?? "-",
                status.map { String($0.height) } ?? "-", status.map { String($0.round) } ?? "-",
                status?.step ?? "-", status.map { "\($0.peers)/\($0.peersTotal)" } ?? "-",
                status.map { String($0.mempoolTxs) } ?? "-", age,
            ])
        }
        let consensus = NodeStatus.consensusLine(states.map { ($0.node.name, $0.status) })
        return ([table(rows)] + (consensus.map { [$0] } ?? []) + notes).joined(separator: "\n")
    }

    static func table(_ rows: [[String]]) -> String {
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }.joined(separator: "\n")
    }

    /// `down`'s summary of a run of external nodes: the workload and its checks.
    static func externalSummary(_ analysis: RunAnalysis, _ external: ExternalAnalysis) -> String {
        var lines = ["", "summary (\(external.system))"]
        lines.append("  revision           \(analysis.finalizedHeight); longest time with no new revision "
                     + ms(Double(analysis.maxFinalityGapMs)))
        lines.append("  writes             \(external.writes.ok) acknowledged, \(external.writes.unknown) unknown, "
                     + "\(external.writes.failed) never sent; reads \(external.reads.ok) answered")
        lines.append("  acknowledged       " + (external.final == nil ? "no final reading"
            : external.lostByMember.isEmpty ? "every acknowledged write on every member read"
            : external.lostByMember.sorted { $0.key < $1.key }.map { "\($0.key) misses \($0.value.count)" }.joined(separator: ", ")))
        lines.append("  members            " + (external.divergedMembers.isEmpty ? "hold the same values"
            : "differ: " + external.divergedMembers.joined(separator: ", ")))
        lines.append("  revisions          \(external.regressions.count) went backward for a client")
        for line in external.linearizabilityLines { lines.append("  linearizability    " + line) }
        return lines.joined(separator: "\n")
    }

    static func summary(_ analysis: RunAnalysis) -> String {
        if let external = analysis.external { return externalSummary(analysis, external) }
        var lines = ["", "summary"]
        let seconds = Double((analysis.lastCommitMs ?? 0) - (analysis.firstCommitMs ?? 0)) / 1000
        lines.append("  finalized height   \(analysis.finalizedHeight) in \(String(format: "%.1f", seconds)) s"
                     + " (mean block interval \(ms(analysis.meanBlockIntervalMs)))")
        lines.append("  longest gap        \(ms(Double(analysis.maxFinalityGapMs))) between finalized blocks")
        lines.append("  transactions       \(analysis.txsCommitted) finalized of \(analysis.submitted) submitted, "
                     + String(format: "%.0f tx/s", analysis.throughputTxPerSecond))
        if let latency = analysis.latency {
            lines.append("  submit→finalized   p50 \(ms(latency.p50Ms)), p99 \(ms(latency.p99Ms)), max \(ms(latency.maxMs))")
        }
        let safety = analysis.agreement
            ? "agreement on all \(analysis.heightsChecked) heights across \(analysis.nodes.count) nodes"
            : "CONFLICT at heights \(analysis.conflicts.map { String($0.height) }.joined(separator: ", "))"
        lines.append("  safety             \(safety)")
        for conflict in analysis.conflicts.prefix(5) {
            let sides = conflict.sides.map { "\($0.key.prefix(16)): \($0.value.joined(separator: ","))" }
            lines.append("    height \(conflict.height): \(sides.joined(separator: " | "))")
        }
        for divergence in analysis.divergences.prefix(3) {
            lines.append("  state roots        " + analysis.describe(divergence))
        }
        if !analysis.evidence.isEmpty || analysis.evidenceDetections > 0 {
            lines.append("  equivocation       \(analysis.evidence.count) offences committed as evidence "
                         + "(\(analysis.evidenceDetections) detections by nodes)")
            for entry in analysis.evidence.prefix(5) {
                lines.append("    \(entry.offender): two \(entry.vote)s at \(entry.height)/\(entry.round), "
                             + "recorded in block \(entry.block) (reported by \(entry.reporter))")
            }
        }
        lines.append("  signing            " + analysis.doubleSignSummary)
        if !analysis.forks.isEmpty { lines.append("  forks              " + analysis.forkSummary) }
        if !analysis.kills.isEmpty {
            lines.append("  kill storm         \(analysis.killCount) SIGKILLs, \(analysis.tornTailsWritten) torn store tails "
                         + "written, \(analysis.tornTailsCut) cut off at start")
        }
        for node in analysis.nodes {
            if let stopped = node.stopped { lines.append("  stopped            \(node.name): \(stopped)") }
        }
        let lost = analysis.nodes.flatMap { node in node.lostOnRestart.map { "\(node.name): \($0)" } }
        lines.append("  durability         " + (lost.isEmpty
            ? "no committed block lost across \(analysis.nodes.reduce(0) { $0 + max($1.starts - 1, 0) }) restarts"
            : "LOST: " + lost.joined(separator: "; ")))
        let dropTotals = analysis.nodes.reduce(into: [String: UInt64]()) { totals, node in
            for (reason, count) in node.drops { totals[reason, default: 0] += count }
        }.filter { $0.value > 0 }
        if !dropTotals.isEmpty {
            lines.append("  ingress drops      " + dropTotals.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
                .joined(separator: ", "))
        }
        let perNode = analysis.nodes.map { node in
            "\(node.name) h\(node.height)" + (node.syncedCommits > 0 ? " (\(node.syncedCommits) synced)" : "")
                + (node.starts > 1 ? " restarts \(node.starts - 1)" : "")
        }
        lines.append("  nodes              \(perNode.joined(separator: ", "))")
        return lines.joined(separator: "\n")
    }
}
