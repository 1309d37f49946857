import Consensus
import Ledger
import Sodium
import Wire

/// What the simulated node adds to the shared evidence and byzantine logic (`ReplicaHost`, `Replica.Instance`):
/// evidence signed for real, and the order it splits peers in.
extension SimNode {
    func byzantineChanged(_ modes: [ByzantineMode]) {}

    /// Peers in name order, one per key (as the node's peer table), the order a lying node splits them in.
    var peersByName: [Int] { world.peerKeys(of: self).sorted { world.nodes[$0].name < world.nodes[$1].name } }

    // MARK: evidence

    /// Evidence is signed for real (a ledger record of an offence is only as good as its signatures): the
    /// core saw the simulated network's unsigned votes; the offender did sign both, so the evidence carries
    /// its real signatures (as checkable as a real node's).
    func evidenceTransaction(_ evidence: DuplicateVoteEvidence) -> Envelope {
        let offender = world.signingKey(keyName: world.validatorName(evidence.validator))
        var signed = evidence
        signed.firstSignature = Envelope(kind: evidence.kind, payload: evidence.first.encoded, domain: world.domain,
                                         key: offender).signature
        signed.secondSignature = Envelope(kind: evidence.kind, payload: evidence.second.encoded, domain: world.domain,
                                          key: offender).signature
        return Envelope(kind: .evidence, payload: signed.encoded, domain: world.domain, key: world.signingKey(keyName: keyName))
    }

    func validatorName(_ key: PublicKey) -> String { world.validatorName(key) }
}
