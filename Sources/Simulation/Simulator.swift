import Basics
import Formats
import Consensus
import Foundation
import Ledger
import Sodium

import Wire

/// What the simulator runs on an agenda entry.
enum SimEvent {
    /// A message arriving at `to` from the node in slot `from` (-1: a client).
    case deliver(to: Int, from: Int, SimMessage)
    /// A message that waited `waitedUs` at `to`'s modelled ingress (`SimIngress`) and is checked now.
    case checked(to: Int, from: Int, SimMessage, waitedUs: UInt64)
    /// A consensus timeout (only its kind, height and round: events are copied as the agenda reorders).
    case timer(node: Int, incarnation: Int, Tendermint.TimeoutKind, height: UInt64, round: UInt32)
    case tick(node: Int, incarnation: Int)
    /// The sequencer's L2 block timer (`RollupNode.onBlockTimer`).
    case blockTimer(node: Int, incarnation: Int)
    case start(node: Int)
    case step(Int)
    case undo(Int)
    case load
    /// An airdrop step's next claims (`SimAirdrop`), and its client's end.
    case airdrop(step: Int)
    case airdropEnd(step: Int)
    case stormKill(step: Int)
    case stormRestart(step: Int, node: Int)
    /// The JSON-RPC side (`SimRPC`).
    case rpc(RPCEvent)
    case end
}

extension SimEvent {
    /// The node an input is for (nil: the schedule's own events).
    var slot: Int? {
        switch self {
        case .deliver(let to, _, _), .checked(let to, _, _, _): return to
        case .timer(let node, _, _, _, _), .tick(let node, _), .blockTimer(let node, _), .start(let node): return node
        case .step, .undo, .load, .airdrop, .airdropEnd, .stormKill, .stormRestart, .rpc, .end: return nil
        }
    }
}

/// Runs a scenario's validators in one process, in virtual time: the real consensus core, ledger and
/// mempool in every node, a simulated network with the real link-fault semantics (`LinkShaper`),
/// crashes that keep exactly what a node keeps on disk, and every random choice drawn from one seeded
/// generator in agenda order, so a seed replays byte for byte.
public final class Simulator {
    public struct Settings: Sendable {
        public var seed: UInt64
        /// One-way latency of every simulated link before faults, and its uniform jitter (±).
        public var latencyMs: Double = 1.0
        public var jitterMs: Double = 0.5
        /// A process's start: from exec to consensus running.
        public var startupMs: UInt64 = 100
        /// The first starts spread over this long (a real cluster's processes start one by one).
        public var startSpreadMs: UInt64 = 200
        /// A bug planted in every node's consensus (only to prove the checkers catch it; nil: none).
        public var planted: Tendermint.PlantedBug?
        /// The consensus protocol every validator runs, over the scenario's `[cluster] protocol` (nil: the file's).
        public var consensus: BFT.ProtocolName?
        /// Write the nodes' event logs (a report needs them; the swarm checks safety in memory).
        public var eventLogs = true
        /// Give up when no node has committed a block this long after the start.
        public var firstBlockWithinSeconds = 30.0
        /// The machine a spam step is measured against, as `faultline run` measures it at the start
        /// (`VerificationCapacity`): datagrams one core receives and checks per second, signature checks
        /// alone per second of one core, and the cores the cluster shares. A node takes in its share,
        /// `ingress × cores ÷ validators` a second; spam at k× is k times that. Set here, not measured, so a
        /// seed replays the same anywhere (defaults: what a 2-core machine here measures).
        public var ingressPerCorePerSecond = Settings.ingressPerCoreDefault
        public var verifyPerCorePerSecond = 20_600.0
        public var cores = Settings.coresDefault
        public static let ingressPerCoreDefault = 12_800.0
        public static let coresDefault = 2

        public init(seed: UInt64) { self.seed = seed }
    }

