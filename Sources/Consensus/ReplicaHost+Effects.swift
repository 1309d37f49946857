import Basics
import DequeModule
import Ledger
import Sodium
import Wire

/// The consensus core's effects, the commit path, starting and stopping, evidence and byzantine switches,
/// stall re-sends and sync requests, and the handshake: written once for both shells (see `ReplicaHost`).
extension ReplicaHost {
    /// Carries out one effect of the consensus core, the same way in both shells; what it feeds back (this
    /// node's own proposal and vote) goes to `feedback`.
    @inlinable
    public func execute(_ effect: Tendermint.Effect, feedback: inout Deque<Tendermint.Input>) {
        switch effect {
        case .persistSignState(let state):
            pendingSignState = state // made durable with the message, by the signing effect that follows
        case .propose(let height, let round, let blockId, let polRound):
            guard let state = pendingSignState.take(), persistSignState(state, kind: .proposal, payload: []) else { return }
            if let proposal = propose(height: height, round: round, reuse: blockId, polRound: polRound) {
                feedback.append(.proposal(proposal, from: me!, valid: true))
            }
        case .broadcastVote(let type, let vote):
            guard let state = pendingSignState.take(), persistSignState(state, kind: type.kind, payload: vote.encoded) else {
                return
            }
            let signature = castVote(type, vote)
            feedback.append(.vote(type, vote, from: me!, signature: signature))
        case .sendVote(let type, let vote, let leader):
            guard let state = pendingSignState.take(), persistSignState(state, kind: type.kind, payload: vote.encoded) else {
                return
            }
            let signature = castVote(type, vote, to: leader)
            feedback.append(.vote(type, vote, from: me!, signature: signature))
        case .sendCertificate(let type, let vote, let signatures, let to):
            sendCertificate(type, vote, signatures: signatures, to: to)
        case .broadcastTimeout(let vote):
            let message = envelope(.timeout, vote)
            sendToAll(message)
            feedback.append(.timeoutVote(vote, from: me!, signature: message.signature))
        case .scheduleTimeout(let kind, let height, let round, let durationMs):
            scheduleTimeout(kind, height: height, round: round, afterMs: durationMs)
        case .decide(let height, let round, let blockId, let signatures):
            guard let block = proposals.block(blockId) else {
                preconditionFailure("decided block \(blockId) at height \(height) is not known")
            }
            commit(CommittedBlock(block: block, commit: CommitCertificate(height: height, round: round, blockId: blockId,
                                                                          signatures: signatures)), source: "consensus")
        case .roundStarted(let height, let round):
            if round > 0 {
                record(.round(height: height, round: round), flush: false)
                fetchBlockDecidedElsewhere()
            }
            roundStarted(height: height, round: round)
        case .equivocation(let evidence):
            reportEquivocation(evidence)
        case .newHeight(let height):
            replica.startedHeight(height, nowMs: nowMs)
            // Proposals for the new height that arrived early, checked now that the previous block is applied.
            reception.forgetBelow(height: height)
            forgetBelow(height: height)
            for (proposal, from, block) in proposals.startedHeight(height, me: me) {
                let key = Replica.ProposalKey(height: proposal.height, round: proposal.round)
                feedback.append(.proposal(proposal, from: from, valid: isValid(block, key: key)))
            }
        }
    }

    /// This node's message, for its own chain and fork.
    @inlinable
    public func envelope(_ kind: MessageKind, _ payload: some WireCodable) -> Envelope {
        envelope(kind, payload.encoded, domain: domain)
    }

    /// The write-ahead rule: the sign state is durable before the signature exists. A state that is not
    /// above the last one made durable (which the core never emits) or a failed write means: do not sign.
    @inlinable
    public func persistSignState(_ state: Tendermint.SignState, kind: MessageKind, payload: [UInt8]) -> Bool {
        if let last = lastSignState, state <= last {
            reception.rejects["refused_to_resign", default: 0] += 1
            warn("refusing to sign at \(state.height)/\(state.round)/\(state.step): already signed \(last.height)/\(last.round)/\(last.step)")
            return false
        }
        if coreSettings.planted == .signStateUnpersisted { return true } // the planted bug: signed, not made durable
        return writeSignState(state, kind: kind, payload: payload)
    }

