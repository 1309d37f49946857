import Foundation

/// The host strip under the height chart: per second, the host's CPU pressure and the worst node timer
/// lateness, shaded by how close each is to its overload threshold, so a reader sees whether a gap above
/// it lines up with a busy machine.
extension Report {
    func hostStrip() -> String {
        guard let host, !host.series.isEmpty else { return "" }
        let maxX = max(durationSeconds, 1)
        let left = 56.0, right = 16.0, rowHeight = 18.0, top = 4.0
        let width = 960.0, w = width - left - right
        let x = { (seconds: Double) in left + w * min(max(seconds, 0), maxX) / maxX }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(top + 2 * rowHeight + 22))\" "
            + "font-family=\"system-ui,sans-serif\" font-size=\"11\">"
        let rows: [(label: String, value: ([Double]) -> Double?, threshold: Double, unit: String)] = [
            ("CPU", { $0[1] >= 0 ? $0[1] : nil }, host.thresholds.cpuPressurePercent, "% CPU pressure"),
            ("timers", { $0[2] }, Double(host.thresholds.timerLateMs), " ms timer lateness (worst node, p99)"),
        ]
        for (index, row) in rows.enumerated() {
            let y = top + Double(index) * rowHeight
            svg += "<text x=\"\(left - 6)\" y=\"\(y + 13)\" text-anchor=\"end\">\(row.label)</text>"
            svg += "<rect x=\"\(left)\" y=\"\(y)\" width=\"\(w)\" height=\"\(rowHeight - 2)\" fill=\"#fafafa\" stroke=\"#eee\"/>"
            for point in host.series {
                guard let value = row.value(point) else { continue }
                let share = min(value / max(row.threshold, 1), 1)
                let over = value >= row.threshold
                let color = over ? "#c62828" : share >= 0.5 ? "#f9a825" : "#66bb6a"
                let opacity = over ? 0.85 : 0.25 + 0.5 * share
                let x1 = x(point[0] - 1), x2 = x(point[0])
                svg += "<rect x=\"\(x1)\" y=\"\(y)\" width=\"\(max(x2 - x1, 1))\" height=\"\(rowHeight - 2)\" fill=\"\(color)\" "
                    + "fill-opacity=\"\(String(format: "%.2f", opacity))\"><title>"
                    + String(format: "%.0f–%.0f s: %.0f", point[0] - 1, point[0], value) + row.unit + "</title></rect>"
            }
        }
        svg += "<text x=\"\(left)\" y=\"\(top + 2 * rowHeight + 14)\" fill=\"#666\">"
            + Self.xml(String(format: "red: over the overload threshold (CPU pressure ≥ %.0f%%, timers ≥ %d ms late); "
                              + "overloaded %.1f s of the run", host.thresholds.cpuPressurePercent,
                              Int(host.thresholds.timerLateMs), host.overloadedSeconds))
            + "</text>"
        return svg + "</svg>"
    }
}
