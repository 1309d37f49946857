import Ledger
import Sodium
import Wire

/// Proposals: building and sending this node's (honestly, or as a byzantine plan says), and assembling a
/// peer's block from parts with Merkle proofs against its proposal's root.
extension ReplicaHost {
    /// Builds (or re-uses the valid value) and sends a proposal with its parts.
    @inlinable
    public func propose(height: UInt64, round: UInt32, reuse blockId: Bytes32?, polRound: Int32) -> Proposal? {
        let block = blockId.flatMap { proposals.block($0) } ?? buildBlock(height: height)
        let (proposal, envelopes) = proposalEnvelopes(block, height: height, round: round, polRound: polRound)
        recordSigned(.proposal, height: height, round: round, value: block.id)
        proposals.proposed(proposal, from: me!, block: block, body: Replica.PartAssembly(
            assembler: PartSet.Assembler(root: proposal.partsRoot, total: Int(proposal.partCount), bytesMax: Block.bytesMax)))
        sendOwnProposal(envelopes, block: block, height: height, round: round, polRound: polRound)
        return proposal
    }

    /// A block for this node to propose, from its mempool (with the state root a byzantine plan may change).
    @inlinable
    public func buildBlock(height: UInt64) -> Block {
        Replica.buildBlock(height: height, proposer: validators.members[me!].publicKey, timeMs: protocolClockMs,
                           stateRoot: replica.claimedStateRoot(height: height, ours: ledger.stateRoot), ledger: ledger,
                           mempool: mempool, txsMax: blockTxsMax, bytesMax: blockBytesMax,
                           protocolVersion: binary.protocolVersion)
    }

    /// A proposal for `block` and the envelopes that carry it: the proposal, then its parts.
    @inlinable
    func proposalEnvelopes(_ block: Block, height: UInt64, round: UInt32, polRound: Int32) -> (Proposal, [Envelope]) {
        let (root, parts) = PartSet.split(block.encoded, payloadBytesMax: datagramPayloadBytesMax,
                                          fixedOverhead: Envelope.framingBytes(.blockPart) + 12)
        let proposal = Proposal(height: height, round: round, polRound: polRound, blockId: block.id, partsRoot: root,
                                partCount: UInt16(parts.count), blockBytes: UInt32(parts.reduce(0) { $0 + $1.data.count }))
        return (proposal, [envelope(.proposal, proposal)]
                    + parts.map { partEnvelope(BlockPart(height: height, round: round, part: $0)) })
    }

    /// A part of our proposal: unsigned, its Merkle proof against the signed proposal's root authenticates it.
    @inlinable
    func partEnvelope(_ part: BlockPart) -> Envelope {
        Envelope(proved: .blockPart, payload: part.encoded, domain: domain, sender: validators.members[me!].publicKey)
    }

    /// Sends our proposal and its parts as the replica core plans it: honestly, with broken parts, or a
    /// second proposal for the same round to every other peer.
    @inlinable
    func sendOwnProposal(_ envelopes: [Envelope], block: Block, height: UInt64, round: UInt32, polRound: Int32) {
        switch replica.planOwnProposal(block) {
        case .honest:
            replica.proposed(envelopes)
            for envelope in envelopes { sendToAll(envelope) }
        case .badParts:
            let broken = envelopes.map { envelope -> Envelope in
                guard envelope.kind == .blockPart, var part = try? BlockPart(decoding: envelope.payload),
                      !part.part.data.isEmpty else { return envelope }
                part.part.data[0] ^= 0xFF
                return partEnvelope(part)
            }
            replica.proposed(broken)
            for envelope in broken { sendToAll(envelope) }
        case .double(let twin):
            let (_, others) = proposalEnvelopes(twin, height: height, round: round, polRound: polRound)
            recordSigned(.proposal, height: height, round: round, value: twin.id)
            replica.proposed(envelopes)
            let (first, second) = Replica.halves(peersByName)
            for peer in first { for envelope in envelopes { send(envelope, toLink: peer) } }
            for peer in second { for envelope in others { send(envelope, toLink: peer) } }
        }
    }

    @inlinable
    func onProposal(_ proposal: Proposal, envelope: Envelope) {
        startConsensusNow()
        guard let from = validators.index(of: envelope.sender), let at = corePosition else { return }
        if proposal.height > at.height + 1 {
            notePeerHeight(envelope.sender, committed: proposal.height - 1)
            requestMissingBlocks()
        }
        let assembly = Replica.PartAssembly(
            assembler: PartSet.Assembler(root: proposal.partsRoot, total: Int(proposal.partCount),
                                         bytesMax: min(Block.bytesMax, Int(proposal.blockBytes))),
            envelopes: [envelope])
        guard proposals.take(proposal, from: from, body: assembly, at: (at.height, at.round),
                             roundsAheadMax: coreSettings.roundsAheadMax,
                             proposer: validators.proposer(height: proposal.height, round: proposal.round)) else { return }
        relay(envelope)
        let key = Replica.ProposalKey(height: proposal.height, round: proposal.round)
        if let block = proposals.block(proposal.blockId) {
            deliver(key, block: block)
            return
        }
        for (part, partEnvelope) in reception.earlyParts.removeValue(forKey: key) ?? [] {
            reception.earlyPartCount -= 1
            addPart(part, envelope: partEnvelope, key: key)
        }
    }

    @inlinable
    func onBlockPart(_ part: BlockPart, envelope: Envelope) {
        guard let at = corePosition, part.height >= at.height, part.height <= at.height + 1,
              part.round <= at.round + coreSettings.roundsAheadMax else { return }
        // Parts name the round's proposer as their maker; anything else is dropped before it takes room. The
        // name is not authenticated (parts are unsigned): the proof against the proposal's root is.
        guard validators.index(of: envelope.sender) == validators.proposer(height: part.height, round: part.round) else {
            return
        }
        let key = Replica.ProposalKey(height: part.height, round: part.round)
        if proposals[key] == nil {
            if reception.earlyPartCount < Replica.Reception.earlyPartsMax {
                reception.earlyParts[key, default: []].append((part, envelope))
                reception.earlyPartCount += 1
            }
            return
        }
        addPart(part, envelope: envelope, key: key, relayProven: true)
    }

    /// Adds a part to its proposal's assembly; with `relayProven`, a part that proves against the root is
    /// relayed (never one that does not: parts are unsigned, and junk must not spread).
    @inlinable
    func addPart(_ part: BlockPart, envelope: Envelope, key: Replica.ProposalKey, relayProven: Bool = false) {
        guard let entry = proposals[key] else { return }
        guard !entry.delivered else {
            // Still relayed when it proves: a peer behind a lossy link may lack it.
            if relayProven, part.part.total == entry.proposal.partCount, part.part.verify(root: entry.proposal.partsRoot) {
                relay(envelope)
            }
            return
        }
        // Changed in place: a copy of the assembly would copy the block's bytes gathered so far on every part.
        let result = proposals.updateBody(key) { assembly -> PartSet.Assembler.AddResult in
            let result = assembly.assembler.add(part.part)
            switch result {
            case .added, .complete: assembly.envelopes.append(envelope)
            case .duplicate, .rejected: break
            }
            return result
        }
        if relayProven, let result,
           result.isNewAndProven || (result == .duplicate && part.part.verify(root: entry.proposal.partsRoot)) {
            relay(envelope)
        }
        switch result {
        case .added, .duplicate, nil:
            break
        case .rejected:
            reception.rejects["bad_part", default: 0] += 1
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
}
