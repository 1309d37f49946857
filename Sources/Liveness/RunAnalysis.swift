import Foundation
import Histogram

/// Reads the nodes' JSONL event logs (and the load generator's submissions) after or during a run
/// and computes liveness and safety figures. Works on files only, so a report can be rebuilt later.
public struct RunAnalysis: Sendable {
    public struct NodeSummary: Sendable, Equatable {
        public var name: String
        public var height: UInt64
        public var commits: Int
        public var syncedCommits: Int
        public var starts: Int
        public var maxRound: UInt64
        /// Restarts that came back below a height this node had already committed (blocks lost).
        public var lostOnRestart: [String]
        /// The last cumulative ingress drops by reason (from `drops` events).
        public var drops: [String: UInt64]
        /// Peak resident memory, from the once-a-second `sample` events.
        public var rssMaxKiB: UInt64 = 0
        /// Per second: (time, p99 of vote queueing delay in ms).
        public var voteDelayP99: [SeriesPoint] = []
        /// Per second: (time, p99 of how late the node's timers ran, ms): host health.
        public var timerLateP99: [SeriesPoint] = []
        /// The kernel's receive-buffer drops by lane, last reading.
        public var kernelDrops: [String: UInt64] = [:]
        /// Consensus messages received by kind and consensus signatures checked (`traffic` events, summed over
        /// restarts: a count below the last one means the node started again from zero).
        public var traffic = Traffic()
        /// The consensus protocol the node ran (nil: its log predates the field).
        public var consensusProtocol: String?
        /// From the last `start` event: stake, the binary's rules range and fork id.
        public var stake: UInt64 = 0
        public var rulesVersionMax: UInt64 = 1
        public var rulesVersionMin: UInt64 = 1
        public var forkId: UInt64 = 0
        /// Why the node stopped deciding since its last start (state root mismatch, upgrade needed).
        public var stopped: String?
        public var stoppedAtMs: UInt64?
        /// The height the node was at when it stopped (the block it would not take).
        public var stoppedHeight: UInt64?
        /// Starts refused because the binary no longer runs the chain's current rules.
        public var refusedStarts: [String] = []
        /// Handshake refusals by this node: (time, peer, reason).
        public var handshakeRefusals: [HandshakeRefusal] = []
        /// Every round change past round 0: (time, height, round).
        public var rounds: [RoundPoint] = []
        /// Every start: when, and how many bytes of torn or corrupt store tail it cut off (0: clean).
        public var startRecords: [StartRecord] = []
        /// The bytes of each torn tail cut off at start.
        public var tornTails: [UInt64] { startRecords.map(\.discardedTailBytes).filter { $0 > 0 } }

        /// Drops whose reason belongs to a lane: "vote" or "user" (kernel drops included).
        public func drops(lane: String) -> UInt64 {
            drops.filter { $0.key.hasPrefix(lane + "_") }.values.reduce(0, +) + (kernelDrops[lane] ?? 0)
        }
    }

    public struct HandshakeRefusal: Sendable, Equatable {
        public var timeMs: UInt64
        public var peer: String
        public var reason: String
    }

    public struct RoundPoint: Sendable, Equatable {
        public var timeMs: UInt64
        public var height: UInt64
        public var round: UInt64
    }

    /// A height after which nodes hold different state roots (the same block executed differently).
    public struct Divergence: Sendable, Equatable {
        public var height: UInt64
        /// When the second root was first recorded.
        public var timeMs: UInt64
        /// Each node's root just after that (the split that decides what happens next).
        public var sides: [Side]
        /// Each node's last root for this height (after restarts re-executed it, e.g. an upgrade).
        public var sidesAtEnd: [Side]
        /// Every root recorded for this height, in time order (commits and re-executions).
        public var records: [Record] = []

        public struct Record: Sendable, Equatable {
            public var node: String
            public var timeMs: UInt64
            public var stateRoot: String
        }

        public struct Side: Sendable, Equatable {
            public var stateRoot: String
            public var nodes: [String]
            public var stake: UInt64
        }
    }

    public struct Conflict: Sendable, Equatable {
        public var height: UInt64
        /// Block hash → the nodes that committed it.
        public var sides: [String: [String]]
    }

