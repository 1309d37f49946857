import Consensus
import Ledger
import Sodium
import Wire

extension SimNode {
    /// One message from the node in `sender`'s slot (already past the simulated network's faults).
    func receive(_ message: SimMessage, from sender: Int) {
        guard state == .running else { return }
        switch message {
        case .proposal(let proposal, let from):
            onProposal(proposal, from: from, sender: sender)
        case .block(let height, let round, let block, let id, let from):
            onBlock(ProposalKey(height: height, round: round), block, id: id, from: from)
        case .vote(let type, let vote, let from, let foreignChain):
            guard !foreignChain else {
                rejects["wrong_chain", default: 0] += 1 // the edge's signature check under our chain id fails
                return
            }
            notePeerHeight(sender, committed: max(vote.height, 1) - 1)
            guard let consensus else { return }
            if vote.height > consensus.height + 1 { requestMissingBlocks() }
            if vote.height >= consensus.height, relayed.count < SimNode.relayedMax,
               relayed.insert(RelayKey(vote: vote, type: type, from: from)).inserted {
                relay(message, from: sender) // once per vote, as the transport's de-duplication allows
            }
            keepForReplay(message)
            heldVotes.keep(message, type, value: vote.blockId, height: vote.height, round: vote.round, validator: from,
                           currentHeight: consensus.height, currentRound: consensus.round)
            drive(.vote(type, vote, from: from, signature: SimNode.unsigned))
        case .status(let height):
            let isNew = peerHeights[sender] == nil
            peerHeights[sender] = max(peerHeights[sender] ?? 0, height)
            if isNew { world.send(from: self, toSlot: sender, .status(committedHeight: storeHeight)) }
            requestMissingBlocks()
        case .blockRequest(let height):
            if height >= 1, height <= storeHeight {
                world.sendToKeyOf(sender, from: self, .blockResponse(store[Int(height - 1)]))
            }
        case .blockResponse(let committed):
            onSyncedBlock(committed)
        case .tx(let envelope):
            let outcome = ledger.admissionCheck(envelope)
            guard outcome == .applied else {
                rejects["mempool_" + outcome.label, default: 0] += 1
                return
            }
            // A client's submission (sender -1) is gossiped to every validator, as the node does.
            if mempool.add(envelope, id: envelope.id), sender < 0 { world.broadcast(from: self, message) }
        }
    }

    func notePeerHeight(_ peer: Int, committed height: UInt64) {
        peerHeights[peer] = max(peerHeights[peer] ?? 0, height)
    }

    // MARK: proposals

    private func onProposal(_ proposal: Proposal, from: Int, sender: Int) {
        guard let consensus else { return }
        if proposal.height > consensus.height + 1 {
            notePeerHeight(sender, committed: proposal.height - 1)
            requestMissingBlocks()
        }
        guard proposal.height >= consensus.height, proposal.height <= consensus.height + 1,
              proposal.round <= consensus.round + consensus.settings.roundsAheadMax else { return }
        let key = ProposalKey(height: proposal.height, round: proposal.round)
        if let existing = pending[key] {
            if existing.proposal.blockId != proposal.blockId, existing.from == from {
                rejects["conflicting_proposal", default: 0] += 1
            }
            return
        }
        guard from == validators.proposer(height: proposal.height, round: proposal.round) else { return }
        relay(.proposal(proposal, from: from), from: sender) // new for this node: `pending` had no entry
        pending[key] = PendingProposal(proposal: proposal, from: from)
        if let (block, id) = earlyBlocks.removeValue(forKey: key) { onBlock(key, block, id: id, from: from) }
    }

    private func onBlock(_ key: ProposalKey, _ block: Block?, id: Bytes32?, from: Int) {
        guard let consensus, key.height >= consensus.height, key.height <= consensus.height + 1 else { return }
        guard from == validators.proposer(height: key.height, round: key.round) else { return }
        guard let entry = pending[key] else {
            if earlyBlocks.count < SimNode.earlyBlocksMax { earlyBlocks[key] = (block, id) }
            return
        }
        guard entry.block == nil, !entry.delivered else { return }
        guard let block, let id else {
            rejects["bad_part", default: 0] += 1
            return
        }
        guard id == entry.proposal.blockId else {
            // Another proposal's block (a liar's or a twin's): its parts fail this proposal's proofs.
            rejects["bad_part", default: 0] += 1
            return
        }
        pending[key]!.block = block
        remember(block, id: id)
        deliver(key)
    }