    /// Every consensus signature this validator makes, in the event log and flushed to the kernel before the
    /// message leaves (so it survives SIGKILL): analysis proves from these that no height/round/step was ever
    /// signed for two values (a byzantine node's second value included).
    @inlinable
    public func recordSigned(_ kind: MessageKind, height: UInt64, round: UInt32, value: Bytes32?) {
        signed(kind, height: height, round: round, value: value, validator: signerName)
        record(.signed(kind, height: height, round: round, value: value, validator: signerName), flush: true)
    }

    /// By default a shell keeps nothing per height beyond what the shared logic keeps.
    @inlinable
    public func forgetBelow(height: UInt64) {}

    /// Signs, records and sends this node's vote (to every peer, or to validator `to` only); returns its signature.
    @inlinable
    public func castVote(_ type: Tendermint.VoteType, _ vote: Vote, to validator: Int? = nil) -> Bytes64 {
        let message = envelope(type.kind, vote)
        recordSigned(type.kind, height: vote.height, round: vote.round, value: vote.blockId)
        replica.signedVote(message, type, round: vote.round, nowMs: nowMs)
        sendOwnVote(message, type, vote, to: validator)
        return message.signature
    }

    /// Sends a message to every peer (`validator` nil) or to the peer signing as that validator (none for this
    /// node itself).
    @inlinable
    public func send(_ message: Envelope, toValidator validator: Int?) {
        guard let validator else { return sendToAll(message) }
        guard validator != me, let peer = peer(ofValidator: validator) else { return }
        send(message, toPeer: peer)
    }

    /// Forwards votes' signatures as certificate messages of at most `VoteBundle.signaturesMax` each.
    @inlinable
    public func sendCertificate(_ type: BFT.VoteType, _ vote: Vote, signatures: [CommitCertificate.Signature], to: Int?) {
        var start = 0
        while start < signatures.count {
            let end = min(signatures.count, start + VoteBundle.signaturesMax)
            send(envelope(.certificate, VoteBundle(kind: type.kind, vote: vote, signatures: Array(signatures[start..<end]))),
                 toValidator: to)
            start = end
        }
    }

    /// Sends the vote signed before a crash again to every peer and records it (never a new signature:
    /// Ed25519 signs the same message identically); returns its signature.
    @inlinable
    public func resendVote(_ type: Tendermint.VoteType, _ vote: Vote) -> Bytes64 {
        let message = envelope(type.kind, vote)
        recordSigned(type.kind, height: vote.height, round: vote.round, value: vote.blockId)
        replica.signedVote(message, type, round: vote.round, nowMs: nowMs)
        sendToAll(message)
        return message.signature
    }

    /// Sends our own vote as the replica core plans it: to everyone, to no one (withheld), or a different
    /// vote to half of the peers.
    @inlinable
    public func sendOwnVote(_ message: Envelope, _ type: Tendermint.VoteType, _ vote: Vote, to validator: Int? = nil) {
        switch replica.planOwnVote(vote) {
        case .honest:
            send(message, toValidator: validator)
        case .withhold:
            break
        case .equivocate(let otherId):
            let other = envelope(type.kind, Vote(height: vote.height, round: vote.round, blockId: otherId))
            recordSigned(type.kind, height: vote.height, round: vote.round, value: otherId)
            if let validator { // one leader hears both (and proves the offence)
                send(message, toValidator: validator)
                send(other, toValidator: validator)
                return
            }
            let (first, second) = Replica.halves(peersByName)
            for peer in first { send(message, toLink: peer) }
            for peer in second { send(other, toLink: peer) }
        }
    }

    /// Votes-only mode (`Replica.Instance.updateVotesOnly`), checked at every tick and commit.
    @inlinable
    public func updateVotesOnly() {
        guard consensusStarted, let on = replica.updateVotesOnly(nowMs: nowMs) else { return }
        votesOnlyChanged(on)
        record(.votesOnly(on), flush: false)
    }

