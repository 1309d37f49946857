import Consensus
import Transport
import Ledger
import Sodium
import Wire

/// Equivocation evidence (every node) and misbehaviour on purpose (nodes told to be byzantine).
///
/// Honest side: a conflicting vote the core detects becomes a signed `evidence` transaction, checked
/// (both signatures) by every node before its mempool or a block it votes for takes it, committed
/// once per offence. Byzantine side: the consensus core stays honest; this shell lies around it (a
/// second vote or proposal to half the peers, a wrong state root, votes kept back, old or foreign or
/// out-of-range messages), so every lie is one an honest core must survive.
extension NodeShell {
    // MARK: evidence

    func evidenceTransaction(_ evidence: DuplicateVoteEvidence) -> Envelope {
        logger.warning("equivocation: \(validatorName(evidence.validator)) signed two \(evidence.key.kind)s at \(evidence.key.height)/\(evidence.key.round)")
        return sign(.evidence, evidence)
    }

    func gossip(_ transaction: Envelope) { broadcast(transaction) }

    /// Evidence from a peer or a block: both votes must carry the offender's signatures under our domain.
    func evidenceSignatureProblem(_ tx: Envelope) -> String? {
        guard tx.kind == .evidence else { return nil }
        guard let evidence = try? DuplicateVoteEvidence(decoding: tx.payload) else { return "evidence does not decode" }
        return evidence.problem(domain: domain)
    }

    func validatorName(_ key: PublicKey) -> String {
        validators.index(of: key).map { validators.members[$0].name } ?? peers[key]?.name ?? key.description
    }

    /// Rejections of peers' consensus input by reason, core and shell together, for the `drops` event.
    var consensusRejects: [(String, Int)] {
        Replica.rejectCounts(core: consensus.metrics, invalidProposals: invalidProposalCount,
                             conflictingProposals: proposals.conflicting, shell: shellRejects)
    }

    // MARK: byzantine behaviour

    func byzantineChanged(_ modes: [ByzantineMode]) {
        logger.notice("byzantine modes now: \(modes.isEmpty ? "none" : modes.map(\.rawValue).joined(separator: ", "))")
    }

    /// Peers in the order a lying node splits them.
    var peersByName: [String] { peers.values.map(\.name).sorted() }

    /// Sends our proposal and its parts as the replica core plans it: honestly, with broken parts, or a
    /// second proposal for the same round to every other peer.
    func sendOwnProposal(_ envelopes: [Envelope], block: Block, height: UInt64, round: UInt32, polRound: Int32) {
        switch replica.planOwnProposal(block) {
        case .honest:
            replica.proposed(envelopes)
            for envelope in envelopes { broadcast(envelope) }
        case .badParts:
            let broken = envelopes.map { envelope -> Envelope in
                guard envelope.kind == .blockPart, var part = try? BlockPart(decoding: envelope.payload),
                      !part.part.data.isEmpty else { return envelope }
                part.part.data[0] ^= 0xFF
                return sign(.blockPart, part)
            }
            replica.proposed(broken)
            for envelope in broken { broadcast(envelope) }
        case .double(let twin):
            let (root, parts) = PartSet.split(twin.encoded, payloadBytesMax: config.limits.datagramPayloadBytesMax,
                                              fixedOverhead: Envelope.overheadBytes + 12)
            let proposal = Proposal(height: height, round: round, polRound: polRound, blockId: twin.id, partsRoot: root,
                                    partCount: UInt16(parts.count),
                                    blockBytes: UInt32(parts.reduce(0) { $0 + $1.data.count }))
            recordSigned(.proposal, height: height, round: round, value: twin.id)
            let others = [sign(.proposal, proposal)]
                + parts.map { sign(.blockPart, BlockPart(height: height, round: round, part: $0)) }
            replica.proposed(envelopes)
            let (first, second) = Replica.halves(peersByName)
            for peer in first { for envelope in envelopes { send(envelope, toLink: peer) } }
            for peer in second { for envelope in others { send(envelope, toLink: peer) } }
        }
    }

    func foreignVoteMessage(_ vote: Vote) -> Envelope {
        Envelope(kind: .prevote, payload: vote.encoded, domain: Domain(chainId: config.chainId + "/other", forkId: config.forkId),
                 key: key)
    }
}
