import Ledger
import Sodium
import Wire

extension Replica {
    /// How a proposal's block arrives: parts with Merkle proofs against the proposal's root.
    public struct PartAssembly: Sendable {
        public var assembler: PartSet.Assembler
        /// The proposal and part envelopes as received, re-sent to peers while a height stalls.
        public var envelopes: [Envelope]

        public init(assembler: PartSet.Assembler, envelopes: [Envelope] = []) {
            self.assembler = assembler
            self.envelopes = envelopes
        }
    }

    /// A peer's message kept until its handshake succeeds (`fromPeer` false: a client's transaction).
    public struct HeldMessage: Sendable {
        public var envelope: Envelope
        public var message: Message
        public var fromPeer: Bool

        public init(envelope: Envelope, message: Message, fromPeer: Bool) {
            self.envelope = envelope
            self.message = message
            self.fromPeer = fromPeer
        }
    }

    /// Precommits for one block of a height being synced.
    public struct SyncVoteKey: Hashable, Sendable {
        public var round: UInt32
        public var blockId: Bytes32

        public init(round: UInt32, blockId: Bytes32) {
            self.round = round
            self.blockId = blockId
        }
    }

    /// What a replica keeps of the messages in flight (volatile: lost at a crash): parts that came before
    /// their proposal, the blocks and precommit signatures of heights being synced, and what it refused.
    public struct Reception: Sendable {
        public static let earlyPartsMax = 8_192
        public static let syncRootsPerHeightMax = 4
        public static let syncServePerTickMax = 32

        public var earlyParts: [ProposalKey: [(part: BlockPart, envelope: Envelope)]] = [:]
        public var earlyPartCount = 0
        /// One assembly per parts root (a lying peer's root cannot block an honest one), a few per height.
        public var syncAssemblers: [UInt64: [Bytes32: PartSet.Assembler]] = [:]
        public var syncBlocks: [UInt64: [Bytes32: Block]] = [:]
        /// Verified precommit signatures by validator index.
        public var syncVotes: [UInt64: [SyncVoteKey: [Int: Bytes64]]] = [:]
        /// Blocks served to peers since the last tick.
        public var servedThisTick = 0
        /// Peers' input refused by the replica logic and the shell's edge, by reason (the core counts its own).
        public var rejects: [String: Int] = [:]
        /// Transactions refused at mempool admission (CheckTx), by reason.
        public var checkTxRejected: [String: Int] = [:]
        public var invalidProposals = 0
        /// Messages received (past the edge's checks) by kind, and consensus signatures checked: the edge's one per
        /// signed consensus message, plus each vote of a forwarded certificate and each synced precommit checked here.
        public var receivedByKind = [Int](repeating: 0, count: 32)
        public var signaturesChecked = 0
        /// When the `traffic` event was last written, and the messages it counted.
        public var trafficLoggedMs: UInt64 = 0
        public var trafficLoggedTotal = 0

        public init() {}

        /// The `traffic` event's counts: consensus messages received by kind (those above zero).
        public var consensusReceived: [(String, Int)] {
            MessageKind.allCases.filter(\.isConsensus).compactMap { kind in
                let count = receivedByKind[Int(kind.rawValue)]
                return count > 0 ? (kind.description, count) : nil
            }
        }

        /// A new height: what was kept for older ones goes.
        public mutating func forgetBelow(height: UInt64) {
            guard earlyPartCount > 0 else { return }
            earlyParts = earlyParts.filter { $0.key.height >= height }
            earlyPartCount = earlyParts.values.reduce(0) { $0 + $1.count }
        }

        /// Synced heights at or below the store's are done.
        public mutating func forgetSynced(upTo height: UInt64) {
            syncBlocks = syncBlocks.filter { $0.key > height }
            syncVotes = syncVotes.filter { $0.key > height }
            syncAssemblers = syncAssemblers.filter { $0.key > height }
        }
    }

    /// What the shared logic asks a shell to count in its own metrics.
    public enum Counter: Sendable {
        /// A message held for a handshake dropped (the hold was full).
        case heldDropped
        /// A block committed from sync.
        case syncedBlock
        /// The mempool's size changed.
        case mempool
    }
}