    public struct Outcome: Sendable {
        public var startedAtMs: UInt64
        public var endedAtMs: UInt64
        public var stepsFired: [String]
        public var heights: [String: UInt64]
        public var violations: [SafetyMonitor.Violation]
        public var agendaItems: UInt64
        public var virtualSeconds: Double
        public var kills: Int
        /// With a spam step: what the spam was measured against, and each step's spam as sent.
        public var capacity: VerificationCapacity?
        public var spam: [SpamRecord]
    }

    /// Virtual time 0, as wall-clock milliseconds in the logs (fixed, so logs never depend on the day).
    public static let epochMs: UInt64 = 1_767_225_600_000

    let scenario: Scenario
    let settings: Settings
    var topology: Topology { scenario.topology }
    let genesis: Genesis
    let validators: ValidatorSet
    let domain: Domain
    let consensusSettings: Tendermint.Settings
    /// The genesis's upgrade plans.
    let plans: [UpgradePlan]
    /// The run has binary versions or upgrades: nodes keep what re-executing their tip needs.
    let modelsVersions: Bool
    var nodes: [SimNode] = []
    var peerSlots: [[Int]] = []
    /// Per slot, the first slot signing with the same key: how a node's replica core names a peer (the
    /// node's names a peer by its public key, so twins are one peer).
    var keySlots: [Int] = []
    var validatorSlots: [Int?] = []
    /// Per slot, its peers by key (see `peerKeys(of:)`), fixed at the start.
    var peerKeySlots: [[Int]] = []
    /// The slots signing with each key (a twin pair's two), in slot order.
    var slotsByKey: [PublicKey: [Int]] = [:]
    var shapers: [LinkShaper] = []
    /// Per link (sender slot × node count + receiver slot): when its last datagram without a fault's delay
    /// arrives (see `send`).
    var linkLastUs: [UInt64] = []
    var rng: SplitMix64
    var queue = EventQueue<SimEvent>()
    public private(set) var nowUs: UInt64 = 0
    var nowMs: UInt64 { Simulator.epochMs + nowUs / 1_000 }
    public var monitor = SafetyMonitor()
    var logs: SimLogs
    var keys: [String: SigningKey] = [:]

    // The schedule.
    var scenarioStartUs: UInt64?
    var stepsFired: [String] = []
    var waitingSteps: [Int] = []
    var activeLinkFaults: [(id: String, links: [FaultEngine.Link])] = []
    var storms: [Int: StormState] = [:]
    var loadState: LoadState?
    /// Airdrop steps fired, by step index.
    var airdrops: [Int: AirdropState] = [:]
    var spamSent: [SpamRecord] = []
    /// The rpc nodes' clients: the gateway's engine and the load's (nil: no rpc node in the run).
    var rpc: RPCState?
    /// Per slot, the modelled receive path (only in runs with a spam step; nil elsewhere and for non-validators).
    var ingress: [SimIngress?] = []
    /// What the spam is measured against (`Settings`), for the run's validators.
    let capacity: VerificationCapacity
    /// The run has a sequencer: nodes' uplinks are drained after every input.
    let hasRollup: Bool
    var agendaItems: UInt64 = 0
    /// Steps whose heal has run (a heal runs once: when due, or at the end of the scenario).
    var healed: Set<Int> = []
    /// Liveness as the run goes: the highest height any node committed, when, and the longest wait
    /// for a new height since the schedule began.
    public private(set) var highestCommitted: UInt64 = 0
    var highestCommittedUs: UInt64 = 0
    public private(set) var longestCommitGapMs: UInt64 = 0
    /// When each new height was first committed (any node), for liveness after a heal.
    var newHeightTimesUs: [UInt64] = []
    /// Twins-style delivery by round and step (nil: the network as the scenario's faults make it).
    var roundSchedule: RoundSchedule?
    /// End the run as soon as, from `afterUs` on, every node in `slots` has committed `height` (a check that
    /// needs no more: Twins' liveness). Nil: run the scenario to its end.
    var goal: (height: UInt64, slots: [Int], afterUs: UInt64)?
    /// The goal was met (the run ended early, all its nodes at the height).
    public private(set) var goalMet = false
    /// End the run at the first safety violation (the swarm needs no more).
    public var stopAtFirstViolation = false
    var settling = false
    var ended = false

