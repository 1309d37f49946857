import Basics
import Consensus
import Ledger
import Sodium
import Wire

extension SimNode {
    /// One message from the node in `sender`'s slot (already past the simulated network's faults).
    func receive(_ message: SimMessage, from sender: Int) {
        guard state == .running else { return }
        if sender >= 0, !admitted(message, from: sender) { return }
        switch message {
        case .hello(let identity, let signedForFork, let replyWanted):
            heardHello(identity, signedForFork: signedForFork, replyWanted: replyWanted, from: sender)
        case .proposal(let proposal, let from):
            startConsensusNow() // consensus traffic means peers are running already
            onProposal(proposal, from: from, sender: sender)
        case .block(let height, let round, let block, let id, let from):
            onBlock(ProposalKey(height: height, round: round), block, id: id, from: from)
        case .vote(let type, let vote, let from, let foreignChain):
            guard !foreignChain else {
                rejects["wrong_chain", default: 0] += 1 // the edge's signature check under our chain id fails
                return
            }
            startConsensusNow()
            notePeerHeight(validator: from, committed: max(vote.height, 1) - 1)
            guard let at = position else { return }
            if vote.height > at.height + 1 { requestMissingBlocks() }
            if vote.height >= at.height, relayed.count < SimNode.relayedMax,
               relayed.insert(RelayKey(vote: vote, type: type, from: from)).inserted {
                relay(message, from: sender) // once per vote, as the transport's de-duplication allows
            }
            replica.heardVote(message, type, vote, validator: from, at: at)
            drive(.vote(type, vote, from: from, signature: SimNode.unsigned))
        case .status(let height):
            if replica.heardStatus(world.keySlots[sender], committed: height, nowMs: nowMs) {
                world.send(from: self, toSlot: sender, .status(committedHeight: storeHeight))
            }
            startConsensusIfReady()
            requestMissingBlocks()
        case .blockRequest(let height):
            if height >= 1, height <= storeHeight {
                world.sendToKeyOf(sender, from: self, .blockResponse(store[Int(height - 1)]))
            }
        case .blockResponse(let committed):
            onSyncedBlock(committed)
        case .tx(let envelope):
            if envelope.kind.isL2Transaction || envelope.kind == .l2BlockPart {
                receiveRollup(envelope, from: sender)
                return
            }
            let outcome = ledger.admissionCheck(envelope)
            guard outcome == .applied else {
                rejects["mempool_" + outcome.label, default: 0] += 1
                return
            }
            // A client's submission (sender -1) is gossiped to every validator, as the node does.
            if mempool.add(envelope, id: envelope.id), sender < 0 { world.broadcast(from: self, message) }
        }
    }

    /// What a validator's message says about it: it has committed `height` (as the node reads an envelope's signer).
    func notePeerHeight(validator: Int, committed height: UInt64) {
        guard validator != me, let slot = world.keySlot(ofValidator: validator) else { return }
        replica.heard(slot, committedAtLeast: height, nowMs: nowMs)
    }

    // MARK: handshake

    /// The receiving edge and the handshake: a message signed for another fork fails its signature check
    /// (hellos are checked under the fork they name); nothing but hellos and transactions is taken from
    /// a peer not accepted yet, and its consensus messages wait for the handshake (as the node's).
    private func admitted(_ message: SimMessage, from sender: Int) -> Bool {
        let kind = message.kind
        guard kind != .hello, !kind.isFromAnyone else { return true }
        guard world.nodes[sender].binary.forkId == binary.forkId else {
            rejects["wrong_fork", default: 0] += 1
            return false
        }
        guard !handshakes.isAccepted(sender) else { return true }
        _ = handshakes.hold(HeldMessage(message: message, sender: sender), from: sender,
                            consensusLane: kind.isConsensusLane)
        return false
    }

    var linkPeers: [Int] { world.peers(of: self) }
    var handshakeChecksRules: Bool { world.topology.handshakeChecksRules }

