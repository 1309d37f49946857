import Basics
import Formats
import Prometheus
import Synchronization
import Transport
import Wire

/// The node's Prometheus metrics, each with its HELP text, created once in the node's registry. Label
/// values come from fixed enumerations (message kinds, reject reasons, lanes and the drop reasons the
/// edges name), so a peer's bytes cannot grow the label sets.
struct NodeMetrics: Sendable {
    let height: Gauge
    let consensusHeight: Gauge
    let round: Gauge
    let lastCommitTimestamp: Gauge
    let peersConnected: Gauge
    let blocksCommitted: Counter
    let txsCommitted: Counter
    let roundsStarted: Counter
    let syncBlocks: Counter
    let mempoolTxs: Gauge
    let ingressQueue: Gauge
    let ingressQueueDropped: Counter
    let controlUnauthorized: Counter
    let invalidProposals: Counter
    /// Transactions whose signature was checked when a block carried them (they had not been verified
    /// into this node's mempool first): each one is a second verification of gossip that came late.
    let blockTxChecks: Counter
    /// Signatures checked at the receiving edges (every message's, before it is queued): with the
    /// block checks above, what this node spent on verification.
    let edgeSignatureChecks: Counter
    /// Hellos from peers refused at the handshake, and peers currently refused.
    let handshakeRefused: Counter
    let peersRefused: Gauge
    /// Messages from a peer dropped because no handshake with it has succeeded.
    let noHandshakeDropped: Counter
    /// 1 once this node stopped deciding (state root mismatch, upgrade needed).
    let stopped: Gauge
    let stateMismatches: Counter
    /// JSON-RPC bodies served by an rpc node, those answered with an injected fault, and unusable ones.
    let rpcRequests: Counter
    let rpcFaulted: Counter
    let rpcMalformed: Counter
    let received: [MessageKind: Counter]
    let rejected: [Ingress.Reject: Counter]
    /// Prevotes and precommits dropped before consensus saw them: the queue was full, or load
    /// shedding dropped them unchecked.
    let votesDropped: [VoteDrop: Counter]
    /// The sequencer's and the replicas' L2 view, from their once-a-second sample.
    let l2QueueTxs: Gauge
    let l2BacklogBytes: Gauge
    let l2UnsafeHeight: Gauge
    let l2SafeHeight: Gauge
    let disputeGamesOpen: Gauge
    let voteDelayP99: Gauge
    let registry: PrometheusCollectorRegistry
    private let dropsSeen = DropsSeen()
    private let kernelDropsSeen = DropsSeen()

    enum VoteDrop: String, CaseIterable, Sendable {
        case queueFull = "queue_full", shed
    }

