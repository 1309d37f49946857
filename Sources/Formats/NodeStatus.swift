/// What a node's `GET /status` returns (JSON): written by the node, read by the CLI.
public struct NodeStatus: Codable, Sendable {
    public var name: String
    public var role: String
    public var version: String
    public var protocolVersion: UInt16
    public var height: UInt64
    public var consensusHeight: UInt64
    public var round: UInt32
    public var step: String
    public var peers: Int
    public var peersTotal: Int
    public var mempoolTxs: Int
    public var ingressQueue: Int
    public var ingressQueueMax: Int
    public var lastCommitTimeMs: UInt64
    public var lastBlockId: String
    public var stateRoot: String
    public var txsCommitted: UInt64
    public var startedAtMs: UInt64
    /// Two different signed votes from one validator for the same height, round and step, as seen here.
    public var conflictingVotes: Int
    public var invalidProposals: Int
    /// The proposer of the current consensus height and round.
    public var proposer: String
    /// Outgoing links with an injected fault, and datagrams those faults dropped.
    public var linkFaults: Int
    public var shapedDrops: Int
    public var clockSkewMs: Int64
    /// The binary's rules range, the rules applied to the last block, and the fork id.
    public var rulesVersionMax: UInt16 = 1
    public var rulesVersionMin: UInt16 = 1
    public var rulesApplied: UInt16 = 1
    public var forkId: UInt32 = 0
    /// Why this node stopped deciding (a state root mismatch, an upgrade needed), or nil.
    public var stopped: String?
    /// Peers refused at the handshake, by name, with the reason.
    public var refusedPeers: [String: String] = [:]
    /// Dispute games open on L1 as this node's ledger has them (0 without the dispute contract).
    public var disputeGamesOpen = 0
    /// An rpc node's injected upstream fault (nil: none); a gateway's upstreams in use.
    public var rpcFault: String?
    /// The consensus protocol of the chain this node runs or follows (nil: a gateway or an external node).
    public var consensus: String?

    public init(
        name: String,
        role: String,
        version: String,
        protocolVersion: UInt16,
        height: UInt64,
        consensusHeight: UInt64,
        round: UInt32,
        step: String,
        peers: Int,
        peersTotal: Int,
        mempoolTxs: Int,
        ingressQueue: Int,
        ingressQueueMax: Int,
        lastCommitTimeMs: UInt64,
        lastBlockId: String,
        stateRoot: String,
        txsCommitted: UInt64,
        startedAtMs: UInt64,
        conflictingVotes: Int,
        invalidProposals: Int,
        proposer: String,
        linkFaults: Int,
        shapedDrops: Int,
        clockSkewMs: Int64
    ) {
        self.name = name
        self.role = role
        self.version = version
        self.protocolVersion = protocolVersion
        self.height = height
        self.consensusHeight = consensusHeight
        self.round = round
        self.step = step
        self.peers = peers
        self.peersTotal = peersTotal
        self.mempoolTxs = mempoolTxs
        self.ingressQueue = ingressQueue
        self.ingressQueueMax = ingressQueueMax
        self.lastCommitTimeMs = lastCommitTimeMs
        self.lastBlockId = lastBlockId
        self.stateRoot = stateRoot
        self.txsCommitted = txsCommitted
        self.startedAtMs = startedAtMs
        self.conflictingVotes = conflictingVotes
        self.invalidProposals = invalidProposals
        self.proposer = proposer
        self.linkFaults = linkFaults
        self.shapedDrops = shapedDrops
        self.clockSkewMs = clockSkewMs
    }

    /// One line for a cluster's status: the consensus protocol its nodes report, or, when they differ (a
    /// misconfiguration the handshake refuses), which nodes run which. Nil when no node reports one.
    public static func consensusLine(_ nodes: [(name: String, status: NodeStatus?)]) -> String? {
        var byProtocol: [String: [String]] = [:]
        for (name, status) in nodes { if let consensus = status?.consensus { byProtocol[consensus, default: []].append(name) } }
        guard !byProtocol.isEmpty else { return nil }
        if byProtocol.count == 1 { return "consensus: \(byProtocol.keys.first!)" }
        let parts = byProtocol.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value.joined(separator: ", ")))" }
        return "consensus protocols differ: " + parts.joined(separator: ", ")
    }
}
