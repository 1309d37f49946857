import FraudProof
import Sodium
import Wire

/// The replicated state machine: accounts, balances, nonces, fees and the state root. Pure: it
/// executes verified transactions and never reads a clock, a file or a random number.
public struct Ledger: Sendable {
    public enum TxOutcome: Sendable, Equatable, CustomStringConvertible {
        case applied
        case badNonce(expected: UInt64, got: UInt64)
        case insufficientFunds
        case malformed
        /// A batch chunk from someone other than the rollup's sequencer, or with no rollup in genesis.
        case notSequencer
        /// An airdrop claim from an account that already exists, or when the pool is empty.
        case notEligible
        case poolEmpty
        /// A dispute-contract transaction the contract refused, with why.
        case disputeRefused(String)
        /// Equivocation evidence that proves nothing new (a known offence, not a validator, too old).
        case evidenceRefused(String)

        /// A short stable label for metrics and events.
        public var label: String {
            switch self {
            case .applied: return "applied"
            case .badNonce: return "bad_nonce"
            case .insufficientFunds: return "insufficient_funds"
            case .malformed: return "malformed"
            case .notSequencer: return "not_sequencer"
            case .notEligible: return "not_eligible"
            case .poolEmpty: return "pool_empty"
            case .disputeRefused: return "dispute_refused"
            case .evidenceRefused: return "evidence_refused"
            }
        }

        public var description: String {
            switch self {
            case .applied: return "applied"
            case .badNonce(let expected, let got): return "bad nonce: expected \(expected), got \(got)"
            case .insufficientFunds: return "insufficient funds"
            case .malformed: return "malformed transaction"
            case .notSequencer: return "batch chunk not from the rollup's sequencer"
            case .notEligible: return "claim from an account that already exists"
            case .poolEmpty: return "the airdrop pool is empty"
            case .disputeRefused(let reason): return "dispute refused: \(reason)"
            case .evidenceRefused(let reason): return "evidence refused: \(reason)"
            }
        }
    }

    public struct BlockResult: Sendable, Equatable {
        public var applied: Int
        public var failed: Int
        public var fees: UInt64
        public var stateRoot: Bytes32
        /// What the block added to the rollup inbox, in order.
        public var inbox: [InboxItem] = []
        /// What the dispute contract did, in order.
        public var disputes: [DisputeEvent] = []
        /// The positions of the transactions that were skipped (not applied), in order.
        public var failedIndexes: [Int] = []
    }

    /// The accounts and their commitment (buckets under a Merkle tree; see `AccountTree`).
    public private(set) var accountTree: AccountTree
    public var accounts: [PublicKey: Account] { accountTree.accounts }
    public private(set) var height: UInt64
    public private(set) var lastBlockId: Bytes32
    public private(set) var stateRoot: Bytes32
    /// The execution rules in force (see `Rules`); the node sets it before each block from its
    /// `RulesSchedule` decision.
    public var rulesVersion: UInt16 = 1
    /// The rollup inbox (L1 only; see `Inbox`).
    public private(set) var inbox: Inbox
    /// The rollup's sequencer, the only sender whose batch chunks the inbox takes (nil: no rollup).
    public let sequencer: PublicKey?
    /// The L2 airdrop (L2 ledgers only).
    public let airdrop: Airdrop?
    /// The rollup's dispute contract (L1 ledgers whose genesis configures it).
    public internal(set) var disputes: Disputes?
    /// The contract's events since the block began (drained into `BlockResult.disputes`).
    var disputeEvents: [DisputeEvent] = []
    /// The validators' keys (equivocation evidence must name one).
    public let validatorKeys: Set<PublicKey>
    /// Offences recorded by evidence in blocks (see `Ledger+Evidence`).
    var evidenceRecords: [DuplicateVoteEvidence.Key: EvidenceRecord] = [:]

