import Basics
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

    /// Two commit certificates for different blocks at one height: +2/3 of the stake precommitted each (see
    /// `SignatureAudit`).
    public struct Fork: Sendable, Equatable, Codable {
        public var height: UInt64
        /// Per certificate: its round, its block id (hex) and the validators that signed it.
        public var rounds: [UInt64]
        public var values: [String]
        public var signers: [[String]]
    }

    /// Collects `signed` events; once every log is read, `audit(stakes:)` runs the shared `SignatureAudit` over
    /// them (the simulator's safety monitor runs the same one as it goes): a fork needs the stakes, and who
    /// lied — validators that signed two values, or signed from two processes (twins).
    struct SignatureLedger {
        struct Record {
            var validator: String
            var node: String
            var height: UInt64
            var round: UInt64
            var kind: String
            var value: String?
        }

        private(set) var records: [Record] = []
        var count: Int { records.count }

        mutating func record(node: String, _ object: [String: Any]) -> Bool {
            guard let height = RunAnalysis.uint(object["height"]), let round = RunAnalysis.uint(object["round"]),
                  let kind = object["kind"] as? String, let value = object["value"] as? String else { return false }
            records.append(Record(validator: object["validator"] as? String ?? node, node: node, height: height,
                                  round: round, kind: kind, value: value == "nil" ? nil : value))
            return true
        }

        /// `stakes`: per node process (twin processes are left out: their validator's stake counts once).
        func audit(stakes: [String: UInt64]) -> (doubleSigns: [DoubleSign], forks: [Fork], forksUnchecked: String?) {
            var plain = SignatureAudit<String, String>(certificateKind: "precommit", stakes: [:])
            var processes: [String: Set<String>] = [:]
            for record in records {
                _ = plain.record(validator: record.validator, node: record.node, height: record.height,
                                 round: record.round, kind: record.kind, value: record.value)
                processes[record.validator, default: []].insert(record.node)
            }
            let doubleSigns = plain.doubleSigns.map { double in
                DoubleSign(node: double.key.validator, nodes: double.nodes.sorted(), height: double.key.height,
                           round: double.key.round, kind: double.key.kind, values: double.values.map { $0 ?? "nil" })
            }.sorted { ($0.height, $0.round, $0.kind, $0.node) < ($1.height, $1.round, $1.kind, $1.node) }
            let twinProcesses = Set(records.filter { $0.node != $0.validator }.map(\.node))
            var certified = SignatureAudit<String, String>(
                certificateKind: "precommit", stakes: stakes.filter { !twinProcesses.contains($0.key) && $0.value > 0 })
            certified.addLiars(Set(doubleSigns.map(\.node)).union(processes.filter { $0.value.count > 1 }.keys))
            for record in records {
                _ = certified.record(validator: record.validator, node: record.node, height: record.height,
                                     round: record.round, kind: record.kind, value: record.value)
            }
            let forks = certified.forks.map { fork in
                Fork(height: fork.height, rounds: [fork.first.round, fork.second.round],
                     values: [fork.first.value, fork.second.value], signers: [fork.first.signers, fork.second.signers])
            }
            var unchecked: String?
            if !certified.forksChecked {
                let liars = certified.liars.sorted()
                unchecked = liars.isEmpty ? "no validator stakes in the logs"
                    : "the validators that lied (\(liars.joined(separator: ", "))) hold 1/3 of the stake or more, "
                        + "enough for two certificates"
            }
            return (doubleSigns, forks, unchecked)
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

    /// "no two commit certificates for different blocks at one height" or the first forks.
    public var forkSummary: String {
        if let forksUnchecked { return "forks not checked: " + forksUnchecked }
        guard !forks.isEmpty else { return "no two commit certificates for different blocks at one height" }
        let shown = forks.prefix(3).map { fork in
            "height \(fork.height): " + zip(fork.values, zip(fork.rounds, fork.signers)).map { value, certificate in
                "\(value.prefix(12)) in round \(certificate.0) (\(certificate.1.joined(separator: ",")))"
            }.joined(separator: " vs ")
        }
        return "\(forks.count) forks: " + shown.joined(separator: "; ") + (forks.count > 3 ? "; …" : "")
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
