import Foundation

/// `faultline compare`: the same scenarios run with several consensus protocols, side by side: a table for the
/// terminal and the README, `compare.json`, and `compare.html` with each run's height chart next to the other's.
public struct Comparison: Codable, Sendable {
    /// One scenario run with one protocol.
    public struct Run: Codable, Sendable {
        public var scenario: String
        public var consensusProtocol: String
        public var verdict: String
        public var expectationsHeld: Int
        public var expectations: Int
        public var throughputTxPerSecond: Double
        /// Throughput ÷ the verification bound the run measured (nil: the run measured none).
        public var throughputShareOfBound: Double?
        public var latencyP50Ms: Double?
        public var latencyP99Ms: Double?
        public var longestGapSeconds: Double
        public var halts: Int
        /// The longest time from a fault's end to finality again, over the run's halts.
        public var recoverySecondsMax: Double?
        public var roundsMax: UInt64
        public var roundChanges: Int?
        public var messagesPerBlock: Double?
        public var signaturesPerBlock: Double?
        /// The run's report.html, relative to the comparison's folder when it could be.
        public var reportPath: String

        public init(_ report: Report, reportPath: String) {
            scenario = report.scenario
            consensusProtocol = report.consensusProtocol ?? "tendermint"
            verdict = report.verdict.rawValue
            expectationsHeld = report.expectations.filter(\.passed).count
            expectations = report.expectations.count
            let live = report.liveness
            throughputTxPerSecond = live.throughputTxPerSecond
            throughputShareOfBound = report.load.flatMap {
                $0.perValidatorBound > 0 ? live.throughputTxPerSecond / $0.perValidatorBound : nil
            }
            latencyP50Ms = live.commitLatencyMs?.p50
            latencyP99Ms = live.commitLatencyMs?.p99
            longestGapSeconds = live.maxFinalityGapSeconds
            halts = live.halts.count
            recoverySecondsMax = live.halts.compactMap(\.recoverySeconds).max()
            roundsMax = live.roundsMax
            roundChanges = live.roundChanges
            messagesPerBlock = live.messagesPerBlock
            signaturesPerBlock = live.signaturesPerBlock
            self.reportPath = reportPath
        }
    }

    public var protocols: [String]
    public var simulated: Bool
    public var runs: [Run]
    /// Each run's height chart (SVG), in `runs` order: not in compare.json.
    public var charts: [String] = []

    enum CodingKeys: String, CodingKey { case protocols, simulated, runs }

    public init(protocols: [String], simulated: Bool) {
        self.protocols = protocols
        self.simulated = simulated
        self.runs = []
    }

    public mutating func add(_ report: Report, reportPath: String) {
        runs.append(Run(report, reportPath: reportPath))
        charts.append(report.heightChart())
    }

    static func number(_ value: Double?, _ format: String) -> String { value.map { String(format: format, $0) } ?? "–" }

    /// The columns of the table, in order.
    public static let header = ["scenario", "protocol", "verdict", "tx/s", "÷ bound", "p50 ms", "p99 ms", "gap s",
                                "recovery s", "rounds max", "round changes", "msgs/block", "sigs/block"]

    func cells(_ run: Run) -> [String] {
        [run.scenario, run.consensusProtocol, "\(run.verdict) \(run.expectationsHeld)/\(run.expectations)",
         Self.number(run.throughputTxPerSecond, "%.0f"), Self.number(run.throughputShareOfBound, "%.2f"),
         Self.number(run.latencyP50Ms, "%.0f"), Self.number(run.latencyP99Ms, "%.0f"),
         Self.number(run.longestGapSeconds, "%.2f"), Self.number(run.recoverySecondsMax, "%.2f"), "\(run.roundsMax)",
         run.roundChanges.map(String.init) ?? "–", Self.number(run.messagesPerBlock, "%.1f"),
         Self.number(run.signaturesPerBlock, "%.1f")]
    }

    /// The table as Markdown (the terminal prints it as is; the README quotes it).
    public var markdown: String {
        var lines = ["| " + Self.header.joined(separator: " | ") + " |",
                     "|" + Self.header.map { _ in "---" }.joined(separator: "|") + "|"]
        for run in runs { lines.append("| " + cells(run).joined(separator: " | ") + " |") }
        return lines.joined(separator: "\n")
    }

    /// Per protocol, over every scenario: medians of the figures that compare across scenarios.
    public var summaryLines: [String] {
        protocols.map { name in
            let mine = runs.filter { $0.consensusProtocol == name }
            func median(_ values: [Double]) -> String {
                guard !values.isEmpty else { return "–" }
                return String(format: "%.1f", values.sorted()[values.count / 2])
            }
            let passed = mine.filter { $0.verdict == "passed" }.count
            return "\(name): \(passed)/\(mine.count) passed; median messages/block \(median(mine.compactMap(\.messagesPerBlock))), "
                + "signature checks/block \(median(mine.compactMap(\.signaturesPerBlock))), "
                + "latency p50 \(median(mine.compactMap(\.latencyP50Ms))) ms, longest gap "
                + "\(median(mine.map(\.longestGapSeconds))) s"
        }
    }

    public func html() -> String {
        var page = """
            <!doctype html><html><head><meta charset="utf-8"><title>Faultline: \(protocols.joined(separator: " vs "))</title>
            <style>
            body{font-family:system-ui,sans-serif;margin:24px;color:#222}
            h1{font-size:22px} h2{font-size:16px;margin-top:28px}
            table{border-collapse:collapse;font-size:13px} td,th{border-bottom:1px solid #eee;padding:4px 8px;text-align:right}
            td:first-child,td:nth-child(2),td:nth-child(3),th{text-align:left}
            .passed{color:#2e7d32;font-weight:600} .failed{color:#c62828;font-weight:600} .inconclusive{color:#b26a00}
            .pair{display:flex;gap:12px;flex-wrap:wrap} .pair div{flex:1;min-width:420px} .pair svg{width:100%;height:auto}
            </style></head><body>
            <h1>\(protocols.map(Report.xml).joined(separator: " vs ")) \(simulated ? "(simulated)" : "")</h1>
            <p>\(summaryLines.map(Report.xml).joined(separator: "<br>"))</p>
            <table><tr>\(Self.header.map { "<th>\(Report.xml($0))</th>" }.joined())</tr>
            """
        for run in runs {
            let cells = cells(run).enumerated().map { index, text in
                index == 2 ? "<td class=\"\(run.verdict)\"><a href=\"\(Report.xml(run.reportPath))\">\(Report.xml(text))</a></td>"
                           : "<td>\(Report.xml(text))</td>"
            }
            page += "<tr>\(cells.joined())</tr>\n"
        }
        page += "</table>\n"
        for scenario in runs.map(\.scenario).reduce(into: [String](), { if !$0.contains($1) { $0.append($1) } }) {
            page += "<h2>\(Report.xml(scenario))</h2><div class=\"pair\">"
            for (index, run) in runs.enumerated() where run.scenario == scenario {
                page += "<div><b>\(Report.xml(run.consensusProtocol))</b> \(Report.xml(run.verdict))"
                    + (index < charts.count ? charts[index] : "") + "</div>"
            }
            page += "</div>\n"
        }
        return page + "</body></html>\n"
    }
}