    /// Once per tick: the floods and replays the replica core plans for a byzantine node.
    @inlinable
    public func misbehaveOnTick() {
        guard me != nil, let height = corePosition?.height else { return }
        let plan = replica.misbehaviour(height: height)
        for message in plan.replays { sendToAll(message) }
        // Junk signed for another chain: the receiving edge refuses it.
        if !plan.otherChain.isEmpty {
            let otherChain = Domain(chainId: domain.chainId + "/other", forkId: domain.forkId)
            for vote in plan.otherChain { sendToAll(envelope(.prevote, vote.encoded, domain: otherChain)) }
        }
        for vote in plan.floods { sendToAll(envelope(.prevote, vote)) }
    }

    /// A binary started at a height whose rules it no longer implements refuses to run: the reason, recorded
    /// (nil: it may run).
    @inlinable
    public func refusalToStart() -> String? {
        guard let reason = binary.refusalToStart(at: storeHeight + 1, plans: plans) else { return nil }
        record(.refusedStart(height: storeHeight + 1, reason: reason), flush: true)
        return reason
    }

    /// A started process: a hello to every peer, a stop if the next height needs rules this binary lacks,
    /// this node's status, and consensus once enough peers are heard from.
    @inlinable
    public func startReplica() {
        for peer in linkPeers { sendHello(to: peer) }
        if case .upgradeNeeded(let plan) = binary.rules(at: storeHeight + 1, plans: plans) {
            stop(.upgrade(plan, height: storeHeight + 1, binary: binary))
        }
        broadcastStatus()
        startConsensusIfReady()
    }

    /// Consensus starts once peers with +2/3 of the stake (counting this node) have been heard from, or after
    /// `Replica.Settings.startWaitMaxMs`, so the first proposal is not sent into the void.
    @inlinable
    public func startConsensusIfReady() {
        guard !consensusStarted else { return }
        let stake = heardValidators.reduce(UInt64(0)) { $0 + validators.stake(of: $1) }
        guard validators.isQuorum(stake) || nowMs - startedAtMs >= Replica.Settings.startWaitMaxMs else { return }
        startConsensusNow()
    }

    /// Starts the core. A vote signed just before a crash may never have left: the recorded one goes out
    /// again (one the core signed just now has gone out already).
    @inlinable
    public func startConsensusNow() {
        guard !consensusStarted, decidesNow else { return }
        consensusStarted = true
        replica.committed(nowMs: nowMs)
        let signedBefore = lastSignState
        drive(.start)
        guard lastSignState == signedBefore, let me, let state = lastSignState, state.height == corePosition?.height,
              let (type, vote) = lastSignedVote, vote.height == state.height, vote.round == state.round else { return }
        let signature = resendVote(type, vote)
        record(.voteRestored(vote, kind: type.kind), flush: false)
        drive(.vote(type, vote, from: me, signature: signature))
    }

    /// Hands a complete proposal to consensus once its block is checked against the ledger (see
    /// `Replica.Proposals.complete` for when that is).
    @inlinable
    public func deliver(_ key: Replica.ProposalKey, block: Block) {
        guard let height = corePosition?.height, case .now(let proposal, let from, let block) = proposals.complete(
            key, block: block, consensusHeight: height, storeHeight: storeHeight) else { return }
        drive(.proposal(proposal, from: from, valid: isValid(block, key: key)))
    }

    /// Checks a proposed block against the ledger (and what the shell checks); an invalid one is counted.
    @inlinable
    public func isValid(_ block: Block, key: Replica.ProposalKey) -> Bool {
        let proposer = Replica.expectedProposer(proposals[key]?.proposal, validators: validators, key: key)
        guard let problem = ledger.validate(block, expectedProposer: proposer, protocolVersion: binary.protocolVersion)
                ?? transactionProblem(block) else { return true }
        reportInvalid(key, problem)
        return false
    }