    public struct Latency: Sendable, Equatable {
        public var count: Int
        public var p50Ms: Double
        public var p99Ms: Double
        public var maxMs: Double
    }

    public var nodes: [NodeSummary]
    public var heightsChecked: Int
    public var conflicts: [Conflict]
    public var txsCommitted: Int
    public var firstCommitMs: UInt64?
    public var lastCommitMs: UInt64?
    public var maxFinalityGapMs: UInt64
    public var meanBlockIntervalMs: Double
    public var submitted: Int
    public var latency: Latency?
    public var throughputTxPerSecond: Double
    public var unreadableLines: Int
    /// The first time any node committed each height, in height order.
    public var heightTimes: [HeightTime]
    /// An external system's workload and final reading (nil: Faultline's own nodes).
    public var external: ExternalAnalysis?
    /// Each node's (time, height) after every commit.
    public var nodeSeries: [String: [SeriesPoint]]
    /// Each finalized client transaction: when it was submitted and how long until it was finalized.
    public var txLatencies: [TxLatency]
    /// Heights where nodes committed the same block with different resulting state roots (first 20).
    public var divergences: [Divergence] = []
    public static let divergencesMax = 20
    /// The L2 side, when the run had a sequencer or replicas.
    public var rollup: RollupAnalysis?
    /// The JSON-RPC load's requests and the gateways' counters, when the run had `[rpc_load]`.
    public var rpc: RPCAnalysis?
    /// Equivocations committed as evidence in a block, one per offence (whichever nodes recorded it).
    public var evidence: [EvidenceEntry] = []
    /// Equivocations detected by nodes (each node reports an offence once; `evidence` events).
    public var evidenceDetections = 0
    /// Validators' own records of signing two values for one height/round/step (`signed` events).
    public var doubleSigns: [DoubleSign] = []
    /// Commit certificates for two different blocks at one height (the liars under 1/3 of the stake).
    public var forks: [Fork] = []
    /// Why forks could not be checked (nil: they were).
    public var forksUnchecked: String?
    /// Consensus signatures recorded by all validators.
    public var signaturesRecorded = 0
    /// SIGKILLs and restarts fired by kill storms (`kills.jsonl`).
    public var kills: [KillRecord] = []

    public struct EvidenceEntry: Sendable, Equatable, Hashable, Codable {
        public var offender: String
        public var vote: String
        public var height: UInt64
        public var round: UInt64
        /// The block that recorded it, and the node whose evidence transaction it was.
        public var block: UInt64
        public var reporter: String
    }

    public var totalStake: UInt64 { nodes.reduce(0) { $0 + $1.stake } }
    /// Each node's stake, from its last `start` event.
    public var stakeByNode: [String: UInt64] {
        Dictionary(nodes.map { ($0.name, $0.stake) }, uniquingKeysWith: { first, _ in first })
    }

    public struct HeightTime: Sendable, Equatable {
        public var height: UInt64
        public var timeMs: UInt64
        public var round: UInt64
        public var txs: Int
        /// Validator indexes whose precommit is in the commit certificate (as first recorded).
        public var signers: [Int] = []
        /// The execution rules version the first committer applied.
        public var rules: UInt64 = 1
        /// The block's hash (hex), as first committed.
        public var hash: String = ""
    }

    public struct SeriesPoint: Sendable, Equatable {
        public var timeMs: UInt64
        public var height: UInt64
    }

    public struct TxLatency: Sendable, Equatable {
        public var submitMs: UInt64
        public var latencyMs: UInt64
    }

    public var agreement: Bool { conflicts.isEmpty }
    public var noCommittedBlockLost: Bool { nodes.allSatisfy { $0.lostOnRestart.isEmpty } }
    public var noDoubleSign: Bool { doubleSigns.isEmpty }
    public var finalizedHeight: UInt64 { nodes.map(\.height).max() ?? 0 }

    struct Commit {
        var node: String
        var height: UInt64
        var hash: String
        var timeMs: UInt64
        var txs: Int
        var txIds: [String]
        var round: UInt64
        var source: String
        var signers: [Int]
        var stateRoot: String
        var rules: UInt64
    }

