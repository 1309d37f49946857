import Consensus
import Ledger
import Sodium
import Transport
import Wire

extension NodeShell {
    func handleMessage(_ envelope: Envelope, _ message: Message, fromPeer: Bool) {
        // Nothing but a hello (and user transactions) is taken from a peer before its handshake succeeded.
        if envelope.kind != .hello, !envelope.kind.isFromAnyone, let peer = peers[envelope.sender],
           !handshakes.isAccepted(peer.name) {
            // Not refused, only not yet accepted: consensus messages wait for the handshake (bounded).
            let message = HeldMessage(envelope: envelope, message: message, fromPeer: fromPeer)
            if !handshakes.hold(message, from: peer.name, consensusLane: envelope.kind.isConsensusLane) {
                metrics.noHandshakeDropped.increment()
            }
            return
        }
        switch message {
        case .hello(let hello):
            onHello(hello, envelope: envelope)
        case .transfer, .batchChunk, .forcedTx, .dispute, .evidence:
            if let problem = evidenceSignatureProblem(envelope) {
                shellRejects["evidence_unsigned", default: 0] += 1
                logger.warning("evidence from \(envelope.sender) refused: \(problem)")
                return
            }
            // CheckTx: only transactions that can still apply enter the mempool (and are gossiped).
            let outcome = ledger.admissionCheck(envelope)
            guard outcome == .applied else {
                mempoolRejected[outcome.label, default: 0] += 1
                return
            }
            let id = envelope.id
            if mempool.add(envelope, id: id), !fromPeer {
                broadcast(envelope) // a client submission: gossip it to every validator
            }
            metrics.mempoolTxs.record(mempool.count)
        case .proposal(let proposal):
            onProposal(proposal, envelope: envelope)
        case .blockPart(let part):
            onBlockPart(part, envelope: envelope)
        case .prevote(let vote), .precommit(let vote):
            startConsensusNow() // consensus traffic means peers are running already
            guard let from = validators.index(of: envelope.sender) else { return }
            notePeerHeight(envelope.sender, committed: max(vote.height, 1) - 1)
            // Two heights behind: this node can no longer take the current proposal, ask for blocks now
            // rather than at the next tick (with no pause after commits a height takes a few ms).
            if vote.height > consensus.height + 1 { requestMissingBlocks() }
            if vote.height >= consensus.height { relay(envelope) }
            let type: Tendermint.VoteType = envelope.kind == .prevote ? .prevote : .precommit
            replica.heardVote(envelope, type, vote, validator: from, at: (consensus.height, consensus.round))
            drive(.vote(type, vote, from: from, signature: envelope.signature))
        case .status(let status):
            if replica.heardStatus(envelope.sender, committed: status.committedHeight, nowMs: clock()) {
                // A peer we had not heard from (just started, or restarted): answer at once.
                send(sign(.status, StatusMessage(committedHeight: store.height, round: consensus.round, timeMs: clock())),
                     toKey: envelope.sender)
            }
            startConsensusIfReady()
            requestMissingBlocks()
        case .blockRequest(let request):
            serveBlock(request.height, to: envelope.sender)
        case .syncPart(let part):
            onSyncPart(part, from: envelope.sender)
        case .syncCommit(let commit):
            onSyncCommit(commit, from: envelope.sender)
        case .l2Transfer, .l2Claim, .l2Reject, .l2BlockPart:
            rollup?.onPeerMessage(envelope, message, host: self)
        }
    }

    /// What a verified vote says about its author: it has committed the height before the vote's.
    func notePeerHeight(_ peer: PublicKey, committed height: UInt64) {
        guard peers[peer] != nil else { return }
        replica.heard(peer, committedAtLeast: height, nowMs: clock())
    }

