import Consensus
import Ledger
import Sodium
import Wire

/// Equivocation evidence (every node) and misbehaviour on purpose, as the node's shell does it: the
/// core stays honest, the shell lies around it, so every lie is one an honest core must survive.
extension SimNode {
    func byzantineChanged(_ modes: [ByzantineMode]) {}

    /// Peers in name order, one per key (as the node's peer table), the order a lying node splits them in.
    var peersByName: [Int] { world.peerKeys(of: self).sorted { world.nodes[$0].name < world.nodes[$1].name } }

    /// Our proposal and its block as the replica core plans it: honestly, with broken parts, or a second
    /// proposal for the same round to every other peer.
    func sendOwnProposal(_ proposal: Proposal, block: Block, id: Bytes32) {
        let plan = replica.planOwnProposal(block)
        let messages: [SimMessage] = [
            .proposal(proposal, from: me!),
            .block(height: proposal.height, round: proposal.round, plan == .badParts ? nil : block, id: id, from: me!),
        ]
        replica.proposed(messages)
        guard case .double(let twin) = plan else {
            for message in messages { world.broadcast(from: self, message) }
            return
        }
        let twinId = twin.id
        var twinProposal = proposal
        twinProposal.blockId = twinId
        recordSigned(.proposal, height: proposal.height, round: proposal.round, value: twinId)
        let others: [SimMessage] = [
            .proposal(twinProposal, from: me!),
            .block(height: proposal.height, round: proposal.round, twin, id: twinId, from: me!),
        ]
        let (first, second) = Replica.halves(peersByName)
        for peer in first { for message in messages { world.send(from: self, toSlot: peer, message) } }
        for peer in second { for message in others { world.send(from: self, toSlot: peer, message) } }
    }

    func foreignVoteMessage(_ vote: Vote) -> SimMessage { .vote(.prevote, vote, from: me!, foreignChain: true) }

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

    func gossip(_ transaction: Envelope) { world.broadcast(from: self, .tx(transaction)) }

    func validatorName(_ key: PublicKey) -> String { world.validatorName(key) }
}