    init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), role: String = "validator",
         version: String = FaultlineVersion.string, rulesVersion: UInt16 = 1, consensus: String = "tendermint") {
        self.registry = registry
        func gauge(_ name: String, _ help: String) -> Gauge { registry.gauge(name, help: help) }
        func counter(_ name: String, _ help: String) -> Counter { registry.counter(name, help: help) }
        NodeMetrics.buildInfo(registry, role: role, version: version, rulesVersion: rulesVersion, consensus: consensus)
        height = gauge("faultline_height", "Height of the last block this node finalized (committed).")
        consensusHeight = gauge("faultline_consensus_height", "Height consensus is deciding now.")
        round = gauge("faultline_round", "Consensus round at the current height (0 while rounds succeed).")
        lastCommitTimestamp = gauge("faultline_last_commit_timestamp_seconds",
                                    "Unix time at which this node last finalized a block (0: none yet).")
        peersConnected = gauge("faultline_peers_connected", "Peers this node has heard from recently.")
        blocksCommitted = counter("faultline_blocks_committed_total", "Blocks this node finalized.")
        txsCommitted = counter("faultline_txs_committed_total", "Transactions in the blocks this node finalized.")
        roundsStarted = counter("faultline_rounds_started_total", "Rounds after round 0 started (round changes).")
        syncBlocks = counter("faultline_sync_blocks_total", "Blocks this node took by sync instead of consensus.")
        mempoolTxs = gauge("faultline_mempool_txs", "Transactions waiting in the mempool.")
        ingressQueue = gauge("faultline_ingress_queue_messages", "Verified messages waiting for the main loop.")
        ingressQueueDropped = counter("faultline_ingress_queue_dropped_total",
                                      "Verified messages dropped because the ingress queue was full.")
        controlUnauthorized = counter("faultline_control_unauthorized_total",
                                      "Control requests refused for a missing or wrong bearer token.")
        invalidProposals = counter("faultline_invalid_proposals_total", "Proposals this node found invalid.")
        blockTxChecks = counter("faultline_block_tx_checks_total",
                                "Transaction signatures checked when a block carried them (not verified on arrival).")
        edgeSignatureChecks = counter("faultline_edge_signature_checks_total",
                                      "Signatures checked at the receiving edge, before a message is queued.")
        handshakeRefused = counter("faultline_handshake_refused_total",
                                   "Hellos refused at the handshake (another version range or fork id).")
        peersRefused = gauge("faultline_peers_refused", "Peers currently refused at the handshake.")
        noHandshakeDropped = counter("faultline_no_handshake_dropped_total",
                                     "Messages dropped from peers without a successful handshake.")
        stopped = gauge("faultline_stopped", "1 once this node stopped deciding (state root mismatch, upgrade needed).")
        stateMismatches = counter("faultline_state_mismatch_total",
                                  "Blocks whose state root differed from this node's execution.")
        rpcRequests = counter("faultline_rpc_requests_total", "JSON-RPC requests served.")
        rpcFaulted = counter("faultline_rpc_faulted_total", "JSON-RPC requests answered with an injected fault.")
        rpcMalformed = counter("faultline_rpc_malformed_total", "JSON-RPC request bodies that could not be used.")
        var received: [MessageKind: Counter] = [:]
        for kind in MessageKind.allCases {
            received[kind] = registry.counter("faultline_messages_received_total",
                                                  labels: [("kind", kind.description)],
                                                  help: "Verified messages received, by kind.")
        }
        self.received = received
        var rejected: [Ingress.Reject: Counter] = [:]
        for reason in Ingress.Reject.allCases {
            rejected[reason] = registry.counter("faultline_ingress_rejected_total",
                                                    labels: [("reason", reason.rawValue)],
                                                    help: "Datagrams rejected at the ingress, by reason.")
        }
        self.rejected = rejected
        var votesDropped: [VoteDrop: Counter] = [:]
        for reason in VoteDrop.allCases {
            votesDropped[reason] = registry.counter(
                "faultline_votes_dropped_total", labels: [("reason", reason.rawValue)],
                help: "Prevotes and precommits dropped before consensus saw them, by reason.")
        }
        self.votesDropped = votesDropped
        l2QueueTxs = gauge("faultline_l2_queue_txs", "L2 transactions admitted and waiting for an L2 block.")
        l2BacklogBytes = gauge("faultline_l2_backlog_bytes", "L2 block bytes not yet posted to L1 in batches.")
        l2UnsafeHeight = gauge("faultline_l2_unsafe_height", "Height of the newest L2 block (not yet on L1).")
        l2SafeHeight = gauge("faultline_l2_safe_height", "Height of the newest L2 block derived from finalized L1.")
        voteDelayP99 = gauge("faultline_vote_delay_p99_seconds",
                             "Votes of the last second: 99th percentile of their wait from the socket to consensus.")
        disputeGamesOpen = gauge("faultline_dispute_games_open", "Dispute games open on L1 as this node's ledger has them.")
    }

    /// `faultline_build_info`: a constant 1 whose labels say what runs (Prometheus's convention).
    static func buildInfo(_ registry: PrometheusCollectorRegistry, role: String, version: String, rulesVersion: UInt16?,
                          consensus: String? = nil) {
        // Not `role` and `version`: the scrape's target labels (`faultline prometheus`) have those names.
        var labels = [("faultline_version", version), ("node_role", role)]
        if let rulesVersion { labels.append(("rules_version", String(rulesVersion))) }
        if let consensus { labels.append(("consensus_protocol", consensus)) }
        registry.gauge("faultline_build_info", labels: labels,
                           help: "Always 1: Faultline's version, the node's role, its rules version and the consensus "
                               + "protocol of its chain as labels.").set(to: 1)
    }

    /// The gauges that mirror the node's status, set from it when Prometheus scrapes (the status is
    /// published at every tick and commit), and the edges' drop counts (by lane and reason) as counters.
    func refresh(_ status: NodeStatus, ingressQueue depth: Int, drops: [(String, Int)]) {
        height.set(to: Double(status.height))
        consensusHeight.set(to: Double(status.consensusHeight))
        round.set(to: Double(status.round))
        mempoolTxs.set(to: Double(status.mempoolTxs))
        stopped.set(to: status.stopped == nil ? 0 : 1)
        lastCommitTimestamp.set(to: Double(status.lastCommitTimeMs) / 1_000)
        peersConnected.set(to: Double(status.peers))
        ingressQueue.set(to: Double(depth))
        disputeGamesOpen.set(to: Double(status.disputeGamesOpen))
        for (key, delta) in dropsSeen.deltas(drops) {
            registry.counter("faultline_ingress_dropped_total", labels: [("reason", key)],
                                 help: "Datagrams an edge dropped or shed, by lane and reason.").increment(by: Int64(delta))
        }
    }

    private func kernelDropsCounter(_ carries: String) -> Counter {
        registry.counter("faultline_udp_receive_dropped_total", labels: [("carries", carries)],
                             help: "Datagrams the kernel dropped because the node's UDP socket buffer was full, "
                                 + "by what the socket carries (all, votes, transactions).")
    }

    /// The node's once-a-second sample: how long votes waited between the socket and consensus, and the
    /// kernel's drop counts of its sockets by lane ("": one socket for all, "vote", "user").
    func sample(voteDelaysMs sorted: [UInt64], kernelDrops: [(lane: String, count: UInt64)]) {
        voteDelayP99.set(to: Double(sorted.sampledPercentile(0.99)) / 1_000)
        let byCarries = kernelDrops.map { (NodeMetrics.carries(lane: $0.lane), Int($0.count)) }
        for (carries, delta) in kernelDropsSeen.deltas(byCarries) { kernelDropsCounter(carries).increment(by: Int64(delta)) }
    }

    /// Created at start (zero) for each socket, so the series exists before the first drop.
    func sockets(lanes: [String]) {
        for lane in lanes { _ = kernelDropsCounter(NodeMetrics.carries(lane: lane)) }
    }

    /// What a socket of a lane carries: everything on one socket, or with lanes votes or transactions.
    static func carries(lane: String) -> String {
        switch lane {
        case "vote": "votes"
        case "user": "transactions"
        default: "all"
        }
    }

    /// A rollup node's once-a-second sample (`l2_sample`).
    func l2Sample(_ fields: [(String, JSONValue)]) {
        for (name, value) in fields {
            guard case .uint(let number) = value else { continue }
            switch name {
            case "queueNow": l2QueueTxs.set(to: Double(number))
            case "backlogBytes": l2BacklogBytes.set(to: Double(number))
            case "l2Unsafe": l2UnsafeHeight.set(to: Double(number))
            case "l2Safe": l2SafeHeight.set(to: Double(number))
            default: break
            }
        }
    }
}

