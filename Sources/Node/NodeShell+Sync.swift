import Consensus
import Ledger
import Sodium
import Transport
import Wire

/// Block sync: peers announce their committed height; a node behind asks for the missing blocks,
/// checks each one's commit certificate signature by signature, and commits it.
extension NodeShell {
    func onTick() {
        servedThisTick = 0
        broadcastStatus()
        startConsensusIfReady()
        requestMissingBlocks()
        rebroadcastIfStalled()
        logDropsIfChanged()
    }

    /// Once a second at most: the cumulative ingress drops by reason, when they changed.
    func logDropsIfChanged() {
        let now = clock()
        guard now - lastDropsLogMs >= 1_000 else { return }
        let snapshot = drops.snapshot + shaper.droppedByReason.sorted { $0.key < $1.key }.map { ("link_" + $0.key, $0.value) }
        let values = snapshot.map(\.1)
        guard values != lastDropsLogged, values.contains(where: { $0 > 0 }) else { return }
        lastDropsLogMs = now
        lastDropsLogged = values
        events.write("drops", timeMs: now, [("total", .object(snapshot.map { ($0.0, .uint(UInt64($0.1))) }))])
        events.flush()
    }

    func requestMissingBlocks() {
        let now = clock()
        let best = peerHeights.values.map(\.height).max() ?? 0
        guard best > store.height else { return }
        syncRequested = syncRequested.filter { $0.key > store.height && now - $0.value < 500 }
        let upper = min(best, store.height + NodeShell.syncWindow)
        for height in (store.height + 1)...upper where syncRequested[height] == nil && syncReady[height] == nil {
            let holders = peerHeights.filter { $0.value.height >= height && now - $0.value.seenMs < 5_000 }.map(\.key)
            guard let holder = holders.randomElement(), let peer = peers[holder] else { continue }
            send(sign(.blockRequest, BlockRequest(height: height)), to: peer)
            syncRequested[height] = now
        }
    }

    func serveBlock(_ height: UInt64, to requester: PublicKey) {
        guard let peer = peers[requester], servedThisTick < NodeShell.syncServePerTickMax else { return }
        servedThisTick += 1
        let bytes: [UInt8]
        do {
            guard let stored = try store.encodedBlock(at: height) else { return }
            bytes = stored
        } catch {
            logger.error("store: cannot read block \(height) for \(peer.name): \(error)")
            return
        }
        let (root, parts) = PartSet.split(bytes, payloadBytesMax: config.limits.datagramPayloadBytesMax,
                                          fixedOverhead: Envelope.overheadBytes + 40)
        for part in parts {
            send(sign(.syncPart, SyncPart(height: height, partsRoot: root, part: part)), to: peer)
        }
    }

    func onSyncPart(_ part: SyncPart, from sender: PublicKey) {
        guard peers[sender] != nil, part.height > store.height,
              part.height <= store.height + 2 * NodeShell.syncWindow, syncReady[part.height] == nil else { return }
        var entry = syncAssemblers[part.height]
        if entry == nil || entry!.root != part.partsRoot {
            // One assembly per height; a different root (another peer's encoding) starts over.
            entry = (part.partsRoot, PartSet.Assembler(root: part.partsRoot, total: Int(part.part.total),
                                                       bytesMax: BlockStore.recordBytesMax))
        }
        let result = entry!.assembler.add(part.part)
        syncAssemblers[part.height] = entry
        guard case .complete(let bytes) = result else { return }
        syncAssemblers[part.height] = nil
        guard let committed = try? CommittedBlock(decoding: bytes), committed.block.header.height == part.height else {
            logger.warning("sync: block \(part.height) from \(sender) does not decode")
            return
        }
        syncReady[part.height] = committed
        applyReadySyncBlocks()
    }

    private func applyReadySyncBlocks() {
        while let next = syncReady.removeValue(forKey: store.height + 1) {
            if let problem = verifyCommitted(next) {
                logger.warning("sync: rejected block \(next.block.header.height): \(problem)")
                events.write("sync_reject", timeMs: clock(), [
                    ("height", .uint(next.block.header.height)), ("reason", .string(problem)),
                ])
                break
            }
            let height = next.block.header.height
            commit(next, source: "sync")
            metrics.syncBlocks.increment()
            drive(.committedElsewhere(height: height))
        }
        syncReady = syncReady.filter { $0.key > store.height }
        requestMissingBlocks()
    }

    /// Why a block received by sync cannot be committed, or nil: +2/3 of stake must have signed a
    /// precommit for exactly this block, and the block must follow our ledger.
    func verifyCommitted(_ committed: CommittedBlock) -> String? {
        let certificate = committed.commit
        guard certificate.blockId == committed.block.id, certificate.height == committed.block.header.height else {
            return "commit certificate is for another block"
        }
        var signers = Set<Int>()
        var stake: UInt64 = 0
        for entry in certificate.signatures {
            let index = Int(entry.validator)
            guard index < validators.count, signers.insert(index).inserted else {
                return "commit names validator \(index) twice or out of range"
            }
            let member = validators.members[index]
            let envelope = certificate.precommitEnvelope(signedBy: member.publicKey, signature: entry.signature,
                                                         domain: domain)
            guard envelope.verify(domain: domain) == .valid else {
                return "bad precommit signature from \(member.name)"
            }
            stake += member.stake
        }
        guard validators.isQuorum(stake) else {
            return "commit has \(stake) of \(validators.totalStake) stake, needs more than two thirds"
        }
        if let problem = ledger.validate(committed.block, expectedProposer: nil, protocolVersion: config.protocolVersion) {
            return problem
        }
        return unverifiedTransactionProblem(committed.block)
    }
}
