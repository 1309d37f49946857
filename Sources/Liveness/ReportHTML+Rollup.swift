import Foundation

extension Report {
    /// The L2 section: the figures, and two charts from the sequencer's samples (queue and backlog;
    /// unsafe and safe heads), with the fault windows shaded.
    func rollupSection() -> String {
        guard let rollup else { return "" }
        var page = "<h2>L2 sequencer and replicas</h2>\n<ul>"
        for line in rollupLines { page += "<li>\(Self.xml(line))</li>" }
        page += "</ul>\n"
        guard !rollup.series.isEmpty else { return page }
        page += "<h3>Queue depth (transactions) and batch backlog (KiB), per second</h3>\n"
            + seriesChart(rollup.series, columns: [(1, "#1f77b4", "queue"), (2, "#d62728", "backlog KiB")], yLabel: "")
        page += "<h3>L2 heads at the sequencer: unsafe (made) and safe (derived from L1)</h3>\n"
            + seriesChart(rollup.series, columns: [(3, "#2ca02c", "unsafe"), (4, "#9467bd", "safe")], yLabel: "L2 height")
        return page
    }

    func seriesChart(_ rows: [[Double]], columns: [(index: Int, color: String, label: String)], yLabel: String) -> String {
        let maxX = max(durationSeconds, 1)
        let peak = rows.flatMap { row in columns.map { row[$0.index] } }.max() ?? 1
        let maxY = Self.niceCeiling(max(peak, 1))
        return frame(width: 960, height: 220, maxX: maxX, maxY: maxY, yLabel: yLabel) { plot in
            var svg = faultBands(plot, maxY: maxY, labels: false)
            for (position, column) in columns.enumerated() {
                let points = rows.filter { $0[0] >= 0 && $0[column.index] >= 0 }.map { row -> String in
                    let (x, y) = plot(row[0], row[column.index])
                    return "\(x),\(y)"
                }
                svg += "<polyline fill=\"none\" stroke=\"\(column.color)\" stroke-width=\"1.6\" points=\"\(points.joined(separator: " "))\"/>"
                let (lx, ly) = plot(maxX, maxY)
                svg += "<text x=\"\(lx - 8)\" y=\"\(ly + 14 + Double(position) * 13)\" text-anchor=\"end\" "
                    + "fill=\"\(column.color)\" font-weight=\"600\">\(Self.xml(column.label))</text>"
            }
            return svg
        }
    }
}
