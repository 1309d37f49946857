import Sodium
import Wire

/// Equivocation evidence on the chain: a block that carries a `DuplicateVoteEvidence` transaction
/// records the offence (the offender, the height, round and vote type, and the block that recorded
/// it). One record per offence: a second report of the same offence fails like a replayed
/// transaction. Evidence older than `evidenceAgeMax` heights is refused, and records that old are
/// forgotten, so the map is bounded.
///
/// The ledger checks the evidence's shape and the offender's membership; the two signatures are
/// checked by the node before the transaction enters its mempool or a block it votes for (they
/// need the fork id, which is the node's, not the ledger's).
extension Ledger {
    public static let evidenceAgeMax: UInt64 = 10_000

    /// A recorded offence: the evidence and the height of the block that carried it.
    public struct EvidenceRecord: Sendable, Equatable {
        public var evidence: DuplicateVoteEvidence
        public var height: UInt64
    }

    func evidenceProblem(_ tx: Envelope, atHeight blockHeight: UInt64) -> (DuplicateVoteEvidence?, TxOutcome) {
        guard let evidence = try? DuplicateVoteEvidence(decoding: tx.payload) else { return (nil, .malformed) }
        guard validatorKeys.contains(evidence.validator) else {
            return (nil, .evidenceRefused("\(evidence.validator) is not a validator"))
        }
        let height = evidence.first.height
        guard height <= blockHeight else {
            return (nil, .evidenceRefused("votes for height \(height), ahead of block \(blockHeight)"))
        }
        guard height + Ledger.evidenceAgeMax > blockHeight else {
            return (nil, .evidenceRefused("votes for height \(height), older than \(Ledger.evidenceAgeMax) blocks"))
        }
        if let record = evidenceRecords[evidence.key] {
            return (nil, .evidenceRefused("\(evidence.key) already recorded at block \(record.height)"))
        }
        return (evidence, .applied)
    }

    mutating func applyEvidence(_ tx: Envelope, blockHeight: UInt64) -> TxOutcome {
        let (evidence, outcome) = evidenceProblem(tx, atHeight: blockHeight)
        guard let evidence else { return outcome }
        evidenceRecords[evidence.key] = EvidenceRecord(evidence: evidence, height: blockHeight)
        return .applied
    }

    /// Forgets records too old to matter (after each block).
    mutating func pruneEvidence(blockHeight: UInt64) {
        guard blockHeight >= Ledger.evidenceAgeMax, !evidenceRecords.isEmpty else { return }
        let oldest = blockHeight - Ledger.evidenceAgeMax
        evidenceRecords = evidenceRecords.filter { $0.key.height > oldest }
    }

    public func evidence(for key: DuplicateVoteEvidence.Key) -> EvidenceRecord? { evidenceRecords[key] }

    /// Every offence on record, oldest first.
    public var recordedEvidence: [EvidenceRecord] { evidenceRecords.values.sorted { $0.evidence.key < $1.evidence.key } }
}
