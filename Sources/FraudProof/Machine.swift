import Sodium
import Wire

/// The step machine for L2 execution (Topologies/README.md, "Fraud proofs"): the L2 transaction rules cut into steps
/// that each touch at most one account, so L1 can execute any single step from a small proof. The ledger applies L2
/// transactions through the same phase functions (`Machine.transfer`, `Machine.claim`), so there is one definition of
/// the rules, stepped or not. Pure.
///
/// A batch's input is a list of items: each L2 block's transactions, then a seal with its height. A
/// transaction takes exactly `stepsPerTransaction` steps (phases 0–4; phases with nothing to do, or
/// after the transaction failed, change only the phase), a seal one step, so the trace length is known
/// from the input alone. Once every item is done the machine is halted: a step leaves it unchanged.
public enum Machine {
    public static let stepsPerTransaction = 5

    public enum Item: Sendable, Equatable, WireCodable {
        case transaction(Envelope)
        case seal(height: UInt64)

        /// The leaf of the input tree for this item.
        public var leaf: Bytes32 { Blake2b.hash([16] + encoded) }

        public var steps: Int {
            if case .transaction = self { return Machine.stepsPerTransaction }
            return 1
        }

        public func encode(to writer: inout WireWriter) {
            switch self {
            case .transaction(let envelope):
                writer.u8(1)
                writer.blob16(envelope.bytes)
            case .seal(let height):
                writer.u8(2)
                writer.u64(height)
            }
        }

        public init(from reader: inout WireReader) throws(DecodeError) {
            switch try reader.u8("item.kind") {
            case 1:
                let bytes = Array(try reader.blob16("item.transaction", max: Machine.transactionBytesMax))
                self = .transaction(try Envelope(decoding: bytes))
            case 2:
                self = .seal(height: try reader.u64("item.height"))
            case let kind:
                throw .invalidValue(field: "item.kind", reason: "\(kind)")
            }
        }
    }

    /// The largest L2 transaction an item carries (the L2's own limit).
    public static let transactionBytesMax = 512

    /// What every executor of the machine must agree on besides the input: fixed per rollup.
    public struct Context: Sendable, Equatable {
        public var domain: Domain
        /// The fee recipient.
        public var sequencer: PublicKey
        public var airdrop: Airdrop?
        public var rulesVersion: UInt16
        /// The L2 ledger's inbox hash, part of its state root (constant on L2).
        public var inboxHash: Bytes32?

        public init(domain: Domain, sequencer: PublicKey, airdrop: Airdrop?, rulesVersion: UInt16, inboxHash: Bytes32?) {
            self.domain = domain
            self.sequencer = sequencer
            self.airdrop = airdrop
            self.rulesVersion = rulesVersion
            self.inboxHash = inboxHash
        }
    }

    /// A ledger's state root: its height, its accounts root and (with a rollup) its inbox hash.
    public static func stateRoot(height: UInt64, accountsRoot: Bytes32, inboxHash: Bytes32?) -> Bytes32 {
        var writer = WireWriter(capacity: 80)
        writer.u64(height)
        writer.bytes32(accountsRoot)
        if let inboxHash { writer.bytes32(inboxHash) }
        return Blake2b.hash(writer.bytes)
    }

    /// The transaction being executed, as decoded by phase 0.
    public enum Kind: UInt8, Sendable {
        case none = 0, transfer = 1, claim = 2
    }

    /// The machine's whole state between steps; its hash is a trace entry.
    public struct State: Sendable, Equatable, WireCodable {
        /// The L2 state root.
        public var root: Bytes32
        /// The next item to execute (the machine is halted once it is the item count).
        public var item: UInt64
        public var phase: UInt8 = 0
        /// The current transaction failed (or was never valid): its remaining phases do nothing.
        public var failed = false
        public var kind: Kind = .none
        public var sender = PublicKey(.zero)
        public var to = PublicKey(.zero)
        public var amount: UInt64 = 0
        public var fee: UInt64 = 0
        public var nonce: UInt64 = 0

        /// The state before the first item, on top of `root`.
        public init(root: Bytes32) {
            self.root = root
            item = 0
        }

        public var hash: Bytes32 { Blake2b.hash([17] + encoded) }

        public func encode(to writer: inout WireWriter) {
            writer.bytes32(root)
            writer.u64(item)
            writer.u8(phase)
            writer.bool(failed)
            writer.u8(kind.rawValue)
            writer.publicKey(sender)
            writer.publicKey(to)
            writer.u64(amount)
            writer.u64(fee)
            writer.u64(nonce)
        }