    /// The L1 state at genesis. `l2ForkId`: the fork id the rollup's L2 transactions are signed under
    /// (the dispute contract checks their signatures when it executes a step).
    public init(genesis: Genesis, l2ForkId: UInt32 = 0) throws(Genesis.Problem) {
        self.accountTree = AccountTree(try genesis.initialAccounts())
        self.sequencer = try genesis.rollup?.sequencerKey()
        self.airdrop = nil
        if let settings = genesis.rollup?.disputes {
            let l2 = try Ledger(l2Of: genesis)
            let context = Machine.Context(domain: Domain(chainId: genesis.chainId, forkId: l2ForkId), sequencer: l2.sequencer!,
                                          airdrop: l2.airdrop, rulesVersion: l2.rulesVersion, inboxHash: l2.inbox.hash)
            self.disputes = Disputes(settings: settings, context: context, genesisRoot: l2.stateRoot,
                                     l2GenesisId: l2.lastBlockId)
        }
        self.inbox = Inbox(chainId: genesis.chainId)
        self.validatorKeys = Set((try? genesis.validatorSet())?.members.map(\.publicKey) ?? [])
        self.height = 0
        self.lastBlockId = Blake2b.hash(Array("genesis:\(genesis.chainId)".utf8))
        self.stateRoot = .zero
        self.stateRoot = recomputeRoot()
    }

    /// The L2 state at its genesis: the rollup's allocations and airdrop pool.
    public init(l2Of genesis: Genesis) throws(Genesis.Problem) {
        guard let rollup = genesis.rollup else { throw .noRollup }
        self.accountTree = AccountTree(try rollup.initialAccounts())
        self.sequencer = try rollup.sequencerKey()
        self.airdrop = try rollup.airdrop()
        self.inbox = Inbox(chainId: genesis.chainId + "/l2")
        self.validatorKeys = []
        self.height = 0
        self.lastBlockId = Blake2b.hash(Array("genesis:\(genesis.chainId)/l2".utf8))
        self.stateRoot = .zero
        self.stateRoot = recomputeRoot()
    }

    public func account(_ key: PublicKey) -> Account {
        accountTree.account(key)
    }

    /// Checks a transfer against the sender's account without changing anything (the rule is the step
    /// machine's debit check).
    public static func check(_ transfer: Transfer, from sender: Account) -> TxOutcome {
        outcome(Machine.debitRefusal(sender, nonce: transfer.nonce, amount: transfer.amount, fee: transfer.fee))
    }

    /// Applies one signed L1 transaction whose signature the caller has verified: a transfer, a batch
    /// chunk, or a forced L2 transaction. Fees go to `feeRecipient`.
    @discardableResult
    public mutating func apply(_ tx: Envelope, feeRecipient: PublicKey) -> TxOutcome {
        var items: [InboxItem] = []
        defer { disputeEvents.removeAll() }
        return apply(tx, feeRecipient: feeRecipient, recording: &items)
    }

    private mutating func apply(_ tx: Envelope, feeRecipient: PublicKey, recording items: inout [InboxItem]) -> TxOutcome {
        switch tx.kind {
        case .transfer:
            guard let transfer = try? Transfer(decoding: tx.payload) else { return .malformed }
            return pay(transfer, from: tx.sender, feeRecipient: feeRecipient)
        case .batchChunk:
            guard let sequencer, tx.sender == sequencer else { return .notSequencer }
            guard let chunk = try? BatchChunk(decoding: tx.payload) else { return .malformed }
            guard chunk.sequence == inbox.batchSequence else {
                return .badNonce(expected: inbox.batchSequence, got: chunk.sequence)
            }
            if let disputes, disputes.batches.count >= DisputeSettings.batchesMax {
                return .disputeRefused("\(DisputeSettings.batchesMax) batches await confirmation")
            }
            inbox.record(chunk: chunk, id: tx.id)
            items.append(.chunk(chunk))
            recordDisputeChunk(chunk, l1Height: height + 1)
            return .applied
        case .forcedTx:
            guard sequencer != nil else { return .notSequencer }
            guard let (forced, inner) = Ledger.forced(tx) else { return .malformed }
            let outcome = pay(forced.payment(from: tx.sender), from: tx.sender, feeRecipient: feeRecipient)
            guard outcome == .applied else { return outcome }
            items.append(.forced(index: inbox.forcedCount, tx: inner))
            inbox.record(forced: inner.id)
            return .applied
        case .dispute:
            return applyDispute(tx, l1Height: height + 1)
        case .evidence:
            return applyEvidence(tx, blockHeight: height + 1)
        default:
            return .malformed
        }
    }

