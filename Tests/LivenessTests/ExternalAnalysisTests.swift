import Formats
import Testing
@testable import Liveness

/// The checks of an external system's run, on doctored histories: each must fail on what it guards.
@Suite struct ExternalAnalysisTests {
    static func write(_ client: Int, _ sequence: Int, key: Int = 0, at: UInt64, ok: Bool = true, revision: UInt64) -> WorkloadRecord {
        WorkloadRecord(client: client, member: "e\(client + 1)", op: "write", key: key, value: client * 100_000_000 + sequence,
                       invokeMs: at, completeMs: ok ? at + 5 : nil, outcome: ok ? "ok" : "unknown",
                       revision: ok ? revision : nil, error: nil)
    }

    static func read(_ client: Int, key: Int = 0, value: Int?, at: UInt64, revision: UInt64) -> WorkloadRecord {
        WorkloadRecord(client: client, member: "e\(client + 1)", op: "read", key: key, value: value, invokeMs: at,
                       completeMs: at + 5, outcome: "ok", revision: revision, error: nil)
    }

    static let history = [
        write(0, 1, at: 100, revision: 2), read(1, value: 1, at: 110, revision: 2),
        write(1, 1, at: 120, revision: 3), read(0, value: 100_000_001, at: 130, revision: 3),
        write(2, 1, at: 140, ok: false, revision: 0),
    ]

    static func final(_ markers: [String: [String]], registers: [String: [String: Int]] = [:]) -> FinalReading {
        FinalReading(members: Dictionary(uniqueKeysWithValues: markers.map { name, held in
            (name, FinalReading.Member(reachable: true, revision: 3, markers: held,
                                       registers: registers[name] ?? ["r0": 100_000_001], error: nil))
        }), settledSeconds: 0.1)
    }

    @Test func aCleanHistoryPassesEveryCheck() {
        let all = ["a/0/1", "a/1/1"]
        let analysis = ExternalAnalysis.analyze(system: "etcd", records: Self.history,
                                                final: Self.final(["e1": all, "e2": all, "e3": all + ["a/2/1"]]))
        #expect(analysis.lostCount == 0)
        #expect(analysis.divergedMembers.isEmpty)
        #expect(analysis.regressions.isEmpty)
        #expect(analysis.linearizable == true)
        #expect(analysis.writes.ok == 2 && analysis.writes.unknown == 1)
        #expect(analysis.ackTimesMs == [105, 125])
    }

    @Test func anAcknowledgedWriteMissingOnAMemberIsLost() {
        let analysis = ExternalAnalysis.analyze(system: "etcd", records: Self.history,
                                                final: Self.final(["e1": ["a/0/1", "a/1/1"], "e2": ["a/1/1"]]))
        #expect(analysis.lostByMember == ["e2": ["a/0/1"]])
    }

    @Test func aMemberHoldingOtherValuesDiverges() {
        let all = ["a/0/1", "a/1/1"]
        let analysis = ExternalAnalysis.analyze(
            system: "etcd", records: Self.history,
            final: Self.final(["e1": all, "e2": all, "e3": all], registers: ["e3": ["r0": 1]]))
        #expect(analysis.divergedMembers == ["e3"])
    }

    @Test func aLowerRevisionAfterAHigherOneIsARegression() {
        let history = Self.history + [Self.read(0, value: 100_000_001, at: 200, revision: 1)]
        let analysis = ExternalAnalysis.analyze(system: "etcd", records: history, final: nil)
        #expect(analysis.regressions.map(\.client) == [0])
        #expect(analysis.regressions.first?.from == 3 && analysis.regressions.first?.to == 1)
    }

    @Test func aStaleReadIsNotLinearizable() {
        // After 100000001 was acknowledged and read, a later read returns the older value: a stale member.
        let history = Self.history + [Self.read(2, value: 1, at: 300, revision: 3)]
        let analysis = ExternalAnalysis.analyze(system: "etcd", records: history, final: nil)
        #expect(analysis.linearizable == false)
        #expect(analysis.linearizabilityLines.first?.contains("NOT linearizable") == true)
        // The line numbers name the stuck read (the sixth line of the history).
        #expect(analysis.linearizabilityLines.first?.contains("lines 6") == true)
    }

    @Test func theBoundMakesItUndecidedNotWrong() {
        let analysis = ExternalAnalysis.analyze(system: "etcd", records: Self.history, final: nil, statesMax: 1)
        #expect(analysis.linearizable == nil)
    }
}
