import Formats
import Foundation
import Wire

/// Everything a run produced, as `report.json` (the schema other tools read) and the source of
/// `junit.xml` and `report.html`.
public struct Report: Codable, Sendable {
    public struct Liveness: Codable, Sendable {
        public var finalizedHeight: UInt64
        public var maxFinalityGapSeconds: Double
        public var meanBlockIntervalMs: Double
        public var halts: [HaltEntry]
        public var commitLatencyMs: LatencyEntry?
        public var throughputTxPerSecond: Double
        public var roundsMax: UInt64
        /// Mean share of validators whose precommit is in a commit certificate.
        public var meanSignersShare: Double
        /// Heights until a certificate carries each validator's precommit, over the whole run.
        public var voteInclusionHeightsP50: UInt64?
        public var voteInclusionHeightsP99: UInt64?
        public var transactionsSubmitted: Int
        public var transactionsFinalized: Int
        /// Consensus messages every node received, and consensus signatures every node checked, per finalized
        /// height (all nodes together; nil: the nodes wrote no `traffic` events).
        public var messagesPerBlock: Double?
        public var signaturesPerBlock: Double?
        /// The messages by kind, per finalized height.
        public var messagesPerBlockByKind: [String: Double]?
        /// Rounds (views) begun after a height's first, counted once across nodes: round or view changes.
        public var roundChanges: Int?
    }

    public struct HaltEntry: Codable, Sendable {
        /// Seconds since the start of the run.
        public var start: Double
        public var end: Double
        public var seconds: Double
        public var ended: Bool
        public var cause: String
        public var recoverySeconds: Double?
    }

    public struct LatencyEntry: Codable, Sendable {
        public var p50: Double
        public var p99: Double
        public var max: Double
        public var count: Int
    }

    public struct Safety: Codable, Sendable {
        public var agreement: Bool
        public var heightsChecked: Int
        public var conflicts: [ConflictEntry]
        public var noCommittedBlockLost: Bool
        /// Heights where one block was executed into different state roots, with the sides.
        public var stateRootDivergences: [DivergenceEntry]
        /// Equivocations committed as evidence: offender, vote type, height, round, block, reporter.
        public var evidence: [RunAnalysis.EvidenceEntry]
        public var evidenceDetections: Int
        /// Validators' own signature logs: how many consensus signatures, and any two values for one
        /// height/round/step.
        public var signaturesRecorded: Int
        public var doubleSigns: [RunAnalysis.DoubleSign]
        /// Commit certificates for two different blocks at one height (nil in reports written before forks were
        /// checked).
        public var forks: [RunAnalysis.Fork]?
        /// Kill storms: SIGKILLs, restarts, torn store tails written and cut off (nil without a storm).
        public var killStorm: KillStormEntry?
    }

    public struct KillStormEntry: Codable, Sendable {
        public var kills: Int
        public var restarts: Int
        public var tornTailsWritten: Int
        public var tornTailsCut: Int
        public var tornTailsMissed: Int
        /// SIGKILLs by node.
        public var killsByNode: [String: Int]
    }

    public struct DivergenceEntry: Codable, Sendable {
        public var height: UInt64
        /// Seconds since the start of the run when the second root appeared.
        public var at: Double
        public var sides: [SideEntry]
        /// Each node's last root for the height (restarts on another binary re-execute it).
        public var sidesAtEnd: [SideEntry]
        /// One line: the height, the roots, the nodes and stake on each side.
        public var summary: String

        public struct SideEntry: Codable, Sendable {
            public var stateRoot: String
            public var nodes: [String]
            public var stake: UInt64
            public var stakeShare: Double
        }
    }

    public struct ConflictEntry: Codable, Sendable {
        public var height: UInt64
        public var sides: [String: [String]]
    }

    public struct FaultEntry: Codable, Sendable {
        public var id: String
        public var action: String
        public var description: String
        public var nodes: [String]
        public var start: Double
        public var end: Double?
        /// Which layer made a link fault: "node" (the nodes' UDP layer) or "kernel" (nftables/tc).
        public var layer: String?
    }

