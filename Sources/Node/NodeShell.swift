import Basics
import Consensus
import DequeModule
import Ledger
import Logging
import NIOCore
import Prometheus
import Rollup
import RPC
import Sodium
import Transport
import Formats
import Wire

/// Inputs to the node's main loop. Everything that changes node state arrives as one of these.
enum NodeInput: Sendable {
    /// A verified message; `fromPeer` is false for client submissions (which the node forwards).
    case message(Envelope, Message, fromPeer: Bool, receivedMs: UInt64)
    case timeout(Tendermint.TimeoutKind, height: UInt64, round: UInt32)
    case tick
    /// Delayed datagrams (link faults) may be due.
    case sendDue
    /// New rules for this node's outgoing links (from the control port).
    case setLinkFaults(LinkFaultTable)
    /// Skew this node's protocol clock (block timestamps) by this many milliseconds.
    case setClockSkew(Int64)
    /// A verified L2 transaction from a client (for the sequencer), with the address to answer.
    case l2Client(Envelope, from: SocketAddress, receivedMs: UInt64)
    /// Client transactions the sequencer's edge refused before checking them (its verification budget was
    /// spent): their ids, to answer `busy` to the address they came from.
    case l2Shed([Bytes32], from: SocketAddress)
    /// The sequencer's block timer.
    case l2Tick
    /// An rpc node's injected upstream fault (from the control port).
    case setRPCFault(UpstreamFault)
    /// Misbehaviour to switch on (an empty list: honest again), from the control port.
    case setByzantine([ByzantineMode])
    /// A peer given by DNS name resolved to this address (first, or anew after its pod moved).
    case peerAddress(name: String, address: SocketAddress)
    /// A named moment from outside (`POST /mark`), written to the event log: where a schedule the node
    /// does not run (an exported Workflow) started.
    case mark(String)
}

/// The I/O shell of a validator: wires the consensus core and the ledger to the network, timers,
/// the durable store and the event log. Not thread-safe: one task (the main loop) owns it.
final class NodeShell {
    let config: NodeConfig
    let domain: Domain
    let key: SigningKey
    let validators: ValidatorSet
    let myIndex: Int?
    let logger: Logger
    let metrics: NodeMetrics
    var consensus: BFT.Core
    var ledger: Ledger
    let store: BlockStore
    let signStore: SignStateStore
    let events: EventLog
    var mempool: Mempool
    var peers: [PublicKey: Peer]
    /// More nodes signing with a key of `peers` (the Twins test: one validator key run by two nodes
    /// that may be told different things). They get everything the first one gets.
    var twins: [PublicKey: [Peer]]
    /// `peers` and their twins.
    var everyPeer: [Peer] { Array(peers.values) + twins.values.flatMap { $0 } }
    var peerByName: [String: Peer]
    /// Where peers given by DNS name are (see `PeerDirectory`); the edges read it too.
    let directory: PeerDirectory
    /// Peers given by name whose name has not resolved yet: nothing is sent to them.
    var unresolved: Set<String>
    let timers: (UInt64, NodeInput) -> Void
    let clock: () -> UInt64