    func sendHello(replyWanted: Bool, to peer: Int) {
        world.send(from: self, toSlot: peer, .hello(binary.identity, signedForFork: binary.forkId, replyWanted: replyWanted))
    }

    func linkName(_ peer: Int) -> String { world.nodes[peer].name }

    func handshakeHeard(_ peer: Int, _ outcome: Replica.Handshakes<Int, HeldMessage>.HelloOutcome) {}

    func receiveHeld(_ input: HeldMessage) { receive(input.message, from: input.sender) }

    // MARK: proposals

    private func onProposal(_ proposal: Proposal, from: Int, sender: Int) {
        guard let at = position else { return }
        if proposal.height > at.height + 1 {
            notePeerHeight(validator: from, committed: proposal.height - 1)
            requestMissingBlocks()
        }
        guard proposals.take(proposal, from: from, body: WholeBlock(), at: at,
                             roundsAheadMax: world.consensusSettings.roundsAheadMax,
                             proposer: validators.proposer(height: proposal.height, round: proposal.round)) else { return }
        relay(.proposal(proposal, from: from), from: sender)
        let key = ProposalKey(height: proposal.height, round: proposal.round)
        if let block = proposals.block(proposal.blockId) {
            deliver(key, block: block)
        } else if let (block, id) = earlyBlocks.removeValue(forKey: key) {
            onBlock(key, block, id: id, from: from)
        }
    }

    private func onBlock(_ key: ProposalKey, _ block: Block?, id: Bytes32?, from: Int) {
        guard let height = position?.height, key.height >= height, key.height <= height + 1 else { return }
        guard from == validators.proposer(height: key.height, round: key.round) else { return }
        guard let entry = proposals[key] else {
            if earlyBlocks.count < SimNode.earlyBlocksMax { earlyBlocks[key] = (block, id) }
            return
        }
        guard !entry.delivered else { return }
        // No block: parts that fail their proofs. Another proposal's block (a liar's or a twin's): its parts
        // fail this proposal's proofs.
        guard let block, let id, id == entry.proposal.blockId else {
            rejects["bad_part", default: 0] += 1
            return
        }
        deliver(key, block: block)
    }

    /// The simulated network is authenticated by construction: nothing more to check.
    func transactionProblem(_ block: Block) -> String? { nil }

    func countInvalidProposal(_ key: ProposalKey, _ problem: String) { invalidProposals += 1 }

    // MARK: block sync

    func requestBlock(_ height: UInt64, from holder: Int) { world.sendToKeyOf(holder, from: self, .blockRequest(height: height)) }

    var decidedElsewhereSigners: [Int]? { consensus?.decidedElsewhere?.signers }

    func peer(ofValidator index: Int) -> Int? { world.keySlot(ofValidator: index) }

    /// The run's generator, drawn from in agenda order by every node.
    var rng: SplitMix64 {
        get { world.rng }
        set { world.rng = newValue }
    }

    private func onSyncedBlock(_ committed: CommittedBlock) {
        let height = committed.block.header.height
        guard height > storeHeight, height <= storeHeight + Replica.Settings.syncWindow, syncBlocks[height] == nil else { return }
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
        // A block that carries another state root is committed (and stops this node), as the node's sync does.
        let base = baseLedger(for: committed.block)
        return world.consensusSettings.isQuorum(stake, of: validators)
            && (committed.block.header.stateRoot != base.stateRoot
                || base.validate(committed.block, expectedProposer: nil, protocolVersion: binary.protocolVersion) == nil)
    }

    // MARK: gossip

    func broadcastStatus() {
        replica.sentStatus(nowMs: nowMs)
        world.broadcast(from: self, .status(committedHeight: storeHeight))
    }

