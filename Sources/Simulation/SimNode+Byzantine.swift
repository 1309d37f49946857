import Consensus
import Ledger
import Sodium
import Wire

/// Equivocation evidence (every node) and misbehaviour on purpose, as the node's shell does it: the
/// core stays honest, the shell lies around it, so every lie is one an honest core must survive.
extension SimNode {
    func setByzantine(_ modes: [ByzantineMode]) {
        byzantine = Set(modes)
        replayPool.removeAll()
        log("byzantine", [("modes", .array(modes.map { .string($0.rawValue) }))])
    }

    /// Peers in name order, the order a lying node splits them in.
    private var peersByName: [Int] { world.peers(of: self).sorted { world.nodes[$0].name < world.nodes[$1].name } }

    /// Our own vote: to everyone, to no one (withheld), or a different vote to every other peer.
    func sendOwnVote(_ type: Tendermint.VoteType, _ vote: Vote) {
        let message = SimMessage.vote(type, vote, from: me!, foreignChain: false)
        ownVotes.append(message)
        if ownVotes.count > SimNode.ownVotesMax { ownVotes.removeFirst() }
        if type == .prevote, ownPrevotes.count < SimNode.ownPrevotesMax { ownPrevotes[vote.round] = message }
        if byzantine.contains(.withholdVotes) {
            byzantineSent["withheld_vote", default: 0] += 1
            return
        }
        guard byzantine.contains(.equivocate) else {
            world.broadcast(from: self, message)
            return
        }
        let otherId: Bytes32? = vote.blockId == nil
            ? Blake2b.hash(Array("faultline/equivocate/\(vote.height)/\(vote.round)".utf8)) : nil
        let other = SimMessage.vote(type, Vote(height: vote.height, round: vote.round, blockId: otherId), from: me!,
                                    foreignChain: false)
        recordSigned(type.kind, height: vote.height, round: vote.round, value: otherId)
        byzantineSent["equivocating_vote", default: 0] += 1
        for (index, peer) in peersByName.enumerated() {
            world.send(from: self, toSlot: peer, index % 2 == 0 ? message : other)
        }
    }

    /// Our proposal and its block: honestly, with broken parts, or a second proposal for the same
    /// round (the same transactions a millisecond later) to every other peer.
    func sendOwnProposal(_ proposal: Proposal, block: Block, id: Bytes32) {
        let messages: [SimMessage] = [
            .proposal(proposal, from: me!),
            .block(height: proposal.height, round: proposal.round, byzantine.contains(.badParts) ? nil : block,
                   id: id, from: me!),
        ]
        ownProposal = messages
        if byzantine.contains(.badParts) { byzantineSent["bad_parts", default: 0] += 1 }
        guard byzantine.contains(.doublePropose) else {
            for message in messages { world.broadcast(from: self, message) }
            return
        }
        var header = block.header
        header.timeMs += 1
        let twin = Block(header: header, txs: block.txs)
        let twinId = twin.id
        var twinProposal = proposal
        twinProposal.blockId = twinId
        recordSigned(.proposal, height: proposal.height, round: proposal.round, value: twinId)
        let others: [SimMessage] = [
            .proposal(twinProposal, from: me!),
            .block(height: proposal.height, round: proposal.round, twin, id: twinId, from: me!),
        ]
        byzantineSent["double_proposal", default: 0] += 1
        for (index, peer) in peersByName.enumerated() {
            for message in index % 2 == 0 ? messages : others { world.send(from: self, toSlot: peer, message) }
        }
    }

    /// The state root a proposal claims: ours, or (invalid_proposal) one that is wrong.
    func claimedStateRoot(height: UInt64) -> Bytes32 {
        guard byzantine.contains(.invalidProposal) else { return ledger.stateRoot }
        byzantineSent["invalid_proposal", default: 0] += 1
        return Blake2b.hash(Array("faultline/invalid-root/\(height)".utf8))
    }