    /// Datagrams produced while handling one input; the main loop shapes and sends them.
    var outbox: Outbox
    var clockSkewMs: Int64 = 0
    /// Proposals of this height and the next with their blocks (see `Replica.Proposals`), and the messages
    /// in flight around them (early parts, heights being synced, refusals).
    var proposals = Replica.Proposals<Replica.PartAssembly>()
    var reception = Replica.Reception()
    /// The replica core: this height's message memory, stall re-sends, peers' heights and sync requests,
    /// relay targets, reported offences and byzantine plans (shared with the simulator).
    var replica: Replica.Instance<Envelope, PublicKey>
    /// The core's randomness (sync peers, relay targets), seeded from this node's key and start time.
    var rng: SplitMix64
    var txsCommitted: UInt64 = 0
    var consensusStarted = false
    /// Non-zero while votes-only mode is on (read by the edges).
    let votesOnly = AtomicCounter()
    /// The height consensus is deciding, published for the receiving edges.
    let consensusHeight = AtomicCounter()
    /// Vote slots of that height already settled by +2/3 for one value, published for the edges.
    let voteQuorums = VoteQuorums()
    /// Ids of the transactions in recently committed blocks, for the receiving edges (see `TransactionIds`).
    let committedTxs = TransactionIds()
    /// Transactions the edges verified (see `TransactionIds`): a block is not checked again for them.
    let verifiedTxs = TransactionIds(capacity: 100_000)
    /// Arrival at the socket reader → processed by consensus, for votes, since the last sample.
    var voteDelaysMs: [UInt64] = []
    static let voteDelaySamplesMax = 20_000
    var lastSampleMs: UInt64 = 0
    /// Host health: how late each tick reached the main loop (timer wake-up plus the queue in front of
    /// it), and how late the network event loop ran its own timer, since the last sample.
    lazy var tickLateness = TickLateness(intervalMs: config.limits.statusIntervalMs)
    var eventLoopLateness: EventLoopLateness?
    /// The main loop's queue lengths (urgent, bulk), set before each input.
    var queueLengths = (urgent: 0, bulk: 0)
    /// Local UDP ports, to read the kernel's receive-drop counters.
    var localPorts: [(lane: String, port: Int)] = []
    /// The sign state announced by the core, persisted with the message by the signing effect.
    var pendingSignState: Tendermint.SignState?
    let drops = DropCounters()
    var lastDropsLogged: [Int] = []
    var lastDropsLogMs: UInt64 = 0
    var lastCommitTimeMs: UInt64 = 0
    let startedAtMs: UInt64
    /// The genesis's upgrade plans (checked).
    let plans: [UpgradePlan]
    /// Why this node stopped deciding, once it has (it keeps serving blocks and status).
    var stopped: String? { replica.stopped }
    /// The handshake with each peer, by name (see `Replica.Handshakes`): nothing but hellos goes to a peer
    /// not accepted; its consensus messages wait for the handshake.
    var handshakes = Replica.Handshakes<String, Replica.HeldMessage>()
    /// The last stored block as first executed, when a restart re-executed it under other rules.
    var tipAlternative: Replica.TipAlternative?
    /// The rollup part of a sequencer or replica.
    var rollup: RollupNode<NodeShell>?
    /// The stored blocks' inbox items, kept from start-up until the rollup replays them.
    var startupInbox: [L1Commit] = []
    /// An rpc node's served chain: updated at each commit and published to the JSON-RPC port's box.
    var rpcView: ChainView?
    let rpcBox: RPCViewBox?