    /// Hands a complete proposal to consensus once its block is checked against the ledger.
    private func deliver(_ key: ProposalKey) {
        guard let consensus, let entry = pending[key], !entry.delivered, let block = entry.block else { return }
        pending[key]!.delivered = true
        // Next height: checked when this one commits (`bufferedProposals`). Already committed: nothing
        // is left to decide, and the advanced ledger would call an honest late proposal invalid.
        guard key.height == consensus.height, key.height > storeHeight else { return }
        drive(.proposal(entry.proposal, from: entry.from, valid: isValid(block, key: key)))
    }

    private func isValid(_ block: Block, key: ProposalKey) -> Bool {
        let fresh = pending[key].map { $0.proposal.polRound == -1 } ?? true
        let proposer = fresh ? validators.members[validators.proposer(height: key.height, round: key.round)].publicKey : nil
        if let problem = ledger.validate(block, expectedProposer: proposer, protocolVersion: 1) {
            reportInvalid(key, problem)
            return false
        }
        return true
    }

    private func reportInvalid(_ key: ProposalKey, _ problem: String) {
        invalidProposals += 1
        log("invalid_proposal", [("height", .uint(key.height)), ("round", .uint(UInt64(key.round))),
                                 ("reason", .string(problem))])
    }

    /// Proposals for the new height that arrived early, checked now that the previous block is applied.
    func bufferedProposals() -> [Tendermint.Input] {
        guard let consensus else { return [] }
        return pending.keys.filter { $0.height == consensus.height }.sorted().compactMap { key in
            guard let entry = pending[key], entry.delivered, entry.from != me, let block = entry.block else { return nil }
            return .proposal(entry.proposal, from: entry.from, valid: isValid(block, key: key))
        }
    }

    // MARK: block sync

    func requestMissingBlocks() {
        guard stopped == nil, let best = peerHeights.values.max(), best > storeHeight else { return }
        let now = nowMs
        syncRequested = syncRequested.filter { $0.key > storeHeight && now - $0.value < SimNode.syncRetryMs }
        for height in (storeHeight + 1)...min(best, storeHeight + SimNode.syncWindow) where syncRequested[height] == nil {
            let holders = peerHeights.filter { $0.value >= height }.map(\.key).sorted()
            guard !holders.isEmpty else { continue }
            syncRequested[height] = now
            let holder = holders[Int(world.rng.next() % UInt64(holders.count))]
            world.send(from: self, toSlot: holder, .blockRequest(height: height))
        }
    }

    /// A round past 0 while +2/3 precommitted a block this node lacks: ask those who signed it.
    func fetchBlockDecidedElsewhere() {
        guard let consensus, let decided = consensus.decidedElsewhere else { return }
        for signer in decided.signers where signer != me {
            world.sendToValidator(signer, from: self, .blockRequest(height: consensus.height))
        }
    }

    private func onSyncedBlock(_ committed: CommittedBlock) {
        let height = committed.block.header.height
        guard height > storeHeight, height <= storeHeight + SimNode.syncWindow, syncBlocks[height] == nil else { return }
        syncBlocks[height] = committed
        while stopped == nil, let next = syncBlocks[storeHeight + 1] {
            syncBlocks[storeHeight + 1] = nil
            guard certificateHolds(next) else {
                rejects["sync_bad_commit", default: 0] += 1
                return
            }
            guard commit(next, source: "sync") else { return }
            drive(.committedElsewhere(height: next.block.header.height))
        }
    }

    /// The checks a node makes on a synced block: +2/3 of the stake signed this block's id, and the
    /// block extends our ledger (the signatures themselves are the simulated network's to vouch for).
    private func certificateHolds(_ committed: CommittedBlock) -> Bool {
        let certificate = committed.commit
        guard certificate.blockId == committed.block.id, certificate.height == committed.block.header.height else {
            return false
        }
        var signers = Set<UInt16>()
        var stake: UInt64 = 0
        for signature in certificate.signatures where Int(signature.validator) < validators.count {
            if signers.insert(signature.validator).inserted { stake += validators.stake(of: Int(signature.validator)) }
        }
        return world.consensusSettings.isQuorum(stake, of: validators)
            && ledger.validate(committed.block, expectedProposer: nil, protocolVersion: 1) == nil
    }