    /// Keeps peers' votes to replay later (only while replaying; bounded).
    func keepForReplay(_ message: SimMessage) {
        guard byzantine.contains(.replay) else { return }
        replayPool.append(message)
        if replayPool.count > SimNode.replayPoolMax { replayPool.removeFirst() }
    }

    /// Once per tick: the floods and replays this node is told to send.
    func misbehaveOnTick() {
        guard !byzantine.isEmpty, let me, let consensus else { return }
        let count = SimNode.byzantineMessagesPerTick
        let height = consensus.height
        if byzantine.contains(.replay) {
            let old = replayPool.filter { message in
                if case .vote(_, let vote, _, _) = message { return vote.height < height }
                return true
            }
            for message in old.prefix(count) { world.broadcast(from: self, message) }
            byzantineSent["replayed", default: 0] += min(count, old.count)
        }
        if byzantine.contains(.otherChain) {
            for index in 0..<count {
                let vote = Vote(height: height, round: floodCounter &+ UInt32(index), blockId: nil)
                world.broadcast(from: self, .vote(.prevote, vote, from: me, foreignChain: true))
            }
            byzantineSent["other_chain", default: 0] += count
        }
        for (mode, vote) in ByzantineMode.floodVotes(byzantine, height: height, counter: floodCounter, count: count) {
            world.broadcast(from: self, .vote(.prevote, vote, from: me, foreignChain: false))
            byzantineSent[mode.rawValue, default: 0] += 1
        }
        floodCounter &+= UInt32(count)
    }

    // MARK: evidence

    /// One evidence transaction per offence from this node: signed for real (a ledger record of an
    /// offence is only as good as its signatures), gossiped, committed by the next proposer.
    func reportEquivocation(_ evidence: DuplicateVoteEvidence) {
        let key = evidence.key
        guard ledger.evidence(for: key) == nil, !evidenceReported.contains(key) else { return }
        if evidenceReported.count >= SimNode.evidenceReportedMax { evidenceReported.removeAll() }
        evidenceReported.insert(key)
        log("evidence", [
            ("offender", .string(world.validatorName(evidence.validator))), ("height", .uint(key.height)),
            ("round", .uint(UInt64(key.round))), ("vote", .string(key.kind.description)),
            ("blocks", .array([evidence.first.blockId, evidence.second.blockId].map { .string($0?.short ?? "nil") })),
        ])
        // The core saw the simulated network's unsigned votes; the offender did sign both, so the
        // evidence carries its real signatures (as checkable as a real node's).
        let offender = world.signingKey(keyName: world.validatorName(evidence.validator))
        var signed = evidence
        signed.firstSignature = Envelope(kind: evidence.kind, payload: evidence.first.encoded, domain: world.domain,
                                         key: offender).signature
        signed.secondSignature = Envelope(kind: evidence.kind, payload: evidence.second.encoded, domain: world.domain,
                                          key: offender).signature
        let envelope = Envelope(kind: .evidence, payload: signed.encoded, domain: world.domain,
                                key: world.signingKey(keyName: keyName))
        guard ledger.admissionCheck(envelope) == .applied, mempool.add(envelope, id: envelope.id) else { return }
        world.broadcast(from: self, .tx(envelope))
    }

    /// Records the offences a committed block carried (the ones it applied).
    func recordCommittedEvidence(_ block: Block, failedIndexes: [Int]) {
        let failed = Set(failedIndexes)
        for (index, tx) in block.txs.enumerated() where tx.kind == .evidence && !failed.contains(index) {
            guard let evidence = try? DuplicateVoteEvidence(decoding: tx.payload) else { continue }
            log("evidence_committed", [
                ("offender", .string(world.validatorName(evidence.validator))), ("height", .uint(evidence.key.height)),
                ("round", .uint(UInt64(evidence.key.round))), ("vote", .string(evidence.kind.description)),
                ("block", .uint(block.header.height)), ("reporter", .string(world.validatorName(tx.sender))),
            ])
        }
    }
}