    /// A height was final no later than any height above it. Faultline's nodes record heights in order;
    /// an external system's progress is sampled member by member, so a lower revision can be first seen
    /// (on a lagging member) after a higher one: it takes the higher one's time.
    static func monotone(_ times: [HeightTime]) -> [HeightTime] {
        var out = times
        var earliest = UInt64.max
        for index in out.indices.reversed() {
            earliest = min(earliest, out[index].timeMs)
            out[index].timeMs = earliest
        }
        return out
    }

    /// `nodeDirs`: name → folder holding `events.jsonl`. `submissionsPath`: the load generator's log.
    public static func analyze(nodeDirs: [(String, String)], submissionsPath: String?,
                               rollupRecordsDir: String? = nil, killsPath: String? = nil) -> RunAnalysis {
        var commits: [Commit] = []
        var signatures = SignatureLedger()
        var reexecutions: [RootRecord] = []
        var evidence = Set<EvidenceEntry>()
        var evidenceDetections = 0
        var nodes: [NodeSummary] = []
        var unreadable = 0
        for (name, dir) in nodeDirs {
            var summary = NodeSummary(name: name, height: 0, commits: 0, syncedCommits: 0, starts: 0, maxRound: 0,
                                      lostOnRestart: [], drops: [:])
            var badFields = 0
            forEachJSONLine(dir + "/events.jsonl", unreadable: &unreadable) { object in
                switch object["event"] as? String {
                case "commit":
                    guard let height = uint(object["height"]), let hash = object["hash"] as? String,
                          let time = uint(object["t"]) else {
                        badFields += 1
                        return
                    }
                    let commit = Commit(node: name, height: height, hash: hash, timeMs: time,
                                        txs: Int(uint(object["txs"]) ?? 0), txIds: object["txIds"] as? [String] ?? [],
                                        round: uint(object["round"]) ?? 0, source: object["source"] as? String ?? "",
                                        signers: (object["signers"] as? [Any])?.compactMap { uint($0).map(Int.init) } ?? [],
                                        stateRoot: object["stateRoot"] as? String ?? "",
                                        rules: uint(object["rules"]) ?? 1)
                    commits.append(commit)
                    summary.height = max(summary.height, height)
                    summary.commits += 1
                    if commit.source == "sync" { summary.syncedCommits += 1 }
                    summary.maxRound = max(summary.maxRound, commit.round)
                case "start":
                    summary.starts += 1
                    summary.stopped = nil
                    summary.stoppedAtMs = nil
                    summary.stoppedHeight = nil
                    summary.stake = uint(object["stake"]) ?? summary.stake
                    summary.rulesVersionMax = uint(object["rulesVersionMax"]) ?? 1
                    summary.rulesVersionMin = uint(object["rulesVersionMin"]) ?? 1
                    summary.forkId = uint(object["forkId"]) ?? 0
                    summary.consensusProtocol = object["consensus"] as? String ?? summary.consensusProtocol
                    summary.startRecords.append(StartRecord(timeMs: uint(object["t"]) ?? 0,
                                                            discardedTailBytes: uint(object["discardedTailBytes"]) ?? 0))
                    let storedHeight = uint(object["height"]) ?? 0
                    if storedHeight < summary.height {
                        summary.lostOnRestart.append("restart \(summary.starts - 1) came back at height "
                                                     + "\(storedHeight) after committing \(summary.height)")
                    }
                case "state_mismatch", "upgrade_needed", "too_early":
                    summary.stopped = object["reason"] as? String ?? "stopped"
                    summary.stoppedAtMs = uint(object["t"])
                    summary.stoppedHeight = uint(object["height"])
                case "reexecuted":
                    if let height = uint(object["height"]), let time = uint(object["t"]),
                       let root = object["stateRoot"] as? String {
                        reexecutions.append(RootRecord(node: name, height: height, timeMs: time, stateRoot: root))
                    }
                case "refused_start":
                    summary.refusedStarts.append(object["reason"] as? String ?? "refused to start")
                case "handshake_refused":
                    summary.handshakeRefusals.append(HandshakeRefusal(
                        timeMs: uint(object["t"]) ?? 0, peer: object["peer"] as? String ?? "?",
                        reason: object["reason"] as? String ?? ""))
                case "round":
                    if let time = uint(object["t"]), let height = uint(object["height"]), let round = uint(object["round"]) {
                        summary.rounds.append(RoundPoint(timeMs: time, height: height, round: round))
                    }
                case "signed":
                    if !signatures.record(node: name, object) { badFields += 1 }
                case "evidence":
                    evidenceDetections += 1
                case "evidence_committed":
                    evidence.insert(EvidenceEntry(
                        offender: object["offender"] as? String ?? "?", vote: object["vote"] as? String ?? "?",
                        height: uint(object["height"]) ?? 0, round: uint(object["round"]) ?? 0,
                        block: uint(object["block"]) ?? 0, reporter: object["reporter"] as? String ?? "?"))
                case "drops":
                    if let total = object["total"] as? [String: Any] {
                        for (reason, count) in total { summary.drops[reason] = uint(count) ?? 0 }
                    }
                case "traffic":
                    if let received = object["received"] as? [String: Any] {
                        for (kind, count) in received { summary.traffic.note(kind, uint(count) ?? 0) }
                    }
                    summary.traffic.note(Traffic.signaturesKey, uint(object["signaturesChecked"]) ?? 0)
                case "sample":
                    summary.rssMaxKiB = max(summary.rssMaxKiB, uint(object["rssKiB"]) ?? 0)
                    if let time = uint(object["t"]), let late = uint(object["timerLateP99Ms"]) {
                        summary.timerLateP99.append(SeriesPoint(timeMs: time, height: late))
                    }
                    if let time = uint(object["t"]), (uint(object["votes"]) ?? 0) > 0 {
                        summary.voteDelayP99.append(SeriesPoint(timeMs: time, height: uint(object["voteDelayP99Ms"]) ?? 0))
                    }
                    for (key, lane) in [("kernelDrops", "legacy"), ("kernel_userDrops", "user"), ("kernel_voteDrops", "vote")] {
                        if let value = uint(object[key]) { summary.kernelDrops[lane] = value }
                    }
                default:
                    break
                }
            }
            unreadable += badFields
            nodes.append(summary)
        }
        // Safety: one hash per height across all nodes.
        var byHeight: [UInt64: [String: [String]]] = [:]
        for commit in commits { byHeight[commit.height, default: [:]][commit.hash, default: []].append(commit.node) }
        let conflicts = byHeight.filter { $0.value.count > 1 }.map { Conflict(height: $0.key, sides: $0.value) }
            .sorted { $0.height < $1.height }
        // Liveness: the first time any node committed each height.
        var firstSeen: [UInt64: Commit] = [:]
        for commit in commits where firstSeen[commit.height].map({ commit.timeMs < $0.timeMs }) ?? true {
            firstSeen[commit.height] = commit
        }
        let times = firstSeen.keys.sorted().map { firstSeen[$0]!.timeMs }
        var maxGap: UInt64 = 0
        for (a, b) in zip(times, times.dropFirst()) where b > a { maxGap = max(maxGap, b - a) }
        let meanInterval = times.count > 1 ? Double(times.last! - times.first!) / Double(times.count - 1) : 0
        let txsCommitted = firstSeen.values.reduce(0) { $0 + $1.txs }
        // Latency: submission → first commit of that transaction on any node.
        var committedAt: [String: UInt64] = [:]
        for commit in firstSeen.values { for id in commit.txIds { committedAt[id] = commit.timeMs } }
        var submitted = 0
        var txLatencies: [TxLatency] = []
        var latency: Latency?
        var firstSubmit: UInt64?
        var lastCommitOfLoad: UInt64?
        if let submissionsPath {
            var histogram = Histogram<UInt64>(highestTrackableValue: 3_600_000, numberOfSignificantValueDigits: .three)
            var matched = 0
            forEachJSONLine(submissionsPath, unreadable: &unreadable) { object in
                guard let time = uint(object["t"]), let id = object["tx"] as? String else { return }
                submitted += 1
                firstSubmit = min(firstSubmit ?? time, time)
                if let done = committedAt[id] {
                    matched += 1
                    lastCommitOfLoad = max(lastCommitOfLoad ?? done, done)
                    let latency = done >= time ? done - time : 0
                    _ = histogram.record(latency)
                    txLatencies.append(TxLatency(submitMs: time, latencyMs: latency))
                }
            }
            if matched > 0 {
                latency = Latency(count: matched, p50Ms: Double(histogram.valueAtPercentile(50)),
                                  p99Ms: Double(histogram.valueAtPercentile(99)), maxMs: Double(histogram.max))
            }
        }
        var throughput = 0.0
        if let start = firstSubmit, let end = lastCommitOfLoad, end > start, let latency {
            throughput = Double(latency.count) / (Double(end - start) / 1000)
        } else if times.count > 1 {
            throughput = Double(txsCommitted) / max(Double(times.last! - times.first!) / 1000, 0.001)
        }
        var result = RunAnalysis(
            nodes: nodes, heightsChecked: byHeight.count, conflicts: conflicts, txsCommitted: txsCommitted,
            firstCommitMs: times.first, lastCommitMs: times.last, maxFinalityGapMs: maxGap,
            meanBlockIntervalMs: meanInterval, submitted: submitted, latency: latency,
            throughputTxPerSecond: throughput, unreadableLines: unreadable,
            heightTimes: monotone(firstSeen.keys.sorted().map {
                let commit = firstSeen[$0]!
                return HeightTime(height: $0, timeMs: commit.timeMs, round: commit.round, txs: commit.txs,
                                  signers: commit.signers, rules: commit.rules, hash: commit.hash)
            }),
            nodeSeries: Dictionary(grouping: commits, by: \.node).mapValues { list in
                list.sorted { $0.timeMs < $1.timeMs }.map { SeriesPoint(timeMs: $0.timeMs, height: $0.height) }
            },
            txLatencies: txLatencies)
        let records = commits.map { RootRecord(node: $0.node, height: $0.height, timeMs: $0.timeMs, stateRoot: $0.stateRoot) }
            + reexecutions
        result.divergences = divergences(records, stakes: result.stakeByNode)
        result.evidence = evidence.sorted { ($0.height, $0.round, $0.vote, $0.offender) < ($1.height, $1.round, $1.vote, $1.offender) }
        result.evidenceDetections = evidenceDetections
        (result.doubleSigns, result.forks, result.forksUnchecked) = signatures.audit(stakes: result.stakeByNode)
        result.signaturesRecorded = signatures.count
        if let killsPath { result.kills = kills(path: killsPath, unreadable: &result.unreadableLines) }
        // The L2 load generator writes its submissions next to the L1 one's.
        let l2Submissions = submissionsPath.map { ($0 as NSString).deletingLastPathComponent + "/l2-submissions.jsonl" }
        let rollup = RollupAnalysis.analyze(nodeDirs: nodeDirs, recordsDir: rollupRecordsDir,
                                            loadSubmissionsPath: l2Submissions,
                                            l1CommitMs: firstSeen.mapValues(\.timeMs))
        result.rollup = rollup.isEmpty ? nil : rollup
        if let submissionsPath {
            result.rpc = RPCAnalysis.load(loadDir: (submissionsPath as NSString).deletingLastPathComponent,
                                          nodeDirs: nodeDirs, heads: result.heightTimes.map { ($0.timeMs, $0.height) },
                                          blockHashes: Dictionary(result.heightTimes.map { ($0.height, $0.hash) },
                                                                  uniquingKeysWith: { first, _ in first }))
        }
        return result
    }

