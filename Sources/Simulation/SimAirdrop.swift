import Basics
import Formats
import DequeModule
import Sodium
import Wire

/// The sequencer's receive path for clients' L2 transactions during an airdrop burst, modelled one
/// datagram at a time: the kernel's receive buffer in front of one reader that checks each claim's
/// signature, or, with `verify_share`, checks only while the budget allows (the real `CheckTimeBudget`)
/// and refuses the rest as `busy` unchecked. What the reader takes is decided when it would read it, after
/// the work queued before; a datagram arriving at a full buffer is dropped unanswered, as the kernel does.
///
/// Costs come from the run's `VerificationCapacity`. The reader gets one core's receive-and-check rate
/// (`ingressPerCorePerSecond` × the share the run has): on the two-core machine the scenarios are written
/// for, the client's sending over loopback and the rest of the cluster take the other (an airdrop at k× is
/// k times the whole machine's rate, as `LoadRate` sizes it). A claim refused unchecked costs the part of
/// that path that is not the signature check, halved (the sender's half of it is the client's). The budget
/// charges each check what it costs this reader, as the real one's measurement settles to.
struct SimClientPath {
    enum Fate: Equatable {
        case dropped
        /// Read at `readUs` (virtual time) and checked: the claim goes to the sequencer's admission.
        case checked(readUs: UInt64)
        /// Read at `readUs` and refused `busy` before its check.
        case shed(readUs: UInt64)
    }

    /// One claim read and checked, and one only read, in µs of the reader's time.
    let checkedUs: Double
    let readOnlyUs: Double
    private var budget: CheckTimeBudget?
    /// When the reader has read everything queued so far, and when each queued datagram leaves the buffer.
    private var readerFreeUs: Double = 0
    private var inBuffer: Deque<Double> = []
    private(set) var kernelDrops = 0

    init(capacity: VerificationCapacity, verifyShare: Double) {
        let share = capacity.cpuShare ?? 1
        checkedUs = 1_000_000 / (capacity.ingressPerCorePerSecond * share)
        let checkAloneUs = 1_000_000 / (capacity.verifyPerCorePerSecond * share)
        readOnlyUs = max(checkedUs - checkAloneUs, 0) / 2
        if verifyShare > 0 { budget = CheckTimeBudget(share: verifyShare, checksPerSecond: 1_000_000 / checkedUs) }
    }

    mutating func arrive(nowUs: UInt64) -> Fate {
        let now = Double(nowUs)
        while let first = inBuffer.first, first <= now { inBuffer.removeFirst() }
        guard Double(inBuffer.count) < SimIngress.bufferDatagrams else {
            kernelDrops += 1
            return .dropped
        }
        let readAt = max(now, readerFreeUs)
        let checks = budget?.takeCheck(nowMs: UInt64(readAt / 1_000)) ?? true
        readerFreeUs = readAt + (checks ? checkedUs : readOnlyUs)
        inBuffer.append(readerFreeUs)
        return checks ? .checked(readUs: UInt64(readerFreeUs)) : .shed(readUs: UInt64(readerFreeUs))
    }
}

/// One airdrop step as it runs: the claims sent so far, the client's address (negative: see `SimRollup`),
/// and what it heard back.
struct AirdropState {
    var stepId: String
    var count: Int
    var ratePerSecond: Int
    var fee: UInt64
    /// `AirdropPool`'s seed: the airdrop steps before this one, plus one.
    var poolSeed: UInt64
    var client: Int
    var startUs: UInt64
    var startMs: UInt64
    var sent = 0
    var lastSentMs: UInt64 = 0
    var heard: [String: Int] = [:]
    var path: SimClientPath

    /// A claim that was never checked is never signed: it is named by a stand-in id, which only its refusal
    /// and the submissions file carry.
    func standInId(_ index: Int) -> Bytes32 {
        Blake2b.hash(Array("faultline/simulated-claim/\(stepId)/\(index)".utf8))
    }

    var record: AirdropRecord {
        AirdropRecord(id: stepId, count: count, sent: sent, seconds: Double(lastSentMs - startMs) / 1_000,
                      rejected: heard, startMs: startMs, endMs: lastSentMs + Simulator.airdropDrainMs)
    }
}

extension Simulator {
    /// The client listens this long after its last claim (as `AirdropPool.send`'s drain).
    static let airdropDrainMs: UInt64 = 1_000