    /// Forwards a consensus message to a few random peers (epidemic gossip), when enabled.
    func relay(_ message: SimMessage, from sender: Int) {
        guard replica.settings.relayFanout > 0 else { return }
        for target in replica.relayTargets(world.peers(of: self).filter { $0 != sender }, rng: &world.rng) {
            world.send(from: self, toSlot: target, message)
        }
    }

    /// Every status interval (the node's tick): status (unless votes are flowing), re-sending a stalled height's messages,
    /// catching up, a byzantine node's floods, and the cumulative rejects.
    func tick() {
        guard state == .running else { return }
        rollup?.onStatusTick(host: self)
        resendHellos()
        if replica.statusDue(nowMs: nowMs) { broadcastStatus() }
        startConsensusIfReady()
        requestMissingBlocks()
        if stopped == nil { rebroadcastIfStalled() }
        misbehaveOnTick()
        updateVotesOnly()
        logDrops()
        logSample()
    }

    /// The modelled ingress reads the switch.
    func votesOnlyChanged(_ on: Bool) { world.ingress[slot]?.setVotesOnly(on, nowUs: world.nowUs) }

    /// A vote waited this long at the modelled ingress before its check (see `SimIngress`).
    func votesWaited(_ waitedUs: UInt64) {
        if world.logs.enabled, voteWaitsMs.count < SimNode.voteWaitsMax { voteWaitsMs.append(waitedUs / 1_000) }
    }

    static let voteWaitsMax = 100_000

    /// Once a second, with a modelled receive path (a validator's under spam, the sequencer's under an
    /// airdrop): the node's sample (vote waits, kernel drops), as the node writes it.
    private func logSample() {
        guard nowMs - lastSampleMs >= 1_000 else { return }
        if world.ingress[slot] != nil {
            lastSampleMs = nowMs
            world.ingress[slot]!.advance(to: world.nowUs)
            log(.sample(voteDelaysMs: voteWaitsMs.sorted(), kernelDrops: world.ingress[slot]!.kernelDrops))
            voteWaitsMs.removeAll(keepingCapacity: true)
        } else if role == "sequencer", !world.airdrops.isEmpty {
            lastSampleMs = nowMs
            // The clients' socket: the user lane's with lanes, the one socket without.
            let dropped = world.airdrops.values.reduce(0) { $0 + $1.path.kernelDrops }
            log(.sample(voteDelaysMs: [], kernelDrops: [(world.topology.limits.lanes ? "user" : "", UInt64(dropped))]))
        }
    }

    var peerIds: [Int] { world.peerKeys(of: self) }

    func proposalMessages(_ entry: Replica.Proposals<WholeBlock>.Entry) -> [SimMessage] {
        let key = entry.proposal
        return [.proposal(entry.proposal, from: entry.from),
                .block(height: key.height, round: key.round, entry.block, id: entry.proposal.blockId, from: entry.from)]
    }

    /// Performs what the replica core plans to send.
    func perform(_ sends: [Replica.Send<SimMessage, Int>]) {
        for planned in sends {
            switch planned {
            case .everyone(let message): world.broadcast(from: self, message)
            case .everyoneBut(let message, let validator):
                for slot in world.peers(of: self) where world.nodes[slot].me != validator {
                    world.send(from: self, toSlot: slot, message)
                }
            case .peer(let message, let slot): world.sendToKeyOf(slot, from: self, message)
            }
        }
    }

    /// The node's `drops` event: cumulative rejects by reason, written when they change.
    func logDrops() {
        guard let consensus else { return }
        let snapshot = Replica.rejectCounts(core: consensus.metrics, invalidProposals: invalidProposals,
                                            conflictingProposals: proposals.conflicting, shell: rejects)
            + replica.byzantine.sent.sorted { $0.key < $1.key }.map { ("byzantine_sent_" + $0.key, $0.value) }
            + (world.ingress[slot]?.dropCounts ?? [])
        let values = snapshot.map(\.1)
        guard values != lastDropsLogged, !values.isEmpty else { return }
        lastDropsLogged = values
        log(.drops(snapshot))
    }
}
