import Foundation

/// `report.html`: one static file with inline SVG charts, readable without any server or script.
extension Report {
    static let palette = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]

    /// The cards of an external system's report: its revision and workload instead of blocks and votes.
    func externalCards(_ external: ExternalEntry) -> [(String, String)] {
        let verdict: String
        if external.linearizability.contains(where: { $0.contains("NOT") }) {
            verdict = "NO"
        } else if external.linearizability.contains(where: { $0.contains("undecided") }) {
            verdict = "undecided"
        } else {
            verdict = "yes"
        }
        let lost: Int = external.lostByMember.values.reduce(0, +)
        return [
            ("revision", "\(liveness.finalizedHeight)"),
            ("no committed write for", String(format: "%.2f s at most", external.maxWriteGapSeconds)),
            ("halts", "\(liveness.halts.count)"),
            ("writes acknowledged", String(format: "%d (%.1f/s)", external.writesAcknowledged, external.writesPerSecond)),
            ("linearizable", verdict),
            ("acknowledged writes lost", "\(lost)"),
        ]
    }

    public func html() -> String {
        let verdict = switch self.verdict {
        case .passed: "<span class=\"pass\">PASSED</span>"
        case .failed: "<span class=\"fail\">FAILED</span>"
        case .inconclusive: "<span class=\"maybe\">INCONCLUSIVE</span>"
        }
        var page = """
            <!doctype html><html><head><meta charset="utf-8"><title>Faultline: \(Self.xml(scenario))</title>
            <style>
            body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1000px}
            h1{font-size:22px;margin-bottom:4px} h2{font-size:16px;margin-top:28px} h3{font-size:14px}
            .pass{background:#2e7d32;color:#fff;padding:2px 8px;border-radius:4px}
            .fail{background:#c62828;color:#fff;padding:2px 8px;border-radius:4px}
            .maybe{background:#f9a825;color:#222;padding:2px 8px;border-radius:4px} .unsure{color:#b26a00;font-weight:600}
            .cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}
            .card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:120px}
            .card b{display:block;font-size:18px}
            table{border-collapse:collapse;font-size:13px;width:100%} td,th{border-bottom:1px solid #eee;padding:4px 6px;text-align:left}
            .ok{color:#2e7d32;font-weight:600} .bad{color:#c62828;font-weight:600} small{color:#666}
            </style></head><body>
            <h1>\(Self.xml(scenario)) \(verdict)</h1>
            <small>seed \(seed) · \(String(format: "%.1f", durationSeconds)) s · \(nodes.count) nodes ·
            \(network.map { Self.xml($0) + " ·" } ?? "")
            \(expectations.filter(\.passed).count)/\(expectations.count) expectations held</small>
            <div class="cards">
            """
        let latency = liveness.commitLatencyMs
        // An external system's blocks, votes and state roots are not ours to see: its cards are its workload's.
        let cards: [(String, String)] = external.map(externalCards) ?? [
            ("finalized height", "\(liveness.finalizedHeight)"),
            ("longest gap", String(format: "%.2f s", liveness.maxFinalityGapSeconds)),
            ("halts", "\(liveness.halts.count)"),
            ("latency p50 / p99", latency.map { "\(Int($0.p50)) / \(Int($0.p99)) ms" } ?? "–"),
            ("throughput", String(format: "%.0f tx/s", liveness.throughputTxPerSecond)),
            ("safety", safety.agreement ? "agreement" : "CONFLICT"),
            ("state roots", safety.stateRootDivergences.first.map { "diverged at \($0.height)" } ?? "one per height"),
            ("stopped nodes", nodes.filter { $0.stopped != nil }.map(\.name).joined(separator: ", ").nonEmpty ?? "none"),
            ("vote inclusion p50 / p99", liveness.voteInclusionHeightsP50.map { p50 in
                "\(p50) / \(liveness.voteInclusionHeightsP99 ?? p50) heights"
            } ?? "–"),
        ]
        for (label, value) in cards { page += "<div class=\"card\">\(label)<b>\(Self.xml(value))</b></div>" }
        page += "</div>\n<h2>\(external == nil ? "Finalized height per node" : "Revision per member (one per committed write)")</h2>\n" + heightChart()
        if host != nil {
            // A remote run's nodes are on machines the collector cannot sample: only their timers speak.
            let sources = network?.hasPrefix("remote") == true
                ? "the nodes' own timer lateness; no CPU pressure samples: the nodes ran on other machines"
                : "the runner's CPU pressure samples, the nodes' own timer lateness"
            page += "<h3>Host load (\(sources))</h3>\n" + hostStrip()
        }
        if !latencyBySecond.isEmpty {
            page += "<h2>Submit → finalized latency (by second of submission)</h2>\n" + latencyChart()
        }
        if nodes.contains(where: { !$0.voteDelaySeries.isEmpty }) {
            page += "<h2>Vote queueing delay, p99 per second (arrival at the node → consensus)</h2>\n" + voteDelayChart()
        }
        page += rollupSection()
        page += disputeSection()
        page += rpcSection()
        page += externalSection()
        if let load, !load.spam.isEmpty {
            // No host figures: simulated time, where the capacity is the model's, set rather than measured.
            page += "<h2>Spam</h2>\n<p>" + (host == nil && network == nil ? "Modelled (simulated time; <code>faultline simulate --ingress-per-core "
                                            + "--cores</code>)" : "Measured") + " verification capacity: "
                + Self.xml(load.boundFormula) + ".</p>"
            page += "<table><tr><th>step</th><th>asked</th><th>target per validator</th><th>achieved per validator</th>"
                + "<th>× capacity</th><th>sent</th></tr>"
            for spam in load.spam {
                page += "<tr><td>\(Self.xml(spam.id))</td><td>\(Self.xml(spam.spec))</td><td>\(spam.targetPerValidator) tx/s</td>"
                    + String(format: "<td>%.0f tx/s</td><td>%.2f</td>", spam.achievedPerValidator,
                             spam.achievedPerValidator / max(load.perValidatorBound, 1))
                    + "<td>\(spam.sent) in \(String(format: "%.1f", spam.seconds)) s</td></tr>"
            }
            page += "</table>"
        }
        page += "<h2>Expectations</h2>\n<table><tr><th></th><th>expectation</th><th>window</th><th>observed</th><th>bound</th></tr>"
        for result in expectations {
            let (mark, style) = switch result.verdict {
            case .passed: ("✔", "ok")
            case .failed: ("✘", "bad")
            case .inconclusive: ("?", "unsure")
            }
            page += "<tr><td class=\"\(style)\">\(mark)</td><td>\(Self.xml(result.name))</td>"
                + "<td>\(Self.xml(result.window))</td><td>\(Self.xml(result.observed))"
                + (result.inconclusive.map { "<br><small class=\"unsure\">inconclusive: \(Self.xml($0.summary))</small>" } ?? "")
                + "</td><td>\(Self.xml(result.bound))</td></tr>"
        }
        page += "</table>\n<h2>Halts</h2>\n"
        if liveness.halts.isEmpty {
            page += "<p>No gap between finalized blocks was longer than the halt threshold.</p>"
        } else {
            page += "<table><tr><th>from</th><th>to</th><th>length</th><th>cause</th><th>recovery after heal</th></tr>"
            for halt in liveness.halts {
                page += "<tr><td>\(String(format: "%.1f s", halt.start))</td><td>\(halt.ended ? String(format: "%.1f s", halt.end) : "end of run")</td>"
                    + "<td>\(String(format: "%.2f s", halt.seconds))</td><td>\(Self.xml(halt.cause))</td>"
                    + "<td>\(halt.recoverySeconds.map { String(format: "%.2f s", $0) } ?? "–")</td></tr>"
            }
            page += "</table>"
        }
        page += "\n<h2>Faults</h2>\n"
        if faults.isEmpty {
            page += "<p>No faults were injected.</p>"
        } else {
            page += "<table><tr><th>id</th><th>fault</th><th>from</th><th>to</th></tr>"
            for fault in faults {
                page += "<tr><td>\(Self.xml(fault.id))</td><td>\(Self.xml(fault.description))</td>"
                    + "<td>\(String(format: "%.1f s", fault.start))</td><td>\(fault.end.map { String(format: "%.1f s", $0) } ?? "end")</td></tr>"
            }
            page += "</table>"
        }
        page += "\n<h2>Nodes</h2>\n<table><tr><th>node</th><th>stake</th><th>binary</th><th>height</th><th>restarts</th>"
            + "<th>blocks by sync</th><th>stopped</th><th>drops</th></tr>"
        for node in nodes {
            // The kernel's drops at the node's sockets (by lane) first: what never reached the node at all.
            let drops = (node.kernelDrops.sorted { $0.key < $1.key }.map { "kernel_\($0.key) \($0.value)" }
                + node.drops.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }).joined(separator: ", ")
            let stopped = ([node.stopped].compactMap { $0 } + node.refusedStarts).joined(separator: "; ")
            page += "<tr><td>\(Self.xml(node.name))</td><td>\(node.stake)</td><td>\(Self.xml(node.binary))</td>"
                + "<td>\(node.height)</td><td>\(node.restarts)</td><td>\(node.syncedBlocks)</td>"
                + "<td class=\"\(stopped.isEmpty ? "" : "bad")\">\(Self.xml(stopped.isEmpty ? "–" : stopped))</td>"
                + "<td>\(Self.xml(drops.isEmpty ? "–" : drops))</td></tr>"
        }
        let safetyText = safety.agreement
            ? "All nodes committed the same block at each of \(safety.heightsChecked) heights."
            : "Conflicting commits: " + safety.conflicts.map { conflict in
                "height \(conflict.height): " + conflict.sides.map { "\($0.key.prefix(12))… by \($0.value.joined(separator: ","))" }
                    .joined(separator: " vs ")
            }.joined(separator: "; ")
        guard external == nil else {
            // The workload section above carries an external system's safety checks.
            return page + "</table>\n</body></html>\n"
        }
        page += "</table>\n<h2>Safety</h2>\n<p>\(Self.xml(safetyText))</p>\n"
        if safety.stateRootDivergences.isEmpty {
            page += "<p>Every node computed the same state root at every height.</p>\n"
        } else {
            page += "<p class=\"bad\">State roots diverged: the same block executed into different states.</p>\n"
                + "<table><tr><th>height</th><th>at</th><th>state root</th><th>nodes</th><th>stake</th></tr>"
            for divergence in safety.stateRootDivergences {
                for (index, side) in divergence.sides.enumerated() {
                    page += "<tr><td>\(index == 0 ? "\(divergence.height)" : "")</td>"
                        + "<td>\(index == 0 ? String(format: "%.1f s", divergence.at) : "")</td>"
                        + "<td><code>\(Self.xml(String(side.stateRoot.prefix(16))))…</code></td>"
                        + "<td>\(Self.xml(side.nodes.joined(separator: ", ")))</td>"
                        + "<td>\(side.stake) (\(String(format: "%.0f%%", side.stakeShare * 100)))</td></tr>"
                }
            }
            page += "</table>\n"
        }
        page += signingAndEvidenceHTML()
        page += "</body></html>\n"
        return page
    }

    /// A chart frame with axes; `plot` maps (x seconds, y value) to SVG coordinates.
    func frame(width: Double, height: Double, maxX: Double, maxY rawMaxY: Double, yLabel: String, xUnit: String = " s",
                       body: (_ plot: (Double, Double) -> (Double, Double)) -> String) -> String {
        let maxY = Self.niceCeiling(rawMaxY)
        let left = 56.0, right = 16.0, top = 12.0, bottom = 34.0
        let w = width - left - right, h = height - top - bottom
        let plot = { (x: Double, y: Double) -> (Double, Double) in
            (left + w * x / max(maxX, 0.001), top + h - h * y / max(maxY, 0.001))
        }
        // The viewBox lets a page that shows two charts side by side (`compare.html`) scale them down.
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
            + "viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"system-ui,sans-serif\" font-size=\"11\">"
        svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(w)\" height=\"\(h)\" fill=\"#fafafa\" stroke=\"#ccc\"/>"
        for tick in 0...5 {
            let y = maxY * Double(tick) / 5
            let (_, py) = plot(0, y)
            svg += "<line x1=\"\(left)\" y1=\"\(py)\" x2=\"\(left + w)\" y2=\"\(py)\" stroke=\"#eee\"/>"
                + "<text x=\"\(left - 6)\" y=\"\(py + 4)\" text-anchor=\"end\">\(Self.short(y))</text>"
            let x = maxX * Double(tick) / 5
            let (px, _) = plot(x, 0)
            svg += "<text x=\"\(px)\" y=\"\(top + h + 16)\" text-anchor=\"middle\">\(Self.short(x))\(xUnit)</text>"
        }
        svg += "<text x=\"14\" y=\"\(top + h / 2)\" transform=\"rotate(-90 14 \(top + h / 2))\" text-anchor=\"middle\">"
            + "\(yLabel)</text>"
        svg += body(plot)
        return svg + "</svg>"
    }

    func faultBands(_ plot: (Double, Double) -> (Double, Double), maxY: Double, labels: Bool) -> String {
        var svg = ""
        for (index, fault) in faults.enumerated() {
            let (x1, yTop) = plot(fault.start, maxY)
            let (x2, yBottom) = plot(fault.end ?? durationSeconds, 0)
            let width = max(x2 - x1, 2)
            svg += "<rect x=\"\(x1)\" y=\"\(yTop)\" width=\"\(width)\" height=\"\(yBottom - yTop)\" fill=\"#ff9800\" "
                + "fill-opacity=\"0.16\"><title>\(Self.xml(fault.description))</title></rect>"
            if labels {
                svg += "<text x=\"\(x1 + 3)\" y=\"\(yTop + 12 + Double(index % 3) * 12)\" fill=\"#e65100\">"
                    + "\(Self.xml(String(fault.description.prefix(48))))</text>"
            }
        }
        return svg
    }

    func heightChart() -> String {
        let maxX = max(durationSeconds, 1)
        let maxY = Self.niceCeiling(Double(max(liveness.finalizedHeight, 1)))
        return frame(width: 960, height: 340, maxX: maxX, maxY: maxY, yLabel: "finalized height") { plot in
            var svg = faultBands(plot, maxY: maxY, labels: true)
            for halt in liveness.halts {
                let (x1, yTop) = plot(halt.start, maxY)
                let (x2, yBottom) = plot(halt.end, 0)
                svg += "<rect x=\"\(x1)\" y=\"\(yTop)\" width=\"\(max(x2 - x1, 2))\" height=\"\(yBottom - yTop)\" "
                    + "fill=\"#e53935\" fill-opacity=\"0.12\" stroke=\"#e53935\" stroke-dasharray=\"4 3\">"
                    + "<title>halt \(String(format: "%.2f", halt.seconds)) s: \(Self.xml(halt.cause))</title></rect>"
                svg += "<text x=\"\(x1 + 3)\" y=\"\(yBottom - 6)\" fill=\"#c62828\" font-weight=\"600\">"
                    + "halt \(String(format: "%.1f", halt.seconds)) s</text>"
            }
            for (index, node) in nodes.enumerated() {
                var points: [String] = []
                var lastHeight = 0.0
                for point in node.series where point[0] >= 0 {
                    let (x, yPrev) = plot(point[0], lastHeight)
                    let (_, y) = plot(point[0], point[1])
                    points.append("\(x),\(yPrev)")
                    points.append("\(x),\(y)")
                    lastHeight = point[1]
                }
                let color = Self.palette[index % Self.palette.count]
                svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.6\" points=\"\(points.joined(separator: " "))\"/>"
                if let stopped = node.stopped, let at = node.stoppedAt {
                    // Where the node stopped deciding: a cross on its line, the reason on hover.
                    let (x, y) = plot(max(at, 0), Double(node.height))
                    svg += "<g stroke=\"\(color)\" stroke-width=\"2.5\"><title>\(Self.xml(node.name)) stopped: "
                        + "\(Self.xml(stopped))</title><line x1=\"\(x - 5)\" y1=\"\(y - 5)\" x2=\"\(x + 5)\" y2=\"\(y + 5)\"/>"
                        + "<line x1=\"\(x - 5)\" y1=\"\(y + 5)\" x2=\"\(x + 5)\" y2=\"\(y - 5)\"/></g>"
                        + "<text x=\"\(x + 7)\" y=\"\(y + 14)\" fill=\"\(color)\">\(Self.xml(node.name)) stopped</text>"
                }
                let (lx, ly) = plot(maxX, maxY)
                svg += "<text x=\"\(lx - 8)\" y=\"\(ly + 14 + Double(index) * 13)\" text-anchor=\"end\" fill=\"\(color)\" "
                    + "font-weight=\"600\">\(Self.xml(node.name))</text>"
            }
            return svg
        }
    }

    func latencyChart() -> String {
        let maxX = max(durationSeconds, 1)
        let maxY = Self.niceCeiling(max(latencyBySecond.map { $0[2] }.max() ?? 1, 1))
        return frame(width: 960, height: 240, maxX: maxX, maxY: maxY, yLabel: "ms") { plot in
            var svg = faultBands(plot, maxY: maxY, labels: false)
            for (series, color, label) in [(1, "#1f77b4", "p50"), (2, "#d62728", "p99")] {
                let points = latencyBySecond.map { row -> String in
                    let (x, y) = plot(row[0] + 0.5, row[series])
                    return "\(x),\(y)"
                }
                svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.6\" points=\"\(points.joined(separator: " "))\"/>"
                let (lx, ly) = plot(maxX, maxY)
                svg += "<text x=\"\(lx - 8)\" y=\"\(ly + (series == 1 ? 14 : 27))\" text-anchor=\"end\" fill=\"\(color)\" "
                    + "font-weight=\"600\">\(label)</text>"
            }
            return svg
        }
    }

    /// The smallest of 1, 2, 2.5 or 5 × 10^k (times 5 ticks) at or above `value`: round tick labels.
    static func niceCeiling(_ value: Double) -> Double {
        guard value > 0 else { return 1 }
        let step = value / 5
        let magnitude = pow(10, floor(log10(step)))
        let nice = [1.0, 2, 2.5, 5, 10].first { $0 * magnitude >= step } ?? 10
        return max(nice * magnitude * 5, 5)
    }

    func voteDelayChart() -> String {
        let maxX = max(durationSeconds, 1)
        let maxY = Self.niceCeiling(Double(nodes.map(\.voteDelayP99MaxMs).max() ?? 1))
        return frame(width: 960, height: 220, maxX: maxX, maxY: maxY, yLabel: "ms") { plot in
            var svg = faultBands(plot, maxY: maxY, labels: false)
            for (index, node) in nodes.enumerated() where !node.voteDelaySeries.isEmpty {
                let points = node.voteDelaySeries.filter { $0[0] >= 0 }.map { row -> String in
                    let (x, y) = plot(row[0], row[1])
                    return "\(x),\(y)"
                }
                let color = Self.palette[index % Self.palette.count]
                svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.4\" points=\"\(points.joined(separator: " "))\"/>"
                let (lx, ly) = plot(maxX, maxY)
                svg += "<text x=\"\(lx - 8)\" y=\"\(ly + 14 + Double(index) * 13)\" text-anchor=\"end\" fill=\"\(color)\" "
                    + "font-weight=\"600\">\(Self.xml(node.name))</text>"
            }
            return svg
        }
    }

    static func short(_ value: Double) -> String {
        value >= 100 || value == value.rounded() ? String(Int(value.rounded())) : String(format: "%.1f", value)
    }
}

extension String {
    /// nil for the empty string (for "… ?? default").
    var nonEmpty: String? { isEmpty ? nil : self }
}