        public init(from reader: inout WireReader) throws(DecodeError) {
            root = try reader.bytes32("state.root")
            item = try reader.u64("state.item")
            phase = try reader.u8("state.phase")
            guard Int(phase) < Machine.stepsPerTransaction else {
                throw .invalidValue(field: "state.phase", reason: "\(phase)")
            }
            failed = try reader.bool("state.failed")
            let rawKind = try reader.u8("state.kind")
            guard let kind = Kind(rawValue: rawKind) else { throw .invalidValue(field: "state.kind", reason: "\(rawKind)") }
            self.kind = kind
            sender = try reader.publicKey("state.sender")
            to = try reader.publicKey("state.to")
            amount = try reader.u64("state.amount")
            fee = try reader.u64("state.fee")
            nonce = try reader.u64("state.nonce")
        }
    }

    /// Why a step cannot be executed from what was given.
    public enum Missing: Error, Sendable, Equatable, CustomStringConvertible {
        case item(UInt64)
        case account(String)
        case witness(AccountWitness.Problem)
        case rootPreimage

        public var description: String {
            switch self {
            case .item(let index): return "the step needs input item \(index)"
            case .account(let key): return "the step needs account \(key), which the witness does not show"
            case .witness(let problem): return "bad witness: \(problem)"
            case .rootPreimage: return "the step needs the height and accounts root behind the state root"
            }
        }
    }

    /// Where a step reads and writes accounts: the full state (a prover, the ledger) or one witnessed
    /// bucket (L1 checking a one-step proof).
    public protocol Store {
        mutating func account(_ key: PublicKey) throws(Missing) -> Account
        mutating func set(_ key: PublicKey, _ value: Account) throws(Missing)
        /// Closes an L2 block: the height enters the root.
        mutating func seal(height: UInt64) throws(Missing)
        /// The state root as it stands.
        mutating func root() throws(Missing) -> Bytes32
    }

    /// One step from `state`. `item` is the input item at `state.item` when the step starts one (phase
    /// 0), else unused; `itemCount` is the input's length.
    public static func step<S: Store>(_ state: State, item: Item?, itemCount: UInt64, store: inout S,
                                      context: Context) throws(Missing) -> State {
        guard state.item < itemCount else { return state }
        var next = state
        if state.phase == 0 {
            guard let item else { throw .item(state.item) }
            switch item {
            case .seal(let height):
                try store.seal(height: height)
                next = State(root: try store.root())
                next.item = state.item + 1
                return next
            case .transaction(let envelope):
                next = load(envelope, into: next, context: context, checkSignature: true)
            }
        } else if !state.failed {
            var registers = Registers(state)
            switch state.kind {
            case .transfer:
                try Machine.transfer(phase: Int(state.phase), &registers, store: &store, feeRecipient: context.sequencer,
                                     rulesVersion: context.rulesVersion)
            case .claim:
                guard let airdrop = context.airdrop else { registers.failed = true; break }
                try Machine.claim(phase: Int(state.phase), &registers, store: &store, feeRecipient: context.sequencer,
                                  airdrop: airdrop)
            case .none:
                registers.failed = true
            }
            next.failed = registers.failed
            // Only a phase that reads or writes an account can change the root (and needs the witness).
            if touches(state, context: context) != nil { next.root = try store.root() }
        }
        next.phase += 1
        if Int(next.phase) == stepsPerTransaction {
            next = State(root: next.root)
            next.item = state.item + 1
        }
        return next
    }

    /// The account a step reads or writes (nil: none), so a prover knows which witness to give.
    public static func touches(_ state: State, context: Context) -> PublicKey? {
        guard state.phase > 0, !state.failed else { return nil }
        switch (state.kind, state.phase) {
        case (.transfer, 1), (.claim, 1), (.claim, 3): return state.sender
        case (.transfer, 2): return state.to
        case (.claim, 2): return context.airdrop?.pool
        case (.transfer, 3), (.claim, 4): return context.sequencer
        default: return nil
        }
    }

    /// Phase 0: decode the transaction into the registers; one that does not decode, is not an L2
    /// transaction, or (when checked) is not validly signed fails and does nothing.
    static func load(_ envelope: Envelope, into state: State, context: Context, checkSignature: Bool) -> State {
        var next = state
        next.failed = true
        if checkSignature, envelope.verify(domain: context.domain) != .valid { return next }
        next.sender = envelope.sender
        switch envelope.kind {
        case .l2Transfer:
            guard let transfer = try? Transfer(decoding: envelope.payload) else { return next }
            next.kind = .transfer
            next.to = transfer.to
            next.amount = transfer.amount
            next.fee = transfer.fee
            next.nonce = transfer.nonce
        case .l2Claim:
            guard let claim = try? Claim(decoding: envelope.payload), let airdrop = context.airdrop else { return next }
            next.kind = .claim
            next.to = airdrop.pool
            next.amount = airdrop.amount
            next.fee = claim.fee
        default:
            return next
        }
        next.failed = false
        return next
    }

