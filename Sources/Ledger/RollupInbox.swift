import Sodium
import Wire

/// The L1 side of the rollup: what the inbox has taken so far. Batch chunks are taken only from the
/// sequencer and only in sequence; forced L2 transactions from anyone who pays the L1 fee. The hash
/// chain over everything taken is part of the L1 state root, so validators agree on the inbox.
public struct Inbox: Sendable, Equatable {
    /// The next batch chunk sequence number the inbox takes.
    public private(set) var batchSequence: UInt64 = 0
    /// Forced transactions taken so far (the next one gets this index).
    public private(set) var forcedCount: UInt64 = 0
    public private(set) var hash: Bytes32

    init(chainId: String) {
        hash = Blake2b.hash(Array("inbox:\(chainId)".utf8))
    }

    mutating func record(chunk: BatchChunk, id: Bytes32) {
        batchSequence += 1
        hash = Blake2b.hash(prefix: 2, hash, id)
    }

    mutating func record(forced id: Bytes32) {
        forcedCount += 1
        hash = Blake2b.hash(prefix: 3, hash, id)
    }
}

/// What one L1 block added to the inbox, for derivation.
public enum InboxItem: Sendable, Equatable {
    case chunk(BatchChunk)
    /// A forced L2 transaction, not yet verified (derivation checks its signature).
    case forced(index: UInt64, tx: Envelope)
}

/// The rollup section of genesis: who sequences, the forced-inclusion bound, and the L2's start.
public struct RollupGenesis: Codable, Sendable, Equatable {
    public var sequencer: String
    /// A forced transaction taken at L1 height h must be in the L2 chain by L1 height h + this, or
    /// derivation includes it itself.
    public var forcedInclusionBlocks: UInt64
    public var l2Allocations: [Genesis.Allocation]
    /// The airdrop pool account (hex key; funded in `l2Allocations`) and the amount per claim.
    public var airdropPool: String?
    public var airdropAmount: UInt64
    /// The dispute contract (fraud proofs); nil: L2 blocks are final a fixed window after they are safe.
    public var disputes: DisputeSettings?

    public init(sequencer: PublicKey, forcedInclusionBlocks: UInt64, l2Allocations: [Genesis.Allocation],
                airdropPool: PublicKey?, airdropAmount: UInt64, disputes: DisputeSettings? = nil) {
        self.disputes = disputes
        self.sequencer = sequencer.hex
        self.forcedInclusionBlocks = forcedInclusionBlocks
        self.l2Allocations = l2Allocations
        self.airdropPool = airdropPool?.hex
        self.airdropAmount = airdropAmount
    }

    public func sequencerKey() throws(Genesis.Problem) -> PublicKey {
        guard let bytes = Hex.decode(sequencer), let key = PublicKey(bytes) else {
            throw .badKey(field: "rollup.sequencer", value: sequencer)
        }
        return key
    }

    public func initialAccounts() throws(Genesis.Problem) -> [PublicKey: Account] {
        try Genesis.accounts(l2Allocations)
    }

    public func airdrop() throws(Genesis.Problem) -> Airdrop? {
        guard let airdropPool else { return nil }
        guard let bytes = Hex.decode(airdropPool), let key = PublicKey(bytes) else {
            throw .badKey(field: "rollup.airdropPool", value: airdropPool)
        }
        guard airdropAmount > 0 else { throw .badRollup(field: "airdropAmount", problem: "must be greater than 0") }
        return Airdrop(pool: key, amount: airdropAmount)
    }
}
