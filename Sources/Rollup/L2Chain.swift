import Ledger
import Sodium
import Wire

/// The L2 chain as one node knows it: the L2 state, the head, and how many inbox (forced)
/// transactions it has consumed. Building a block and checking one received use the same rules, so
/// the sequencer, replicas and derivation compute the same roots. Pure.
public struct L2Chain: Sendable {
    public private(set) var ledger: Ledger
    public private(set) var height: UInt64 = 0
    public private(set) var headId: Bytes32
    public private(set) var forcedConsumed: UInt64 = 0
    public let sequencer: PublicKey
    /// L2 transactions are signed under the chain's domain (their kinds keep them apart from L1 ones).
    public let domain: Domain

    public init(genesis: Genesis, forkId: UInt32 = 0) throws(Genesis.Problem) {
        ledger = try Ledger(l2Of: genesis)
        domain = Domain(chainId: genesis.chainId, forkId: forkId)
        guard let sequencer = ledger.sequencer else { throw .noRollup }
        self.sequencer = sequencer
        headId = ledger.lastBlockId
    }

    public var stateRoot: Bytes32 { ledger.stateRoot }

    /// Credits an L1 deposit to `key` on L2, entering the next block's root. Only the sequencer's view of
    /// L1 deposits comes this way: the `missed-reorg` fault credits one from an L1 block that is not in
    /// the chain L1 finalized, so the sequencer's state leaves the L1-derived one.
    public mutating func credit(_ key: PublicKey, amount: UInt64) {
        var account = ledger.account(key)
        account.balance &+= amount
        ledger.set(key, account)
    }

    /// Builds the next block: the forced transactions first (all of them, in order; one with a bad
    /// signature is carried and skipped, as everyone skips it), then `txs` (already verified) that
    /// still apply. Returns the block and the transactions left out, each with why.
    public mutating func build(forced: [ForcedEntry], txs: [Envelope], timeMs: UInt64, l1Origin: UInt64,
                               bySequencer: Bool) -> (block: L2Block, refused: [(Envelope, Ledger.TxOutcome)]) {
        var included: [Envelope] = []
        var refused: [(Envelope, Ledger.TxOutcome)] = []
        var through = forcedConsumed
        for entry in forced {
            precondition(entry.index == through, "forced entry \(entry.index), expected \(through)")
            through += 1
            included.append(entry.tx) // applied or not, a forced transaction is in the block
            if entry.tx.verify(domain: domain) == .valid { ledger.applyL2(entry.tx, feeRecipient: sequencer) }
        }
        for tx in txs where included.count < L2Block.txsMax {
            let outcome = ledger.applyL2(tx, feeRecipient: sequencer)
            if outcome == .applied { included.append(tx) } else { refused.append((tx, outcome)) }
        }
        let next = height + 1
        let root = ledger.sealL2Block(height: next, parentId: headId)
        let header = L2BlockHeader(height: next, timeMs: timeMs, parentId: headId, stateRoot: root,
                                   txRoot: Block.txRoot(included), txCount: UInt32(included.count),
                                   forcedThrough: through, l1Origin: l1Origin, bySequencer: bySequencer)
        height = next
        headId = header.id
        forcedConsumed = through
        return (L2Block(header: header, txs: included), refused)
    }

    /// Why `block` cannot follow this chain's head, given the forced queue; nil when it fits. Checks
    /// everything but the state root, which needs execution (see `apply`).
    public func problem(with block: L2Block, forcedQueue: ForcedQueue) -> String? {
        let header = block.header
        if header.height != height + 1 { return "L2 height \(header.height), expected \(height + 1)" }
        if header.parentId != headId { return "L2 block \(header.height) builds on \(header.parentId.short), head is \(headId.short)" }
        if header.txRoot != Block.txRoot(block.txs) { return "L2 block \(header.height): transaction root does not match" }
        guard header.forcedThrough >= forcedConsumed else {
            return "L2 block \(header.height) consumes forced transactions through \(header.forcedThrough), already \(forcedConsumed)"
        }
        let count = Int(header.forcedThrough - forcedConsumed)
        let expected = forcedQueue.pending(from: forcedConsumed, count: count)
        guard expected.count == count else {
            return "L2 block \(header.height) consumes forced transactions through \(header.forcedThrough); the inbox has \(forcedQueue.recorded)"
        }
        for (offset, entry) in expected.enumerated() where offset >= block.txs.count || block.txs[offset] != entry.tx {
            return "L2 block \(header.height): transaction \(offset) is not forced transaction \(entry.index)"
        }
        return nil
    }

    /// Executes a block that passed `problem(with:)`. Derivation checks every signature (a transaction
    /// with a bad one is skipped); a block from the sequencer's signed feed is trusted for its
    /// transactions' signatures except forced ones, which the sequencer never checked. Returns the root
    /// this chain computes; the head moves to the block (keeping its id) even when the roots differ.
    public mutating func apply(_ block: L2Block, checkSignatures: Bool = true) -> Bytes32 {
        let forcedCount = Int(block.header.forcedThrough - forcedConsumed)
        for (position, tx) in block.txs.enumerated() {
            if checkSignatures || position < forcedCount, tx.verify(domain: domain) != .valid { continue }
            ledger.applyL2(tx, feeRecipient: sequencer)
        }
        let root = ledger.sealL2Block(height: block.header.height, parentId: headId)
        height = block.header.height
        headId = block.id
        forcedConsumed = block.header.forcedThrough
        return root
    }
}

/// A forced L2 transaction taken by the L1 inbox at `l1Height`.
public struct ForcedEntry: Sendable, Equatable {
    public var index: UInt64
    public var l1Height: UInt64
    public var l1TimeMs: UInt64
    public var tx: Envelope

    public init(index: UInt64, l1Height: UInt64, l1TimeMs: UInt64, tx: Envelope) {
        self.index = index
        self.l1Height = l1Height
        self.l1TimeMs = l1TimeMs
        self.tx = tx
    }
}

/// The forced transactions the inbox has taken and the L2 chain has not consumed yet, in order.
/// Bounded by the protocol: an entry leaves once consumed, and derivation consumes every entry within
/// `forcedInclusionBlocks` L1 blocks, each carrying at most `Block.txsMax` transactions.
public struct ForcedQueue: Sendable {    public private(set) var entries: [ForcedEntry] = []
    /// How many the inbox has taken in all.
    public private(set) var recorded: UInt64 = 0

    public init() {}

    public mutating func append(_ entry: ForcedEntry) {
        precondition(entry.index == recorded, "forced index \(entry.index), expected \(recorded)")
        recorded += 1
        entries.append(entry)
    }

    /// The `count` entries from index `from`, or fewer if the inbox has not taken them.
    public func pending(from: UInt64, count: Int) -> [ForcedEntry] {
        entries.filter { $0.index >= from }.prefix(count).map { $0 }
    }

    /// Forgets entries below `consumed`.
    public mutating func drop(below consumed: UInt64) {
        entries.removeAll { $0.index < consumed }
    }
}