    public init(scenario: Scenario, settings: Settings, logDir: String?) throws {
        try Simulator.checkSupported(scenario)
        var scenario = scenario
        if let consensus = settings.consensus { scenario.topology.consensusProtocol = consensus }
        self.scenario = scenario
        self.settings = settings
        self.rng = SplitMix64(seed: settings.seed ^ 0x5349_4D55_4C41_5445) // "SIMULATE"
        let topology = scenario.topology
        genesis = ClusterSetup.genesis(topology: topology, seed: settings.seed, timeMs: Simulator.epochMs)
        validators = try genesis.validatorSet()
        domain = Domain(chainId: topology.chainId)
        consensusSettings = Tendermint.Settings(timeouts: topology.timing, planted: settings.planted)
        plans = try genesis.upgradePlans()
        modelsVersions = !plans.isEmpty || scenario.steps.contains { if case .upgrade = $0.action { return true }; return false }
            || topology.nodes.contains { $0.version != 1 || $0.versionMin != 1 || $0.forkId != 0 }
        logs = try SimLogs(dir: settings.eventLogs ? logDir : nil, nodes: topology.nodes.map(\.name))
        capacity = VerificationCapacity(verifyPerCorePerSecond: settings.verifyPerCorePerSecond,
                                        ingressPerCorePerSecond: settings.ingressPerCorePerSecond, cores: settings.cores,
                                        validators: topology.validators.count)
        hasRollup = topology.rollup != nil
        for (slot, node) in topology.nodes.enumerated() {
            let index = topology.validators.firstIndex { $0.name == node.keyName }
            let binary = Replica.Binary(version: node.version, versionMin: node.versionMin, forkId: node.forkId,
                                        consensus: topology.consensusProtocol)
            nodes.append(try SimNode(slot: slot, name: node.name, me: index, keyName: node.keyName, role: node.role, binary: binary,
                                     genesis: genesis, world: self))
            shapers.append(LinkShaper(seed: settings.seed &+ UInt64(slot) &* 0x9E37_79B9))
        }
        // A gateway gossips with no one: it only speaks JSON-RPC to the rpc nodes.
        peerSlots = nodes.map { node in
            node.isGateway ? [] : nodes.filter { $0.keyName != node.keyName && !$0.isGateway }.map(\.slot)
        }
        keySlots = nodes.map { node in nodes.first { $0.keyName == node.keyName }!.slot }
        validatorSlots = validators.members.indices.map { index in nodes.first { $0.me == index }?.slot }
        peerKeySlots = peerSlots.map { slots in Array(Set(slots.map { keySlots[$0] })).sorted() }
        for node in nodes { slotsByKey[node.publicKey, default: []].append(node.slot) }
        // A peer is named by the first slot signing with its key, when that slot is one of the node's peers.
        for node in nodes {
            let peers = Set(peerKeySlots[node.slot])
            node.peerIdsByKey = slotsByKey.compactMapValues { slots in slots.first.flatMap { peers.contains($0) ? $0 : nil } }
        }
        for node in topology.nodes.enumerated() where !node.element.byzantine.isEmpty {
            nodes[node.offset].configuredByzantine = node.element.byzantine
        }
        monitor.checkCertificates(
            stakes: Dictionary(validators.members.map { ($0.name, $0.stake) }, uniquingKeysWith: +),
            liars: Set(topology.nodes.filter { !$0.byzantine.isEmpty }.map(\.keyName)))
        ingress = Array(repeating: nil, count: nodes.count)
        linkLastUs = Array(repeating: 0, count: nodes.count * nodes.count)
        rpc = makeRPC()
    }

    // MARK: running