    init(config: NodeConfig, key: SigningKey, genesis: Genesis, dataDir: String, eventsPath: String,
         logger: Logger, timers: @escaping (UInt64, NodeInput) -> Void, clock: @escaping () -> UInt64,
         registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) throws {
        self.config = config
        self.domain = Domain(chainId: config.chainId, forkId: config.forkId)
        self.key = key
        self.validators = try genesis.validatorSet()
        self.myIndex = validators.index(of: key.publicKey)
        self.logger = logger
        self.metrics = NodeMetrics(registry: registry, role: config.role, version: FaultlineVersion.string,
                                   rulesVersion: config.version,
                                   consensus: (config.consensusProtocol ?? .tendermint).rawValue)
        self.timers = timers
        self.clock = clock
        self.startedAtMs = clock()
        self.outbox = Outbox(shaper: LinkShaper(seed: key.seed.storage.0 ^ UInt64(clock())))
        self.rng = SplitMix64(seed: key.seed.storage.1 ^ UInt64(clock()))
        self.events = try EventLog(path: eventsPath, node: config.name)
        self.mempool = Mempool(txsMax: config.limits.mempoolTxsMax)
        var peerTable: [PublicKey: Peer] = [:]
        var twinTable: [PublicKey: [Peer]] = [:]
        let directory = try PeerDirectory.make(config.peers)
        self.directory = directory
        self.unresolved = Set(directory.named.map(\.name))
        for entry in config.peers {
            guard let bytes = Hex.decode(entry.publicKey), let peerKey = PublicKey(bytes) else {
                throw ConfigError(field: "peers.\(entry.name).publicKey", problem: "not a 64-hex-digit key")
            }
            // A peer given by name has no address until it resolves (nothing is sent to it before).
            let host = directory.named.contains { $0.name == entry.name } ? "0.0.0.0" : entry.host
            let address = try SocketAddress(ipAddress: host, port: entry.port)
            let voteAddress = entry.votePort > 0 ? try SocketAddress(ipAddress: host, port: entry.votePort) : nil
            let peer = Peer(name: entry.name, address: address, voteAddress: voteAddress)
            if peerKey == key.publicKey {
                continue // this node's own twin: each half of a twin pair only hears the other through peers
            } else if peerTable[peerKey] == nil {
                peerTable[peerKey] = peer
            } else {
                twinTable[peerKey, default: []].append(peer)
            }
        }
        self.peers = peerTable
        self.replica = Replica.Instance(
            settings: Replica.Settings(statusIntervalMs: config.limits.statusIntervalMs, peerCount: peerTable.count,
                                       relayFanout: config.limits.gossipRelayFanout,
                                       votesOnlyAfterMs: config.limits.votesOnlyAfterMs),
            nowMs: clock())
        self.twins = twinTable
        self.peerByName = Dictionary(uniqueKeysWithValues: (Array(peerTable.values) + twinTable.values.flatMap { $0 })
            .map { ($0.name, $0) })
        let plans = try genesis.upgradePlans()
        self.plans = plans
        // Rebuild the ledger from the store: every committed block is executed again under the rules
        // recorded with it, except the last one (see `Replica.TipAlternative`).
        var rebuilt = try Ledger(genesis: genesis, l2ForkId: config.forkId)
        var tip: (block: Block, rules: UInt16)?
        let keepsInbox = RollupRole(rawValue: config.role) != nil
        var inbox: [L1Commit] = []
        var view: ChainView? = config.role == "rpc"
            ? ChainView(chainName: config.chainId, domain: Domain(chainId: config.chainId, forkId: config.forkId),
                        clientVersion: "faultline/\(FaultlineVersion.string)/\(config.name)")
            : nil
        let store = try BlockStore(path: dataDir + "/blocks.dat") { committed, rules in
            if let previous = tip {
                rebuilt.rulesVersion = previous.rules
                let result = rebuilt.execute(previous.block)
                if keepsInbox { inbox.append(L1Commit(previous.block, result, ledger: rebuilt)) }
                view?.record(previous.block, result, ledger: rebuilt)
            }
            tip = (committed.block, rules)
        }
        self.store = store
        var tipResult: Ledger.BlockResult?
        let binary = Replica.Binary(version: config.version, versionMin: config.versionMin, forkId: config.forkId,
                                    protocolVersion: config.protocolVersion,
                                    consensus: config.consensusProtocol ?? .tendermint)
        self.tipAlternative = tip.flatMap { tip in
            Replica.TipAlternative.reexecute(tip, ledger: &rebuilt, binary: binary, plans: plans, result: &tipResult)
        }
        if keepsInbox, let tip, let tipResult { inbox.append(L1Commit(tip.block, tipResult, ledger: rebuilt)) }
        if let tip, let tipResult { view?.record(tip.block, tipResult, ledger: rebuilt) }
        self.startupInbox = inbox
        self.rpcView = view
        self.rpcBox = view.map { view in
            let box = RPCViewBox()
            if view.head > 0 { box.publish(view) }
            return box
        }
        if let role = RollupRole(rawValue: config.role) {
            guard let settings = config.rollup else {
                throw ConfigError(field: "rollup", problem: "a \(config.role) node needs rollup settings")
            }
            self.rollup = try RollupNode(role: role, settings: settings, genesis: genesis, forkId: config.forkId)
        }
        self.ledger = rebuilt
        rollup?.startDisputeAgent(ledger: rebuilt, key: key)
        self.signStore = try SignStateStore(path: dataDir + "/sign-state.dat")
        let height = store.height + 1
        let lastSigned = signStore.state
        let startRound = lastSigned.flatMap { $0.height == height ? $0.round : nil } ?? 0
        self.consensus = BFT.Core(
            config.consensusProtocol ?? .tendermint, validators: validators, me: myIndex,
            settings: BFT.Settings(timeouts: config.timing), height: height, round: startRound, lastSigned: lastSigned)
        self.txsCommitted = 0
        if store.discardedTailBytes > 0 {
            logger.warning("store: discarded a torn tail of \(store.discardedTailBytes) bytes; will fetch from peers")
        }
        write(.start(height: store.height, round: startRound, version: FaultlineVersion.string, binary: binary,
                     stake: myIndex.map { validators.stake(of: $0) } ?? 0, stateRoot: rebuilt.stateRoot,
                     discardedTailBytes: UInt64(store.discardedTailBytes), lastSigned: lastSigned,
                     consensus: consensus.name), flush: true)
        if let alternative = tipAlternative {
            logger.notice("re-executed block \(store.height) under rules v\(alternative.currentRules) (it was executed under v\(alternative.recordedRules)); state root now \(rebuilt.stateRoot.short), or \(alternative.ledger.stateRoot.short) if the chain built on the old result")
            write(.reexecuted(height: store.height, from: alternative.recordedRules, to: alternative.currentRules,
                              stateRoot: rebuilt.stateRoot))
        }
        if let reason = refusalToStart() {
            logger.critical("\(reason)")
            throw StartRefused(description: reason, height: store.height)
        }
    }

