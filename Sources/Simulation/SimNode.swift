import Consensus
import DequeModule
import Ledger
import RPC
import Rollup
import Sodium
import Wire

/// One simulated node: the real consensus core, ledger and mempool and the replica logic the node runs
/// (`ReplicaHost`), driven by the simulator's virtual clock and network instead of sockets and timers.
/// This is the simulator's shell, the counterpart of the node's `NodeShell`: its ports keep in memory what
/// a real node keeps on disk (committed blocks and the sign state survive a crash; everything else is
/// lost), put envelopes on the simulated network, and write the event log and the safety monitor.
final class SimNode: ConsensusShell {
    enum State: Equatable { case down, running, paused }

    static let pausedInboxMax = 2_048
    static let relayedMax = 65_536

    let slot: Int
    let name: String
    /// The validator whose key this node signs with (a twin shares its original's), nil for none.
    let me: Int?
    let keyName: String
    let publicKey: PublicKey
    /// "validator", "rpc" (follows the chain and serves JSON-RPC), "gateway" (JSON-RPC only, see `SimRPC`),
    /// "sequencer" or "replica" (follow the chain; the rollup, see `SimRollup`).
    let role: String
    var isGateway: Bool { role == "gateway" }
    /// The simulator owns its nodes and outlives them (nodes exist only inside its run), so the reference
    /// is not counted: a counted `unowned` costs a strong retain and release on every access, and nodes read
    /// the world on every message (3% of the simulator's time).
    unowned(unsafe) let world: Simulator
    /// Peers by signing key → the slot the replica core names them by (see `peerId(signing:)`), fixed at the start.
    var peerIdsByKey: [PublicKey: Int] = [:]
    /// A sequencer or replica: its rollup part (a fresh one at every start), and what derivation needs of
    /// every stored L1 block (durable: the node re-executes its store at a start).
    var rollup: RollupNode<SimNode>?
    var l1Commits: [L1Commit] = []
    /// An rpc node: the chain as it serves it, what it answers from, and the upstream fault it plays.
    var rpcView: ChainView?
    var served: ServedViews?
    var rpcFault = UpstreamFault.ok

    // Durable: what a real node keeps on disk across a crash.
    var store: [CommittedBlock] = []
    var ledger: Ledger
    var signState: Tendermint.SignState?
    /// The last vote signed, re-sent after a restart (the node's sign-state file keeps its payload).
    var lastSignedVote: (type: Tendermint.VoteType, vote: Vote)?
    /// Bytes of a torn record after the stored blocks (a kill storm's), cut off at the next start.
    var tornTailBytes: UInt64 = 0
    /// The binary this node runs (its configuration: an `upgrade` step changes it for the next start).
    var binary: Replica.Binary
    /// The rules version the last stored block was executed under, and (only where a run has versions or
    /// upgrades) the ledger before it: what a node re-executes its tip from when it restarts on another binary.
    var tipRules: UInt16 = 1
    var ledgerBeforeTip: Ledger?

    // Volatile: lost at a crash.
    var state: State = .down
    var incarnation = 0
    var consensus: BFT.Core?
    var mempool: Mempool
    /// Proposals of this height and the next with their blocks (see `Replica.Proposals`), and the messages
    /// in flight around them (early parts, heights being synced, refusals).
    var proposals = Replica.Proposals<Replica.PartAssembly>()
    var reception = Replica.Reception()
    /// Messages this node has relayed (each once, as the node's transport de-duplicates), by id, with height.
    var relayed: [Bytes32: UInt64] = [:]
    /// The replica core, as the node's (see `Replica.Instance`); a fresh one at every start.
    var replica: Replica.Instance<Envelope, Int>
    /// The handshake with each peer slot (see `Replica.Handshakes`).
    var handshakes = Replica.Handshakes<Int, Replica.HeldMessage>()
    /// See `Replica.TipAlternative`: set at a start on another binary, settled by the next commit.
    var tipAlternative: Replica.TipAlternative?
    var consensusStarted = false
    var startedAtMs: UInt64 = 0
    var pausedInbox: Deque<SimEvent> = []
    var stopped: String? { replica.stopped }
    var clockSkewMs: Int64 = 0
    /// Misbehaviour from the topology, switched on at every start (a fault's lasts until a restart, as
    /// the node's does).
    var configuredByzantine: [ByzantineMode] = []
    var lastDropsLogged: [Int] = []
    var pendingSignState: Tendermint.SignState?
    /// With a modelled ingress: how long each vote handed to consensus this second waited there (ms).
    var voteWaitsMs: [UInt64] = []
    var lastSampleMs: UInt64 = 0