    /// A node's state root after a height: recorded at commit, or when a restart re-executed the block.
    struct RootRecord {
        var node: String
        var height: UInt64
        var timeMs: UInt64
        var stateRoot: String
    }

    /// Heights where one block was executed into several state roots, with the nodes (and their
    /// stake) on each side: as they stood just after the second root appeared, and at the end.
    static func divergences(_ records: [RootRecord], stakes: [String: UInt64]) -> [Divergence] {
        var byHeight: [UInt64: [RootRecord]] = [:]
        for record in records where !record.stateRoot.isEmpty { byHeight[record.height, default: []].append(record) }
        var out: [Divergence] = []
        for height in byHeight.keys.sorted() {
            let list = byHeight[height]!.sorted { $0.timeMs < $1.timeMs }
            guard let first = list.first, let second = list.first(where: { $0.stateRoot != first.stateRoot }) else {
                continue
            }
            let records = list.map { Divergence.Record(node: $0.node, timeMs: $0.timeMs, stateRoot: $0.stateRoot) }
            out.append(Divergence(height: height, timeMs: second.timeMs,
                                  sides: sides(records, upTo: second.timeMs + settleMs, stakes: stakes),
                                  sidesAtEnd: sides(records, upTo: .max, stakes: stakes), records: records))
            if out.count >= divergencesMax { break }
        }
        return out
    }