    /// A proposal whose block is invalid (or whose parts do not make one).
    @inlinable
    public func reportInvalid(_ key: Replica.ProposalKey, _ problem: String) {
        reception.invalidProposals += 1
        countInvalidProposal(key, problem)
        record(.invalidProposal(key, problem: problem), flush: false)
    }

    /// Reports an equivocation the core detected: one evidence transaction per offence from this node.
    @inlinable
    public func reportEquivocation(_ evidence: DuplicateVoteEvidence) {
        let key = evidence.key
        guard replica.shouldReport(key, onChain: ledger.evidence(for: key) != nil) else { return }
        record(.evidence(evidence, offender: validatorName(evidence.validator)), flush: true)
        let envelope = evidenceTransaction(evidence)
        guard ledger.admissionCheck(envelope) == .applied, mempool.add(envelope, id: envelope.id) else { return }
        sendToAll(envelope)
    }

    /// Records the offences a committed block carried (the ones it applied).
    @inlinable
    public func recordCommittedEvidence(_ block: Block, failedIndexes: [Int]) {
        for (evidence, reporter) in Replica.committedEvidence(block, failedIndexes: failedIndexes) {
            record(.evidenceCommitted(evidence, offender: validatorName(evidence.validator), block: block.header.height,
                                      reporter: validatorName(reporter)), flush: false)
        }
    }

    /// Stops deciding for good (until restarted): no votes, no proposals; blocks and status are still served.
    @inlinable
    public func stop(_ stop: Replica.Stop) {
        guard replica.stop(stop) else { return }
        stopped(stop)
        record(Replica.Event(stop.event, stop.eventFields), flush: true)
    }

    @inlinable
    public func setByzantine(_ modes: [ByzantineMode]) {
        replica.setByzantine(modes)
        byzantineChanged(modes)
        record(.byzantine(modes), flush: true)
    }

    /// While no new height is committed: what the replica core re-sends (see `Replica.Instance.stallResends`).
    @inlinable
    public func rebroadcastIfStalled() {
        guard let at = corePosition else { return }
        let held = proposals[Replica.ProposalKey(height: at.height, round: at.round)].map { entry in
            Replica.Instance<Envelope, ReplicaPeer>.HeldProposal(
                polRound: entry.proposal.polRound, messages: entry.delivered ? entry.body.envelopes : nil,
                author: entry.from)
        }
        perform(replica.stallResends(nowMs: nowMs, step: at.step, round: at.round, me: me, proposal: held,
                                     peers: peerIds))
    }

    /// Asks peers for the committed blocks this node is missing (see `Replica.Instance.syncRequests`).
    @inlinable
    public func requestMissingBlocks() {
        guard replica.stopped == nil else { return }
        for (height, holder) in replica.syncRequests(storeHeight: storeHeight, nowMs: nowMs, rng: &rng) {
            send(envelope(.blockRequest, BlockRequest(height: height, timeMs: nowMs)), toPeer: holder)
        }
    }

    /// +2/3 precommitted a block of this height in an earlier round and this node still has not decided (it
    /// missed parts of the proposal, say, while finishing the previous height): the validators who
    /// precommitted it hold it, so ask them now instead of waiting for their next status. Without this a
    /// node that missed one proposal stalled the whole cluster until a status arrived (~190 ms at light
    /// load) whenever it proposed the next height.
    @inlinable
    public func fetchBlockDecidedElsewhere() {
        guard let height = corePosition?.height, let signers = decidedElsewhereSigners else { return }
        replica.decidedElsewhere(height: height, signers: signers.filter { $0 != me }.compactMap { peer(ofValidator: $0) },
                                 nowMs: nowMs)
        requestMissingBlocks()
    }

    /// This node's hello to `peer` (asking for an answer until the peer has accepted us).
    @inlinable
    public func sendHello(to peer: LinkPeer) {
        let hello = Hello(protocolVersion: binary.protocolVersion, forkId: binary.forkId, version: binary.version,
                          versionMin: binary.versionMin, committedHeight: storeHeight,
                          replyWanted: handshakes.sendingHello(to: peer, nowMs: nowMs), timeMs: nowMs,
                          consensus: binary.consensus.wireCode)
        send(envelope(.hello, hello), toLink: peer)
    }

