import Foundation

extension Report {
    /// An external system's workload and checks, as report.json carries them.
    public struct ExternalEntry: Codable, Sendable {
        public var system: String
        public var writesAcknowledged: Int
        public var writesUnknown: Int
        public var writesFailed: Int
        public var readsAnswered: Int
        public var readsUnanswered: Int
        /// Acknowledged writes per second of the run.
        public var writesPerSecond: Double
        /// Acknowledged writes in each second of the run (from its start).
        public var writesBySecond: [Int]
        /// The longest stretch with no acknowledged write: seconds, and where (from the run's start).
        public var maxWriteGapSeconds: Double
        public var maxWriteGapAt: [Double]
        /// Acknowledged writes a member did not hold at the end, by member.
        public var lostByMember: [String: Int]
        public var unreachableAtEnd: [String]
        public var divergedMembers: [String]
        public var revisionRegressions: Int
        /// One line per key: linearizable, not (and where the search got stuck), or undecided.
        public var linearizability: [String]
        /// "WGL (Wing–Gong with Lowe's memoization), at most N states per key".
        public var checker: String
        /// Leader changes the observer saw: [seconds from start, member].
        public var leaders: [LeaderEntry]
        public var settledSeconds: Double?
    }

    public struct LeaderEntry: Codable, Sendable {
        public var at: Double
        public var node: String
    }

    static func externalEntry(_ evaluator: Evaluator) -> ExternalEntry? {
        guard let external = evaluator.analysis.external else { return nil }
        let start = evaluator.startMs
        let end = evaluator.endMs
        let seconds = max(Double(end - start) / 1000, 0.001)
        var bySecond = Array(repeating: 0, count: Int(seconds.rounded(.up)) + 1)
        for time in external.ackTimesMs where time >= start && time <= end { bySecond[Int((time - start) / 1000)] += 1 }
        let gap = evaluator.longestGap([start...end], times: external.ackTimesMs)
        let inRun = external.ackTimesMs.filter { $0 >= start && $0 <= end }.count
        return ExternalEntry(
            system: external.system, writesAcknowledged: external.writes.ok, writesUnknown: external.writes.unknown,
            writesFailed: external.writes.failed, readsAnswered: external.reads.ok, readsUnanswered: external.reads.unknown,
            writesPerSecond: Double(inRun) / seconds, writesBySecond: bySecond,
            maxWriteGapSeconds: Double(gap.upperBound - gap.lowerBound) / 1000,
            maxWriteGapAt: [Double(gap.lowerBound - start) / 1000, Double(gap.upperBound - start) / 1000],
            lostByMember: external.lostByMember.mapValues(\.count), unreachableAtEnd: external.unreachableAtEnd,
            divergedMembers: external.divergedMembers, revisionRegressions: external.regressions.count,
            linearizability: external.linearizabilityLines,
            checker: "WGL (Wing–Gong search with Lowe's memoization) per key, at most "
                + "\(ExternalAnalysis.statesMax) states per key",
            leaders: external.leaders.map { LeaderEntry(at: Double(Int64($0.timeMs) - Int64(start)) / 1000, node: $0.node) },
            settledSeconds: external.final?.settledSeconds)
    }

    /// The external system's section of report.html: the workload's figures, acknowledged writes per
    /// second with the fault windows shaded, the leaders over time and every safety check.
    func externalSection() -> String {
        guard let external else { return "" }
        var page = "<h2>\(Self.xml(external.system)): the client workload</h2>\n"
        page += "<p>Writes and reads through the members' client ports; a write is acknowledged when the member "
            + "answers it committed. Heights above are the members' revisions (one per committed write), so a "
            + "finality gap is a time with no committed write.</p>\n<table>"
        let rows: [(String, String)] = [
            ("writes acknowledged / unknown / never sent", "\(external.writesAcknowledged) / \(external.writesUnknown) / "
                + "\(external.writesFailed)"),
            ("reads answered / unanswered", "\(external.readsAnswered) / \(external.readsUnanswered)"),
            ("acknowledged writes per second", String(format: "%.1f", external.writesPerSecond)),
            ("longest time with no committed write", String(format: "%.2f s (%.1f–%.1f s)", external.maxWriteGapSeconds,
                                                           external.maxWriteGapAt.first ?? 0, external.maxWriteGapAt.last ?? 0)),
            ("leaders (from the observer)", external.leaders.map { String(format: "%@ at %.1f s", $0.node, $0.at) }
                .joined(separator: ", ")),
            ("acknowledged writes missing at the end", external.lostByMember.isEmpty ? "none" : external.lostByMember
                .sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")),
            ("members not read at the end", external.unreachableAtEnd.isEmpty ? "none" : external.unreachableAtEnd.joined(separator: ", ")),
            ("members that differ at the end", external.divergedMembers.isEmpty ? "none" : external.divergedMembers.joined(separator: ", ")),
            ("revisions that went backward for a client", "\(external.revisionRegressions)"),
            ("linearizability (\(external.checker))", external.linearizability.joined(separator: "<br>")),
        ]
        for (label, value) in rows {
            page += "<tr><td>\(Self.xml(label))</td><td>\(value.contains("<br>") ? value : Self.xml(value))</td></tr>"
        }
        page += "</table>\n<h3>Acknowledged writes per second</h3>\n" + writesChart(external.writesBySecond)
        return page
    }

    func writesChart(_ counts: [Int]) -> String {
        let width = 900.0, height = 160.0, left = 40.0, bottom = 20.0
        let top = Double(max(counts.max() ?? 1, 1))
        let step = (width - left) / Double(max(counts.count, 1))
        var svg = "<svg width=\"\(Int(width))\" height=\"\(Int(height))\" xmlns=\"http://www.w3.org/2000/svg\">"
        for fault in faults {
            let x = left + fault.start * step
            let w = max(((fault.end ?? durationSeconds) - fault.start) * step, 1)
            svg += "<rect x=\"\(x)\" y=\"0\" width=\"\(w)\" height=\"\(height - bottom)\" fill=\"#f4c7c3\" opacity=\"0.6\">"
                + "<title>\(Self.xml(fault.description))</title></rect>"
        }
        for (second, count) in counts.enumerated() {
            let h = Double(count) / top * (height - bottom - 10)
            svg += "<rect x=\(String(format: "\"%.1f\"", left + Double(second) * step)) y=\(String(format: "\"%.1f\"", height - bottom - h)) "
                + "width=\(String(format: "\"%.1f\"", max(step - 1, 1))) height=\(String(format: "\"%.1f\"", h)) fill=\"#1f77b4\">"
                + "<title>\(second)–\(second + 1) s: \(count) writes</title></rect>"
        }
        svg += "<text x=\"2\" y=\"12\" font-size=\"11\">\(Int(top))/s</text>"
            + "<text x=\"\(left)\" y=\"\(height - 4)\" font-size=\"11\">0 s</text>"
            + "<text x=\"\(width - 40)\" y=\"\(height - 4)\" font-size=\"11\">\(counts.count - 1) s</text></svg>\n"
        return svg
    }
}
