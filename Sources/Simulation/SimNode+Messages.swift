import Basics
import Consensus
import Ledger
import Sodium
import Wire

extension SimNode {
    /// One message from the node in `sender`'s slot (a client's: negative), already past the simulated
    /// network's faults: the receiving edge, then the shared replica logic (`ReplicaHost.receive`).
    func receive(_ message: SimMessage, from sender: Int) {
        guard state == .running else { return }
        let envelope = message.envelope
        guard sender >= 0 else {
            // A client's transaction: the sequencer's client port, or a validator's mempool.
            if envelope.kind.isL2Transaction {
                rollup?.onClientTransaction(envelope, from: sender, receivedMs: nowMs, host: self)
            } else {
                receive(envelope, message.message, fromPeer: false)
            }
            return
        }
        // What the node's signature check refuses: signed for another chain, or (hellos aside, which are
        // checked under the fork they name) for another fork.
        guard envelope.chainTag == domain.chainTag else {
            reception.rejects["wrong_chain", default: 0] += 1
            return
        }
        guard envelope.kind == .hello || envelope.forkId == domain.forkId else {
            reception.rejects["wrong_fork", default: 0] += 1
            return
        }
        receive(envelope, message.message, fromPeer: true)
    }

    // MARK: handshake

    var linkPeers: [Int] { world.peers(of: self) }
    var handshakeChecksRules: Bool { world.topology.handshakeChecksRules }

    func linkName(_ peer: Int) -> String { world.nodes[peer].name }

    func handshakeHeard(_ peer: Int, _ outcome: Replica.Handshakes<Int, Replica.HeldMessage>.HelloOutcome) {}

    // MARK: proposals and sync

    /// The simulated network is authenticated by construction: nothing more to check.
    func transactionProblem(_ block: Block) -> String? { nil }

    func countInvalidProposal(_ key: Replica.ProposalKey, _ problem: String) {}

    var decidedElsewhereSigners: [Int]? { consensus?.decidedElsewhere?.signers }

    func peer(ofValidator index: Int) -> Int? { world.keySlot(ofValidator: index) }

    /// The run's generator, drawn from in agenda order by every node.
    var rng: SplitMix64 {
        get { world.rng }
        set { world.rng = newValue }
    }

    /// Every status interval (the node's tick): status (unless votes are flowing), re-sending a stalled height's messages,
    /// catching up, a byzantine node's floods, and the cumulative rejects.
    func tick() {
        guard state == .running else { return }
        rollup?.onStatusTick(host: self)
        tickReplica()
        logDrops()
        logSample()
        logTrafficIfDue()
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

    /// The node's `drops` event: cumulative rejects by reason, written when they change.
    func logDrops() {
        guard consensus != nil else { return }
        let snapshot = replicaRejects + (world.ingress[slot]?.dropCounts ?? [])
        let values = snapshot.map(\.1)
        guard values != lastDropsLogged, !values.isEmpty else { return }
        lastDropsLogged = values
        log(.drops(snapshot))
    }
}