    /// The registers the account phases work on.
    public struct Registers: Sendable, Equatable {
        public var sender: PublicKey
        public var to: PublicKey
        public var amount: UInt64
        public var fee: UInt64
        public var nonce: UInt64
        public var failed = false
        /// Why the transaction failed, for the ledger's outcome.
        public var refusal: Refusal?

        public enum Refusal: Sendable, Equatable {
            case badNonce(expected: UInt64, got: UInt64)
            case insufficientFunds
            case notEligible
            case poolEmpty
        }

        public init(sender: PublicKey, to: PublicKey, amount: UInt64, fee: UInt64, nonce: UInt64) {
            self.sender = sender
            self.to = to
            self.amount = amount
            self.fee = fee
            self.nonce = nonce
        }

        init(_ state: State) {
            self.init(sender: state.sender, to: state.to, amount: state.amount, fee: state.fee, nonce: state.nonce)
        }

        mutating func fail(_ refusal: Refusal) {
            failed = true
            self.refusal = refusal
        }
    }

    /// A transfer's phases: 1 debits the sender (nonces must increase but may skip values; amount and
    /// fee must be covered), 2 credits the recipient (creating it, even for nothing), 3 credits the fee
    /// recipient its share of the fee, 4 does nothing.
    public static func transfer<S: Store>(phase: Int, _ registers: inout Registers, store: inout S,
                                          feeRecipient: PublicKey, rulesVersion: UInt16) throws(Missing) {
        switch phase {
        case 1:
            var sender = try store.account(registers.sender)
            if let refusal = debitRefusal(sender, nonce: registers.nonce, amount: registers.amount, fee: registers.fee) {
                return registers.fail(refusal)
            }
            sender.balance -= registers.amount + registers.fee
            sender.nonce = registers.nonce + 1
            try store.set(registers.sender, sender)
        case 2:
            var receiver = try store.account(registers.to)
            receiver.balance &+= registers.amount
            try store.set(registers.to, receiver)
        case 3:
            try credit(feeRecipient, Rules.proposerShare(fee: registers.fee, version: rulesVersion), store: &store)
        default:
            break
        }
    }

    /// Why `sender` cannot pay `amount` plus `fee` under `nonce`, or nil when it can. Nonces must increase
    /// but may skip values, so one lost transaction does not block an account's later ones; a used
    /// nonce can never be replayed.
    public static func debitRefusal(_ sender: Account, nonce: UInt64, amount: UInt64, fee: UInt64) -> Registers.Refusal? {
        guard nonce >= sender.nonce, nonce < UInt64.max else { return .badNonce(expected: sender.nonce, got: nonce) }
        let (cost, overflow) = amount.addingReportingOverflow(fee)
        guard !overflow, sender.balance >= cost else { return .insufficientFunds }
        return nil
    }

    /// An airdrop claim's phases: 1 checks the claimant is a fresh account, 2 takes the amount from the
    /// pool (if it holds it, and the fee is within it), 3 creates the claimant with the amount less the
    /// fee, 4 credits the fee recipient the whole fee.
    public static func claim<S: Store>(phase: Int, _ registers: inout Registers, store: inout S,
                                       feeRecipient: PublicKey, airdrop: Airdrop) throws(Missing) {
        switch phase {
        case 1:
            let claimant = try store.account(registers.sender)
            guard claimant.balance == 0, claimant.nonce == 0 else { return registers.fail(.notEligible) }
        case 2:
            var pool = try store.account(airdrop.pool)
            guard pool.balance >= airdrop.amount else { return registers.fail(.poolEmpty) }
            guard registers.fee <= airdrop.amount else { return registers.fail(.insufficientFunds) }
            pool.balance -= airdrop.amount
            try store.set(airdrop.pool, pool)
        case 3:
            try store.set(registers.sender, Account(balance: airdrop.amount - registers.fee, nonce: 1))
        case 4:
            try credit(feeRecipient, registers.fee, store: &store)
        default:
            break
        }
    }

    private static func credit<S: Store>(_ key: PublicKey, _ amount: UInt64, store: inout S) throws(Missing) {
        guard amount > 0 else { return }
        var collector = try store.account(key)
        collector.balance &+= amount
        try store.set(key, collector)
    }
}

extension Machine {
    /// A batch's input for the machine: each block's transactions, then its seal.
    public static func items(of blocks: [L2Block]) -> [Item] {
        blocks.flatMap { block in block.txs.map(Item.transaction) + [.seal(height: block.header.height)] }
    }
}