    /// Announces this node, and starts consensus once peers with +2/3 of stake (counting itself)
    /// have been heard from, or after `Replica.Settings.startWaitMaxMs`, so the first proposal is not sent into the void.
    func start() {
        if let rollup {
            for entry in startupInbox { rollup.onL1Commit(entry, live: false, host: self) }
            startupInbox = []
            logger.info("rollup: \(rollup.role.rawValue); derived L2 height \(rollup.derivation.chain.height) from \(store.height) L1 blocks")
        }
        startReplica()
    }


    var heardValidators: Set<Int> {
        Set(Set(replica.peerHeights.keys).union([key.publicKey]).compactMap { validators.index(of: $0) })
    }

    var corePosition: (height: UInt64, round: UInt32, step: Tendermint.Step)? {
        (consensus.height, consensus.round, consensus.step)
    }
    var lastSignState: Tendermint.SignState? { signStore.state }

    var lastSignedVote: (type: Tendermint.VoteType, vote: Vote)? {
        guard let signed = signStore.signed, let kind = MessageKind(rawValue: signed.kind),
              kind == .prevote || kind == .precommit, let vote = try? Vote(decoding: signed.payload) else { return nil }
        return (kind == .prevote ? .prevote : .precommit, vote)
    }

    func handle(_ input: NodeInput) {
        switch input {
        case .message(let envelope, let message, let fromPeer, let receivedMs):
            metrics.received[envelope.kind]?.increment()
            if envelope.kind == .prevote || envelope.kind == .precommit, voteDelaysMs.count < NodeShell.voteDelaySamplesMax {
                let now = clock()
                voteDelaysMs.append(now > receivedMs ? now - receivedMs : 0)
            }
            if envelope.kind == .hello, !directory.named.isEmpty, let name = handshakeLink(signing: envelope.sender) {
                directory.request(name) // a (re)started peer: where is it now?
            }
            receive(envelope, message, fromPeer: fromPeer)
        case .timeout(let kind, let height, let round):
            drive(.timeout(kind, height: height, round: round))
        case .tick:
            onTick()
        case .sendDue:
            break // the main loop releases due datagrams after every input
        case .setLinkFaults(let table):
            outbox.shaper.setTable(table)
            let described = table.links.filter { !$0.value.isClear }.sorted { $0.key < $1.key }
            logger.notice("link faults now: \(described.isEmpty ? "none" : described.map { "\($0.key): \($0.value)" }.joined(separator: "; "))")
            events.write("link_faults", timeMs: clock(), [("links", .array(described.map { .string($0.key) }))])
            events.flush()
        case .setClockSkew(let skew):
            clockSkewMs = skew
            events.write("clock_skew", timeMs: clock(), [("skewMs", .int(skew))])
            events.flush()
        case .l2Client(let envelope, let address, let receivedMs):
            metrics.received[envelope.kind]?.increment()
            rollup?.onClientTransaction(envelope, from: address, receivedMs: receivedMs, host: self)
        case .l2Shed(let ids, let address):
            rollup?.onShed(ids, from: address, host: self)
        case .l2Tick:
            rollup?.onBlockTimer(host: self)
        case .setByzantine(let modes):
            setByzantine(modes)
        case .peerAddress(let name, let address):
            movePeer(name, to: address)
        case .mark(let name):
            events.write("mark", timeMs: clock(), [("name", .string(name))])
            events.flush()
        case .setRPCFault(let fault):
            rpcBox?.setFault(fault)
            logger.notice("rpc fault now: \(fault)")
            events.write("rpc_fault", timeMs: clock(), [("mode", .string(fault.mode)), ("description", .string("\(fault)"))])
            events.flush()
        }
        if let rollup, !rollup.uplink.queue.isEmpty {
            outbox.items += rollup.uplink.drain(nowMs: clock()).map(Outgoing.init)
        }
    }

