/// A minimal JSON value renderer for event lines (no parsing needed in the node), shared by the
/// node's event log and the simulator's, so both write the same bytes for the same event.
public enum JSONValue: Sendable {
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case bool(Bool)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public var rendered: String {
        switch self {
        case .int(let value): return String(value)
        case .uint(let value): return String(value)
        case .double(let value): return value.isFinite ? String(value) : "null"
        case .bool(let value): return value ? "true" : "false"
        case .array(let values): return "[" + values.map(\.rendered).joined(separator: ",") + "]"
        case .object(let fields):
            return "{" + fields.map { JSONValue.string($0.0).rendered + ":" + $0.1.rendered }.joined(separator: ",") + "}"
        case .string(let text):
            var out = "\""
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                default:
                    if scalar.value < 0x20 {
                        out += "\\u00" + String(scalar.value >> 4, radix: 16) + String(scalar.value & 0xf, radix: 16)
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                }
            }
            return out + "\""
        }
    }
}

extension JSONValue {
    /// One event log line: `{"t":…,"node":…,"event":…, fields…}` and a newline.
    public static func eventLine(_ event: String, timeMs: UInt64, node: String, _ fields: [(String, JSONValue)]) -> String {
        var line = "{\"t\":\(timeMs),\"node\":\(JSONValue.string(node).rendered),\"event\":\"\(event)\""
        for (key, value) in fields {
            line += ",\"\(key)\":"
            line += value.rendered
        }
        line += "}\n"
        return line
    }
}

extension Array where Element == UInt64 {
    /// The value at quantile `q` of an ascending array (0 when empty): the once-a-second samples' figure.
    /// Nearest rank (the smallest value with at least q of the samples at or below it), so the p99 of the
    /// ten ticks in a second is their largest: interpolating down from index 0.99 × (n − 1) gave the
    /// second largest, and a node stalled for two seconds (one tick 1,900 ms late among on-time ones)
    /// reported 8 ms.
    public func sampledPercentile(_ q: Double) -> UInt64 {
        guard !isEmpty else { return 0 }
        let rank = Int((Double(count) * q).rounded(.up))
        return self[Swift.min(Swift.max(rank, 1), count) - 1]
    }
}