    /// Runs the scenario: nodes start, the schedule begins at the first finalized block (as `faultline
    /// run` starts its clock once `up` has seen one), faults fire and heal, the run settles and ends.
    public func run() throws -> Outcome {
        // Processes come up one after another, as `faultline up` spawns them (not in one instant).
        for node in nodes {
            let spreadUs = UInt64(rng.nextUnit() * Double(settings.startSpreadMs) * 1_000)
            queue.push(.start(node: node.slot), atUs: settings.startupMs * 1_000 + spreadUs)
        }
        let firstBlockDeadlineUs = UInt64(settings.firstBlockWithinSeconds * 1_000_000)
        while !ended, let entry = queue.pop() {
            nowUs = entry.timeUs
            agendaItems += 1
            handle(entry.item)
            if hasRollup, let slot = entry.item.slot { nodes[slot].flushRollup() }
            if stopAtFirstViolation, !monitor.violations.isEmpty { break }
            if scenarioStartUs == nil, nowUs > firstBlockDeadlineUs {
                throw RunError("no block finalized \(Int(settings.firstBlockWithinSeconds)) s (simulated) after the start")
            }
        }
        if let rpc, let spec = rpc.spec {
            logs.rpcLoad = (RPCLoadRecord(clients: spec.clients, ratePerSecond: spec.ratePerSecond,
                                          staleBlocks: spec.staleBlocks, methods: spec.methods), rpc.records)
        }
        logs.airdrops = airdrops.sorted { $0.key < $1.key }.map(\.value.record)
        try logs.close()
        let start = scenarioStartUs ?? 0
        return Outcome(startedAtMs: Simulator.epochMs + start / 1_000, endedAtMs: nowMs, stepsFired: stepsFired,
                       heights: Dictionary(uniqueKeysWithValues: nodes.map { ($0.name, $0.storeHeight) }),
                       violations: monitor.violations, agendaItems: agendaItems,
                       virtualSeconds: Double(nowUs) / 1_000_000, kills: storms.values.reduce(0) { $0 + $1.kills },
                       capacity: modelsIngress ? capacity : nil, spam: spamSent)
    }

    private func handle(_ item: SimEvent) {
        switch item {
        case .deliver(let to, let from, let message):
            let node = nodes[to]
            switch node.state {
            case .down: break
            case .paused: node.buffer(item)
            case .running:
                if ingress[to] != nil {
                    guard let waitUs = ingress[to]!.arrive(message.kind, nowUs: nowUs, draw: rng.nextUnit()) else { return }
                    queue.push(.checked(to: to, from: from, message, waitedUs: UInt64(waitUs)), atUs: nowUs + UInt64(waitUs))
                } else {
                    node.receive(message, from: from)
                }
            }
        case .checked(let to, let from, let message, let waitedUs):
            let node = nodes[to]
            switch node.state {
            case .down: break
            case .paused: node.buffer(item)
            case .running:
                if message.kind == .prevote || message.kind == .precommit { node.votesWaited(waitedUs) }
                node.receive(message, from: from)
            }
        case .timer(let slot, let incarnation, let kind, let height, let round):
            let node = nodes[slot]
            guard node.incarnation == incarnation else { return }
            if node.state == .paused { node.buffer(item) } else { node.drive(.timeout(kind, height: height, round: round)) }
        case .tick(let slot, let incarnation):
            let node = nodes[slot]
            guard node.incarnation == incarnation else { return }
            if node.state == .paused {
                node.buffer(item)
            } else {
                node.tick()
                scheduleTick(node, afterMs: topology.limits.statusIntervalMs)
            }
        case .blockTimer(let slot, let incarnation):
            let node = nodes[slot]
            guard node.incarnation == incarnation, let rollup = node.rollup else { return }
            if node.state == .paused {
                node.buffer(item)
            } else {
                rollup.onBlockTimer(host: node)
                scheduleBlockTimer(node, afterMs: topology.rollup?.settings.blockIntervalMs ?? 100)
            }
        case .start(let slot):
            if nodes[slot].state == .down { nodes[slot].start() }
        case .step(let index):
            fire(index)
        case .undo(let index):
            if healed.insert(index).inserted { undo(scenario.steps[index]) }
        case .load:
            sendLoad()
        case .airdrop(let step):
            sendAirdrop(step: step)
        case .airdropEnd(let step):
            endAirdrop(step: step)
        case .stormKill(let step):
            stormKill(step)
        case .stormRestart(let step, let slot):
            stormRestart(step, slot: slot)
        case .rpc(let event):
            handleRPC(event)
        case .end:
            // `until_height`: past `duration_s`, run on until a node has finalized it (or the longest time).
            if let target = scenario.untilHeight, !nodes.contains(where: { $0.storeHeight >= target }),
               let start = scenarioStartUs, nowUs < start + UInt64(scenario.scheduleSecondsMax * 1_000_000) {
                queue.push(.end, atUs: nowUs + 100_000)
            } else {
                finish()
            }
        }
    }

