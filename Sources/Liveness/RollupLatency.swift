import Foundation
import Histogram

/// Per-transaction L2 latency (Topologies/README.md, "L2 sequencer"): from the client's submission to
/// - included: in an L2 block the sequencer made (the unsafe head),
/// - posted: the batch holding that block is in a committed L1 block (the first commit of that L1
///   height on any node; the sequencer's `batch_landed` names the height),
/// - safe: a replica derived the block from L1 (the first replica to do so),
/// - final: a replica counts it final, the challenge window after it became safe.
public struct L2Latency: Codable, Sendable, Equatable {
    public struct Stage: Codable, Sendable, Equatable {
        public var count: Int
        public var p50Ms: Double
        public var p99Ms: Double
        public var maxMs: Double
    }

    /// The submissions it was computed from ("load" or an airdrop step's id).
    public var source: String
    public var submitted: Int
    public var included: Stage?
    public var posted: Stage?
    public var safe: Stage?
    public var final: Stage?

    public var stages: [(name: String, stage: Stage?)] {
        [("included", included), ("posted", posted), ("safe", safe), ("final", final)]
    }
}

/// What the join needs from the event logs: where each transaction went, and when each L2 height
/// reached each stage.
struct L2Milestones: Sendable {
    /// Transaction id (short hex) → (L2 height, time the sequencer made the block).
    var includedAt: [String: (height: UInt64, timeMs: UInt64)] = [:]
    /// (time, last L2 height) events per stage; any order.
    var posted: [(timeMs: UInt64, height: UInt64)] = []
    var safe: [(timeMs: UInt64, height: UInt64)] = []
    var final: [(timeMs: UInt64, height: UInt64)] = []

    /// The first time each stage reached `height` or beyond, as a lookup over (time, highest so far).
    struct Reach {
        let steps: [(timeMs: UInt64, height: UInt64)]

        init(_ events: [(timeMs: UInt64, height: UInt64)]) {
            var steps: [(timeMs: UInt64, height: UInt64)] = []
            for event in events.sorted(by: { $0.timeMs < $1.timeMs }) where event.height > (steps.last?.height ?? 0) {
                steps.append(event)
            }
            self.steps = steps
        }

        func time(reaching height: UInt64) -> UInt64? {
            var low = 0
            var high = steps.count
            while low < high {
                let middle = (low + high) / 2
                if steps[middle].height < height { low = middle + 1 } else { high = middle }
            }
            return low < steps.count ? steps[low].timeMs : nil
        }
    }

    /// Joins a client's submissions (`{"t": ms, "tx": short id}` lines) with the milestones.
    func latency(source: String, submissionsPath: String) -> L2Latency? {
        guard FileManager.default.fileExists(atPath: submissionsPath) else { return nil }
        let reaches = [Reach(posted), Reach(safe), Reach(final)]
        func histogram() -> Histogram<UInt64> {
            Histogram<UInt64>(highestTrackableValue: 3_600_000, numberOfSignificantValueDigits: .three)
        }
        var histograms = [histogram(), histogram(), histogram(), histogram()]
        var counts = [0, 0, 0, 0]
        var submitted = 0
        var unreadable = 0
        RunAnalysis.forEachJSONLine(submissionsPath, unreadable: &unreadable) { object in
            guard let time = RunAnalysis.uint(object["t"]), let id = object["tx"] as? String else { return }
            submitted += 1
            guard let (height, includedMs) = includedAt[id] else { return }
            var stageTimes: [UInt64?] = [includedMs]
            for reach in reaches { stageTimes.append(reach.time(reaching: height)) }
            for (stage, done) in stageTimes.enumerated() {
                guard let done else { continue }
                counts[stage] += 1
                _ = histograms[stage].record(done > time ? done - time : 0)
            }
        }
        guard submitted > 0 else { return nil }
        func stage(_ index: Int) -> L2Latency.Stage? {
            guard counts[index] > 0 else { return nil }
            let values = histograms[index]
            return L2Latency.Stage(count: counts[index], p50Ms: Double(values.valueAtPercentile(50)),
                                   p99Ms: Double(values.valueAtPercentile(99)), maxMs: Double(values.max))
        }
        return L2Latency(source: source, submitted: submitted, included: stage(0), posted: stage(1), safe: stage(2),
                         final: stage(3))
    }
}
