import Ledger
import Sodium
import Wire

extension Replica {
    public struct ProposalKey: Hashable, Comparable, Sendable {
        public var height: UInt64
        public var round: UInt32

        public init(height: UInt64, round: UInt32) {
            self.height = height
            self.round = round
        }

        public static func < (lhs: ProposalKey, rhs: ProposalKey) -> Bool {
            (lhs.height, lhs.round) < (rhs.height, rhs.round)
        }
    }

    /// The proposals of the current height and the next, and the blocks they carry: which proposals are
    /// taken, when a complete one goes to consensus, and which wait for the next height. The block itself
    /// travels differently in each engine (the node's parts with Merkle proofs, the simulator's whole
    /// block); each shell keeps its assembly in an entry's `body` and hands the block over once complete.
    public struct Proposals<Body: Sendable>: Sendable {
        public struct Entry: Sendable {
            public var proposal: Proposal
            public var from: Int
            /// The shell's assembly of the block (the node's part set and the envelopes as received).
            public var body: Body
            /// The block, once complete (and then, for the current height, given to consensus).
            public var block: Block?

            public var delivered: Bool { block != nil }
        }

        public enum Admission: Sendable, Equatable {
            /// Taken: new for this round, from its proposer.
            case accepted
            /// Outside the heights and rounds kept, or not from the round's proposer.
            case ignored
            /// Already held.
            case duplicate
            /// The round's proposer signed another block for it (counted as `conflicting_proposal`).
            case conflicting
        }

        /// Blocks kept by id (this height's and the next), whichever round or proposer they came with.
        public static var knownBlocksMax: Int { 256 }

        public private(set) var entries: [ProposalKey: Entry] = [:]
        /// Proposals refused because their round's proposer had signed another block for it (`conflicting_proposal`).
        public private(set) var conflicting = 0
        /// Blocks by id, whichever round or proposer they came with: a twin's two proposals share a round,
        /// so the core may decide a block no entry holds any more.
        public private(set) var knownBlocks: [Bytes32: Block] = [:]

        public init() {}

        public subscript(key: ProposalKey) -> Entry? { entries[key] }

        /// Takes `proposal` from validator `from` if it is for the current height or the next, at most
        /// `roundsAheadMax` rounds ahead, by the round's proposer, and new (true); counts it when the round's
        /// proposer signed another block for the round.
        public mutating func take(_ proposal: Proposal, from: Int, body: @autoclosure () -> Body,
                                  at consensus: (height: UInt64, round: UInt32), roundsAheadMax: UInt32,
                                  proposer: Int) -> Bool {
            let admission = admit(proposal, from: from, body: body(), at: consensus, roundsAheadMax: roundsAheadMax,
                                  proposer: proposer)
            if admission == .conflicting { conflicting += 1 }
            return admission == .accepted
        }

        public mutating func admit(_ proposal: Proposal, from: Int, body: @autoclosure () -> Body,
                                   at consensus: (height: UInt64, round: UInt32), roundsAheadMax: UInt32,
                                   proposer: Int) -> Admission {
            guard proposal.height >= consensus.height, proposal.height <= consensus.height + 1,
                  proposal.round <= consensus.round + roundsAheadMax else { return .ignored }
            let key = ProposalKey(height: proposal.height, round: proposal.round)
            if let existing = entries[key] {
                return existing.proposal.blockId != proposal.blockId && existing.from == from ? .conflicting : .duplicate
            }
            guard from == proposer else { return .ignored }
            entries[key] = Entry(proposal: proposal, from: from, body: body())
            return .accepted
        }

        /// Our own proposal: held as delivered.
        public mutating func proposed(_ proposal: Proposal, from me: Int, block: Block, body: Body) {
            remember(block)
            entries[ProposalKey(height: proposal.height, round: proposal.round)] =
                Entry(proposal: proposal, from: me, body: body, block: block)
        }

        /// Changes an entry's assembly in place (a copy would copy the block's bytes gathered so far).
        public mutating func updateBody<Result>(_ key: ProposalKey, _ change: (inout Body) -> Result) -> Result? {
            guard entries[key] != nil else { return nil }
            return change(&entries[key]!.body)
        }