    // MARK: the nodes' view of the world

    func scheduleTimeout(_ node: SimNode, afterMs: UInt64, _ kind: Tendermint.TimeoutKind, height: UInt64, round: UInt32) {
        queue.push(.timer(node: node.slot, incarnation: node.incarnation, kind, height: height, round: round),
                   atUs: nowUs + afterMs * 1_000)
    }

    func scheduleTick(_ node: SimNode, afterMs: UInt64) {
        queue.push(.tick(node: node.slot, incarnation: node.incarnation), atUs: nowUs + afterMs * 1_000)
    }

    /// As the node's timer task: never more often than every 10 ms.
    func scheduleBlockTimer(_ node: SimNode, afterMs: UInt64) {
        queue.push(.blockTimer(node: node.slot, incarnation: node.incarnation), atUs: nowUs + max(afterMs, 10) * 1_000)
    }

    func peers(of node: SimNode) -> [Int] { peerSlots[node.slot] }

    /// The peers of `node` by key (one slot per key, see `keySlots`).
    func peerKeys(of node: SimNode) -> [Int] { peerKeySlots[node.slot] }

    /// The key slot of the nodes signing as validator `index` (nil: no node runs it).
    func keySlot(ofValidator index: Int) -> Int? { index < validatorSlots.count ? validatorSlots[index] : nil }

    /// One message through the sender's link rules and the network's latency.
    func send(from node: SimNode, toSlot target: Int, _ message: SimMessage) {
        guard node.state == .running, target != node.slot else { return }
        // Only hellos go to a peer whose handshake has not succeeded (as the node's `send`).
        if message.kind != .hello, !node.handshakes.isAccepted(target) { return }
        let decision = shapers[node.slot].decide(bytesCount: message.bytesCount, kind: message.kind,
                                                 peer: nodes[target].name, nowMs: Double(nowUs) / 1_000)
        guard case .send(let delays) = decision else { return }
        var scheduledMs = 0.0
        if let roundSchedule {
            guard let extra = roundSchedule.fate(from: node.slot, to: target, message, nowUs: nowUs,
                                                   senderAt: node.consensus.map { ($0.height, $0.round, $0.step) }) else { return }
            scheduledMs = extra
        }
        for delayMs in delays {
            let latencyMs = settings.latencyMs + scheduledMs + (rng.nextUnit() * 2 - 1) * settings.jitterMs
            var atUs = nowUs + UInt64(max(0, latencyMs + delayMs) * 1_000)
            // A link keeps order, as loopback UDP between two sockets does: the jitter varies how long a
            // datagram takes, not which of two comes first. Only a link fault's delay reorders.
            if delayMs == 0 {
                let link = node.slot * nodes.count + target
                atUs = max(atUs, linkLastUs[link])
                linkLastUs[link] = atUs
            }
            queue.push(.deliver(to: target, from: node.slot, message), atUs: atUs)
        }
    }

