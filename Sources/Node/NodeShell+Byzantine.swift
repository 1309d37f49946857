import Consensus
import DequeModule
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
    static let evidenceReportedMax = 4_096
    static let replayPoolMax = 512
    /// Messages a flooding or replaying node sends per tick.
    static let byzantineMessagesPerTick = 50

    // MARK: evidence

    /// Reports an equivocation the core detected: one evidence transaction per offence from this node.
    func reportEquivocation(_ evidence: DuplicateVoteEvidence) {
        let key = evidence.key
        guard ledger.evidence(for: key) == nil, !evidenceReported.contains(key) else { return }
        if evidenceReported.count >= NodeShell.evidenceReportedMax { evidenceReported.removeAll() }
        evidenceReported.insert(key)
        events.write("evidence", timeMs: clock(), [
            ("offender", .string(validatorName(evidence.validator))), ("height", .uint(key.height)),
            ("round", .uint(UInt64(key.round))), ("vote", .string(key.kind.description)),
            ("blocks", .array([evidence.first.blockId, evidence.second.blockId].map { .string($0?.short ?? "nil") })),
        ])
        events.flush()
        logger.warning("equivocation: \(validatorName(evidence.validator)) signed two \(key.kind)s at \(key.height)/\(key.round)")
        let envelope = sign(.evidence, evidence)
        guard ledger.admissionCheck(envelope) == .applied, mempool.add(envelope, id: envelope.id) else { return }
        broadcast(envelope)
    }

    /// Evidence from a peer or a block: both votes must carry the offender's signatures under our domain.
    func evidenceSignatureProblem(_ tx: Envelope) -> String? {
        guard tx.kind == .evidence else { return nil }
        guard let evidence = try? DuplicateVoteEvidence(decoding: tx.payload) else { return "evidence does not decode" }
        return evidence.problem(domain: domain)
    }

    /// Records the offences a committed block carried (the ones it applied).
    func recordCommittedEvidence(_ block: Block, failedIndexes: [Int]) {
        let failed = Set(failedIndexes)
        for (index, tx) in block.txs.enumerated() where tx.kind == .evidence && !failed.contains(index) {
            guard let evidence = try? DuplicateVoteEvidence(decoding: tx.payload) else { continue }
            events.write("evidence_committed", timeMs: clock(), [
                ("offender", .string(validatorName(evidence.validator))), ("height", .uint(evidence.key.height)),
                ("round", .uint(UInt64(evidence.key.round))), ("vote", .string(evidence.kind.description)),
                ("block", .uint(block.header.height)), ("reporter", .string(validatorName(tx.sender))),
            ])
        }
    }

    func validatorName(_ key: PublicKey) -> String {
        validators.index(of: key).map { validators.members[$0].name } ?? peers[key]?.name ?? key.description
    }

    /// Rejections of peers' consensus input by reason, core and shell together, for the `drops` event.
    var consensusRejects: [(String, Int)] {
        let core = consensus.metrics
        let all: [(String, Int)] = [
            ("stale_height", core.staleHeight), ("future_height", core.futureHeightDropped),
            ("round_too_far", core.roundTooFarAhead), ("wrong_proposer", core.wrongProposer),
            ("conflicting_vote", core.conflictingVote), ("unknown_validator", core.unknownValidator),
            ("invalid_proposal", invalidProposalCount),
        ] + shellRejects.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        return all.filter { $0.1 > 0 }.map { ("reject_" + $0.0, $0.1) }
    }

    // MARK: byzantine behaviour

    func setByzantine(_ modes: [ByzantineMode]) {
        byzantine = Set(modes)
        replayPool.removeAll()
        logger.notice("byzantine modes now: \(modes.isEmpty ? "none" : modes.map(\.rawValue).joined(separator: ", "))")
        events.write("byzantine", timeMs: clock(), [("modes", .array(modes.map { .string($0.rawValue) }))])
        events.flush()
    }

    /// Sends our own vote: to everyone, to no one (withheld), or a different vote to every other peer.
    func sendOwnVote(_ envelope: Envelope, _ type: Tendermint.VoteType, _ vote: Vote) {
        if byzantine.contains(.withholdVotes) {
            byzantineSent["withheld_vote", default: 0] += 1
            return
        }
        guard byzantine.contains(.equivocate) else {
            broadcast(envelope)
            return
        }
        let otherId: Bytes32? = vote.blockId == nil
            ? Blake2b.hash(Array("faultline/equivocate/\(vote.height)/\(vote.round)".utf8)) : nil
        let other = sign(type.kind, Vote(height: vote.height, round: vote.round, blockId: otherId))
        recordSigned(type.kind, height: vote.height, round: vote.round, value: otherId)
        byzantineSent["equivocating_vote", default: 0] += 1
        for (index, peer) in peers.values.sorted(by: { $0.name < $1.name }).enumerated() {
            send(index % 2 == 0 ? envelope : other, to: peer)
        }
    }

    /// Sends our proposal and its parts: honestly, or with broken parts, or a second proposal for the
    /// same round (the same transactions a millisecond later) to every other peer.
    func sendOwnProposal(_ envelopes: [Envelope], block: Block, height: UInt64, round: UInt32, polRound: Int32) {
        if byzantine.contains(.badParts) {
            byzantineSent["bad_parts", default: 0] += 1
            let broken = envelopes.map { envelope -> Envelope in
                guard envelope.kind == .blockPart, var part = try? BlockPart(decoding: envelope.payload),
                      !part.part.data.isEmpty else { return envelope }
                part.part.data[0] ^= 0xFF
                return sign(.blockPart, part)
            }
            for envelope in broken { broadcast(envelope) }
            return
        }
        guard byzantine.contains(.doublePropose) else {
            for envelope in envelopes { broadcast(envelope) }
            return
        }
        var header = block.header
        header.timeMs += 1
        let twin = Block(header: header, txs: block.txs)
        let (root, parts) = PartSet.split(twin.encoded, payloadBytesMax: config.limits.datagramPayloadBytesMax,
                                          fixedOverhead: Envelope.overheadBytes + 12)
        let proposal = Proposal(height: height, round: round, polRound: polRound, blockId: twin.id, partsRoot: root,
                                partCount: UInt16(parts.count), blockBytes: UInt32(parts.reduce(0) { $0 + $1.data.count }))
        recordSigned(.proposal, height: height, round: round, value: twin.id)
        let others = [sign(.proposal, proposal)] + parts.map { sign(.blockPart, BlockPart(height: height, round: round, part: $0)) }
        byzantineSent["double_proposal", default: 0] += 1
        for (index, peer) in peers.values.sorted(by: { $0.name < $1.name }).enumerated() {
            for envelope in index % 2 == 0 ? envelopes : others { send(envelope, to: peer) }
        }
    }

    /// The state root a proposal claims: ours, or (invalid_proposal) one that is wrong.
    func claimedStateRoot(height: UInt64) -> Bytes32 {
        guard byzantine.contains(.invalidProposal) else { return ledger.stateRoot }
        byzantineSent["invalid_proposal", default: 0] += 1
        return Blake2b.hash(Array("faultline/invalid-root/\(height)".utf8))
    }

    /// Keeps peers' consensus messages to replay later (only while replaying; bounded).
    func keepForReplay(_ envelope: Envelope) {
        guard byzantine.contains(.replay) else { return }
        replayPool.append(envelope)
        if replayPool.count > NodeShell.replayPoolMax { replayPool.removeFirst() }
    }

    /// Once per tick: the floods and replays this node is told to send.
    func misbehaveOnTick() {
        guard !byzantine.isEmpty, myIndex != nil else { return }
        let count = NodeShell.byzantineMessagesPerTick
        let height = consensus.height
        if byzantine.contains(.replay) {
            let old = replayPool.filter { envelope in
                guard let vote = try? Vote(decoding: envelope.payload) else { return true }
                return vote.height < height
            }
            for envelope in old.prefix(count) { broadcast(envelope) }
            byzantineSent["replayed", default: 0] += min(count, old.count)
        }
        if byzantine.contains(.otherChain) {
            let foreign = Domain(chainId: config.chainId + "/other", forkId: config.forkId)
            for index in 0..<count {
                let vote = Vote(height: height, round: UInt32(floodCounter &+ UInt32(index)), blockId: nil)
                broadcast(Envelope(kind: .prevote, payload: vote.encoded, domain: foreign, key: key))
            }
            byzantineSent["other_chain", default: 0] += count
        }
        for (mode, vote) in ByzantineMode.floodVotes(byzantine, height: height, counter: floodCounter, count: count) {
            broadcast(sign(.prevote, vote))
            byzantineSent[mode.rawValue, default: 0] += 1
        }
        floodCounter &+= UInt32(count)
    }
}