    /// Each node's latest root for the divergence's height at `limit`, grouped, largest stake first.
    static func sides(_ records: [Divergence.Record], upTo limit: UInt64, stakes: [String: UInt64]) -> [Divergence.Side] {
        var latest: [String: Divergence.Record] = [:]
        for record in records where record.timeMs <= limit { latest[record.node] = record }
        let grouped = Dictionary(grouping: latest.values, by: \.stateRoot)
        return grouped.map { root, members in
            let nodes = members.map(\.node).sorted()
            return Divergence.Side(stateRoot: root, nodes: nodes, stake: nodes.reduce(0) { $0 + (stakes[$1] ?? 0) })
        }.sorted { ($0.stake, $1.nodes.first ?? "") > ($1.stake, $0.nodes.first ?? "") }
    }

    /// The sides of a divergence as they stood at a moment (e.g. when a halt was declared).
    public func sides(of divergence: Divergence, atMs time: UInt64) -> [Divergence.Side] {
        RunAnalysis.sides(divergence.records, upTo: time, stakes: stakeByNode)
    }

    /// Records of one block by other nodes this soon after the second root still count as "at the time".
    static let settleMs: UInt64 = 500

    /// "state roots diverged at height H: 3f2a1b… on v1, v2 (stake 20, 50%); …", and how it stood at
    /// the end when restarts re-executed the block since.
    public func describe(_ divergence: Divergence) -> String {
        var out = "state roots diverged at height \(divergence.height): " + describe(divergence.sides)
        if divergence.sidesAtEnd != divergence.sides { out += " (at the end: " + describe(divergence.sidesAtEnd) + ")" }
        return out
    }

