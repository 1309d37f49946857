import Foundation

extension Report {
    /// The RPC side of a run: each client policy over the whole run and during each fault, side by
    /// side, and the gateway's upstream decisions.
    public struct RPCEntry: Codable, Sendable {
        public struct FaultEntry: Codable, Sendable {
            public var id: String
            public var description: String
            public var clients: [ClientEntry]
            /// The gateways' first decision about each faulted node after the start: "rpc1 breaker_open
            /// after 80 ms" (how long it took to stop using it).
            public var gatewayReactions: [String]
        }

        public struct ClientEntry: Codable, Sendable {
            public var summary: RPCAnalysis.ClientSummary
            /// From the fault's start to the first success, and to 99% success (nil: never).
            public var firstSuccessMs: UInt64?
            public var failoverMs: UInt64?
        }

        public struct UpstreamEventEntry: Codable, Sendable {
            public var at: Double
            public var gateway: String
            public var kind: String
            public var upstream: String
        }

        public var clients: [String]
        public var staleBlocks: UInt64
        public var whole: [RPCAnalysis.ClientSummary]
        public var faults: [FaultEntry]
        public var upstreamEvents: [UpstreamEventEntry]
        /// [second, success % per client (-1: none sent)] per half second.
        public var series: [[Double]]
    }

    static let upstreamEventsMax = 200

    static func rpcEntry(_ evaluator: Evaluator) -> RPCEntry? {
        guard let rpc = evaluator.analysis.rpc, !rpc.requests.isEmpty else { return nil }
        let start = evaluator.startMs, end = evaluator.endMs
        let faults = evaluator.windows.filter { $0.endMs != $0.startMs }.map { window in
            let windowEnd = min(window.endMs ?? end, end)
            let reactions = window.nodes.compactMap { node -> String? in
                guard let first = rpc.upstreamEvents.first(where: {
                    $0.upstream == node && $0.timeMs >= window.startMs && $0.timeMs <= windowEnd
                        && ($0.kind == "breaker_open" || $0.kind == "excluded_lagging")
                }) else { return nil }
                return "\(first.gateway) stopped using \(node) (\(first.kind)) \(first.timeMs - window.startMs) ms after the start"
            }
            return RPCEntry.FaultEntry(id: window.id, description: window.description, clients: rpc.clients.map { client in
                let times = rpc.failover(client, faultStartMs: window.startMs, endMs: windowEnd)
                return RPCEntry.ClientEntry(summary: rpc.summary(client, in: [window.startMs...max(window.startMs, windowEnd)]),
                                            firstSuccessMs: times.firstSuccessMs, failoverMs: times.ms99)
            }, gatewayReactions: reactions)
        }
        return RPCEntry(
            clients: rpc.clients, staleBlocks: rpc.staleBlocks,
            whole: rpc.clients.map { rpc.summary($0, in: [start...end]) }, faults: faults,
            upstreamEvents: rpc.upstreamEvents.prefix(upstreamEventsMax).map {
                .init(at: (Double($0.timeMs) - Double(start)) / 1000, gateway: $0.gateway, kind: $0.kind, upstream: $0.upstream)
            },
            series: rpc.successSeries(startMs: start, endMs: end))
    }

    static func describe(_ summary: RPCAnalysis.ClientSummary) -> String {
        let latency = summary.latencyP99Ms.map { "p50 \(summary.latencyP50Ms ?? 0) ms p99 \($0) ms" } ?? "no answer"
        let amplification = summary.amplification.map { String(format: "%.2f×", $0) } ?? "-"
        return String(format: "%d requests, %.2f%% errors, ", summary.requests, summary.errorPercent)
            + "\(latency), stale \(summary.staleAnswers), wrong \(summary.wrongAnswers), head decreases \(summary.headDecreases), "
            + "amplification \(amplification)"
    }

