import Formats
import Foundation
import Wire

/// The L2 side of a run, from the sequencer's and replicas' event logs and the clients' records in
/// the run folder's `rollup/`: queue, waits, rejects, backlog, heads, feed delivery, roots, forced
/// inclusion, and what the airdrop client sent and heard back.
public struct RollupAnalysis: Sendable {
    public struct Sample: Sendable, Equatable {
        public var timeMs: UInt64
        public var queue: UInt64
        public var waitP99Ms: UInt64
        public var admitted: UInt64
        public var rejected: [String: UInt64]
        public var backlogBytes: UInt64
        public var unsafeHeight: UInt64
        public var safeHeight: UInt64
        /// Nil where the run measured none (a simulated sequencer has no process).
        public var rssKiB: UInt64?
    }

    public struct L2Block: Sendable, Equatable {
        public var timeMs: UInt64
        public var height: UInt64
        public var txs: UInt64
        public var stateRoot: String
    }

    public struct Forced: Sendable, Equatable {
        public var node: String
        public var index: UInt64
        public var timeMs: UInt64
        public var l1Blocks: UInt64
        public var l1WaitMs: UInt64
        public var bySequencer: Bool
    }

    public var sequencer: String?
    public var replicas: [String]
    public var samples: [Sample] = []
    public var blocks: [L2Block] = []
    /// Per replica: (time, unsafe height) after each feed block or safe-head jump.
    public var replicaHeads: [String: [(timeMs: UInt64, height: UInt64)]] = [:]
    /// Per replica: (last height of a batch, derived state root, whether the sequencer made the block
    /// — false for a block derivation built at a forced-inclusion deadline).
    public var replicaSafeRoots: [String: [(height: UInt64, root: String, bySequencer: Bool)]] = [:]
    public var forced: [Forced] = []
    public var problems: [String] = []
    public var airdrops: [AirdropRecord] = []
    /// Per replica: the highest L2 height it counts final.
    public var replicaFinal: [String: UInt64] = [:]
    /// Submit → included → posted → safe → final, per client record ("load", then each airdrop step).
    public var latencies: [L2Latency] = []
    /// Per replica: L2 heights whose claimed root differs from the root L1's transactions give (logged
    /// when a dispute contract lets derivation go on), and the batch of the last block derived.
    public var rootMismatches: [String: Set<UInt64>] = [:]
    public var lastDerivedBatch: [String: UInt64] = [:]
    /// Per replica with mismatches: whether the last batch it derived still had one (the sequencer never
    /// came back to the L1-derived state).
    public var divergedAtEnd: [String: Bool] = [:]
    static let mismatchesMax = 100_000
    /// The dispute games on L1, when the rollup's genesis has the contract.
    public var disputes = DisputeAnalysis()

    public var isEmpty: Bool { sequencer == nil && replicas.isEmpty && disputes.isEmpty }

