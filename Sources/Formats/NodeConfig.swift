import Consensus
import Rollup
import Sodium

/// Everything one `faultline-node` process needs, written as JSON into its folder by `faultline up`.
public struct NodeConfig: Codable, Sendable, Equatable {
    public struct PeerEntry: Codable, Sendable, Equatable {
        public var name: String
        public var publicKey: String
        public var host: String
        public var port: Int
        /// The peer's consensus-lane port (0: it takes everything on `port`).
        public var votePort: Int

        public init(name: String, publicKey: String, host: String, port: Int, votePort: Int = 0) {
            self.name = name
            self.publicKey = publicKey
            self.host = host
            self.port = port
            self.votePort = votePort
        }
    }

    public typealias Timing = ConsensusTimeouts

    public struct Limits: Codable, Sendable, Equatable {
        public var blockTxsMax: Int
        public var blockBytesMax: Int
        public var mempoolTxsMax: Int
        public var datagramPayloadBytesMax: Int
        public var ingressQueueMax: Int
        public var statusIntervalMs: UInt64
        /// Peers each consensus message is relayed to on first receipt (0: only the author broadcasts).
        public var gossipRelayFanout: Int
        /// "legacy": one port and one FIFO for everything. "lanes": consensus traffic on its own port
        /// and queue, taken first; user transactions admitted up to a share of verification capacity.
        public var ingressMode: String
        /// With lanes: the share of this node's measured verification rate user transactions may use.
        public var userVerifyShare: Double
        /// With lanes: the part of the user budget reserved for transactions forwarded by validators
        /// (staked); unstaked clients share the rest, so they are shed first when saturated.
        public var stakedShare: Double
        /// With lanes: messages per second one validator identity may send on the vote lane (0: no limit).
        public var voteSenderPerSecond: Int
        /// With lanes: keep only the latest queued vote per validator and type, taken highest stake first.
        public var coalesceVotes: Bool
        /// Votes-only mode: after this long with no finalized block, drop every user transaction
        /// before verification until a block is finalized again (0: off). Works in legacy mode too.
        public var votesOnlyAfterMs: UInt64
        /// A bound on vote work per block: signature checks of one validator's votes this node spends
        /// per height (0: no bound). Identical re-sends are free; see `VoteCheckBudget`.
        public var voteChecksPerHeightMax: Int

        public init(blockTxsMax: Int = 5_000, blockBytesMax: Int = 1_500_000, mempoolTxsMax: Int = 50_000,
                    datagramPayloadBytesMax: Int = 1_232, ingressQueueMax: Int = 20_000, statusIntervalMs: UInt64 = 100,
                    gossipRelayFanout: Int = 0, ingressMode: String = "legacy", userVerifyShare: Double = 0.5,
                    stakedShare: Double = 0.5, voteSenderPerSecond: Int = 5_000, votesOnlyAfterMs: UInt64 = 0,
                    coalesceVotes: Bool = true, voteChecksPerHeightMax: Int = 0) {
            self.blockTxsMax = blockTxsMax
            self.blockBytesMax = blockBytesMax
            self.mempoolTxsMax = mempoolTxsMax
            self.datagramPayloadBytesMax = datagramPayloadBytesMax
            self.ingressQueueMax = ingressQueueMax
            self.statusIntervalMs = statusIntervalMs
            self.gossipRelayFanout = gossipRelayFanout
            self.ingressMode = ingressMode
            self.userVerifyShare = userVerifyShare
            self.stakedShare = stakedShare
            self.voteSenderPerSecond = voteSenderPerSecond
            self.votesOnlyAfterMs = votesOnlyAfterMs
            self.coalesceVotes = coalesceVotes
            self.voteChecksPerHeightMax = voteChecksPerHeightMax
        }

        public var lanes: Bool { ingressMode == "lanes" }

        /// With lanes: user transactions admitted per second before their signature check, forwarded by
        /// validators (staked) and sent by clients (unstaked), out of this node's measured verification rate.
        public func userAdmissionRates(verifyPerSecond: Double) -> (staked: Double, unstaked: Double) {
            let rate = verifyPerSecond * userVerifyShare
            let staked = rate * stakedShare
            return (staked, rate - staked)
        }
    }

    public var name: String
    public var role: String
    public var chainId: String
    public var forkId: UInt32
    /// The wire protocol (message formats, block header layout): peers must share it.
    public var protocolVersion: UInt16
    /// The newest execution rules this node's binary implements (see `RulesSchedule`).
    public var version: UInt16
    /// The oldest execution rules it still implements: a binary with `versionMin` 2 refuses to run
    /// heights that still use version 1 rules.
    public var versionMin: UInt16
    /// Whether the handshake also refuses peers whose binary would apply other execution rules
    /// (the fork id and protocol version are always checked).
    public var handshakeChecksRules: Bool
    public var host: String
    public var gossipPort: Int
    /// The consensus-lane port when `limits.ingressMode` is "lanes" (0 otherwise).
    public var votePort: Int
    public var controlPort: Int
    /// The JSON-RPC port (loopback) of `rpc` and `gateway` nodes.
    public var rpcPort: Int?
    /// Paths, relative to the node's folder unless absolute.
    public var keyFile: String
    public var genesisFile: String
    public var tokenFile: String
    public var dataDir: String
    public var eventsFile: String
    public var peers: [PeerEntry]
    public var timing: Timing
    public var limits: Limits
    /// For the `sequencer` and `replica` roles.
    public var rollup: RollupSettings?
    /// Misbehaviour switched on from the start (validators only; see `ByzantineMode`).
    public var byzantine: [ByzantineMode]?
    /// A file (relative to the node's folder unless absolute) listing every node as a peer entry; the
    /// node takes all but itself as peers, in place of `peers`. One list shared by a whole cluster
    /// instead of N lists of N-1 (a Kubernetes ConfigMap holds 1 MiB: 100 validators' own lists are 2.2 MB).
    public var peersFile: String?
    /// A binary that refuses to run here (started below the height its rules begin at) keeps its control
    /// port up instead of exiting, until `POST /upgrade` gives it the right one: for a supervisor that
    /// only starts the same binary again (a Kubernetes container, which would crash-loop out of reach).
    public var refusedWaitsForUpgrade: Bool?
    /// The consensus protocol (`[cluster] protocol`; nil: Tendermint).
    public var consensusProtocol: BFT.ProtocolName?

    public init(name: String, role: String, chainId: String, forkId: UInt32, protocolVersion: UInt16,
                version: UInt16 = 1, versionMin: UInt16 = 1, handshakeChecksRules: Bool = false, host: String,
                gossipPort: Int, votePort: Int = 0, controlPort: Int, keyFile: String, genesisFile: String, tokenFile: String,
                dataDir: String, eventsFile: String, peers: [PeerEntry], timing: Timing, limits: Limits) {
        self.name = name
        self.role = role
        self.chainId = chainId
        self.forkId = forkId
        self.protocolVersion = protocolVersion
        self.version = version
        self.versionMin = versionMin
        self.handshakeChecksRules = handshakeChecksRules
        self.host = host
        self.gossipPort = gossipPort
        self.votePort = votePort
        self.controlPort = controlPort
        self.keyFile = keyFile
        self.genesisFile = genesisFile
        self.tokenFile = tokenFile
        self.dataDir = dataDir
        self.eventsFile = eventsFile
        self.peers = peers
        self.timing = timing
        self.limits = limits
    }
}