    // MARK: gossip

    func broadcastStatus() {
        lastStatusUs = world.nowUs
        world.broadcast(from: self, .status(committedHeight: storeHeight))
    }

    /// Forwards a consensus message to a few random peers (epidemic gossip), when enabled.
    func relay(_ message: SimMessage, from sender: Int) {
        let fanout = world.topology.limits.gossipRelayFanout
        guard fanout > 0 else { return }
        var candidates = world.peers(of: self).filter { $0 != sender }
        for _ in 0..<min(fanout, candidates.count) {
            let target = candidates.remove(at: Int(world.rng.next() % UInt64(candidates.count)))
            world.send(from: self, toSlot: target, message)
        }
    }

    /// Every `tickMs`: status (unless votes are flowing), re-sending a stalled height's messages,
    /// catching up, a byzantine node's floods, and the cumulative rejects.
    func tick() {
        guard state == .running else { return }
        let now = world.nowUs
        let intervalUs = world.settings.statusIntervalMs * 1_000
        if now - lastVoteSentUs >= intervalUs, now - lastStatusUs >= intervalUs { broadcastStatus() }
        requestMissingBlocks()
        rebroadcastIfStalled()
        misbehaveOnTick()
        logDrops()
    }

    private func rebroadcastIfStalled() {
        let now = world.nowUs
        // Waiting out timeout_commit is not a stall (at 100 ms blocks the node's bare 100 ms would
        // re-send every height's votes once).
        let stallUs = (max(world.settings.statusIntervalMs, 100) + world.topology.timing.timeoutCommitMs) * 1_000
        guard let consensus, now - lastProgressUs >= stallUs, now - lastRebroadcastUs >= stallUs else { return }
        lastRebroadcastUs = now
        for message in ownProposal + ownVotes { world.broadcast(from: self, message) }
        let key = ProposalKey(height: consensus.height, round: consensus.round)
        if let polRound = pending[key]?.proposal.polRound, polRound >= 0, let prevote = ownPrevotes[UInt32(polRound)] {
            world.broadcast(from: self, prevote)
        }
        if let entry = pending[key], entry.delivered, entry.from != me, let block = entry.block {
            world.broadcast(from: self, .proposal(entry.proposal, from: entry.from))
            world.broadcast(from: self, .block(height: key.height, round: key.round, block, id: entry.proposal.blockId,
                                               from: entry.from))
        }
        // Peers' votes go to one peer per stall, in turn (to all at once would be N² per stall).
        let peers = world.peers(of: self)
        guard !peers.isEmpty else { return }
        let target = peers[rebroadcasts % peers.count]
        rebroadcasts += 1
        for message in heldVotes.toResend(round: consensus.round, polRound: pending[key]?.proposal.polRound) {
            world.send(from: self, toSlot: target, message)
        }
    }

    /// The node's `drops` event: cumulative rejects by reason, written when they change.
    func logDrops() {
        guard let consensus else { return }
        let core = consensus.metrics
        var all: [(String, Int)] = [
            ("stale_height", core.staleHeight), ("future_height", core.futureHeightDropped),
            ("round_too_far", core.roundTooFarAhead), ("wrong_proposer", core.wrongProposer),
            ("conflicting_vote", core.conflictingVote), ("unknown_validator", core.unknownValidator),
            ("invalid_proposal", invalidProposals),
        ]
        all += rejects.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        let snapshot = all.filter { $0.1 > 0 }.map { ("reject_" + $0.0, $0.1) }
            + byzantineSent.sorted { $0.key < $1.key }.map { ("byzantine_sent_" + $0.key, $0.value) }
        let values = snapshot.map(\.1)
        guard values != lastDropsLogged, !values.isEmpty else { return }
        lastDropsLogged = values
        log("drops", [("total", .object(snapshot.map { ($0.0, .uint(UInt64($0.1))) }))])
    }
}