    /// `recordsDir`: the airdrop and forced steps' records; `loadSubmissionsPath`: the L2 load's submissions.
    /// `l1CommitMs`: when each L1 height was first committed (a batch counts as posted then).
    public static func analyze(nodeDirs: [(String, String)], recordsDir: String?,
                               loadSubmissionsPath: String? = nil, l1CommitMs: [UInt64: UInt64] = [:]) -> RollupAnalysis {
        var result = RollupAnalysis(sequencer: nil, replicas: [])
        var unreadable = 0
        var milestones = L2Milestones()
        /// Per node: the state root derived from L1 at the end of each batch.
        var batchRoots: [String: [UInt64: String]] = [:]
        var mismatchBatches: [String: Set<UInt64>] = [:]
        for (name, dir) in nodeDirs {
            var role: String?
            var safe: [(timeMs: UInt64, height: UInt64)] = []
            var final: [(timeMs: UInt64, height: UInt64)] = []
            RunAnalysis.forEachJSONLine(dir + "/events.jsonl", unreadable: &unreadable) { object in
                let time = RunAnalysis.uint(object["t"]) ?? 0
                switch object["event"] as? String {
                case "l2_sample":
                    role = object["role"] as? String
                    guard role == "sequencer" else { return }
                    result.samples.append(Sample(
                        timeMs: time, queue: RunAnalysis.uint(object["queue"]) ?? 0,
                        waitP99Ms: RunAnalysis.uint(object["waitP99Ms"]) ?? 0,
                        admitted: RunAnalysis.uint(object["admitted"]) ?? 0,
                        rejected: ((object["rejected"] as? [String: Any]) ?? [:]).compactMapValues { RunAnalysis.uint($0) },
                        backlogBytes: RunAnalysis.uint(object["backlogBytes"]) ?? 0,
                        unsafeHeight: RunAnalysis.uint(object["l2Unsafe"]) ?? 0,
                        safeHeight: RunAnalysis.uint(object["l2Safe"]) ?? 0, rssKiB: RunAnalysis.uint(object["rssKiB"])))
                case "l2_block":
                    role = "sequencer"
                    let height = RunAnalysis.uint(object["l2Height"]) ?? 0
                    result.blocks.append(L2Block(timeMs: time, height: height, txs: RunAnalysis.uint(object["txs"]) ?? 0,
                                                 stateRoot: object["stateRoot"] as? String ?? ""))
                    for case let id as String in (object["txIds"] as? [Any]) ?? [] {
                        milestones.includedAt[id] = (height, time)
                    }
                case "batch_landed":
                    let l1Height = RunAnalysis.uint(object["l1Height"]) ?? 0
                    milestones.posted.append((l1CommitMs[l1Height] ?? time, RunAnalysis.uint(object["lastHeight"]) ?? 0))
                case "l2_final":
                    final.append((time, RunAnalysis.uint(object["l2Height"]) ?? 0))
                case "feed_block":
                    role = "replica"
                    result.replicaHeads[name, default: []].append((time, RunAnalysis.uint(object["l2Height"]) ?? 0))
                    if object["rootOk"] as? Bool == false {
                        result.problems.append("\(name): feed block \(RunAnalysis.uint(object["l2Height"]) ?? 0) executes to another root than its header's")
                    }
                case "l2_safe":
                    let height = RunAnalysis.uint(object["lastHeight"]) ?? 0
                    result.replicaSafeRoots[name, default: []].append((height, object["stateRoot"] as? String ?? "", true))
                    if let batch = RunAnalysis.uint(object["batch"]) {
                        batchRoots[name, default: [:]][batch] = object["stateRoot"] as? String ?? ""
                        result.lastDerivedBatch[name] = max(result.lastDerivedBatch[name] ?? 0, batch)
                    }
                    result.replicaHeads[name, default: []].append((time, height))
                    safe.append((time, height))
                case "l2_forced_block":
                    let height = RunAnalysis.uint(object["l2Height"]) ?? 0
                    result.replicaHeads[name, default: []].append((time, height))
                    result.replicaSafeRoots[name, default: []].append((height, object["stateRoot"] as? String ?? "", false))
                    safe.append((time, height))
                case "forced_included":
                    result.forced.append(Forced(node: name, index: RunAnalysis.uint(object["index"]) ?? 0, timeMs: time,
                                                l1Blocks: RunAnalysis.uint(object["l1Blocks"]) ?? 0,
                                                l1WaitMs: RunAnalysis.uint(object["l1WaitMs"]) ?? 0,
                                                bySequencer: object["bySequencer"] as? Bool ?? true))
                case "derivation_halted", "feed_mismatch", "sequencer_stopped":
                    result.problems.append("\(name): \(object["event"] as? String ?? ""): \(object["reason"] as? String ?? "")")
                case "l2_root_mismatch":
                    if let height = RunAnalysis.uint(object["l2Height"]), (result.rootMismatches[name]?.count ?? 0) < Self.mismatchesMax {
                        result.rootMismatches[name, default: []].insert(height)
                        mismatchBatches[name, default: []].insert(RunAnalysis.uint(object["batch"]) ?? 0)
                    }
                case let event? where event.hasPrefix("dispute_"):
                    result.disputes.ingest(object, event: event, commitMs: RunAnalysis.uint(object["l1Height"]).flatMap { l1CommitMs[$0] })
                default:
                    break
                }
            }
            if role == "sequencer" { result.sequencer = name } else if role == "replica" {
                result.replicas.append(name)
                milestones.safe += safe
                milestones.final += final
                result.replicaFinal[name] = final.map(\.height).max() ?? 0
            }
        }
        // The sequencer derives too; only replicas' heads and roots are checked against it.
        if let sequencer = result.sequencer {
            result.rootMismatches[sequencer] = nil
            result.replicaHeads[sequencer] = nil
            result.replicaSafeRoots[sequencer] = nil
            result.forced.removeAll { $0.node == sequencer }
        }
        // Judged by what the replicas derived (the sequencer's own derivation only when there is no replica).
        let judges = result.replicas.isEmpty ? [result.sequencer].compactMap { $0 } : result.replicas.sorted()
        var derived: [UInt64: String] = [:]
        for judge in judges { derived.merge(batchRoots[judge] ?? [:]) { first, _ in first } }
        result.disputes.judge(derivedRoots: derived)
        for (name, batches) in mismatchBatches where name != result.sequencer {
            result.divergedAtEnd[name] = batches.contains(result.lastDerivedBatch[name] ?? .max)
        }
        if let recordsDir, let files = try? FileManager.default.contentsOfDirectory(atPath: recordsDir) {
            for file in files.sorted() where file.hasSuffix(".json") {
                if let data = FileManager.default.contents(atPath: recordsDir + "/" + file),
                   let record = try? JSONDecoder().decode(AirdropRecord.self, from: data) {
                    result.airdrops.append(record)
                }
            }
        }
        if let loadSubmissionsPath, let latency = milestones.latency(source: "load", submissionsPath: loadSubmissionsPath) {
            result.latencies.append(latency)
        }
        if let recordsDir {
            for airdrop in result.airdrops {
                if let latency = milestones.latency(source: airdrop.id,
                                                    submissionsPath: recordsDir + "/\(airdrop.id)-submissions.jsonl") {
                    result.latencies.append(latency)
                }
            }
        }
        return result
    }