    init(slot: Int, name: String, me: Int?, keyName: String, role: String, binary: Replica.Binary, genesis: Genesis,
         world: Simulator) throws {
        self.slot = slot
        self.role = role
        if role == "rpc" {
            rpcView = ChainView(chainName: world.topology.chainId, domain: world.domain,
                                clientVersion: "faultline/simulated/\(name)")
        }
        self.binary = binary
        self.name = name
        self.me = me
        self.keyName = keyName
        self.publicKey = world.signingKey(keyName: keyName).publicKey
        self.world = world
        self.ledger = try Ledger(genesis: genesis)
        self.mempool = Mempool(txsMax: world.topology.limits.mempoolTxsMax)
        self.replica = SimNode.freshReplica(world: world, keyName: keyName)
    }

    /// Peers are the nodes signing with another key (as the node's peer table).
    static func freshReplica(world: Simulator, keyName: String) -> Replica.Instance<Envelope, Int> {
        let limits = world.topology.limits
        let peerCount = world.topology.nodes.filter { $0.keyName != keyName }.count
        return Replica.Instance(
            settings: Replica.Settings(statusIntervalMs: limits.statusIntervalMs, peerCount: peerCount,
                                       relayFanout: limits.gossipRelayFanout,
                                       votesOnlyAfterMs: limits.votesOnlyAfterMs),
            nowMs: world.nowMs)
    }

    var validators: ValidatorSet { world.validators }
    var storeHeight: UInt64 { UInt64(store.count) }
    var nowMs: UInt64 { world.nowMs }
    /// Block timestamps: virtual time plus any injected skew.
    var protocolClockMs: UInt64 { UInt64(max(0, Int64(nowMs) + clockSkewMs)) }

    // MARK: lifecycle

    /// A (re)start: a fresh process over the durable state. A binary started at a height whose rules it
    /// no longer implements refuses to run (the process exits; the node stays down).
    func start() {
        let discarded = tornTailBytes
        tornTailBytes = 0
        guard refusalToStart() == nil else { return } // the process exits; the node stays down
        state = .running
        incarnation += 1
        if isGateway {
            log(Replica.Event("start", [("role", .string("gateway")), ("version", .string("simulated"))]))
            return
        }
        if let rpcView {
            served = ServedViews(seed: world.settings.seed &+ UInt64(slot))
            served!.setFault(rpcFault)
            if rpcView.head > 0 { served!.publish(rpcView) }
        }
        consensusStarted = false
        startedAtMs = nowMs
        handshakes = .init()
        reexecuteTip()
        consensus = BFT.Core(world.topology.consensusProtocol, validators: validators, me: me,
                             settings: world.consensusSettings, height: storeHeight + 1, lastSigned: signState)
        mempool = Mempool(txsMax: world.topology.limits.mempoolTxsMax)
        replica = SimNode.freshReplica(world: world, keyName: keyName)
        if !configuredByzantine.isEmpty { setByzantine(configuredByzantine) }
        log(.start(height: storeHeight, round: 0, version: "simulated", binary: binary,
                   stake: me.map { validators.stake(of: $0) } ?? 0, stateRoot: ledger.stateRoot,
                   discardedTailBytes: discarded, lastSigned: signState, consensus: world.topology.consensusProtocol))
        if let alternative = tipAlternative {
            log(.reexecuted(height: storeHeight, from: alternative.recordedRules, to: alternative.currentRules,
                            stateRoot: ledger.stateRoot))
        }
        startRollup()
        world.scheduleTick(self, afterMs: world.topology.limits.statusIntervalMs)
        startReplica()
    }

