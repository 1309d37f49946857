import Consensus
import Ledger
import Sodium
import Wire

/// What the node adds to the shared evidence and byzantine logic (`ReplicaHost`, `Replica.Instance`): its
/// signature on evidence, names for the operator's log, and the order it splits peers in.
extension NodeShell {
    // MARK: evidence

    func evidenceTransaction(_ evidence: DuplicateVoteEvidence) -> Envelope {
        logger.warning("equivocation: \(validatorName(evidence.validator)) signed two \(evidence.key.kind)s at \(evidence.key.height)/\(evidence.key.round)")
        return sign(.evidence, evidence)
    }

    func validatorName(_ key: PublicKey) -> String {
        validators.index(of: key).map { validators.members[$0].name } ?? peers[key]?.name ?? key.description
    }

    // MARK: byzantine behaviour

    func byzantineChanged(_ modes: [ByzantineMode]) {
        logger.notice("byzantine modes now: \(modes.isEmpty ? "none" : modes.map(\.rawValue).joined(separator: ", "))")
    }

    /// Peers in the order a lying node splits them.
    var peersByName: [String] { peers.values.map(\.name).sorted() }
}
