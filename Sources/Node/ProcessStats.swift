#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FoundationEssentials
import NIOCore
import Synchronization

/// Readings from /proc about this process: memory, and the kernel's drop counter for a UDP socket
/// (datagrams the kernel discarded because the socket's receive buffer was full).
enum ProcessStats {
    /// Resident memory, from /proc/self/statm (resident pages × the page size: what `VmRSS` in
    /// /proc/self/status says, in a few bytes instead of ~1.5 KB of text to split).
    static func residentKiB() -> UInt64 {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ", maxSplits: 2)
        guard fields.count >= 2, let pages = UInt64(fields[1]) else { return 0 }
        return pages * UInt64(sysconf(Int32(_SC_PAGESIZE))) / 1024
    }

    /// The `drops` column of /proc/self/net/udp for the sockets bound to `ports` (0 for a port not listed),
    /// from one read of the file.
    static func udpDrops(ports: [Int]) -> [UInt64] {
        guard let text = try? String(contentsOfFile: "/proc/self/net/udp", encoding: .utf8) else {
            return ports.map { _ in 0 }
        }
        return udpDrops(ports: ports, table: Array(text.utf8))
    }

    /// The same over the file's bytes. The file lists every UDP socket of the network namespace: ~100
    /// lines on a 100-validator cluster, read by each node once a second, so a line is only split into
    /// columns when its local address ends in one of `ports` (splitting every line was 1.2% of the
    /// machine's CPU there).
    static func udpDrops(ports: [Int], table: [UInt8]) -> [UInt64] {
        let suffixes = ports.map { port -> [UInt8] in
            let hex = String(port, radix: 16, uppercase: true)
            return Array((":" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex).utf8)
        }
        var drops = [UInt64](repeating: 0, count: ports.count)
        var found = [Bool](repeating: false, count: ports.count)
        var lineStart = table.firstIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? table.count  // past the header
        while lineStart < table.count {
            let lineEnd = table[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? table.count
            defer { lineStart = lineEnd + 1 }
            // Column 1 is the local address (column 0 is "sl", the socket's row number).
            let line = table[lineStart..<lineEnd]
            guard let local = line.split(separator: UInt8(ascii: " "), maxSplits: 2, omittingEmptySubsequences: true)
                .dropFirst().first,
                  let which = suffixes.indices.first(where: { !found[$0] && local.suffix(suffixes[$0].count).elementsEqual(suffixes[$0]) }) else { continue }
            let columns = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: true)
            guard columns.count >= 13, let value = UInt64(String(decoding: columns[12], as: UTF8.self)) else { continue }
            drops[which] = value
            found[which] = true
        }
        return drops
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
