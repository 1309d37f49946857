#if canImport(Glibc)
import Glibc
#endif

/// The node's JSONL event log (one JSON object a line), which analysis reads after the run.
/// Buffered; flushed on every commit and on shutdown.
final class EventLog {
    private let file: UnsafeMutablePointer<FILE>
    let node: String

    init(path: String, node: String) throws {
        guard let file = fopen(path, "a") else { throw FileError(path: path, operation: "open", code: errno) }
        self.file = file
        self.node = node
    }

    deinit { fclose(file) }

    /// Writes `{"t":…,"node":…,"event":…, fields…}`. Field values are pre-rendered JSON.
    func write(_ event: String, timeMs: UInt64, _ fields: [(String, JSONValue)]) {
        var line = "{\"t\":\(timeMs),\"node\":\(JSONValue.string(node).rendered),\"event\":\"\(event)\""
        for (key, value) in fields {
            line += ",\"\(key)\":"
            line += value.rendered
        }
        line += "}\n"
        fputs(line, file)
    }

    func flush() { fflush(file) }
}

/// A minimal JSON value renderer for event lines (no parsing needed in the node).
enum JSONValue {
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case bool(Bool)
    case array([JSONValue])
    case object([(String, JSONValue)])

    var rendered: String {
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