    /// "3f2a1b… on v1, v2 (stake 20, 50%); 9c0d… on v3 (stake 10, 25%)".
    public func describe(_ sides: [Divergence.Side]) -> String {
        let total = Double(max(totalStake, 1))
        return sides.map { side in
            "\(side.stateRoot.prefix(12))… on \(side.nodes.joined(separator: ", ")) "
                + "(stake \(side.stake), \(Int((Double(side.stake) / total * 100).rounded()))%)"
        }.joined(separator: "; ")
    }

    static func uint(_ value: Any?) -> UInt64? {
        if let number = value as? NSNumber { return number.uint64Value }
        return nil
    }

    static func forEachJSONLine(_ path: String, unreadable: inout Int, _ body: ([String: Any]) -> Void) {
        guard let data = FileManager.default.contents(atPath: path) else { return }
        for line in data.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                unreadable += 1 // a line torn by kill -9 mid-write is skipped, not fatal
                continue
            }
            body(object)
        }
    }
}

/// Cumulative counters a node writes (from zero at each start), summed over its starts.
public struct Traffic: Sendable, Equatable {
    public static let signaturesKey = "signaturesChecked"
    private var before: [String: UInt64] = [:]
    private var last: [String: UInt64] = [:]

    public init() {}

    mutating func note(_ key: String, _ value: UInt64) {
        if let previous = last[key], value < previous { before[key, default: 0] += previous }
        last[key] = value
    }

    /// Every counter's total over the node's starts.
    public var totals: [String: UInt64] { last.merging(before, uniquingKeysWith: +) }
}