    /// Every tick: peers not accepted get another hello (a refused peer may come back fixed).
    @inlinable
    public func resendHellos() {
        for peer in handshakes.hellosDue(linkPeers, nowMs: nowMs) { sendHello(to: peer) }
    }

    /// A peer's hello, judged by this binary (fork, protocol, rules at the height): the link is accepted or
    /// refused, held messages are taken once accepted, and the hello is answered when it should be.
    @inlinable
    public func heardHello(_ theirs: HandshakePolicy.Identity, consensus: UInt8, signedForFork: UInt32, replyWanted: Bool,
                           from peer: LinkPeer) {
        let refusal = binary.refusal(of: theirs, consensus: consensus, signedForFork: signedForFork,
                                     height: corePosition?.height ?? storeHeight + 1,
                                     plans: plans, checkRules: handshakeChecksRules)
        let outcome = handshakes.heardHello(from: peer, refusal: refusal, replyWanted: replyWanted, nowMs: nowMs)
        if case .refused(let reason) = outcome.link, outcome.previous != outcome.link {
            record(.handshakeRefused(peer: linkName(peer), reason: reason), flush: true)
        } else if outcome.link == .accepted, case .refused = outcome.previous {
            record(.handshakeAccepted(peer: linkName(peer)), flush: false)
        }
        handshakeHeard(peer, outcome)
        for held in outcome.release { receive(held.envelope, held.message, fromPeer: held.fromPeer) }
        if outcome.answer { sendHello(to: peer) }
    }

    /// The ledger a block on top of the tip must extend (see `Replica.TipAlternative`).
    @inlinable
    public func baseLedger(for block: Block) -> Ledger { tipAlternative?.base(for: block, current: ledger) ?? ledger }

    /// Stores, executes and records a committed block: the one path for consensus and sync. A block whose
    /// state root is not this node's, or that needs rules this binary lacks, is not stored: the node stops
    /// deciding instead (returns false).
    @inlinable @discardableResult
    public func commit(_ committed: CommittedBlock, source: String) -> Bool {
        let block = committed.block
        precondition(block.header.height == storeHeight + 1, "commit of \(block.header.height) on a store at \(storeHeight)")
        resolveTip(for: block)
        let rules: UInt16
        switch Replica.commitRules(block, ledger: ledger, binary: binary, plans: plans, source: source) {
        case .success(let version):
            rules = version
        case .failure(let refusal):
            stop(refusal.stop)
            return false
        }
        storeCommitted(committed, rules: rules)
        ledger.rulesVersion = rules
        let result = ledger.execute(block)
        recordCommittedEvidence(block, failedIndexes: result.failedIndexes)
        mempool.prune(committed: block.txs.map(\.id), senders: Set(block.txs.map(\.sender)), ledger: ledger)
        replica.committed(nowMs: nowMs)
        updateVotesOnly()
        self.committed(committed, result: result)
        let proposer = validators.members[validators.index(of: block.header.proposer) ?? 0].name
        record(.commit(committed, result: result, source: source, proposer: proposer, rules: rules), flush: true)
        if case .upgradeNeeded(let plan) = binary.rules(at: block.header.height + 1, plans: plans) {
            stop(.upgrade(plan, height: block.header.height + 1, binary: binary))
        }
        return true
    }

    /// Before a block on top of the tip is stored: which execution of the tip it extends.
    @usableFromInline
    func resolveTip(for block: Block) {
        guard let alternative = tipAlternative else { return }
        tipAlternative = nil
        switch alternative.resolve(for: block, current: ledger) {
        case .keepRecorded(let recorded):
            ledger = recorded
            settleTipRules(alternative.recordedRules, stored: true)
            record(.reexecuted(height: storeHeight, from: alternative.currentRules, to: alternative.recordedRules,
                               stateRoot: ledger.stateRoot, reason: "the next block's header carries this root"), flush: false)
        case .recordCurrent(let rules):
            settleTipRules(rules, stored: false)
        case .neither:
            break
        }
    }
}
