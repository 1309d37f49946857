import Basics
import Ledger
import Sodium
import Wire

/// Block sync: peers announce their committed height; a node behind asks for the missing blocks (see
/// `requestMissingBlocks`), checks each one's commit certificate signature by signature, and commits it.
extension ReplicaHost {
    /// Answers with the block's parts and, separately, the precommit signatures that committed it (to the
    /// requester's key: a twinned key's request could come from either twin, both get the answer).
    @inlinable
    func serveBlock(_ height: UInt64, to requester: PublicKey) {
        guard let peer = peerId(signing: requester), reception.servedThisTick < Replica.Reception.syncServePerTickMax,
              let committed = committedBlock(at: height) else { return }
        reception.servedThisTick += 1
        let certificate = committed.commit
        for start in stride(from: 0, to: certificate.signatures.count, by: SyncCommit.signaturesMax) {
            let chunk = certificate.signatures[start..<min(start + SyncCommit.signaturesMax, certificate.signatures.count)]
            send(envelope(.syncCommit, SyncCommit(height: height, round: certificate.round, blockId: certificate.blockId,
                                                  signatures: Array(chunk))), toPeer: peer)
        }
        let (root, parts) = PartSet.split(committed.block.encoded, payloadBytesMax: datagramPayloadBytesMax,
                                          fixedOverhead: Envelope.overheadBytes + 40)
        for part in parts { send(envelope(.syncPart, SyncPart(height: height, partsRoot: root, part: part)), toPeer: peer) }
        // The requester is behind by more than this block: our height now, so it asks for the rest at once
        // rather than after our next status (a node two heights behind otherwise caught up one block per
        // status interval, and the cluster waited whenever it was the next proposer).
        if storeHeight > height { send(statusMessage, toPeer: peer) }
    }

    @inlinable
    func inSyncWindow(_ height: UInt64) -> Bool {
        height > storeHeight && height <= storeHeight + 2 * Replica.Settings.syncWindow
    }

    /// Parts of a committed block, from any peer: one assembly per root (a lying peer's root cannot block an
    /// honest one), a few roots per height at most.
    @inlinable
    func onSyncPart(_ part: SyncPart, from sender: PublicKey) {
        guard peerId(signing: sender) != nil, inSyncWindow(part.height) else { return }
        var assemblies = reception.syncAssemblers[part.height] ?? [:]
        if assemblies[part.partsRoot] == nil {
            guard assemblies.count < Replica.Reception.syncRootsPerHeightMax else { return }
            assemblies[part.partsRoot] = PartSet.Assembler(root: part.partsRoot, total: Int(part.part.total),
                                                           bytesMax: Block.bytesMax)
        }
        let result = assemblies[part.partsRoot]!.add(part.part)
        reception.syncAssemblers[part.height] = assemblies
        guard case .complete(let bytes) = result else { return }
        reception.syncAssemblers[part.height]?[part.partsRoot] = nil
        guard let block = try? Block(decoding: bytes), block.header.height == part.height else {
            warn("sync: block \(part.height) from \(sender) does not decode")
            return
        }
        if (reception.syncBlocks[part.height]?.count ?? 0) < Replica.Reception.syncRootsPerHeightMax {
            reception.syncBlocks[part.height, default: [:]][block.id] = block
        }
        applySyncedBlocks()
    }

    /// Precommit signatures for a height we are missing; each is checked on arrival.
    @inlinable
    func onSyncCommit(_ message: SyncCommit, from sender: PublicKey) {
        guard peerId(signing: sender) != nil, inSyncWindow(message.height) else { return }
        let key = Replica.SyncVoteKey(round: message.round, blockId: message.blockId)
        var votes = reception.syncVotes[message.height] ?? [:]
        guard votes[key] != nil || votes.count < Replica.Reception.syncRootsPerHeightMax else { return }
        var signatures = votes[key] ?? [:]
        let certificate = CommitCertificate(height: message.height, round: message.round, blockId: message.blockId,
                                            signatures: [])
        for entry in message.signatures {
            let index = Int(entry.validator)
            guard index < validators.count, signatures[index] == nil else { continue }
            let precommit = certificate.precommitEnvelope(signedBy: validators.members[index].publicKey,
                                                          signature: entry.signature, domain: domain)
            reception.signaturesChecked += 1
            guard signatureHolds(precommit) else {
                reception.rejects["sync_bad_commit", default: 0] += 1
                warn("sync: bad precommit signature for \(validators.members[index].name) from \(sender)")
                continue
            }
            signatures[index] = entry.signature
        }
        votes[key] = signatures
        reception.syncVotes[message.height] = votes
        applySyncedBlocks()
    }

    /// Commits, in order, every missing height for which we have the block and +2/3 of stake in checked
    /// precommits for it.
    @inlinable
    func applySyncedBlocks() {
        while replica.stopped == nil, let blocks = reception.syncBlocks[storeHeight + 1] {
            let height = storeHeight + 1
            let quorum = (reception.syncVotes[height] ?? [:]).first { key, signatures in
                blocks[key.blockId] != nil
                    && coreSettings.isQuorum(signatures.keys.reduce(UInt64(0)) { $0 + validators.stake(of: $1) }, of: validators)
            }
            guard let (key, signatures) = quorum, let block = blocks[key.blockId] else { break }
            // A block with +2/3 of precommits that carries another state root: this node's state diverged
            // from the chain's. `commit` stops the node.
            let base = baseLedger(for: block)
            let mismatch = block.header.stateRoot != base.stateRoot
            if !mismatch, let problem = base.validate(block, expectedProposer: nil, protocolVersion: binary.protocolVersion)
                ?? transactionProblem(block) {
                warn("sync: rejected block \(height): \(problem)")
                record(Replica.Event("sync_reject", [("height", .uint(height)), ("reason", .string(problem))]), flush: false)
                reception.syncBlocks[height]?[key.blockId] = nil
                break
            }
            let certificate = CommitCertificate(
                height: height, round: key.round, blockId: key.blockId,
                signatures: signatures.sorted { $0.key < $1.key }.map { .init(validator: UInt16($0.key), signature: $0.value) })
            guard commit(CommittedBlock(block: block, commit: certificate), source: "sync") else { break }
            count(.syncedBlock)
            drive(.committedElsewhere(height: height))
        }
        reception.forgetSynced(upTo: storeHeight)
        requestMissingBlocks()
    }
}