    public struct NodeEntry: Codable, Sendable {
        public var name: String
        public var height: UInt64
        public var stake: UInt64
        /// The binary's rules range and fork id at its last start, e.g. "v1...v2, fork 0".
        public var binary: String
        /// Why it stopped deciding (a state root mismatch, an upgrade needed), if it did, and when
        /// (seconds since the start of the run).
        public var stopped: String?
        public var stoppedAt: Double?
        public var refusedStarts: [String]
        public var restarts: Int
        public var syncedBlocks: Int
        public var drops: [String: UInt64]
        public var voteLaneDrops: UInt64
        public var userLaneDrops: UInt64
        public var kernelDrops: [String: UInt64]
        public var rssMaxMiB: Double
        /// The worst per-second p99 of vote queueing delay (arrival at the reader → consensus).
        public var voteDelayP99MaxMs: UInt64
        /// [seconds since start, height] after each commit.
        public var series: [[Double]]
        /// [seconds since start, vote delay p99 ms], one a second.
        public var voteDelaySeries: [[Double]]
    }

    /// Verification capacity measured at the start of the run, and what each spam step achieved.
    public struct LoadEntry: Codable, Sendable {
        /// Signature checks alone, one core.
        public var verificationsPerCorePerSecond: Double
        /// Datagrams sent over loopback, received, decoded and verified, one core: what the bound uses.
        public var ingressPerCorePerSecond: Double
        public var cores: Int
        /// The share of a core the capacity probe got (CPU time ÷ wall time): what the bound scales by.
        public var cpuShare: Double?
        /// Cores each validator has to itself (nodes on other machines); nil when they share this one.
        public var coresPerValidator: Double?
        public var perValidatorBound: Double
        public var spam: [SpamEntry]

        public init(verificationsPerCorePerSecond: Double, ingressPerCorePerSecond: Double, cores: Int,
                    cpuShare: Double? = nil, coresPerValidator: Double? = nil, perValidatorBound: Double,
                    spam: [SpamEntry]) {
            self.verificationsPerCorePerSecond = verificationsPerCorePerSecond
            self.ingressPerCorePerSecond = ingressPerCorePerSecond
            self.cores = cores
            self.cpuShare = cpuShare
            self.coresPerValidator = coresPerValidator
            self.perValidatorBound = perValidatorBound
            self.spam = spam
        }

        /// How the bound per validator follows from what was measured (the terminal and the page say it).
        public var boundFormula: String {
            let measured = String(format: "%.0f datagrams/s per core sent, received and verified (signature checks alone: "
                                  + "%.0f/s)", ingressPerCorePerSecond, verificationsPerCorePerSecond)
            if let coresPerValidator {
                return measured + String(format: " × %.2f cores each validator has to itself (its pod's CPU limit) = "
                                         + "%.0f per validator", coresPerValidator, perValidatorBound)
            }
            return measured + String(format: " × %d cores × %.2f of a core free while it was measured ÷ validators = "
                                     + "%.0f per validator", cores, cpuShare ?? 1, perValidatorBound)
        }
    }

    public struct SpamEntry: Codable, Sendable {
        public var id: String
        public var spec: String
        public var targetPerValidator: Int
        public var achievedPerValidator: Double
        public var sent: Int
        public var seconds: Double

        public init(id: String, spec: String, targetPerValidator: Int, achievedPerValidator: Double, sent: Int,
                    seconds: Double) {
            self.id = id
            self.spec = spec
            self.targetPerValidator = targetPerValidator
            self.achievedPerValidator = achievedPerValidator
            self.sent = sent
            self.seconds = seconds
        }
    }

