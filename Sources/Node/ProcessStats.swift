import FoundationEssentials
import NIOCore
import Synchronization

/// Readings from /proc about this process: memory, and the kernel's drop counter for a UDP socket
/// (datagrams the kernel discarded because the socket's receive buffer was full).
enum ProcessStats {
    static func residentKiB() -> UInt64 {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
        return UInt64(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }

    /// The `drops` column of /proc/self/net/udp for the socket bound to `port`.
    static func udpDrops(port: Int) -> UInt64 {
        guard let text = try? String(contentsOfFile: "/proc/self/net/udp", encoding: .utf8) else { return 0 }
        let hexPort = String(port, radix: 16, uppercase: true)
        let suffix = ":" + String(repeating: "0", count: max(0, 4 - hexPort.count)) + hexPort
        for line in text.split(separator: "\n").dropFirst() {
            let columns = line.split(separator: " ", omittingEmptySubsequences: true)
            guard columns.count >= 13, columns[1].hasSuffix(suffix) else { continue }
            return UInt64(columns[12]) ?? 0
        }
        return 0
    }
}

/// How late a repeating timer runs: for each arrival, the time past its interval since the one before
/// (unskewed wall time, so a clock-skew fault does not read as lateness). Bounded: at most `samplesMax`
/// between two drains.
struct TickLateness: Sendable {
    static let samplesMax = 1_024
    let intervalMs: UInt64
    private var lastMs: UInt64?
    private var samples: [UInt64] = []

    init(intervalMs: UInt64) { self.intervalMs = intervalMs }

    mutating func note(wallMs: UInt64) {
        if let lastMs, samples.count < Self.samplesMax {
            let gap = wallMs > lastMs ? wallMs - lastMs : 0
            samples.append(gap > intervalMs ? gap - intervalMs : 0)
        }
        lastMs = wallMs
    }

    /// The samples since the last drain, in arrival order.
    mutating func drain() -> [UInt64] {
        defer { samples.removeAll(keepingCapacity: true) }
        return samples
    }
}

/// The same measure for the event loop that reads and writes a node's gossip socket: a repeating task on
/// that loop, drained by the main loop's once-a-second sample. The main loop's ticks run on other
/// threads, so alone they cannot see a starved network thread (beside a CPU hog, each step of a height
/// once took ~380 ms while every node's ticks were on time).
final class EventLoopLateness: Sendable {
    private let state: Mutex<TickLateness>
    private let task: Mutex<RepeatedTask?> = Mutex(nil)

    init(loop: any EventLoop, intervalMs: UInt64, clock: @escaping @Sendable () -> UInt64) {
        state = Mutex(TickLateness(intervalMs: intervalMs))
        let interval = TimeAmount.milliseconds(Int64(intervalMs))
        let repeated = loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] _ in
            let now = clock()
            self?.state.withLock { $0.note(wallMs: now) }
        }
        task.withLock { $0 = repeated }
    }

    func drain() -> [UInt64] { state.withLock { $0.drain() } }

    func cancel() { task.withLock { $0?.cancel() } }
}