        public mutating func remember(_ block: Block) {
            let id = block.id
            if knownBlocks.count < Self.knownBlocksMax || knownBlocks[id] != nil { knownBlocks[id] = block }
        }

        /// A block by id: a known one, or one an entry holds (when more than `knownBlocksMax` came).
        public func block(_ id: Bytes32) -> Block? {
            knownBlocks[id] ?? entries.values.first { $0.proposal.blockId == id && $0.block != nil }?.block
        }

        public enum Delivery: Sendable {
            /// Give this proposal to consensus now, with the block to check first.
            case now(Proposal, from: Int, Block)
            /// Complete, but for the next height: checked when this one commits (`startedHeight`).
            case nextHeight
            /// Nothing to do: delivered before, or the height is committed here already (the core waits out
            /// timeout_commit, and the advanced ledger would call an honest late proposal invalid).
            case nothing
        }

        /// The entry's block is complete (its id matches the proposal; the shell checked that).
        public mutating func complete(_ key: ProposalKey, block: Block, consensusHeight: UInt64,
                                      storeHeight: UInt64) -> Delivery {
            guard let entry = entries[key], !entry.delivered else { return .nothing }
            entries[key]!.block = block
            remember(block)
            if key.height > consensusHeight { return .nextHeight }
            guard key.height == consensusHeight, key.height > storeHeight else { return .nothing }
            return .now(entry.proposal, from: entry.from, block)
        }

        /// A new height: older proposals and blocks go; the complete proposals of this height that came
        /// early from others, by round, are returned to be checked and given to consensus now.
        public mutating func startedHeight(_ height: UInt64, me: Int?) -> [(proposal: Proposal, from: Int, block: Block)] {
            entries = entries.filter { $0.key.height >= height }
            knownBlocks = knownBlocks.filter { $0.value.header.height >= height }
            return entries.keys.filter { $0.height == height }.sorted().compactMap { key in
                guard let entry = entries[key], entry.from != me, let block = entry.block else { return nil }
                return (entry.proposal, entry.from, block)
            }
        }
    }
}

extension Replica {
    /// The proposer a block of this entry must name: the round's for a fresh proposal, any for a
    /// re-proposed valid value (it keeps its builder).
    public static func expectedProposer(_ proposal: Proposal?, validators: ValidatorSet,
                                        key: ProposalKey) -> PublicKey? {
        guard proposal.map({ $0.polRound == -1 }) ?? true else { return nil }
        return validators.members[validators.proposer(height: key.height, round: key.round)].publicKey
    }

    /// The block a proposer builds at `height`: the mempool's best candidates that still apply to the
    /// ledger, within the cluster's limits (`block_txs_max`, `block_bytes_max`).
    public static func buildBlock(height: UInt64, proposer: PublicKey, timeMs: UInt64, stateRoot: Bytes32,
                                  ledger: Ledger, mempool: Mempool, txsMax: Int, bytesMax: Int,
                                  protocolVersion: UInt16) -> Block {
        let txs = BlockBuilder.select(candidates: mempool.candidates(limit: txsMax * 2), ledger: ledger,
                                      txsMax: txsMax, bytesMax: min(bytesMax, Block.bytesMax - 1_000))
        let header = BlockHeader(protocolVersion: protocolVersion, height: height, timeMs: timeMs, proposer: proposer,
                                 previousBlockId: ledger.lastBlockId, stateRoot: stateRoot, txRoot: Block.txRoot(txs),
                                 txCount: UInt32(txs.count))
        return Block(header: header, txs: txs)
    }

    /// The offences a committed block recorded (its evidence transactions that applied), with who reported each.
    public static func committedEvidence(_ block: Block,
                                         failedIndexes: [Int]) -> [(evidence: DuplicateVoteEvidence, reporter: PublicKey)] {
        let failed = Set(failedIndexes)
        return block.txs.enumerated().compactMap { index, tx in
            guard tx.kind == .evidence, !failed.contains(index),
                  let evidence = try? DuplicateVoteEvidence(decoding: tx.payload) else { return nil }
            return (evidence, tx.sender)
        }
    }
}