    var heardValidators: Set<Int> {
        Set(replica.peerHeights.keys.compactMap { world.nodes[$0].me } + (me.map { [$0] } ?? []))
    }

    var corePosition: (height: UInt64, round: UInt32, step: Tendermint.Step)? {
        guard let height = consensus?.height, let round = consensus?.round, let step = consensus?.step else { return nil }
        return (height, round, step)
    }
    var lastSignState: Tendermint.SignState? { signState }

    /// The node's start-up re-execution of its last block under this binary's rules (see
    /// `Replica.TipAlternative`); only runs that model versions keep the ledger it needs.
    private func reexecuteTip() {
        tipAlternative = nil
        guard let before = ledgerBeforeTip, let tip = store.last else { return }
        var rebuilt = before
        var result: Ledger.BlockResult?
        tipAlternative = Replica.TipAlternative.reexecute((tip.block, tipRules), ledger: &rebuilt, binary: binary,
                                                         plans: world.plans, result: &result)
        ledger = rebuilt
    }

    /// Stops deciding (state root mismatch, upgrade needed): blocks and status are still served.
    func stopped(_ stop: Replica.Stop) {}

    /// An rpc node's upstream fault (`ok` ends it); it outlives restarts, as the run folder's record does.
    func setRPCFault(_ fault: UpstreamFault) {
        rpcFault = fault
        served?.setFault(fault)
    }

    /// SIGKILL: everything not on disk is gone.
    func crash() {
        state = .down
        served = nil
        rollup = nil
        incarnation += 1
        consensus = nil
        handshakes = .init()
        tipAlternative = nil
        proposals = .init()
        reception = .init()
        relayed.removeAll()
        pausedInbox.removeAll()
        pendingSignState = nil
        lastDropsLogged = []
        voteWaitsMs.removeAll()
        world.processEnded(slot)
    }

    // MARK: the core

    // The core is driven by `ConsensusShell.drive`, as the node's is.

    var decidesNow: Bool { stopped == nil && state == .running }

    func consensusEffects(for input: Tendermint.Input) -> [Tendermint.Effect]? { consensus?.process(input) }

    /// The core's height and round (nil: no core running), read in place: `guard let consensus` would copy
    /// the whole instance (and retain everything it holds) on every message.
    var position: (height: UInt64, round: UInt32)? {
        guard let height = consensus?.height, let round = consensus?.round else { return nil }
        return (height, round)
    }

    var coreSettings: Tendermint.Settings { world.consensusSettings }
    var coreMetrics: Tendermint.Metrics? { consensus?.metrics }
    func coreHasVote(_ type: BFT.VoteType, round: UInt32, validator: Int, height: UInt64) -> Bool {
        height == consensus?.height && consensus?.hasVote(type, round: round, validator: validator) == true
    }

    /// Unsigned (see `SimMessage`).
    func envelope(_ kind: MessageKind, _ payload: [UInt8], domain: Domain) -> Envelope {
        Envelope(kind: kind, payload: payload, domain: domain, sender: publicKey, signature: .zero)
    }

    /// The simulated network vouches for its envelopes' authors.
    func signatureHolds(_ envelope: Envelope) -> Bool { true }

    func sendToAll(_ envelope: Envelope) { world.broadcast(from: self, SimMessage(envelope, decoded(envelope))) }

    func send(_ envelope: Envelope, toPeer slot: Int) {
        world.sendToKeyOf(slot, from: self, SimMessage(envelope, decoded(envelope)))
    }

    func send(_ envelope: Envelope, toLink slot: Int) {
        world.send(from: self, toSlot: slot, SimMessage(envelope, decoded(envelope)))
    }

