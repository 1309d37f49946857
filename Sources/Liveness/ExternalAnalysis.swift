import Formats
import Foundation

/// What the workload of an external system saw (`workload/history.jsonl`) and what each member held at
/// the end (`workload/final.json`): liveness as acknowledged writes over time, safety as acknowledged
/// writes kept by every member, members that agree, revisions that never go back for a client, and a
/// linearizable history per key.
public struct ExternalAnalysis: Sendable {
    public var system: String
    public var records: [WorkloadRecord]
    public var final: FinalReading?
    /// Completion times of acknowledged writes, sorted.
    public var ackTimesMs: [UInt64]
    /// Per member that answered at the end: acknowledged writes whose marker it does not hold.
    public var lostByMember: [String: [String]]
    /// Members that did not answer the final reading.
    public var unreachableAtEnd: [String]
    /// Members whose registers at the end differ from those most members hold.
    public var divergedMembers: [String]
    /// A client saw a lower revision after a higher one.
    public var regressions: [Regression]
    /// Who led from when, as the observer saw it (a majority of the members naming one leader).
    public var leaders: [(timeMs: UInt64, node: String)] = []
    /// Per key ("r0", …): the checker's outcome and how many operations it checked.
    public var linearizability: [String: (outcome: Linearizability.Outcome, operations: Int)]

    public struct Regression: Sendable, Equatable {
        public var client: Int
        public var from: UInt64
        public var to: UInt64
        public var atMs: UInt64
        public var member: String
    }

    public var writes: (ok: Int, unknown: Int, failed: Int) {
        let writes = records.filter { $0.op == "write" }
        return (writes.filter { $0.outcome == "ok" }.count, writes.filter { $0.outcome == "unknown" }.count,
                writes.filter { $0.outcome == "fail" }.count)
    }

    public var reads: (ok: Int, unknown: Int) {
        let reads = records.filter { $0.op == "read" }
        return (reads.filter { $0.outcome == "ok" }.count, reads.filter { $0.outcome != "ok" }.count)
    }

    public var lostCount: Int { lostByMember.values.map(\.count).reduce(0, +) }

    public var linearizable: Bool? {
        if linearizability.values.contains(where: { if case .violation = $0.outcome { true } else { false } }) { return false }
        if linearizability.values.contains(where: { if case .undecided = $0.outcome { true } else { false } }) { return nil }
        return true
    }

    /// The member that led at `timeMs` (nil: none known yet).
    public func leader(at timeMs: UInt64) -> String? { leaders.last { $0.timeMs <= timeMs }?.node }

    /// Reads a run folder's workload files (and the members' leader events); nil if the run had no workload.
    public static func load(runDir: String, system: String, members: [(name: String, dir: String)]) -> ExternalAnalysis? {
        var result = load(runDir: runDir, system: system)
        for member in members {
            guard let data = FileManager.default.contents(atPath: member.dir + "/events.jsonl") else { continue }
            for line in data.split(separator: UInt8(ascii: "\n")) {
                guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                      object["event"] as? String == "leader", let time = ExternalSystem.number(object["t"]) else { continue }
                result?.leaders.append((time, member.name))
            }
        }
        result?.leaders.sort { $0.timeMs < $1.timeMs }
        return result
    }

    static func load(runDir: String, system: String) -> ExternalAnalysis? {
        guard let data = FileManager.default.contents(atPath: runDir + "/workload/history.jsonl") else { return nil }
        let decoder = JSONDecoder()
        let records = data.split(separator: UInt8(ascii: "\n")).compactMap { try? decoder.decode(WorkloadRecord.self, from: Data($0)) }
        let final = FileManager.default.contents(atPath: runDir + "/workload/final.json")
            .flatMap { try? decoder.decode(FinalReading.self, from: $0) }
        return analyze(system: system, records: records, final: final)
    }

    /// The linearizability search's bound per key.
    public static let statesMax = 2_000_000

    public static func analyze(system: String, records: [WorkloadRecord], final: FinalReading?,
                               statesMax: Int = ExternalAnalysis.statesMax) -> ExternalAnalysis {
        let acknowledged = records.filter { $0.op == "write" && $0.outcome == "ok" }
        var lost: [String: [String]] = [:]
        var unreachable: [String] = []
        var diverged: [String] = []
        if let final {
            // Markers are a/CLIENT/SEQ; a write's value is CLIENT * 10^8 + SEQ.
            let expected = acknowledged.compactMap { record in
                record.value.map { WorkloadRecord.marker(client: $0 / 100_000_000, sequence: $0 % 100_000_000) }
            }
            for (name, member) in final.members.sorted(by: { $0.key < $1.key }) {
                guard member.reachable else { unreachable.append(name); continue }
                let held = Set(member.markers)
                let missing = expected.filter { !held.contains($0) }
                if !missing.isEmpty { lost[name] = missing }
            }
            let reachable = final.members.filter(\.value.reachable)
            let counts = Dictionary(grouping: reachable.values.map(\.registers), by: { $0 }).mapValues(\.count)
            if let majority = counts.max(by: { $0.value < $1.value })?.key {
                diverged = reachable.filter { $0.value.registers != majority }.map(\.key).sorted()
            }
        }
        var regressions: [Regression] = []
        for (client, list) in Dictionary(grouping: records.filter { $0.outcome == "ok" }, by: \.client) {
            var highest: UInt64 = 0
            for record in list.sorted(by: { ($0.completeMs ?? 0) < ($1.completeMs ?? 0) }) {
                guard let revision = record.revision else { continue }
                if revision < highest {
                    regressions.append(Regression(client: client, from: highest, to: revision, atMs: record.completeMs ?? 0,
                                                  member: record.member))
                }
                highest = max(highest, revision)
            }
        }
        var checked: [String: (Linearizability.Outcome, Int)] = [:]
        for (key, list) in Dictionary(grouping: records.enumerated().map { ($0.offset + 1, $0.element) }, by: { $0.1.key }) {
            let operations = list.compactMap { index, record -> Linearizability.Operation? in
                switch (record.op, record.outcome) {
                case ("write", "ok"), ("write", "unknown"):
                    guard let value = record.value else { return nil }
                    return .init(id: index, kind: .write(value), invokeMs: record.invokeMs,
                                 completeMs: record.outcome == "ok" ? record.completeMs : nil)
                case ("read", "ok"):
                    return .init(id: index, kind: .read(record.value), invokeMs: record.invokeMs, completeMs: record.completeMs)
                default:
                    return nil
                }
            }
            checked["r\(key)"] = (Linearizability.check(operations, statesMax: statesMax), operations.count)
        }
        return ExternalAnalysis(system: system, records: records, final: final,
                                ackTimesMs: acknowledged.compactMap(\.completeMs).sorted(), lostByMember: lost,
                                unreachableAtEnd: unreachable, divergedMembers: diverged,
                                regressions: regressions.sorted { $0.atMs < $1.atMs },
                                linearizability: checked.mapValues { (outcome: $0.0, operations: $0.1) })
    }

    /// One line per key for reports.
    public var linearizabilityLines: [String] {
        linearizability.sorted { $0.key < $1.key }.map { key, result in
            switch result.outcome {
            case .linearizable(let states):
                return "\(key): linearizable (\(result.operations) operations, \(states) states searched)"
            case .violation(let deepest, let stuck):
                return "\(key): NOT linearizable — no order places more than \(deepest) of \(result.operations) "
                    + "operations; stuck at history lines \(stuck.prefix(5).map(String.init).joined(separator: ", "))"
            case .undecided(let states):
                return "\(key): undecided after \(states) states (\(result.operations) operations)"
            }
        }
    }
}