    func broadcast(from node: SimNode, _ message: SimMessage) {
        for target in peerSlots[node.slot] { send(from: node, toSlot: target, message) }
    }

    /// To the node in `slot` and its twins: a node cannot tell which holder of a key asked.
    func sendToKeyOf(_ slot: Int, from node: SimNode, _ message: SimMessage) {
        guard slot >= 0 else { return }
        for target in nodes where target.keyName == nodes[slot].keyName { send(from: node, toSlot: target.slot, message) }
    }

    func sendToValidator(_ index: Int, from node: SimNode, _ message: SimMessage) {
        for target in nodes where target.me == index { send(from: node, toSlot: target.slot, message) }
    }

    func validatorName(_ key: PublicKey) -> String {
        validators.index(of: key).map { validators.members[$0].name } ?? key.description
    }

    /// A node's real signing key (for what is signed for real: evidence, load transactions).
    func signingKey(keyName: String) -> SigningKey {
        if let key = keys[keyName] { return key }
        let key = ClusterSetup.nodeKey(chainId: topology.chainId, seed: settings.seed, name: keyName)
        keys[keyName] = key
        return key
    }

    func log(_ node: SimNode, _ event: String, _ fields: @autoclosure () -> [(String, JSONValue)]) {
        guard logs.enabled else { return }
        logs.write(node.slot, JSONValue.eventLine(event, timeMs: nowMs, node: node.name, fields()))
    }

    func noteCommit(_ node: SimNode, height: UInt64) {
        if scenarioStartUs == nil { beginSchedule() }
        if height > highestCommitted {
            longestCommitGapMs = max(longestCommitGapMs, (nowUs - max(highestCommittedUs, scenarioStartUs!)) / 1_000)
            highestCommitted = height
            highestCommittedUs = nowUs
            newHeightTimesUs.append(nowUs)
        }
        checkWaitingSteps()
        if let goal, nowUs >= goal.afterUs, goal.slots.allSatisfy({ nodes[$0].storeHeight >= goal.height }) {
            goalMet = true
            ended = true
        }
    }

    /// How long ago the chain moved past `height` (the first commit of `height + 1` anywhere), in seconds; 0
    /// when no node has.
    public func secondsBehind(height: UInt64) -> Double {
        guard height < highestCommitted, Int(height) < newHeightTimesUs.count else { return 0 }
        return Double(nowUs - newHeightTimesUs[Int(height)]) / 1_000_000
    }

    /// The longest wait for a new height from `offsetUs` after the schedule began to the end of the run.
    public func longestGapAfter(_ offsetUs: UInt64) -> Double {
        guard let start = scenarioStartUs else { return Double(nowUs) / 1_000_000 }
        var last = start + offsetUs
        var longest: UInt64 = 0
        for time in newHeightTimesUs where time > last {
            longest = max(longest, time - last)
            last = time
        }
        longest = max(longest, nowUs > last ? nowUs - last : 0)
        return Double(longest) / 1_000_000
    }

    func noteRound(_ node: SimNode, height: UInt64, round: UInt32) {
        if !waitingSteps.isEmpty { checkWaitingSteps() }
    }
}

extension SimNode {
    /// A paused process: datagrams wait in the socket's buffer (bounded: more are dropped, as the
    /// kernel does), timers fire late, once it runs again.
    func buffer(_ item: SimEvent) {
        switch item {
        case .deliver, .checked:
            guard pausedInbox.count < SimNode.pausedInboxMax else {
                reception.rejects["paused_buffer_full", default: 0] += 1
                return
            }
        default: break
        }
        pausedInbox.append(item)
    }

    func pause() { if state == .running { state = .paused } }

    func resume() {
        guard state == .paused else { return }
        state = .running
        let held = pausedInbox
        pausedInbox.removeAll()
        for item in held { world.queue.push(item, atUs: world.nowUs) }
    }
}
