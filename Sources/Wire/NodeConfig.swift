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

/// Tendermint's round timeouts in milliseconds: propose, prevote, precommit, their growth per round,
/// and the pause after a commit. Part of a node's config and of the consensus settings.
public struct ConsensusTimeouts: Codable, Sendable, Equatable {
    public var timeoutProposeMs: UInt64
    public var timeoutProposeDeltaMs: UInt64
    public var timeoutPrevoteMs: UInt64
    public var timeoutPrevoteDeltaMs: UInt64
    public var timeoutPrecommitMs: UInt64
    public var timeoutPrecommitDeltaMs: UInt64
    public var timeoutCommitMs: UInt64

    public init(timeoutProposeMs: UInt64 = 300, timeoutProposeDeltaMs: UInt64 = 100,
                timeoutPrevoteMs: UInt64 = 100, timeoutPrevoteDeltaMs: UInt64 = 50,
                timeoutPrecommitMs: UInt64 = 100, timeoutPrecommitDeltaMs: UInt64 = 50,
                timeoutCommitMs: UInt64 = 20) {
        self.timeoutProposeMs = timeoutProposeMs
        self.timeoutProposeDeltaMs = timeoutProposeDeltaMs
        self.timeoutPrevoteMs = timeoutPrevoteMs
        self.timeoutPrevoteDeltaMs = timeoutPrevoteDeltaMs
        self.timeoutPrecommitMs = timeoutPrecommitMs
        self.timeoutPrecommitDeltaMs = timeoutPrecommitDeltaMs
        self.timeoutCommitMs = timeoutCommitMs
    }
}

/// A rollup node's settings (the `[rollup]` table of a topology). The defaults are the unfixed
/// sequencer: a queue bound so large a burst never meets it, no timeout, no per-sender limit, a flat
/// fee and no backlog limit.
public struct RollupSettings: Codable, Sendable, Equatable {
    /// The sequencer makes an L2 block this often when it has anything to include.
    public var blockIntervalMs: UInt64 = 100
    public var blockTxsMax: Int = 500
    public var queueTxsMax: Int = 5_000_000
    public var queueWaitMsMax: UInt64 = 0
    public var senderPerSecond: Double = 0
    public var senderBurst: Double = 1
    public var baseFeeMin: UInt64 = 0
    public var baseFeeStepTxs: Int = 0
    public var backlogBytesMax: Int = 0
    public var backlogIntakePerSecond: Double = 0
    public var batchBytesMax: Int = 120_000
    public var postIntervalMs: UInt64 = 200
    public var chunkDataBytesMax: Int = 1_000
    public var resendMs: UInt64 = 1_000
    public var backlogBlocksMax: Int = 100_000
    /// The sequencer's uplink: bytes per second it can send (0: unlimited) and the datagrams that can
    /// wait for it (drop-tail past that). The batch poster and the feed share it.
    public var uplinkBytesPerSecond: Int = 0
    public var uplinkQueueMax: Int = 4_096
    /// Nodes the sequencer sends its feed to (by name).
    public var feedPeers: [String] = []
    /// Threads the sequencer's edge checks client signatures on (0: one per core).
    public var verifyWorkers: Int = 0
    /// The share of the verification capacity the sequencer measures at start (one core's rate × its
    /// verify workers) that client transactions may use; past it they are refused as `busy` before their
    /// signature is checked, so a burst beyond the machine's capacity is answered, not dropped by the
    /// kernel unanswered (0: no budget, every transaction is checked).
    public var verifyShare: Double = 0
    /// L1 blocks a safe L2 block waits after its batch landed before it is final (the challenge window),
    /// when genesis has no dispute contract (with one, confirmed assertions make L2 blocks final).
    public var challengeWindowBlocks: UInt64 = 20
    /// How this node behaves in disputes (sequencer: as the proposer; replica: as a challenger).
    public var dispute = DisputeBehaviour()

    public init() {}
}

/// How a sequencer or replica behaves in fraud-proof disputes; the default is honest.
public struct DisputeBehaviour: Codable, Sendable, Equatable {
    public static let lies = ["honest", "wrong-root", "missed-reorg", "lie-every-move"]

    /// `honest`; `wrong-root`: executes a batch with a bug (mints to the sequencer before step `step`);
    /// `missed-reorg`: applies a deposit from an L1 block that was reorged away before the batch's first
    /// step; `lie-every-move`: commits to made-up hashes. A replica with a lie challenges right roots.
    public var lie = "honest"
    /// The batch the lie is told at (nil: every batch).
    public var batch: UInt64?
    public var step = 0
    /// Opens (asserts or challenges) but never moves in a game.
    public var silent = false
    /// Identities a lying replica challenges as (a Sybil attack), each with its own bond.
    public var identities = 1
    /// A challenger waits for the last block of the window.
    public var atWindowEnd = false

    public init() {}
}

/// The keys a node plays disputes as: its own, then identities derived from it (a Sybil's extra
/// challengers), which the cluster funds on L1 at genesis.
public enum DisputeIdentity {
    public static func keys(of key: SigningKey, count: Int) -> [SigningKey] {
        [key] + (1..<max(count, 1)).map { index in
            SigningKey(seed: Blake2b.hash(prefix: 7, key.seed, Blake2b.hash(Array("identity/\(index)".utf8))))
        }
    }
}
