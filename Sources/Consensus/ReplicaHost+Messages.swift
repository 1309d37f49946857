import Ledger
import Sodium
import Wire

/// A peer's message, past the shell's receiving edge (signature checked, or authenticated by the simulated
/// network), through the handshake to the part of the replica logic that takes it.
extension ReplicaHost {
    /// A verified message; `fromPeer` false: a client's transaction, which the node gossips on.
    @inlinable
    public func receive(_ envelope: Envelope, _ message: Message, fromPeer: Bool) {
        let kind = Int(envelope.kind.rawValue)
        if kind < reception.receivedByKind.count { reception.receivedByKind[kind] += 1 }
        if envelope.kind.isConsensus, !envelope.kind.isProvedByRoot { reception.signaturesChecked += 1 }
        // Nothing but a hello (and user transactions) is taken from a peer before its handshake succeeded.
        if envelope.kind != .hello, !envelope.kind.isFromAnyone, let link = handshakeLink(signing: envelope.sender),
           !handshakes.isAccepted(link) {
            // Not refused, only not yet accepted: consensus messages wait for the handshake (bounded).
            let held = Replica.HeldMessage(envelope: envelope, message: message, fromPeer: fromPeer)
            if !handshakes.hold(held, from: link, consensusLane: envelope.kind.isConsensusLane) { count(.heldDropped) }
            return
        }
        switch message {
        case .hello(let hello):
            // A hello signed with a twinned key could come from either twin: both get the same answer.
            let theirs = HandshakePolicy.Identity(forkId: hello.forkId, protocolVersion: hello.protocolVersion,
                                                  version: hello.version, versionMin: hello.versionMin)
            for link in linkPeers(signing: envelope.sender) {
                heardHello(theirs, consensus: hello.consensus, signedForFork: envelope.forkId, replyWanted: hello.replyWanted,
                           from: link)
            }
        case .transfer, .batchChunk, .forcedTx, .dispute, .evidence:
            admit(envelope, fromPeer: fromPeer)
        case .proposal(let proposal):
            onProposal(proposal, envelope: envelope)
        case .blockPart(let part):
            onBlockPart(part, envelope: envelope)
        case .prevote(let vote), .precommit(let vote):
            onVote(envelope.kind == .prevote ? .prevote : .precommit, vote, envelope: envelope)
        case .certificate(let bundle):
            onCertificate(bundle, from: envelope.sender)
        case .timeout(let vote):
            startConsensusNow()
            guard let from = validators.index(of: envelope.sender) else { return }
            notePeerHeight(envelope.sender, committed: max(vote.height, 1) - 1)
            drive(.timeoutVote(vote, from: from, signature: envelope.signature))
        case .status(let status):
            if let peer = peerId(signing: envelope.sender),
               replica.heardStatus(peer, committed: status.committedHeight, nowMs: nowMs) {
                // A peer we had not heard from (just started, or restarted): answer at once.
                send(statusMessage, toPeer: peer)
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
            receiveRollup(envelope, message)
        }
    }

    /// CheckTx: only transactions that can still apply enter the mempool (and are gossiped).
    @inlinable
    func admit(_ envelope: Envelope, fromPeer: Bool) {
        if envelope.kind == .evidence, let problem = Replica.evidenceSignatureProblem(envelope, domain: domain) {
            reception.rejects["evidence_unsigned", default: 0] += 1
            warn("evidence from \(envelope.sender) refused: \(problem)")
            return
        }
        let outcome = ledger.admissionCheck(envelope)
        guard outcome == .applied else {
            // A dispute move may be ahead of this node's ledger by one block: held, checked again after each commit.
            if case .disputeRefused = outcome, mempool.hold(envelope, id: envelope.id, height: ledger.height) {
                reception.checkTxRejected["dispute_held", default: 0] += 1
                return
            }
            reception.checkTxRejected[outcome.label, default: 0] += 1
            return
        }
        if mempool.add(envelope, id: envelope.id), !fromPeer {
            sendToAll(envelope) // a client submission: gossip it to every validator
        }
        count(.mempool)
    }

    /// A peer's vote: what it says of the peer's height, then to the core.
    @inlinable
    func onVote(_ type: Tendermint.VoteType, _ vote: Vote, envelope: Envelope) {
        startConsensusNow() // consensus traffic means peers are running already
        guard let from = validators.index(of: envelope.sender) else { return }
        notePeerHeight(envelope.sender, committed: max(vote.height, 1) - 1)
        guard let at = corePosition else { return }
        // Two heights behind: this node can no longer take the current proposal, ask for blocks now rather
        // than at the next tick (with no pause after commits a height takes a few ms).
        if vote.height > at.height + 1 { requestMissingBlocks() }
        if vote.height >= at.height { relay(envelope) }
        replica.heardVote(envelope, type, vote, validator: from, at: (at.height, at.round))
        drive(.vote(type, vote, from: from, signature: envelope.signature))
    }

    /// A certificate a leader forwarded: each vote in it not counted yet is checked with its signer's key and taken
    /// as if its signer had sent it.
    @inlinable
    func onCertificate(_ bundle: VoteBundle, from sender: PublicKey) {
        guard validators.index(of: sender) != nil, let type = BFT.VoteType(kind: bundle.kind) else { return }
        for entry in bundle.signatures {
            let index = Int(entry.validator)
            guard index < validators.count else {
                reception.rejects["certificate_unknown_validator", default: 0] += 1
                continue
            }
            if coreHasVote(type, round: bundle.vote.round, validator: index, height: bundle.vote.height) { continue }
            let vote = bundle.voteEnvelope(signedBy: validators.members[index].publicKey, signature: entry.signature,
                                           domain: domain)
            reception.signaturesChecked += 1
            guard signatureHolds(vote) else {
                reception.rejects["certificate_bad_signature", default: 0] += 1
                warn("certificate from \(validatorName(sender)): bad \(bundle.kind) signature of \(validators.members[index].name)")
                continue
            }
            onVote(type, bundle.vote, envelope: vote)
        }
    }

    /// What a verified message says about its author: it has committed `height`.
    @inlinable
    func notePeerHeight(_ key: PublicKey, committed height: UInt64) {
        guard let peer = peerId(signing: key) else { return }
        replica.heard(peer, committedAtLeast: height, nowMs: nowMs)
    }

    /// This node's status: its committed height and round.
    @inlinable
    public var statusMessage: Envelope {
        envelope(.status, StatusMessage(committedHeight: storeHeight, round: corePosition?.round ?? 0, timeMs: nowMs))
    }

    @inlinable
    public func broadcastStatus() {
        replica.sentStatus(nowMs: nowMs)
        sendToAll(statusMessage)
    }

    /// Forwards a consensus message to a few random peers (epidemic gossip), when enabled.
    @inlinable
    func relay(_ envelope: Envelope) {
        guard replica.settings.relayFanout > 0, shouldRelay(envelope) else { return }
        let author = peerId(signing: envelope.sender)
        for peer in replica.relayTargets(peerIds.filter { $0 != author }, rng: &rng) { send(envelope, toPeer: peer) }
    }

    /// Performs what the replica core plans to send.
    @inlinable
    public func perform(_ sends: [Replica.Send<Envelope, ReplicaPeer>]) {
        for planned in sends {
            switch planned {
            case .everyone(let envelope):
                sendToAll(envelope)
            case .everyoneBut(let envelope, let validator):
                let skipped = peer(ofValidator: validator)
                for peer in peerIds where peer != skipped { send(envelope, toPeer: peer) }
            case .peer(let envelope, let peer):
                send(envelope, toPeer: peer)
            }
        }
    }

    /// Every status interval (the node's tick): hellos not yet answered, status (unless votes are flowing),
    /// starting and catching up, re-sending a stalled height's messages, votes-only mode, a byzantine
    /// node's floods.
    @inlinable
    public func tickReplica() {
        reception.servedThisTick = 0
        resendHellos()
        if replica.statusDue(nowMs: nowMs) { broadcastStatus() }
        startConsensusIfReady()
        requestMissingBlocks()
        if replica.stopped == nil { rebroadcastIfStalled() }
        updateVotesOnly()
        misbehaveOnTick()
    }

    /// Once a second, when it changed: the cumulative `traffic` event (both shells call this from their tick).
    @inlinable
    public func logTrafficIfDue() {
        guard nowMs >= reception.trafficLoggedMs + 1_000 else { return }
        let total = reception.receivedByKind.reduce(0, +) + reception.signaturesChecked
        guard total != reception.trafficLoggedTotal else { return }
        reception.trafficLoggedMs = nowMs
        reception.trafficLoggedTotal = total
        record(.traffic(received: reception.consensusReceived, signaturesChecked: reception.signaturesChecked), flush: false)
    }

    /// Peers' input refused by the replica logic and the core, and what a byzantine node sent, by reason
    /// (for the `drops` event; the shell adds its edge's).
    @inlinable
    public var replicaRejects: [(String, Int)] {
        reception.checkTxRejected.sorted { $0.key < $1.key }.map { ("checktx_" + $0.key, $0.value) }
            + [("checktx_dispute_held_expired", mempool.heldExpired), ("checktx_dispute_held_full", mempool.heldRejectedFull)]
                .filter { $0.1 > 0 }
            + Replica.rejectCounts(core: coreMetrics ?? Tendermint.Metrics(), invalidProposals: reception.invalidProposals,
                                   conflictingProposals: proposals.conflicting, shell: reception.rejects)
            + replica.byzantine.sent.sorted { $0.key < $1.key }.map { ("byzantine_sent_" + $0.key, $0.value) }
    }
}

extension Replica {
    /// Evidence from a peer or a block: both votes must carry the offender's signatures under our domain.
    public static func evidenceSignatureProblem(_ tx: Envelope, domain: Domain) -> String? {
        guard tx.kind == .evidence else { return nil }
        guard let evidence = try? DuplicateVoteEvidence(decoding: tx.payload) else { return "evidence does not decode" }
        return evidence.problem(domain: domain)
    }
}
