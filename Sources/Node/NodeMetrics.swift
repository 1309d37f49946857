import Metrics
import Transport
import Wire

/// The node's Prometheus metrics, created once (label sets are fixed enumerations).
struct NodeMetrics: Sendable {
    let height = Gauge(label: "faultline_height")
    let round = Gauge(label: "faultline_round")
    let blocksCommitted = Counter(label: "faultline_blocks_committed_total")
    let txsCommitted = Counter(label: "faultline_txs_committed_total")
    let roundsStarted = Counter(label: "faultline_rounds_started_total")
    let syncBlocks = Counter(label: "faultline_sync_blocks_total")
    let mempoolTxs = Gauge(label: "faultline_mempool_txs")
    let ingressQueueDropped = Counter(label: "faultline_ingress_queue_dropped_total")
    let controlUnauthorized = Counter(label: "faultline_control_unauthorized_total")
    let invalidProposals = Counter(label: "faultline_invalid_proposals_total")
    /// Transactions whose signature was checked when a block carried them (they had not been verified
    /// into this node's mempool first): each one is a second verification of gossip that came late.
    let blockTxChecks = Counter(label: "faultline_block_tx_checks_total")
    /// Hellos from peers refused at the handshake, and peers currently refused.
    let handshakeRefused = Counter(label: "faultline_handshake_refused_total")
    let peersRefused = Gauge(label: "faultline_peers_refused")
    /// Messages from a peer dropped because no handshake with it has succeeded.
    let noHandshakeDropped = Counter(label: "faultline_no_handshake_dropped_total")
    /// 1 once this node stopped deciding (state root mismatch, upgrade needed).
    let stopped = Gauge(label: "faultline_stopped")
    let stateMismatches = Counter(label: "faultline_state_mismatch_total")
    /// JSON-RPC bodies served by an rpc node, those answered with an injected fault, and unusable ones.
    let rpcRequests = Counter(label: "faultline_rpc_requests_total")
    let rpcFaulted = Counter(label: "faultline_rpc_faulted_total")
    let rpcMalformed = Counter(label: "faultline_rpc_malformed_total")
    let received: [MessageKind: Counter]
    let rejected: [Ingress.Reject: Counter]

    init() {
        var received: [MessageKind: Counter] = [:]
        for kind in MessageKind.allCases {
            received[kind] = Counter(label: "faultline_messages_received_total", dimensions: [("kind", kind.description)])
        }
        self.received = received
        var rejected: [Ingress.Reject: Counter] = [:]
        for reason in Ingress.Reject.allCases {
            rejected[reason] = Counter(label: "faultline_ingress_rejected_total", dimensions: [("reason", reason.rawValue)])
        }
        self.rejected = rejected
    }
}
