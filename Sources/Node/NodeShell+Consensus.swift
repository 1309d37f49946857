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

    var coreSettings: Tendermint.Settings { consensus.settings }
    var coreMetrics: Tendermint.Metrics? { consensus.metrics }
    func coreHasVote(_ type: BFT.VoteType, round: UInt32, validator: Int, height: UInt64) -> Bool {
        height == consensus.height && consensus.hasVote(type, round: round, validator: validator)
    }

    func envelope(_ kind: MessageKind, _ payload: [UInt8], domain: Domain) -> Envelope {
        Envelope(kind: kind, payload: payload, domain: domain, key: key)
    }

    func signatureHolds(_ envelope: Envelope) -> Bool { envelope.verify(domain: domain) == .valid }

    func sendToAll(_ message: Envelope) { broadcast(message) }

    func send(_ envelope: Envelope, toPeer peer: PublicKey) { send(envelope, toKey: peer) }

    func send(_ message: Envelope, toLink name: String) {
        guard let peer = peerByName[name] else { return }
        send(message, to: peer)
    }

    func peerId(signing key: PublicKey) -> PublicKey? { peers[key] != nil ? key : nil }

    /// The transport has de-duplicated every message already: each is relayed once.
    func shouldRelay(_ envelope: Envelope) -> Bool { true }

    func receiveRollup(_ envelope: Envelope, _ message: Message) { rollup?.onPeerMessage(envelope, message, host: self) }

    func warn(_ text: @autoclosure () -> String) { logger.warning("\(text())") }

    func count(_ counter: Replica.Counter) {
        switch counter {
        case .heldDropped: metrics.noHandshakeDropped.increment()
        case .syncedBlock: metrics.syncBlocks.increment()
        case .mempool: break // the gauge is read from the status when Prometheus scrapes
        }
    }

    var blockTxsMax: Int { config.limits.blockTxsMax }
    var blockBytesMax: Int { config.limits.blockBytesMax }

    func scheduleTimeout(_ kind: Tendermint.TimeoutKind, height: UInt64, round: UInt32, afterMs: UInt64) {
        timers(afterMs, .timeout(kind, height: height, round: round))
    }

    func roundStarted(height: UInt64, round: UInt32) {
        if round > 0 { metrics.roundsStarted.increment() }
    }

    var signerName: String { myIndex.map { validators.members[$0].name } ?? config.name }

    func signed(_ kind: MessageKind, height: UInt64, round: UInt32, value: Bytes32?, validator: String) {}

    /// fsynced before the signature exists.
    func writeSignState(_ state: Tendermint.SignState, kind: MessageKind, payload: [UInt8]) -> Bool {
        do {
            try signStore.record(state, kind: kind, payload: payload)
            return true
        } catch {
            logger.error("cannot persist sign state, not signing: \(error)")
            return false
        }
    }
}

/// The node as the host of the shared replica logic (`ReplicaHost`): its block store, event
/// log, metrics and views.
extension NodeShell: ReplicaHost {
    var storeHeight: UInt64 { store.height }

    func committedBlock(at height: UInt64) -> CommittedBlock? {
        do {
            guard let stored = try store.encodedBlock(at: height) else { return nil }
            return try CommittedBlock(decoding: stored)
        } catch {
            logger.error("store: cannot read block \(height): \(error)")
            return nil
        }
    }

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
        committedTxs.insert(block.txs.lazy.map(\.id))
        txsCommitted += UInt64(block.txs.count)
        lastCommitTimeMs = clock()
        metrics.blocksCommitted.increment()
        metrics.txsCommitted.increment(by: Int64(block.txs.count))
    }

    func record(_ event: @autoclosure () -> Replica.Event, flush: Bool) { write(event(), flush: flush) }
}