    /// The client addresses of airdrop steps: -2, -3, … (-1 is the load's).
    static func airdropClient(_ index: Int) -> Int { -2 - index }

    func startAirdrop(step index: Int, count: Int, rate: Scenario.LoadRate, fee: UInt64) {
        let step = scenario.steps[index]
        let perSecond = rate.perSecond(capacity)
        let before = scenario.steps[..<index].filter { if case .airdrop = $0.rollupLoad { return true }; return false }.count
        let share = topology.rollup?.settings.verifyShare ?? 0
        airdrops[index] = AirdropState(stepId: step.id, count: count, ratePerSecond: perSecond, fee: fee,
                                       poolSeed: UInt64(before + 1), client: Simulator.airdropClient(before),
                                       startUs: nowUs, startMs: nowMs,
                                       path: SimClientPath(capacity: capacity, verifyShare: share))
        let relative = if case .timesCapacity = rate { " (\(rate))" } else { "" }
        record("start", id: step.id, action: "airdrop", description: "airdrop: \(count) claims at \(perSecond)/s\(relative)",
               nodes: [])
        queue.push(.airdrop(step: index), atUs: nowUs)
    }

    /// The claims due since the last tick, through the sequencer's modelled receive path.
    func sendAirdrop(step index: Int) {
        guard var airdrop = airdrops[index], !ended else { return }
        let due = min(Int(Double(airdrop.ratePerSecond) * Double(nowUs - airdrop.startUs) / 1_000_000), airdrop.count)
            - airdrop.sent
        let sequencer = nodes.first { $0.role == "sequencer" }
        let domain = Domain(chainId: topology.chainId)
        let payload = Claim(fee: airdrop.fee).encoded
        // Claims refused unchecked this tick, answered together (as the edge hands over a read burst's).
        var shed: [Bytes32] = []
        for _ in 0..<max(due, 0) {
            let claim = airdrop.sent
            airdrop.sent += 1
            let fate: SimClientPath.Fate = sequencer?.state == .running ? airdrop.path.arrive(nowUs: nowUs) : .dropped
            var id: Bytes32
            if case .checked(let readUs) = fate {
                let key = ClusterSetup.airdropClaimerKey(seed: airdrop.poolSeed, index: claim)
                let envelope = Envelope(kind: .l2Claim, payload: payload, domain: domain, key: key)
                id = envelope.id
                queue.push(.deliver(to: sequencer!.slot, from: airdrop.client, .made(envelope)), atUs: readUs)
            } else {
                id = airdrop.standInId(claim)
                if case .shed = fate { shed.append(id) }
            }
            logs.airdropSubmitted(step: airdrop.stepId, timeMs: nowMs, tx: id.short)
        }
        airdrop.lastSentMs = nowMs
        let finished = airdrop.sent >= airdrop.count
        airdrops[index] = airdrop // before the answers below are counted into it
        if let sequencer, !shed.isEmpty, let rollup = sequencer.rollup {
            rollup.onShed(shed, from: airdrop.client, host: sequencer)
            sequencer.flushRollup()
        }
        if finished {
            queue.push(.airdropEnd(step: index), atUs: nowUs + Simulator.airdropDrainMs * 1_000)
        } else {
            queue.push(.airdrop(step: index), atUs: nowUs + Simulator.loadIntervalMs * 1_000)
        }
    }

    /// The client stops listening: its window ends (its record is written with the logs).
    func endAirdrop(step index: Int) {
        guard let airdrop = airdrops[index] else { return }
        let description = logs.timeline.last { $0.id == airdrop.stepId && $0.event == "start" }?.description ?? airdrop.stepId
        record("end", id: airdrop.stepId, action: "airdrop", description: description, nodes: [])
    }

    /// A refusal the sequencer sent to a client: an airdrop's counts it, by reason (the load's clients do
    /// not read answers).
    func heard(_ bytes: [UInt8], by client: Int) {
        guard let index = airdrops.first(where: { $0.value.client == client })?.key,
              let envelope = try? Envelope(decoding: bytes), envelope.kind == .l2Reject,
              let reject = try? L2Reject(decoding: envelope.payload) else { return }
        airdrops[index]!.heard[reject.reason, default: 0] += reject.txIds.count
    }
}
