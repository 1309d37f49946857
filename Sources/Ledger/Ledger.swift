import Sodium
import Wire

public struct Account: Sendable, Equatable {
    public var balance: UInt64
    public var nonce: UInt64

    public init(balance: UInt64, nonce: UInt64) {
        self.balance = balance
        self.nonce = nonce
    }
}

/// The replicated state machine: accounts, balances, nonces, fees and the state root. Pure: it
/// executes verified transactions and never reads a clock, a file or a random number.
public struct Ledger: Sendable {
    public enum TxOutcome: Sendable, Equatable, CustomStringConvertible {
        case applied
        case badNonce(expected: UInt64, got: UInt64)
        case insufficientFunds
        case malformed

        /// A short stable label for metrics and events.
        public var label: String {
            switch self {
            case .applied: return "applied"
            case .badNonce: return "bad_nonce"
            case .insufficientFunds: return "insufficient_funds"
            case .malformed: return "malformed"
            }
        }

        public var description: String {
            switch self {
            case .applied: return "applied"
            case .badNonce(let expected, let got): return "bad nonce: expected \(expected), got \(got)"
            case .insufficientFunds: return "insufficient funds"
            case .malformed: return "malformed transfer"
            }
        }
    }

    public struct BlockResult: Sendable, Equatable {
        public var applied: Int
        public var failed: Int
        public var fees: UInt64
        public var stateRoot: Bytes32
    }

    static let bucketCount = 256

    public private(set) var accounts: [PublicKey: Account]
    public private(set) var height: UInt64
    public private(set) var lastBlockId: Bytes32
    private var bucketHashes: [Bytes32]
    private var dirtyBuckets: Set<Int>
    public private(set) var stateRoot: Bytes32
    /// The execution rules in force (see `Rules`); the node sets it before each block from its
    /// `RulesSchedule` decision.
    public var rulesVersion: UInt16 = 1

    public init(genesis: Genesis) throws(Genesis.Problem) {
        self.accounts = try genesis.initialAccounts()
        self.height = 0
        self.lastBlockId = Blake2b.hash(Array("genesis:\(genesis.chainId)".utf8))
        self.bucketHashes = Array(repeating: .zero, count: Ledger.bucketCount)
        self.dirtyBuckets = Set(0..<Ledger.bucketCount)
        self.stateRoot = .zero
        self.stateRoot = recomputeRoot()
    }

    public func account(_ key: PublicKey) -> Account {
        accounts[key] ?? Account(balance: 0, nonce: 0)
    }

    /// Checks a transfer against the sender's account without changing anything. Nonces must
    /// increase but may skip values, so one lost transaction does not block an account's later ones;
    /// a used nonce can never be replayed.
    public static func check(_ transfer: Transfer, from sender: Account) -> TxOutcome {
        guard transfer.nonce >= sender.nonce, transfer.nonce < UInt64.max else {
            return .badNonce(expected: sender.nonce, got: transfer.nonce)
        }
        let (cost, overflow) = transfer.amount.addingReportingOverflow(transfer.fee)
        guard !overflow, sender.balance >= cost else { return .insufficientFunds }
        return .applied
    }

    /// Applies one signed transfer whose signature the caller has verified. Fees go to `feeRecipient`.
    @discardableResult
    public mutating func apply(_ tx: Envelope, feeRecipient: PublicKey) -> TxOutcome {
        guard tx.kind == .transfer, let transfer = try? Transfer(decoding: tx.payload) else { return .malformed }
        var sender = account(tx.sender)
        let outcome = Ledger.check(transfer, from: sender)
        guard outcome == .applied else { return outcome }
        sender.balance -= transfer.amount + transfer.fee
        sender.nonce = transfer.nonce + 1
        setAccount(tx.sender, sender)
        var receiver = account(transfer.to)
        receiver.balance &+= transfer.amount
        setAccount(transfer.to, receiver)
        let share = Rules.proposerShare(fee: transfer.fee, version: rulesVersion)
        if share > 0 {
            var collector = account(feeRecipient)
            collector.balance &+= share
            setAccount(feeRecipient, collector)
        }
        return .applied
    }

    /// Executes a committed block: every transfer in order, invalid ones skipped deterministically.
    @discardableResult
    public mutating func execute(_ block: Block) -> BlockResult {
        precondition(block.header.height == height + 1,
                     "executing block \(block.header.height) on ledger at height \(height)")
        var applied = 0
        var failed = 0
        var fees: UInt64 = 0
        for tx in block.txs {
            if apply(tx, feeRecipient: block.header.proposer) == .applied {
                applied += 1
                fees &+= (try? Transfer(decoding: tx.payload).fee) ?? 0
            } else {
                failed += 1
            }
        }
        height = block.header.height
        lastBlockId = block.id
        stateRoot = recomputeRoot()
        return BlockResult(applied: applied, failed: failed, fees: fees, stateRoot: stateRoot)
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

    private mutating func setAccount(_ key: PublicKey, _ value: Account) {
        accounts[key] = value
        dirtyBuckets.insert(Ledger.bucket(of: key))
    }

    private static func bucket(of key: PublicKey) -> Int {
        Int(key.bytes32.storage.0 & 0xff)
    }

    /// The root is BLAKE2b over 256 bucket hashes; a bucket hash covers its accounts sorted by key.
    /// Only buckets touched since the last root are rehashed.
    private mutating func recomputeRoot() -> Bytes32 {
        if !dirtyBuckets.isEmpty {
            var members = Array(repeating: [(PublicKey, Account)](), count: Ledger.bucketCount)
            for (key, value) in accounts {
                let bucket = Ledger.bucket(of: key)
                if dirtyBuckets.contains(bucket) { members[bucket].append((key, value)) }
            }
            for bucket in dirtyBuckets {
                var writer = WireWriter(capacity: 8 + members[bucket].count * 48)
                writer.u32(UInt32(bucket))
                for (key, value) in members[bucket].sorted(by: { $0.0 < $1.0 }) {
                    writer.publicKey(key)
                    writer.u64(value.balance)
                    writer.u64(value.nonce)
                }
                bucketHashes[bucket] = Blake2b.hash(writer.bytes)
            }
            dirtyBuckets.removeAll(keepingCapacity: true)
        }
        var writer = WireWriter(capacity: Ledger.bucketCount * 32 + 8)
        writer.u64(height)
        for hash in bucketHashes { writer.bytes32(hash) }
        return Blake2b.hash(writer.bytes)
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