    /// The host's load during the run: thresholds, how long it was overloaded, and a series per second.
    public struct HostEntry: Codable, Sendable {
        public var thresholds: HostHealth.Thresholds
        /// Seconds of the run in which the host's CPU pressure or a node's timers crossed a threshold.
        public var overloadedSeconds: Double
        public var cpuPressurePeakPercent: Double?
        public var timerLateP99MaxMs: UInt64
        /// [seconds since start, CPU pressure % (−1: not measured), worst node timer lateness p99 ms].
        public var series: [[Double]]
        /// The stretches judged overloaded, [from, to] in seconds since start (what inconclusive verdicts
        /// and the fidelity check read).
        public var overloaded: [[Double]]?
    }

    public var scenario: String
    public var seed: UInt64
    /// Where the nodes ran: "loopback", or "netns (…)" with the subnet; nil in reports from before.
    public var network: String?
    public var load: LoadEntry?
    /// passed: every expectation held; failed: one did not; inconclusive: none failed, but a timing
    /// expectation missed its bound in a window where the host was overloaded (see `expectations[].inconclusive`).
    public var verdict: Verdict
    /// True only when every expectation held.
    public var passed: Bool
    public var inconclusiveCount: Int
    public var host: HostEntry?
    public var startedAtMs: UInt64
    public var durationSeconds: Double
    public var expectations: [ExpectationResult]
    public var liveness: Liveness
    /// The consensus protocol the validators ran (`[cluster] protocol`, `--protocol`).
    public var consensusProtocol: String?
    public var safety: Safety
    public var faults: [FaultEntry]
    public var nodes: [NodeEntry]
    /// Per second of the run: [second, p50 ms, p99 ms, count] of submit→finalized latency.
    public var latencyBySecond: [[Double]]
    /// The L2 side, when the run had a sequencer.
    public var rollup: RollupEntry?
    /// The fraud-proof games, when the rollup's genesis has the dispute contract.
    public var disputes: DisputeEntry?
    /// The JSON-RPC clients, when the run had an RPC load.
    public var rpc: RPCEntry?
    /// The client workload of an external system (etcd, …).
    public var external: ExternalEntry?

