import Consensus
import DequeModule
import Ledger
import Rollup
import Sodium
import Transport
import Wire

extension NodeShell: ConsensusShell {
    /// A stopped node (state root mismatch, upgrade needed) decides nothing more.
    var decidesNow: Bool { stopped == nil }

    func consensusEffects(for input: Tendermint.Input) -> [Tendermint.Effect]? { consensus.process(input) }

    var me: Int? { myIndex }

    func voteMessage(_ type: Tendermint.VoteType, _ vote: Vote) -> Envelope { sign(type.kind, vote) }

    func signature(of message: Envelope) -> Bytes64 { message.signature }

    func sendToAll(_ message: Envelope) { broadcast(message) }

    func send(_ message: Envelope, toLink name: String) {
        guard let peer = peerByName[name] else { return }
        send(message, to: peer)
    }

    func scheduleTimeout(_ kind: Tendermint.TimeoutKind, height: UInt64, round: UInt32, afterMs: UInt64) {
        timers(afterMs, .timeout(kind, height: height, round: round))
    }

    func roundStarted(height: UInt64, round: UInt32) {
        metrics.round.record(Int(round))
        if round > 0 { metrics.roundsStarted.increment() }
    }

    func forgetBelow(height: UInt64) {
        earlyParts = earlyParts.filter { $0.key.height >= height }
        earlyPartCount = earlyParts.values.reduce(0) { $0 + $1.count }
    }

    /// Every consensus signature this validator makes, in the event log and flushed to the kernel
    /// before the message leaves (so it survives SIGKILL): analysis proves from these that no
    /// height/round/step was ever signed for two values (a byzantine node's second value included).
    func recordSigned(_ kind: MessageKind, height: UInt64, round: UInt32, value: Bytes32?) {
        write(.signed(kind, height: height, round: round, value: value,
                      validator: myIndex.map { validators.members[$0].name } ?? config.name), flush: true)
    }

    /// The write-ahead rule: the sign state is fsynced before the signature exists. A state that is
    /// not above the last one recorded (which the core never emits) or a failed write means: do not sign.
    func persistSignState(_ state: Tendermint.SignState, kind: MessageKind, payload: [UInt8]) -> Bool {
        if let last = signStore.state, state <= last {
            logger.error("refusing to sign at \(state.height)/\(state.round)/\(state.step): already signed \(last.height)/\(last.round)/\(last.step)")
            refusedSignatures += 1
            return false
        }
        do {
            try signStore.record(state, kind: kind, payload: payload)
            return true
        } catch {
            logger.error("cannot persist sign state, not signing: \(error)")
            refusedSignatures += 1
            return false
        }
    }

    /// Builds (or re-uses the valid value) and broadcasts a signed proposal with its parts.
    func propose(height: UInt64, round: UInt32, reuse blockId: Bytes32?, polRound: Int32) -> Proposal? {
        let block = blockId.flatMap { proposals.block($0) } ?? buildBlock(height: height)
        let (root, parts) = PartSet.split(block.encoded, payloadBytesMax: config.limits.datagramPayloadBytesMax,
                                          fixedOverhead: Envelope.overheadBytes + 12)
        let proposal = Proposal(height: height, round: round, polRound: polRound, blockId: block.id, partsRoot: root,
                                partCount: UInt16(parts.count), blockBytes: UInt32(parts.reduce(0) { $0 + $1.data.count }))
        recordSigned(.proposal, height: height, round: round, value: block.id)
        let envelopes = [sign(.proposal, proposal)]
            + parts.map { sign(.blockPart, BlockPart(height: height, round: round, part: $0)) }
        proposals.proposed(proposal, from: myIndex!, block: block, body: PartAssembly(
            assembler: PartSet.Assembler(root: root, total: parts.count, bytesMax: Block.bytesMax)))
        sendOwnProposal(envelopes, block: block, height: height, round: round, polRound: polRound)
        return proposal
    }

    private func buildBlock(height: UInt64) -> Block {
        Replica.buildBlock(height: height, proposer: key.publicKey, timeMs: protocolClock,
                           stateRoot: replica.claimedStateRoot(height: height, ours: ledger.stateRoot), ledger: ledger,
                           mempool: mempool, txsMax: config.limits.blockTxsMax,
                           bytesMax: config.limits.blockBytesMax, protocolVersion: config.protocolVersion)
    }

}

/// The node as the host of the shared replica logic (`ReplicaHost`: the commit path): its block store, event
/// log, metrics and views.
extension NodeShell: ReplicaHost {
    var storeHeight: UInt64 { store.height }

    /// fsynced before the block is executed: a `kill -9` at any moment loses no committed block.
    func storeCommitted(_ committed: CommittedBlock, rules: UInt16) {
        do {
            try store.append(committed, rulesVersion: rules)
        } catch {
            fatalError("cannot store block \(committed.block.header.height): \(error)")
        }
    }

    func settleTipRules(_ rules: UInt16, stored: Bool) {
        let height = store.height
        guard !stored else {
            logger.notice("the chain built block \(height + 1) on block \(height) as executed under rules v\(rules); keeping that")
            return
        }
        do {
            try store.rewriteLastRulesVersion(rules)
        } catch {
            logger.error("store: cannot record rules v\(rules) for block \(height): \(error)")
        }
    }

    func committed(_ committed: CommittedBlock, result: Ledger.BlockResult) {
        let block = committed.block
        rollup?.onL1Commit(L1Commit(block, result, ledger: ledger), live: true, host: self)
        if rpcView != nil {
            rpcView!.record(block, result, ledger: ledger)
            rpcBox?.publish(rpcView!)
        }
        committedTxs.insert(Set(block.txs.map(\.id)))
        txsCommitted += UInt64(block.txs.count)
        lastCommitTimeMs = clock()
        metrics.height.record(Int(block.header.height))
        metrics.blocksCommitted.increment()
        metrics.txsCommitted.increment(by: Int64(block.txs.count))
        metrics.mempoolTxs.record(mempool.count)
    }

    func record(_ event: @autoclosure () -> Replica.Event, flush: Bool) { write(event(), flush: flush) }
}
