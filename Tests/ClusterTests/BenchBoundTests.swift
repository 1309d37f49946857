import Foundation
import Testing
@testable import Cluster

/// A sequencer bench phase's bound: the mean of the rates measured around it, and a record written before
/// phases carried their own bound still reads, against the record's single rate.
@Suite struct BenchBoundTests {
    @Test func aPhaseIsJudgedAgainstTheBoundAroundIt() throws {
        let phase = SequencerBench.Phase(name: "ingest", rate: 1, sent: 1, sendSeconds: 1, startMs: 0, endMs: 1,
                                         sequencerCpuSeconds: 1, sequencerWallSeconds: 1, runDir: "r",
                                         bound: .init(before: 30_000, after: 36_000))
        let record = SequencerBench.Record(cores: 2, verifyOneThreadPerSecond: 17_000, verifyAllCoresPerSecond: 40_000,
                                           sequencer: "s", bundled: true, phases: [phase])
        #expect(phase.boundPerSecond(in: record) == 33_000)
        let decoded = try JSONDecoder().decode(SequencerBench.Record.self, from: JSONEncoder().encode(record))
        #expect(decoded.phases.first?.bound == .init(before: 30_000, after: 36_000))
    }

    @Test func anOlderRecordWithoutPhaseBoundsUsesItsOwnRate() throws {
        let json = #"""
        {"cores": 2, "verifyOneThreadPerSecond": 17000, "verifyAllCoresPerSecond": 40000, "sequencer": "s",
         "phases": [{"name": "ingest", "rate": 1, "sent": 1, "sendSeconds": 1, "startMs": 0, "endMs": 1,
                     "sequencerCpuSeconds": 1, "sequencerWallSeconds": 1, "runDir": "r"}]}
        """#
        let record = try JSONDecoder().decode(SequencerBench.Record.self, from: Data(json.utf8))
        #expect(record.phases.first?.bound == nil)
        #expect(record.phases.first.map { $0.boundPerSecond(in: record) } == 40_000)
    }
}