    func samples(in ranges: [ClosedRange<UInt64>]) -> [Sample] {
        samples.filter { sample in ranges.contains { $0.contains(sample.timeMs) } }
    }

    /// For each sequencer block made in the window: how long until every replica's unsafe head reached
    /// it (from the feed, or from L1 when the feed failed). A block no replica reached by the end counts
    /// until `endMs`. Returns the largest, in ms.
    func feedLagMaxMs(_ ranges: [ClosedRange<UInt64>], endMs: UInt64) -> UInt64? {
        let inWindow = blocks.filter { block in ranges.contains { $0.contains(block.timeMs) } }
        guard !inWindow.isEmpty, !replicaHeads.isEmpty else { return nil }
        var worst: UInt64 = 0
        for heads in replicaHeads.values {
            let sorted = heads.sorted { $0.timeMs < $1.timeMs }
            var best: UInt64 = 0
            var position = 0
            // Walk both in time order: the first time this replica's head is at or above the block.
            var reached: [(timeMs: UInt64, height: UInt64)] = []
            for head in sorted where head.height > best {
                best = head.height
                reached.append((head.timeMs, best))
            }
            for block in inWindow.sorted(by: { $0.height < $1.height }) {
                while position < reached.count, reached[position].height < block.height { position += 1 }
                let at = position < reached.count ? reached[position].timeMs : endMs
                worst = max(worst, at > block.timeMs ? at - block.timeMs : 0)
            }
        }
        return worst
    }

    /// Whether every replica's derived root at the end of each batch equals the sequencer's root for
    /// that L2 height, and replicas agree with each other (also on blocks derivation built without the
    /// sequencer); returns (roots checked, mismatches as text).
    func rootCheck() -> (checked: Int, mismatches: [String]) {
        let sequencerRoots = Dictionary(blocks.map { ($0.height, $0.stateRoot) }, uniquingKeysWith: { _, last in last })
        var checked = 0
        var mismatches: [String] = []
        var firstReplicaRoot: [UInt64: (replica: String, root: String)] = [:]
        for (replica, roots) in replicaSafeRoots.sorted(by: { $0.key < $1.key }) {
            // A restarted replica derives (and logs) the same batches again.
            var seen: Set<UInt64> = []
            for entry in roots where seen.insert(entry.height).inserted {
                if let other = firstReplicaRoot[entry.height], other.root != entry.root {
                    mismatches.append("\(replica) at L2 height \(entry.height): \(entry.root.prefix(12)) vs \(other.replica) \(other.root.prefix(12))")
                }
                if firstReplicaRoot[entry.height] == nil { firstReplicaRoot[entry.height] = (replica, entry.root) }
                // A block derivation built replaces whatever the sequencer made at that height and never posted.
                guard entry.bySequencer, let expected = sequencerRoots[entry.height] else { continue }
                checked += 1
                if expected != entry.root {
                    mismatches.append("\(replica) at L2 height \(entry.height): \(entry.root.prefix(12)) vs sequencer \(expected.prefix(12))")
                }
            }
        }
        return (checked, mismatches)
    }
}
