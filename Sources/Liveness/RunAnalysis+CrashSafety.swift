import Foundation

/// Crash safety from the files of a run: every consensus signature each validator made (its
/// `signed` events, flushed before the message left), the kills a storm fired (`kills.jsonl`), and
/// the store tails nodes cut off at start.
extension RunAnalysis {
    /// One validator signing two different values for one height, round and step.
    public struct DoubleSign: Sendable, Equatable, Codable {
        /// The validator (its genesis name), whichever processes signed with its key.
        public var node: String
        /// The node processes whose logs hold the signatures (two for twins).
        public var nodes: [String]
        public var height: UInt64
        public var round: UInt64
        public var kind: String
        /// The values signed (block ids in hex, or "nil"), in the order they were signed.
        public var values: [String]
    }

    /// A SIGKILL, a restart, or a torn record written into a dead node's store, from a kill storm.
    public struct KillRecord: Sendable, Equatable, Codable {
        public var t: UInt64
        /// "kill", "torn" or "restart".
        public var event: String
        public var node: String
        public var pid: Int32
        /// For "torn": the bytes appended.
        public var bytes: UInt64?
    }

    public struct StartRecord: Sendable, Equatable {
        public var timeMs: UInt64
        public var discardedTailBytes: UInt64
    }

    /// Accumulates `signed` events: the first value per (node, height, round, kind) and any other.
    struct SignatureLedger {
        struct Key: Hashable {
            var node: String
            var height: UInt64
            var round: UInt64
            var kind: String
        }

        private var first: [Key: (value: String, node: String)] = [:]
        private var doubles: [Key: (values: [String], nodes: [String])] = [:]
        private(set) var count = 0
        /// Distinct double signs kept (each is a safety failure; the first ones are enough to show).
        static let doubleSignsMax = 1_000

        mutating func record(node: String, _ object: [String: Any]) -> Bool {
            guard let height = RunAnalysis.uint(object["height"]), let round = RunAnalysis.uint(object["round"]),
                  let kind = object["kind"] as? String, let value = object["value"] as? String else { return false }
            count += 1
            let validator = object["validator"] as? String ?? node
            let key = Key(node: validator, height: height, round: round, kind: kind)
            guard let seen = first[key] else {
                first[key] = (value, node)
                return true
            }
            guard seen.value != value else { return true }
            if doubles[key] == nil, doubles.count >= SignatureLedger.doubleSignsMax { return true }
            var entry = doubles[key] ?? ([seen.value], [seen.node])
            if !entry.values.contains(value) { entry.values.append(value) }
            if !entry.nodes.contains(node) { entry.nodes.append(node) }
            doubles[key] = entry
            return true
        }

        var doubleSigns: [DoubleSign] {
            doubles.map { DoubleSign(node: $0.key.node, nodes: $0.value.nodes.sorted(), height: $0.key.height,
                                     round: $0.key.round, kind: $0.key.kind, values: $0.value.values) }
                .sorted { ($0.height, $0.round, $0.kind, $0.node) < ($1.height, $1.round, $1.kind, $1.node) }
        }
    }

    /// The kill storm's records, oldest first (a torn last line is counted as unreadable).
    static func kills(path: String, unreadable: inout Int) -> [KillRecord] {
        var out: [KillRecord] = []
        forEachJSONLine(path, unreadable: &unreadable) { object in
            guard let time = uint(object["t"]), let event = object["event"] as? String,
                  let node = object["node"] as? String else { return }
            out.append(KillRecord(t: time, event: event, node: node, pid: Int32(truncatingIfNeeded: uint(object["pid"]) ?? 0),
                                  bytes: uint(object["bytes"])))
        }
        return out.sorted { $0.t < $1.t }
    }

    /// SIGKILLs fired by kill storms.
    public var killCount: Int { kills.filter { $0.event == "kill" }.count }
    /// Torn records kill storms appended to dead nodes' block stores.
    public var tornTailsWritten: Int { kills.filter { $0.event == "torn" }.count }
    /// Starts that cut a torn or corrupt tail off their block store.
    public var tornTailsCut: Int { nodes.reduce(0) { $0 + $1.tornTails.count } }

    /// Torn tails a storm wrote into dead nodes' stores that the node's next start did not cut off
    /// (all of them, at least as many bytes as were torn since its previous start): each would be a
    /// store that trusted a broken record. Tails torn before a start the run never saw are not counted.
    public var tornTailsMissed: [KillRecord] {
        var missed: [KillRecord] = []
        for node in nodes {
            let torn = kills.filter { $0.event == "torn" && $0.node == node.name }
            let starts = node.startRecords.sorted { $0.timeMs < $1.timeMs }
            var index = 0
            for start in starts {
                var group: [KillRecord] = []
                while index < torn.count, torn[index].t <= start.timeMs {
                    group.append(torn[index])
                    index += 1
                }
                let bytes = group.reduce(UInt64(0)) { $0 + ($1.bytes ?? 0) }
                if !group.isEmpty, start.discardedTailBytes < bytes { missed += group }
            }
        }
        return missed
    }

    /// "no validator signed two values for one height/round/step (12,408 signatures)" or the first offences.
    public var doubleSignSummary: String {
        guard !doubleSigns.isEmpty else {
            return "no validator signed two values for one height/round/step (\(signaturesRecorded) signatures)"
        }
        let shown = doubleSigns.prefix(3).map { double in
            let who = double.nodes == [double.node]
                ? double.node : "\(double.node) (on \(double.nodes.joined(separator: " and ")))"
            return who + " \(double.kind) at \(double.height)/\(double.round): "
                + double.values.map { String($0.prefix(12)) }.joined(separator: " vs ")
        }
        return "\(doubleSigns.count) double signs: " + shown.joined(separator: "; ") + (doubleSigns.count > 3 ? "; …" : "")
    }
}