    /// Terminal lines: each client over the run, then during each fault with its failover times.
    public var rpcLines: [String] {
        guard let rpc else { return [] }
        var lines = rpc.whole.map { "rpc \($0.client): " + Report.describe($0) }
        for fault in rpc.faults {
            lines.append("during \(fault.id) (\(fault.description)):")
            for reaction in fault.gatewayReactions { lines.append("  " + reaction) }
            for entry in fault.clients {
                let first = entry.firstSuccessMs.map { "\($0) ms" } ?? "never"
                let failover = entry.failoverMs.map { "\($0) ms" } ?? "never"
                lines.append("  \(entry.summary.client): " + String(format: "%.2f%% errors", entry.summary.errorPercent)
                             + ", first success \(first), 99% success after \(failover), stale \(entry.summary.staleAnswers)"
                             + ", wrong \(entry.summary.wrongAnswers)"
                             + ", amplification " + (entry.summary.amplification.map { String(format: "%.2f×", $0) } ?? "-"))
            }
        }
        return lines
    }

    static let rpcColors = ["#d62728", "#ff7f0e", "#2ca02c", "#1f77b4", "#9467bd"]

    /// The RPC section of report.html: a table per fault of the clients side by side, the success
    /// rate of each client over time with the fault windows shaded, and the gateway's decisions.
    func rpcSection() -> String {
        guard let rpc else { return "" }
        var page = "<h2>JSON-RPC clients</h2>\n"
        page += "<p>The same requests through each client policy at once. Stale: an <code>eth_blockNumber</code> answer "
            + "more than \(rpc.staleBlocks) blocks behind the chain when sent. Wrong: a block answered with a hash the chain "
            + "did not commit at its height. Amplification: upstream requests per "
            + "client request.</p>\n"
        func row(_ label: String, _ entry: RPCAnalysis.ClientSummary, first: UInt64?? = nil, failover: UInt64?? = nil) -> String {
            var cells = [label, "\(entry.requests)", String(format: "%.2f%%", entry.errorPercent),
                         entry.latencyP50Ms.map { "\($0) ms" } ?? "-", entry.latencyP99Ms.map { "\($0) ms" } ?? "-",
                         "\(entry.staleAnswers)", "\(entry.wrongAnswers)", "\(entry.headDecreases)",
                         entry.amplification.map { String(format: "%.2f×", $0) } ?? "-"]
            if let first, let failover {
                cells += [first.map { "\($0) ms" } ?? "never", failover.map { "\($0) ms" } ?? "never"]
            }
            return "<tr>" + cells.map { "<td>\(Self.xml($0))</td>" }.joined() + "</tr>"
        }
        let head = ["client", "requests", "errors", "p50", "p99", "stale", "wrong", "head decreases", "amplification"]
        page += "<h3>Whole run</h3>\n<table><tr>" + head.map { "<th>\($0)</th>" }.joined() + "</tr>"
        for entry in rpc.whole { page += row(entry.client, entry) }
        page += "</table>\n"
        for fault in rpc.faults {
            page += "<h3>During \(Self.xml(fault.id)): \(Self.xml(fault.description))</h3>\n"
            if !fault.gatewayReactions.isEmpty {
                page += "<p>" + fault.gatewayReactions.map(Self.xml).joined(separator: "; ") + "</p>\n"
            }
            page += "<table><tr>"
                + (head + ["first success", "99% success after"]).map { "<th>\($0)</th>" }.joined() + "</tr>"
            for entry in fault.clients {
                page += row(entry.summary.client, entry.summary, first: .some(entry.firstSuccessMs),
                            failover: .some(entry.failoverMs))
            }
            page += "</table>\n"
        }
        if !rpc.series.isEmpty {
            page += "<h3>Requests answered successfully (% per half second, by send time)</h3>\n"
            let columns = rpc.clients.enumerated().map { index, client in
                (index: index + 1, color: Self.rpcColors[index % Self.rpcColors.count], label: client)
            }
            page += seriesChart(rpc.series, columns: columns, yLabel: "% ok")
        }
        if !rpc.upstreamEvents.isEmpty {
            page += "<h3>Gateway decisions</h3>\n<ul>"
            for event in rpc.upstreamEvents.prefix(40) {
                page += "<li>" + Self.xml(String(format: "%.2f s", event.at) + " \(event.gateway): \(event.upstream) \(event.kind)")
                    + "</li>"
            }
            page += "</ul>\n"
        }
        return page
    }
}