    /// This node's protocol clock: wall time plus any injected skew (used for block timestamps).
    var protocolClockMs: UInt64 { UInt64(max(0, Int64(clock()) + clockSkewMs)) }

    var status: NodeStatus {
        let now = clock()
        var status = NodeStatus(
            name: config.name, role: config.role, version: FaultlineVersion.string,
            protocolVersion: config.protocolVersion, height: store.height, consensusHeight: consensus.height,
            round: consensus.round, step: consensus.step.description,
            peers: replica.peersUp(nowMs: now), peersTotal: peers.count,
            mempoolTxs: mempool.count, ingressQueue: 0, ingressQueueMax: config.limits.ingressQueueMax,
            lastCommitTimeMs: lastCommitTimeMs, lastBlockId: ledger.lastBlockId.hex, stateRoot: ledger.stateRoot.hex,
            txsCommitted: txsCommitted, startedAtMs: startedAtMs,
            conflictingVotes: consensus.metrics.conflictingVote, invalidProposals: reception.invalidProposals,
            proposer: validators.members[validators.proposer(height: consensus.height, round: consensus.round)].name,
            linkFaults: outbox.shaper.table.links.count, shapedDrops: outbox.shaper.droppedByReason.values.reduce(0, +),
            clockSkewMs: clockSkewMs)
        status.rulesVersionMax = config.version
        status.rulesVersionMin = config.versionMin
        status.rulesApplied = ledger.rulesVersion
        status.forkId = config.forkId
        status.consensus = consensus.name.rawValue
        status.stopped = stopped
        status.disputeGamesOpen = ledger.disputes?.gamesOpen ?? 0
        if let fault = rpcBox?.fault, fault.mode != "ok" { status.rpcFault = fault.description }
        status.refusedPeers = handshakes.refused
        return status
    }

