import Foundation

/// The figures of one `faultline bench` run: printed as a table, written as JSON.
struct BenchTable: Codable {
    enum Target: Codable, Equatable {
        case below(Double)
        case atLeast(Double)

        func met(by value: Double) -> Bool {
            switch self {
            case .below(let limit): return value < limit
            case .atLeast(let limit): return value >= limit
            }
        }

        var text: String {
            switch self {
            case .below(let limit): return "< \(BenchTable.format(limit))"
            case .atLeast(let limit): return "≥ \(BenchTable.format(limit))"
            }
        }
    }

    struct Row: Codable {
        var key: String
        var label: String
        var value: Double
        var unit: String
        var target: Target?
        var met: Bool?
    }

    struct Limits: Codable {
        var cores: Int
        var verifyOneCorePerSecond: Double
        var verifyAllCoresPerSecond: Double
        var udpDatagramsPerSecond: Double
        var udpDatagramBytes: Int

        /// One core's verification rate for normalising: the better of the one-core run and the all-cores
        /// run per core (a short one-core run is the easier one for a neighbour or a frequency step to spoil).
        var verifyPerCore: Double { max(verifyOneCorePerSecond, verifyAllCoresPerSecond / Double(max(cores, 1))) }
    }

    var startedAt = ISO8601DateFormatter().string(from: Date())
    var limits: Limits?
    var rows: [Row] = []
    /// The run folders the phases left (event logs, node logs).
    var runs: [String] = []

    mutating func add(_ key: String, _ label: String, _ value: Double, unit: String, target: Target? = nil) {
        rows.append(Row(key: key, label: label, value: value, unit: unit, target: target, met: target?.met(by: value)))
    }

    static func format(_ value: Double) -> String {
        if value >= 1_000 { return String(format: "%.0f", value).reversed().chunked(3).joined(separator: ",").reversedString }
        if value >= 100 { return String(format: "%.0f", value) }
        if value >= 10 { return String(format: "%.1f", value) }
        return String(format: "%.2f", value)
    }

    var rendered: String {
        let header = ("figure", "measured", "target", "")
        let lines = rows.map { row -> (String, String, String, String) in
            let unit = row.unit == "ratio" ? "" : (row.unit.hasPrefix("/") ? row.unit : " " + row.unit)
            let verdict = row.met.map { $0 ? "ok" : "MISSED" } ?? ""
            return (row.label, BenchTable.format(row.value) + unit, row.target.map { $0.text + unit } ?? "", verdict)
        }
        let widths = (
            ([header] + lines).map(\.0.count).max() ?? 0,
            ([header] + lines).map(\.1.count).max() ?? 0,
            ([header] + lines).map(\.2.count).max() ?? 0
        )
        func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(0, width - text.count)) }
        return ([header] + lines).map {
            "\(pad($0.0, widths.0))  \(String(repeating: " ", count: max(0, widths.1 - $0.1.count)))\($0.1)  \(pad($0.2, widths.2))  \($0.3)"
        }.joined(separator: "\n")
    }

    func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}

private extension Sequence where Element == Character {
    func chunked(_ size: Int) -> [String] {
        var out: [String] = []
        var current = ""
        for character in self {
            current.append(character)
            if current.count == size {
                out.append(current)
                current = ""
            }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }
}

private extension String {
    var reversedString: String { String(reversed()) }
}