    public init(scenario: String, seed: UInt64, evaluator: Evaluator, expectations: [ExpectationSpec],
                load: LoadEntry? = nil) {
        self.load = load
        self.rollup = Report.rollupEntry(evaluator)
        self.disputes = Report.disputeEntry(evaluator)
        self.rpc = Report.rpcEntry(evaluator)
        self.external = Report.externalEntry(evaluator)
        let analysis = evaluator.analysis
        let start = evaluator.startMs
        func seconds(_ ms: UInt64) -> Double { (Double(ms) - Double(start)) / 1000 }
        let results = expectations.map(evaluator.evaluate)
        self.scenario = scenario
        self.seed = seed
        self.passed = results.allSatisfy(\.passed)
        self.verdict = results.map(\.verdict).max() ?? .passed
        self.inconclusiveCount = results.filter { $0.verdict == .inconclusive }.count
        self.host = evaluator.host.flatMap { host in
            host.isEmpty ? nil : HostEntry(
                thresholds: host.thresholds,
                overloadedSeconds: host.overloadedSeconds(in: [start...evaluator.endMs]),
                cpuPressurePeakPercent: host.host.compactMap(\.cpuSomePercent).max(),
                timerLateP99MaxMs: host.timers.map(\.lateP99Ms).max() ?? 0,
                series: host.series().filter { $0.timeMs >= start }.map {
                    [seconds($0.timeMs), $0.pressure ?? -1, Double($0.timerLateMs)]
                },
                overloaded: host.overloadedIntervals().map { [seconds($0.lowerBound), seconds($0.upperBound)] })
        }
        self.startedAtMs = start
        self.durationSeconds = seconds(evaluator.endMs)
        self.expectations = results
        let halts = evaluator.halts()
        let inclusion = evaluator.voteInclusionHeights([start...evaluator.endMs])
        self.liveness = Liveness(
            finalizedHeight: analysis.finalizedHeight,
            maxFinalityGapSeconds: Double(evaluator.maxGapMs([start...evaluator.endMs])) / 1000,
            meanBlockIntervalMs: analysis.meanBlockIntervalMs,
            halts: halts.map {
                HaltEntry(start: seconds($0.startMs), end: seconds($0.endMs), seconds: $0.seconds, ended: $0.ended,
                          cause: $0.cause, recoverySeconds: $0.recoverySeconds)
            },
            commitLatencyMs: analysis.latency.map { LatencyEntry(p50: $0.p50Ms, p99: $0.p99Ms, max: $0.maxMs, count: $0.count) },
            throughputTxPerSecond: analysis.throughputTxPerSecond,
            roundsMax: analysis.heightTimes.map(\.round).max() ?? 0,
            meanSignersShare: analysis.heightTimes.isEmpty ? 0
                : analysis.heightTimes.reduce(0.0) { $0 + Double($1.signers.count) } / Double(analysis.heightTimes.count)
                    / Double(max(analysis.nodes.count, 1)),
            voteInclusionHeightsP50: Evaluator.percentile(inclusion, 0.5),
            voteInclusionHeightsP99: Evaluator.percentile(inclusion, 0.99),
            transactionsSubmitted: analysis.submitted, transactionsFinalized: analysis.txsCommitted)
        self.consensusProtocol = analysis.nodes.compactMap(\.consensusProtocol).first
        liveness.roundChanges = Set(analysis.nodes.flatMap { $0.rounds.map { "\($0.height)/\($0.round)" } }).count
        var traffic: [String: UInt64] = [:]
        for node in analysis.nodes { traffic.merge(node.traffic.totals, uniquingKeysWith: +) }
        if !traffic.isEmpty, analysis.finalizedHeight > 0 {
            let blocks = Double(analysis.finalizedHeight)
            let signatures = traffic.removeValue(forKey: Traffic.signaturesKey) ?? 0
            liveness.messagesPerBlock = Double(traffic.values.reduce(0, +)) / blocks
            liveness.signaturesPerBlock = Double(signatures) / blocks
            liveness.messagesPerBlockByKind = traffic.mapValues { Double($0) / blocks }
        }
        let totalStake = Double(max(analysis.totalStake, 1))
        func sideEntry(_ side: RunAnalysis.Divergence.Side) -> DivergenceEntry.SideEntry {
            .init(stateRoot: side.stateRoot, nodes: side.nodes, stake: side.stake,
                  stakeShare: Double(side.stake) / totalStake)
        }
        self.safety = Safety(agreement: analysis.agreement, heightsChecked: analysis.heightsChecked,
                             conflicts: analysis.conflicts.map { ConflictEntry(height: $0.height, sides: $0.sides) },
                             noCommittedBlockLost: analysis.noCommittedBlockLost,
                             stateRootDivergences: analysis.divergences.map { divergence in
                                 DivergenceEntry(
                                    height: divergence.height, at: seconds(divergence.timeMs),
                                    sides: divergence.sides.map(sideEntry),
                                    sidesAtEnd: divergence.sidesAtEnd.map(sideEntry),
                                    summary: analysis.describe(divergence))
                             },
                             evidence: analysis.evidence,
                             evidenceDetections: analysis.evidenceDetections,
                             signaturesRecorded: analysis.signaturesRecorded, doubleSigns: analysis.doubleSigns,
                             forks: analysis.forks,
                             killStorm: analysis.kills.isEmpty ? nil : KillStormEntry(
                                kills: analysis.killCount,
                                restarts: analysis.kills.filter { $0.event == "restart" }.count,
                                tornTailsWritten: analysis.tornTailsWritten, tornTailsCut: analysis.tornTailsCut,
                                tornTailsMissed: analysis.tornTailsMissed.count,
                                killsByNode: Dictionary(grouping: analysis.kills.filter { $0.event == "kill" }, by: \.node)
                                    .mapValues(\.count)))
        self.faults = evaluator.windows.map {
            FaultEntry(id: $0.id, action: $0.action, description: $0.description, nodes: $0.nodes,
                       start: seconds($0.startMs), end: $0.endMs.map(seconds), layer: $0.layer)
        }
        self.nodes = analysis.nodes.map { node in
            NodeEntry(name: node.name, height: node.height, stake: node.stake,
                      binary: node.rulesVersionMin == node.rulesVersionMax
                        ? "v\(node.rulesVersionMax), fork \(node.forkId)"
                        : "v\(node.rulesVersionMin)...v\(node.rulesVersionMax), fork \(node.forkId)",
                      stopped: node.stopped, stoppedAt: node.stoppedAtMs.map(seconds), refusedStarts: node.refusedStarts, restarts: max(node.starts - 1, 0),
                      syncedBlocks: node.syncedCommits, drops: node.drops.filter { $0.value > 0 },
                      voteLaneDrops: node.drops(lane: "vote"), userLaneDrops: node.drops(lane: "user"),
                      kernelDrops: node.kernelDrops.filter { $0.value > 0 }, rssMaxMiB: Double(node.rssMaxKiB) / 1024,
                      voteDelayP99MaxMs: node.voteDelayP99.map(\.height).max() ?? 0,
                      series: (analysis.nodeSeries[node.name] ?? []).map { [seconds($0.timeMs), Double($0.height)] },
                      voteDelaySeries: node.voteDelayP99.map { [seconds($0.timeMs), Double($0.height)] })
        }
        var buckets: [Int: [UInt64]] = [:]
        for entry in analysis.txLatencies where entry.submitMs >= start {
            buckets[Int((entry.submitMs - start) / 1000), default: []].append(entry.latencyMs)
        }
        self.latencyBySecond = buckets.keys.sorted().map { second in
            let sorted = buckets[second]!.sorted()
            let p = { (q: Double) in Double(sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * q))]) }
            return [Double(second), p(0.5), p(0.99), Double(sorted.count)]
        }
    }

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    /// One test case per expectation, in the JUnit XML that CI systems read.
    /// An inconclusive expectation is a `<skipped>` test case whose message carries the host's load.
    public func junit() -> String {
        let failures = expectations.filter { $0.verdict == .failed }.count
        let skipped = expectations.filter { $0.verdict == .inconclusive }.count
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        xml += "<testsuites tests=\"\(expectations.count)\" failures=\"\(failures)\" skipped=\"\(skipped)\" "
            + "time=\"\(String(format: "%.3f", durationSeconds))\">\n"
        xml += "  <testsuite name=\"\(Self.xml(scenario))\" tests=\"\(expectations.count)\" failures=\"\(failures)\" "
            + "errors=\"0\" skipped=\"\(skipped)\" time=\"\(String(format: "%.3f", durationSeconds))\">\n"
        xml += "    <properties><property name=\"seed\" value=\"\(seed)\"/></properties>\n"
        for result in expectations {
            xml += "    <testcase classname=\"faultline.\(Self.xml(scenario))\" name=\"\(Self.xml(result.name))\" time=\"0\">"
            if result.passed {
                xml += "<system-out>\(Self.xml("observed \(result.observed); bound \(result.bound)"))</system-out>"
            } else if let evidence = result.inconclusive {
                let message = "inconclusive: \(result.metric) over \(result.window): observed \(result.observed), expected "
                    + "\(result.bound); \(evidence.summary)"
                xml += "\n      <skipped message=\"\(Self.xml(message))\"/>\n    "
            } else {
                let message = "\(result.metric) over \(result.window): observed \(result.observed), expected \(result.bound)"
                xml += "\n      <failure message=\"\(Self.xml(message))\" type=\"ExpectationFailed\">\(Self.xml(message))</failure>\n    "
            }
            xml += "</testcase>\n"
        }
        xml += "  </testsuite>\n</testsuites>\n"
        return xml
    }

    static func xml(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default:
                if scalar.value < 0x20 && scalar != "\n" && scalar != "\t" { continue }
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