    /// CheckTx for an L1 transaction: whether it can still be applied on top of this ledger (a batch
    /// chunk ahead of the inbox's sequence, or a transfer with a nonce ahead, may wait in a mempool).
    public func admissionCheck(_ tx: Envelope) -> TxOutcome {
        switch tx.kind {
        case .transfer:
            guard let transfer = try? Transfer(decoding: tx.payload) else { return .malformed }
            return Ledger.check(transfer, from: account(tx.sender))
        case .batchChunk:
            guard let sequencer, tx.sender == sequencer else { return .notSequencer }
            guard let chunk = try? BatchChunk(decoding: tx.payload) else { return .malformed }
            return chunk.sequence >= inbox.batchSequence
                ? .applied : .badNonce(expected: inbox.batchSequence, got: chunk.sequence)
        case .forcedTx:
            guard sequencer != nil else { return .notSequencer }
            guard let (forced, _) = Ledger.forced(tx) else { return .malformed }
            return Ledger.check(forced.payment(from: tx.sender), from: account(tx.sender))
        case .dispute:
            // A dry run on a copy, as the next block would apply it (a bond moves at most one account).
            var scratch = self
            return scratch.applyDispute(tx, l1Height: height + 1)
        case .evidence:
            return evidenceProblem(tx, atHeight: height + 1).1
        default:
            return .malformed
        }
    }

    /// Applies one signed L2 transaction (a transfer or an airdrop claim) whose signature the caller
    /// has verified. Fees go to `feeRecipient` (the sequencer). The rules are the fraud-proof step
    /// machine's phases, run here without a root between them.
    @discardableResult
    public mutating func applyL2(_ tx: Envelope, feeRecipient: PublicKey) -> TxOutcome {
        switch tx.kind {
        case .l2Transfer:
            guard let transfer = try? Transfer(decoding: tx.payload) else { return .malformed }
            return pay(transfer, from: tx.sender, feeRecipient: feeRecipient)
        case .l2Claim:
            guard let claim = try? Claim(decoding: tx.payload), let airdrop else { return .malformed }
            var registers = Machine.Registers(sender: tx.sender, to: airdrop.pool, amount: airdrop.amount, fee: claim.fee,
                                              nonce: 0)
            for phase in 1..<Machine.stepsPerTransaction where !registers.failed {
                Ledger.complete { () throws(Machine.Missing) in
                    try Machine.claim(phase: phase, &registers, store: &self, feeRecipient: feeRecipient, airdrop: airdrop)
                }
            }
            return Ledger.outcome(registers.refusal)
        default:
            return .malformed
        }
    }

    /// Whether a claim can be applied now, without changing anything.
    public static func check(_ claim: Claim, from sender: Account, pool: Account, airdrop: Airdrop) -> TxOutcome {
        guard sender.balance == 0, sender.nonce == 0 else { return .notEligible }
        guard pool.balance >= airdrop.amount else { return .poolEmpty }
        guard claim.fee <= airdrop.amount else { return .insufficientFunds }
        return .applied
    }

    /// Closes an L2 block: its height enters the root. Returns the state root for its header.
    public mutating func sealL2Block(height: UInt64, parentId: Bytes32) -> Bytes32 {
        self.height = height
        self.lastBlockId = parentId
        stateRoot = recomputeRoot()
        return stateRoot
    }

    private mutating func pay(_ transfer: Transfer, from senderKey: PublicKey, feeRecipient: PublicKey) -> TxOutcome {
        var registers = Machine.Registers(sender: senderKey, to: transfer.to, amount: transfer.amount, fee: transfer.fee,
                                          nonce: transfer.nonce)
        for phase in 1..<Machine.stepsPerTransaction where !registers.failed {
            Ledger.complete { () throws(Machine.Missing) in
                try Machine.transfer(phase: phase, &registers, store: &self, feeRecipient: feeRecipient,
                                     rulesVersion: rulesVersion)
            }
        }
        return Ledger.outcome(registers.refusal)
    }

    /// Runs a machine phase on the whole ledger, where no account can be missing.
    private static func complete(_ phase: () throws(Machine.Missing) -> Void) {
        do { try phase() } catch { preconditionFailure("the full ledger has every account, yet: \(error)") }
    }

    private static func outcome(_ refusal: Machine.Registers.Refusal?) -> TxOutcome {
        switch refusal {
        case nil: return .applied
        case .badNonce(let expected, let got): return .badNonce(expected: expected, got: got)
        case .insufficientFunds: return .insufficientFunds
        case .notEligible: return .notEligible
        case .poolEmpty: return .poolEmpty
        }
    }