    /// `GET /consensus`: the core's view of the current height plus what the shell is waiting for.
    var consensusSnapshot: [String: String] {
        var out = consensus.snapshot
        out["store.height"] = "\(store.height)"
        out["pending"] = proposals.entries.keys.sorted().map { key in
            let entry = proposals.entries[key]!
            let assembler = entry.body.assembler
            return "\(key.height)/\(key.round):\(entry.delivered ? "complete" : "\(assembler.received)/\(assembler.total)")"
        }.joined(separator: " ")
        out["sync.requested"] = replica.syncRequested.keys.sorted().map(String.init).joined(separator: " ")
        out["sync.blocks"] = reception.syncBlocks.keys.sorted().map(String.init).joined(separator: " ")
        out["sync.votes"] = reception.syncVotes.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value.values.map(\.count))" }
            .joined(separator: " ")
        out["peers"] = replica.peerHeights.map { "\(peers[$0.key]?.name ?? "?")@\($0.value.height)" }.sorted().joined(separator: " ")
        out["shaper.pending"] = "\(outbox.shaper.pendingCount)"
        out["ownVotes"] = "\(replica.ownVotes.count)"
        return out
    }

    /// A peer given by name now resolves to `address` (its vote lane on the same host).
    func movePeer(_ name: String, to address: SocketAddress) {
        guard var peer = peerByName[name], let entry = config.peers.first(where: { $0.name == name }) else { return }
        let first = unresolved.remove(name) != nil
        peer.address = address
        peer.voteAddress = entry.votePort > 0 ? try? address.withPort(entry.votePort) : nil
        peerByName[name] = peer
        for (key, known) in peers where known.name == name { peers[key] = peer }
        for (key, list) in twins { twins[key] = list.map { $0.name == name ? peer : $0 } }
        logger.notice("peer \(name) (\(entry.host)) \(first ? "is" : "moved to") \(address)")
        events.write("peer_address", timeMs: clock(), [("peer", .string(name)), ("address", .string("\(address)"))])
    }

    // MARK: sending

    /// Queues a datagram for `peer`; only hellos go to a peer whose handshake has not succeeded.
    func send(_ envelope: Envelope, to peer: Peer) {
        guard envelope.kind == .hello || handshakes.isAccepted(peer.name), !unresolved.contains(peer.name) else { return }
        outbox.items.append(Outgoing(bytes: envelope.bytes, address: peer.address(for: envelope.kind), peer: peer.name,
                               kind: envelope.kind))
    }

    /// After a batch of inputs: answers the refusals they collected (one signed message per client and reason).
    func finishInputs() {
        guard let rollup, rollup.hasRefusals else { return }
        rollup.flushRefusals(host: self)
        outbox.items += rollup.uplink.drain(nowMs: clock()).map(Outgoing.init)
    }

    func takeOutgoing() -> [Datagram] {
        outbox.take(nowMs: clock(), datagramBytesMax: config.limits.datagramPayloadBytesMax) { [peerByName, unresolved] name, kind in
            unresolved.contains(name) ? nil : peerByName[name]?.address(for: kind)
        }
    }

    /// To the node with this key, and to its twins (which of them a message came from is unknown).
    func send(_ envelope: Envelope, toKey peerKey: PublicKey) {
        guard let peer = peers[peerKey] else { return }
        send(envelope, to: peer)
        for twin in twins[peerKey] ?? [] { send(envelope, to: twin) }
    }

    func broadcast(_ envelope: Envelope) {
        for peerKey in peers.keys { send(envelope, toKey: peerKey) }
    }

    var peerIds: [PublicKey] { Array(peers.keys) }

    func peer(ofValidator index: Int) -> PublicKey? {
        let key = validators.members[index].publicKey
        return peers[key] != nil ? key : nil
    }

    /// Writes one of the replica's events to this node's event log (flushed to the kernel when asked).
    func write(_ event: Replica.Event, flush: Bool = false) {
        events.write(event.name, timeMs: clock(), event.fields)
        if flush { events.flush() }
    }

    func sign(_ kind: MessageKind, _ payload: some WireCodable) -> Envelope {
        Envelope(kind: kind, payload: payload.encoded, domain: domain, key: key)
    }
}

public struct ConfigError: Error, CustomStringConvertible {
    public let field: String
    public let problem: String

    public var description: String { "\(field): \(problem)" }
}

public enum FaultlineVersion {
    public static let string = "0.1.0"
}
