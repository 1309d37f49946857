import Basics
import Wire
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
        fputs(JSONValue.eventLine(event, timeMs: timeMs, node: node, fields), file)
    }

    func flush() { fflush(file) }
}
