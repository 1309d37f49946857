import Basics
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
        // Ticks are due every `statusIntervalMs`: their lateness is how late the host ran this node's timers
        // and main loop (CPU starved, or the process paused).
        tickLateness.note(wallMs: clock())
        rollup?.onStatusTick(host: self)
        resendHellos()
        if replica.statusDue(nowMs: clock()) { broadcastStatus() }
        startConsensusIfReady()
        requestMissingBlocks()
        if stopped == nil { rebroadcastIfStalled() }
        updateVotesOnly()
        logDropsIfChanged()
        logSample()
        misbehaveOnTick()
    }

    /// Votes-only mode (`Replica.Instance.updateVotesOnly`): the edge reads the switch.
    func votesOnlyChanged(_ on: Bool) {
        votesOnly.add(on ? 1 : -1)
        logger.notice("votes-only mode \(on ? "on: no block finalized for \(config.limits.votesOnlyAfterMs) ms" : "off")")
    }

    /// Once a second: vote queueing delay, timer lateness, memory, queue lengths and kernel socket drops.
    func logSample() {
        let now = clock()
        guard now - lastSampleMs >= 1_000 else { return }
        lastSampleMs = now
        let delays = voteDelaysMs.sorted()
        voteDelaysMs.removeAll(keepingCapacity: true)
        let late = (tickLateness.drain() + (eventLoopLateness?.drain() ?? [])).sorted()
        write(.sample(voteDelaysMs: delays,
                      kernelDrops: localPorts.map { ($0.lane, ProcessStats.udpDrops(port: $0.port)) },
                      extra: [
                        ("timerLateP99Ms", .uint(late.sampledPercentile(0.99))), ("timerLateMaxMs", .uint(late.last ?? 0)),
                        ("rssKiB", .uint(ProcessStats.residentKiB())), ("urgentQueue", .uint(UInt64(queueLengths.urgent))),
                        ("bulkQueue", .uint(UInt64(queueLengths.bulk))), ("mempool", .uint(UInt64(mempool.count))),
                      ]))
    }

    /// Once a second at most: the cumulative ingress drops by reason, when they changed.
    func logDropsIfChanged() {
        let now = clock()
        guard now - lastDropsLogMs >= 1_000 else { return }
        let snapshot = drops.snapshot
            + shaper.droppedByReason.sorted { $0.key < $1.key }.map { ("link_" + $0.key, $0.value) }
            + mempoolRejected.sorted { $0.key < $1.key }.map { ("checktx_" + $0.key, $0.value) }
            + consensusRejects + replica.byzantine.sent.sorted { $0.key < $1.key }.map { ("byzantine_sent_" + $0.key, $0.value) }
        let values = snapshot.map(\.1)
        guard values != lastDropsLogged, values.contains(where: { $0 > 0 }) else { return }
        lastDropsLogMs = now
        lastDropsLogged = values
        write(.drops(snapshot), flush: true)
    }

    /// The highest committed height a peer has told this node of (0 before any status).
    var bestPeerHeight: UInt64 { replica.bestPeerHeight }

    func requestBlock(_ height: UInt64, from holder: PublicKey) {
        send(sign(.blockRequest, BlockRequest(height: height, timeMs: clock())), toKey: holder)
    }

    var decidedElsewhereSigners: [Int]? { consensus.decidedElsewhere?.signers }

    /// Answers with the block's parts and, separately, the precommit signatures that committed it. A
    /// twinned key's request could come from either twin: both get the answer.
    func serveBlock(_ height: UInt64, to requester: PublicKey) {
        guard let first = peers[requester], servedThisTick < NodeShell.syncServePerTickMax else { return }
        for peer in [first] + (twins[requester] ?? []) { serveBlock(height, to: peer) }
    }

    private func serveBlock(_ height: UInt64, to peer: Peer) {
        servedThisTick += 1
        let committed: CommittedBlock
        do {
            guard let stored = try store.encodedBlock(at: height) else { return }
            committed = try CommittedBlock(decoding: stored)
        } catch {
            logger.error("store: cannot read block \(height) for \(peer.name): \(error)")
            return
        }
        let certificate = committed.commit
        for start in stride(from: 0, to: certificate.signatures.count, by: SyncCommit.signaturesMax) {
            let chunk = Array(certificate.signatures[start..<min(start + SyncCommit.signaturesMax, certificate.signatures.count)])
            send(sign(.syncCommit, SyncCommit(height: height, round: certificate.round, blockId: certificate.blockId,
                                              signatures: chunk)), to: peer)
        }
        let (root, parts) = PartSet.split(committed.block.encoded, payloadBytesMax: config.limits.datagramPayloadBytesMax,
                                          fixedOverhead: Envelope.overheadBytes + 40)
        for part in parts {
            send(sign(.syncPart, SyncPart(height: height, partsRoot: root, part: part)), to: peer)
        }
        // The requester is behind by more than this block: our height now, so it asks for the rest at
        // once rather than after our next status (a node two heights behind otherwise caught up one
        // block per status interval, and the cluster waited whenever it was the next proposer).
        if store.height > height {
            send(sign(.status, StatusMessage(committedHeight: store.height, round: consensus.round, timeMs: clock())),
                 to: peer)
        }
    }

    private func inSyncWindow(_ height: UInt64) -> Bool {
        height > store.height && height <= store.height + 2 * Replica.Settings.syncWindow
    }

    /// Parts of a committed block, from any peer: one assembly per root (a lying peer's root cannot
    /// block an honest one), a few roots per height at most.
    func onSyncPart(_ part: SyncPart, from sender: PublicKey) {
        guard peers[sender] != nil, inSyncWindow(part.height) else { return }
        var assemblies = syncAssemblers[part.height] ?? [:]
        if assemblies[part.partsRoot] == nil {
            guard assemblies.count < NodeShell.syncRootsPerHeightMax else { return }
            assemblies[part.partsRoot] = PartSet.Assembler(root: part.partsRoot, total: Int(part.part.total),
                                                           bytesMax: Block.bytesMax)
        }
        let result = assemblies[part.partsRoot]!.add(part.part)
        syncAssemblers[part.height] = assemblies
        guard case .complete(let bytes) = result else { return }
        syncAssemblers[part.height]?[part.partsRoot] = nil
        guard let block = try? Block(decoding: bytes), block.header.height == part.height else {
            logger.warning("sync: block \(part.height) from \(sender) does not decode")
            return
        }
        if (syncBlocks[part.height]?.count ?? 0) < NodeShell.syncRootsPerHeightMax {
            syncBlocks[part.height, default: [:]][block.id] = block
        }
        applySyncedBlocks()
    }

    /// Precommit signatures for a height we are missing; each is verified on arrival.
    func onSyncCommit(_ message: SyncCommit, from sender: PublicKey) {
        guard peers[sender] != nil, inSyncWindow(message.height) else { return }
        let key = SyncVoteKey(round: message.round, blockId: message.blockId)
        var votes = syncVotes[message.height] ?? [:]
        guard votes[key] != nil || votes.count < NodeShell.syncRootsPerHeightMax else { return }
        var signatures = votes[key] ?? [:]
        let certificate = CommitCertificate(height: message.height, round: message.round, blockId: message.blockId,
                                            signatures: [])
        for entry in message.signatures {
            let index = Int(entry.validator)
            guard index < validators.count, signatures[index] == nil else { continue }
            let envelope = certificate.precommitEnvelope(signedBy: validators.members[index].publicKey,
                                                         signature: entry.signature, domain: domain)
            guard envelope.verify(domain: domain) == .valid else {
                logger.warning("sync: bad precommit signature for \(validators.members[index].name) from \(sender)")
                continue
            }
            signatures[index] = entry.signature
        }
        votes[key] = signatures
        syncVotes[message.height] = votes
        applySyncedBlocks()
    }

    /// Commits, in order, every missing height for which we have the block and +2/3 of stake in
    /// verified precommits for it.
    private func applySyncedBlocks() {
        while stopped == nil, let blocks = syncBlocks[store.height + 1] {
            let height = store.height + 1
            let quorum = (syncVotes[height] ?? [:]).first { key, signatures in
                blocks[key.blockId] != nil
                    && validators.isQuorum(signatures.keys.reduce(UInt64(0)) { $0 + validators.stake(of: $1) })
            }
            guard let (key, signatures) = quorum, let block = blocks[key.blockId] else { break }
            // A block with +2/3 of precommits that carries another state root: this node's state
            // diverged from the chain's. `commit` stops the node.
            let base = baseLedger(for: block)
            let mismatch = block.header.stateRoot != base.stateRoot
            if !mismatch, let problem = base.validate(block, expectedProposer: nil, protocolVersion: config.protocolVersion)
                ?? unverifiedTransactionProblem(block) {
                logger.warning("sync: rejected block \(height): \(problem)")
                events.write("sync_reject", timeMs: clock(), [("height", .uint(height)), ("reason", .string(problem))])
                syncBlocks[height]?[key.blockId] = nil
                break
            }
            let certificate = CommitCertificate(
                height: height, round: key.round, blockId: key.blockId,
                signatures: signatures.sorted { $0.key < $1.key }.map { .init(validator: UInt16($0.key), signature: $0.value) })
            guard commit(CommittedBlock(block: block, commit: certificate), source: "sync") else { break }
            metrics.syncBlocks.increment()
            drive(.committedElsewhere(height: height))
        }
        syncBlocks = syncBlocks.filter { $0.key > store.height }
        syncVotes = syncVotes.filter { $0.key > store.height }
        syncAssemblers = syncAssemblers.filter { $0.key > store.height }
        requestMissingBlocks()
    }
}

struct SyncVoteKey: Hashable {
    var round: UInt32
    var blockId: Bytes32
}