    /// This node's envelopes, decoded once for every receiver (as each node's edge would).
    private func decoded(_ envelope: Envelope) -> Message {
        guard let message = try? Message(kind: envelope.kind, payload: envelope.payload) else {
            preconditionFailure("\(name): a \(envelope.kind) it made does not decode")
        }
        return message
    }

    /// The peer's key slot (see `Simulator.keySlots`), when it is one of this node's peers.
    func peerId(signing key: PublicKey) -> Int? { peerIdsByKey[key] }

    func linkPeers(signing key: PublicKey) -> [Int] {
        (world.slotsByKey[key] ?? []).filter { world.peerSlots[slot].contains($0) }
    }

    func handshakeLink(signing key: PublicKey) -> Int? { peerId(signing: key) }

    /// Each message once, as the node's transport de-duplicates (bounded: forgotten at the next height).
    func shouldRelay(_ envelope: Envelope) -> Bool {
        guard relayed.count < SimNode.relayedMax, relayed[envelope.id] == nil else { return false }
        relayed[envelope.id] = position?.height ?? 0
        return true
    }

    func warn(_ text: @autoclosure () -> String) {}

    func count(_ counter: Replica.Counter) {}

    var blockTxsMax: Int { world.topology.limits.blockTxsMax }
    var blockBytesMax: Int { world.topology.limits.blockBytesMax }

    func committedBlock(at height: UInt64) -> CommittedBlock? {
        height >= 1 && height <= storeHeight ? store[Int(height - 1)] : nil
    }

    func scheduleTimeout(_ kind: Tendermint.TimeoutKind, height: UInt64, round: UInt32, afterMs: UInt64) {
        world.scheduleTimeout(self, afterMs: afterMs, kind, height: height, round: round)
    }

    func roundStarted(height: UInt64, round: UInt32) { world.noteRound(self, height: height, round: round) }

    func forgetBelow(height: UInt64) {
        relayed = relayed.filter { $0.value >= height }
    }

    /// In memory, which a simulated crash keeps.
    func writeSignState(_ newState: Tendermint.SignState, kind: MessageKind, payload: [UInt8]) -> Bool {
        signState = newState
        // As the node's sign-state file keeps the vote signed with it (to send it again after a crash).
        if kind == .prevote || kind == .precommit, let vote = try? Vote(decoding: payload) {
            lastSignedVote = (kind == .prevote ? .prevote : .precommit, vote)
        }
        return true
    }

    var signerName: String { me.map { validators.members[$0].name } ?? name }

    func signed(_ kind: MessageKind, height: UInt64, round: UInt32, value: Bytes32?, validator: String) {
        world.monitor.signed(validator: validator, node: name, height: height, round: round, kind: kind, value: value,
                             timeMs: nowMs)
    }

    /// The fields are only built when event logs are on (the swarm and the bench's first run have none).
    func log(_ event: @autoclosure () -> Replica.Event) {
        guard world.logs.enabled else { return }
        let built = event()
        world.log(self, built.name, built.fields)
    }
}

/// The simulated node as the host of the shared replica logic (`ReplicaHost`): durable state
/// in memory, the event log, the safety monitor, the rpc view and the rollup.
extension SimNode: ReplicaHost {
    var plans: [UpgradePlan] { world.plans }

    func storeCommitted(_ committed: CommittedBlock, rules: UInt16) {
        store.append(committed)
        if world.modelsVersions { ledgerBeforeTip = ledger }
        tipRules = rules
    }

    func settleTipRules(_ rules: UInt16, stored: Bool) { tipRules = rules }

    func committed(_ committed: CommittedBlock, result: Ledger.BlockResult) {
        let block = committed.block
        world.monitor.committed(node: name, height: block.header.height, blockId: committed.commit.blockId, timeMs: nowMs)
        if rpcView != nil {
            rpcView!.record(block, result, ledger: ledger)
            served?.publish(rpcView!)
        }
        rollupCommitted(block, result)
        world.noteCommit(self, height: block.header.height)
    }

    func record(_ event: @autoclosure () -> Replica.Event, flush: Bool) { log(event()) }
}
