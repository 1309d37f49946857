import Basics
import HeapModule
import Wire

/// Applies link rules to outgoing datagrams: drop, delay with jitter, duplicate, reorder, and a
/// bandwidth cap, deterministically from a seed. Pure: time comes in as an argument.
public struct LinkShaper: Sendable {
    public struct Pending: Comparable, Sendable {
        public var dueMs: Double
        public var sequence: UInt64
        public var bytes: [UInt8]
        public var peer: String
        public var kind: MessageKind

        public static func < (lhs: Pending, rhs: Pending) -> Bool {
            (lhs.dueMs, lhs.sequence) < (rhs.dueMs, rhs.sequence)
        }

        public static func == (lhs: Pending, rhs: Pending) -> Bool { lhs.sequence == rhs.sequence }
    }

    public enum Decision: Sendable, Equatable {
        case dropped(reason: String)
        /// Send now (delay 0) or after the given delays; more than one entry is a duplicate.
        case send(delaysMs: [Double])
    }

    public static let pendingMax = 200_000
    /// The decision for a link with no rule, shared so the common case allocates nothing.
    private static let sendNow = Decision.send(delaysMs: [0])

    public private(set) var table = LinkFaultTable()
    private var rng: SplitMix64
    private var pending = Heap<Pending>()
    private var sequence: UInt64 = 0
    private var linkFreeAtMs: [String: Double] = [:]
    public private(set) var droppedByReason: [String: Int] = [:]

    public init(seed: UInt64) {
        rng = SplitMix64(seed: seed)
    }

    public var isActive: Bool { !table.links.isEmpty }
    public var pendingCount: Int { pending.count }
    public var nextDueMs: Double? { pending.min?.dueMs }

    public mutating func setTable(_ newTable: LinkFaultTable) {
        table = LinkFaultTable(links: newTable.links.filter { !$0.value.isClear })
        linkFreeAtMs = linkFreeAtMs.filter { table.links[$0.key]?.bandwidthBytesPerSecond != nil }
    }

    /// The fate of one message of `bytesCount` bytes to `peer` under the link's rule: dropped (and
    /// why), or its delays (two for a duplicate). Holds nothing back: the simulator schedules the
    /// deliveries itself; `route` keeps delayed datagrams for the real node.
    public mutating func decide(bytesCount: Int, kind: MessageKind, peer: String, nowMs: Double) -> Decision {
        guard !table.links.isEmpty, let rule = table.links[peer] else { return Self.sendNow }
        if rule.blocked { return drop("partition") }
        if rule.dropKinds.contains(kind.description) { return drop("kind_\(kind.description)") }
        if rule.lossPercent > 0, rng.nextPercent() < rule.lossPercent { return drop("loss") }
        var delays = [delay(rule)]
        if rule.duplicatePercent > 0, rng.nextPercent() < rule.duplicatePercent { delays.append(delay(rule)) }
        if let bandwidth = rule.bandwidthBytesPerSecond, bandwidth > 0 {
            let transmitMs = Double(bytesCount) * 1000 / Double(bandwidth)
            let start = max(nowMs, linkFreeAtMs[peer] ?? nowMs)
            linkFreeAtMs[peer] = start + transmitMs
            delays = delays.map { $0 + (start - nowMs) + transmitMs }
        }
        return .send(delaysMs: delays)
    }

    /// Decides the fate of one datagram to `peer`; delayed copies are kept until `due(nowMs:)`.
    public mutating func route(_ bytes: [UInt8], kind: MessageKind, peer: String, nowMs: Double) -> Decision {
        let decision = decide(bytesCount: bytes.count, kind: kind, peer: peer, nowMs: nowMs)
        guard case .send(let delays) = decision else { return decision }
        var sent: [Double] = []
        for delayMs in delays {
            if delayMs <= 0 {
                sent.append(0)
            } else if pending.count < LinkShaper.pendingMax {
                sequence += 1
                pending.insert(Pending(dueMs: nowMs + delayMs, sequence: sequence, bytes: bytes, peer: peer, kind: kind))
                sent.append(delayMs)
            } else {
                droppedByReason["delay_queue_full", default: 0] += 1
            }
        }
        return .send(delaysMs: sent)
    }

    /// Datagrams whose delay has passed, earliest first.
    public mutating func due(nowMs: Double) -> [Pending] {
        var out: [Pending] = []
        while let first = pending.min, first.dueMs <= nowMs {
            out.append(pending.removeMin())
        }
        return out
    }

    private mutating func delay(_ rule: LinkRule) -> Double {
        var value = rule.delayMs
        if rule.jitterMs > 0 { value += (rng.nextUnit() * 2 - 1) * rule.jitterMs }
        if rule.reorderPercent > 0, rng.nextPercent() < rule.reorderPercent {
            value += max(rule.delayMs, 5) + rng.nextUnit() * max(rule.jitterMs, 5)
        }
        return max(value, 0)
    }

    private mutating func drop(_ reason: String) -> Decision {
        droppedByReason[reason, default: 0] += 1
        return .dropped(reason: reason)
    }
}
