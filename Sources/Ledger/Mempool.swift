import DequeModule
import Sodium
import Wire

/// Verified transactions waiting for a block, in arrival order, bounded by `txsMax`; and, apart, dispute
/// transactions the ledger refused for now that a block may make valid.
public struct Mempool: Sendable {
    public let txsMax: Int
    private var order: Deque<Bytes32> = []
    private var txs: [Bytes32: Envelope] = [:]
    public private(set) var rejectedFull = 0

    /// How many refused dispute transactions wait at most, and for how many blocks each.
    public static let heldMax = 64
    public static let heldBlocksMax: UInt64 = 8
    private var held: [Bytes32: (tx: Envelope, sinceHeight: UInt64)] = [:]
    private var heldOrder: Deque<Bytes32> = []
    /// Held transactions that never became valid within `heldBlocksMax` blocks, and ones refused a place.
    public private(set) var heldExpired = 0
    public private(set) var heldRejectedFull = 0

    public init(txsMax: Int) { self.txsMax = txsMax }

    public var count: Int { txs.count }

    public func contains(_ id: Bytes32) -> Bool { txs[id] != nil }

    public var heldCount: Int { held.count }

    /// Keeps a dispute transaction the ledger at `height` refused, to check again after each block: a move in a
    /// game can reach a validator a few milliseconds before the block that opened the game or brought the other
    /// side's move, from a party that saw that block first; refused once, its re-sends would all be dropped as
    /// duplicates at the receiving edge, and the party's clock would run out. False when already held, or full.
    public mutating func hold(_ tx: Envelope, id: Bytes32, height: UInt64) -> Bool {
        guard tx.kind == .dispute, held[id] == nil, txs[id] == nil else { return false }
        guard held.count < Self.heldMax else {
            heldRejectedFull += 1
            return false
        }
        held[id] = (tx, height)
        heldOrder.append(id)
        return true
    }

    /// Adds a verified transaction; false when the pool is full (counted) or it is already there.
    public mutating func add(_ tx: Envelope, id: Bytes32) -> Bool {
        guard txs[id] == nil else { return false }
        guard txs.count < txsMax else {
            rejectedFull += 1
            return false
        }
        txs[id] = tx
        order.append(id)
        return true
    }

    /// Up to `limit` candidates in arrival order.
    public func candidates(limit: Int) -> [Envelope] {
        var out: [Envelope] = []
        out.reserveCapacity(min(limit, txs.count))
        for id in order {
            guard let tx = txs[id] else { continue }
            out.append(tx)
            if out.count >= limit { break }
        }
        return out
    }

    /// Drops committed transactions and those the ledger can never apply (nonce or chunk sequence used).
    /// A transfer's validity depends on its sender's account alone, and a block only lowers the
    /// balances and raises the nonces of the accounts that sent in it: only transfers (and forced
    /// transactions) from `senders` are checked again; other kinds (disputes read shared state) always
    /// are. Checking the whole pool after every block was 3.6% of a validator's CPU under saturation.
    public mutating func prune(committed ids: [Bytes32], senders: Set<PublicKey>, ledger: Ledger) {
        for id in ids { txs[id] = nil }
        var kept: Deque<Bytes32> = []
        kept.reserveCapacity(txs.count)
        for id in order {
            guard let tx = txs[id] else { continue }
            let dependsOnSenderOnly = tx.kind == .transfer || tx.kind == .forcedTx
            if !dependsOnSenderOnly || senders.contains(tx.sender) {
                // A stale nonce, or evidence of an offence now on record (or too old): it can never apply again.
                // (Kept, refused evidence was re-checked at every block and height: with twins equivocating every
                // round it was a third of the simulator's time.)
                switch ledger.admissionCheck(tx) {
                case .badNonce, .evidenceRefused:
                    txs[id] = nil
                    continue
                default: break
                }
            }
            kept.append(id)
        }
        order = kept
        recheckHeld(committed: ids, ledger: ledger)
    }

    /// Held transactions the ledger now takes join the pool; those too old are dropped.
    private mutating func recheckHeld(committed: [Bytes32], ledger: Ledger) {
        guard !held.isEmpty else { return }
        let ids = Set(committed)
        var still: Deque<Bytes32> = []
        for id in heldOrder {
            guard let (tx, since) = held[id] else { continue }
            if ids.contains(id) {
                held[id] = nil
            } else if ledger.admissionCheck(tx) == .applied {
                held[id] = nil
                _ = add(tx, id: id)
            } else if ledger.height >= since + Self.heldBlocksMax {
                held[id] = nil
                heldExpired += 1
            } else {
                still.append(id)
            }
        }
        heldOrder = still
    }
}