    private func onProposal(_ proposal: Proposal, envelope: Envelope) {
        startConsensusNow()
        guard let from = validators.index(of: envelope.sender) else { return }
        if proposal.height > consensus.height + 1 {
            notePeerHeight(envelope.sender, committed: proposal.height - 1)
            requestMissingBlocks()
        }
        let assembly = PartAssembly(
            assembler: PartSet.Assembler(root: proposal.partsRoot, total: Int(proposal.partCount),
                                         bytesMax: min(Block.bytesMax, Int(proposal.blockBytes))),
            envelopes: [envelope])
        guard proposals.take(proposal, from: from, body: assembly, at: (consensus.height, consensus.round),
                             roundsAheadMax: consensus.settings.roundsAheadMax,
                             proposer: validators.proposer(height: proposal.height, round: proposal.round)) else { return }
        relay(envelope)
        let key = ProposalKey(height: proposal.height, round: proposal.round)
        if let block = proposals.block(proposal.blockId) {
            deliver(key, block: block)
            return
        }
        for (part, partEnvelope) in earlyParts.removeValue(forKey: key) ?? [] {
            earlyPartCount -= 1
            addPart(part, envelope: partEnvelope, key: key)
        }
    }

    private func onBlockPart(_ part: BlockPart, envelope: Envelope) {
        let key = ProposalKey(height: part.height, round: part.round)
        guard part.height >= consensus.height, part.height <= consensus.height + 1,
              part.round <= consensus.round + consensus.settings.roundsAheadMax else { return }
        // Parts are authored by the round's proposer; anything else is dropped.
        guard validators.index(of: envelope.sender) == validators.proposer(height: part.height, round: part.round) else {
            return
        }
        if proposals[key] == nil {
            if earlyPartCount < NodeShell.earlyPartsMax {
                earlyParts[key, default: []].append((part, envelope))
                earlyPartCount += 1
            }
            return
        }
        relay(envelope)
        addPart(part, envelope: envelope, key: key)
    }

    private func addPart(_ part: BlockPart, envelope: Envelope, key: ProposalKey) {
        guard let entry = proposals[key], !entry.delivered else { return }
        // Changed in place: a copy of the assembly would copy the block's bytes gathered so far on every part.
        let result = proposals.updateBody(key) { assembly -> PartSet.Assembler.AddResult in
            let result = assembly.assembler.add(part.part)
            switch result {
            case .added, .complete: assembly.envelopes.append(envelope)
            case .duplicate, .rejected: break
            }
            return result
        }
        switch result {
        case .added, .duplicate, nil:
            break
        case .rejected(let reason):
            shellRejects["bad_part", default: 0] += 1
            logger.debug("part \(part.part.index) of \(key.height)/\(key.round) rejected: \(reason)")
        case .complete(let bytes):
            guard let block = try? Block(decoding: bytes) else {
                reportInvalid(key, "block bytes do not decode")
                return
            }
            guard block.id == entry.proposal.blockId else {
                reportInvalid(key, "block id \(block.id) does not match the proposal's \(entry.proposal.blockId)")
                return
            }
            deliver(key, block: block)
        }
    }

    func transactionProblem(_ block: Block) -> String? { unverifiedTransactionProblem(block) }

    func countInvalidProposal(_ key: ProposalKey, _ problem: String) {
        metrics.invalidProposals.increment()
        invalidProposalCount += 1
        logger.warning("invalid proposal at \(key.height)/\(key.round): \(problem)")
    }

    /// Every transaction's signature is checked, except those already verified into the mempool and
    /// the batch chunks this node (the sequencer) signed itself.
    func unverifiedTransactionProblem(_ block: Block) -> String? {
        for tx in block.txs where !mempool.contains(tx.id) && rollup?.signedChunks.contains(tx.id) != true {
            metrics.blockTxChecks.increment()
            guard tx.verify(domain: domain) == .valid else { return "transaction \(tx.id) has a bad signature" }
            if let problem = evidenceSignatureProblem(tx) { return "evidence \(tx.id): \(problem)" }
        }
        return nil
    }
}