    /// Executes a committed block: every transfer in order, invalid ones skipped deterministically.
    @discardableResult
    public mutating func execute(_ block: Block) -> BlockResult {
        precondition(block.header.height == height + 1,
                     "executing block \(block.header.height) on ledger at height \(height)")
        var applied = 0
        var failed = 0
        var fees: UInt64 = 0
        var items: [InboxItem] = []
        var failedIndexes: [Int] = []
        disputeEvents.removeAll()
        for (index, tx) in block.txs.enumerated() {
            if apply(tx, feeRecipient: block.header.proposer, recording: &items) == .applied {
                applied += 1
                fees &+= Ledger.fee(of: tx)
            } else {
                failed += 1
                failedIndexes.append(index)
            }
        }
        endDisputeBlock(l1Height: block.header.height)
        pruneEvidence(blockHeight: block.header.height)
        height = block.header.height
        lastBlockId = block.id
        stateRoot = recomputeRoot()
        defer { disputeEvents.removeAll() }
        return BlockResult(applied: applied, failed: failed, fees: fees, stateRoot: stateRoot, inbox: items,
                           disputes: disputeEvents, failedIndexes: failedIndexes)
    }

    /// A forced transaction and the L2 transaction inside it, or nil when either does not decode.
    static func forced(_ tx: Envelope) -> (ForcedTx, Envelope)? {
        guard let forced = try? ForcedTx(decoding: tx.payload), let inner = try? Envelope(decoding: forced.l2Tx),
              inner.kind.isL2Transaction else { return nil }
        return (forced, inner)
    }

    /// The fee a transaction offers (0 for batch chunks and anything that does not decode).
    public static func fee(of tx: Envelope) -> UInt64 {
        switch tx.kind {
        case .transfer, .l2Transfer: return (try? Transfer(decoding: tx.payload).fee) ?? 0
        case .forcedTx: return (try? ForcedTx(decoding: tx.payload).fee) ?? 0
        case .l2Claim: return (try? Claim(decoding: tx.payload).fee) ?? 0
        default: return 0
        }
    }

    /// Why a proposed block is not valid on top of this ledger, or nil when it is.
    /// `expectedProposer` nil skips the builder check (a re-proposed value, or a block with a commit).
    public func validate(_ block: Block, expectedProposer: PublicKey?, protocolVersion: UInt16) -> String? {
        let header = block.header
        if header.height != height + 1 { return "height \(header.height), expected \(height + 1)" }
        if header.previousBlockId != lastBlockId {
            return "previous block \(header.previousBlockId.short), expected \(lastBlockId.short)"
        }
        if let expectedProposer, header.proposer != expectedProposer {
            return "proposer \(header.proposer), expected \(expectedProposer)"
        }
        if header.protocolVersion != protocolVersion {
            return "protocol version \(header.protocolVersion), expected \(protocolVersion)"
        }
        if header.stateRoot != stateRoot {
            return "wrong state root at height \(header.height): expected \(stateRoot.hex), got \(header.stateRoot.hex)"
        }
        if header.txRoot != Block.txRoot(block.txs) { return "transaction root does not match the transactions" }
        return nil
    }

    /// The root over the height, the accounts root and, with a rollup, the inbox hash and the dispute
    /// contract's digest (the formula the step machine uses, so an L2 root can be checked one step at a time).
    private mutating func recomputeRoot() -> Bytes32 {
        var rollupHash: Bytes32?
        if sequencer != nil {
            rollupHash = disputes.map { Blake2b.hash(prefix: 5, inbox.hash, $0.digest) } ?? inbox.hash
        }
        return Machine.stateRoot(height: height, accountsRoot: accountTree.root(), inboxHash: rollupHash)
    }
}

/// The ledger as the step machine's store: the whole state, so nothing is ever missing. The root is
/// computed only when asked (once per block when the ledger applies transactions itself).
extension Ledger: Machine.Store {
    public mutating func set(_ key: PublicKey, _ value: Account) { accountTree.set(key, value) }
    public mutating func seal(height: UInt64) { self.height = height }
    public mutating func root() -> Bytes32 {
        stateRoot = recomputeRoot()
        return stateRoot
    }
}

/// Picks transactions for a block proposal: valid in order against the proposer's ledger.
public struct BlockBuilder: Sendable {
    public static func select(candidates: [Envelope], ledger: Ledger, txsMax: Int, bytesMax: Int) -> [Envelope] {
        var scratch = ledger
        var chosen: [Envelope] = []
        var bytes = 0
        let anyone = PublicKey(Bytes32.zero)
        for tx in candidates {
            if chosen.count >= txsMax || bytes + tx.bytes.count + 2 > bytesMax { break }
            if scratch.apply(tx, feeRecipient: anyone) == .applied {
                chosen.append(tx)
                bytes += tx.bytes.count + 2
            }
        }
        return chosen
    }
}