/// Cumulative counts last turned into counters, so each reading adds only what is new. The keys are fixed
/// vocabularies (the edges' drop names, the sockets' lanes, the gateway policy's counters); a bound keeps a
/// bug from growing them.
final class DropsSeen: Sendable {
    static let keysMax = 256
    private let last = Mutex<[String: Int]>([:])

    func deltas(_ counts: [(String, Int)]) -> [(String, Int)] {
        last.withLock { last in
            var out: [(String, Int)] = []
            for (key, value) in counts {
                guard last[key] != nil || last.count < DropsSeen.keysMax else { continue }
                let delta = value - last[key, default: 0]
                if delta > 0 { out.append((key, delta)) }
                last[key] = value
            }
            return out
        }
    }
}


extension PrometheusCollectorRegistry {
    /// A counter by its whole name: ours carry their unit already (`_total`), so the descriptor names none.
    func counter(_ name: String, labels: [(String, String)] = [], help: String) -> Counter {
        let descriptor = MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
        return labels.isEmpty ? makeCounter(descriptor: descriptor) : makeCounter(descriptor: descriptor, labels: labels)
    }

    /// A gauge by its whole name (with its unit, as in `faultline_vote_delay_p99_seconds`).
    func gauge(_ name: String, labels: [(String, String)] = [], help: String) -> Gauge {
        let descriptor = MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
        return labels.isEmpty ? makeGauge(descriptor: descriptor) : makeGauge(descriptor: descriptor, labels: labels)
    }
}
