import FoundationEssentials
import Logging
import NIOCore
import Sodium
import Synchronization
import Transport
import Wire

/// The receiving edge: decodes, de-duplicates and verifies each datagram (the expensive step, off
/// the main loop), counts rejects, and queues accepted messages for the main loop (bounded).
struct Edge: Sendable {
    let ingress: Ingress
    /// "" (legacy, one lane), "user" or "vote": prefixes this edge's drop reasons.
    let lane: String
    let urgent: Bool
    /// Admission for transactions, checked before the expensive verification: forwarded by a
    /// validator (staked) or sent by a client (unstaked).
    let stakedAdmission: TokenBucket?
    let unstakedAdmission: TokenBucket?
    /// Per validator identity on the vote lane.
    let senderBudget: TokenBucket?
    /// A sequencer's verification budget for client (L2) transactions: past it they are shed unchecked
    /// and answered `busy` by the main loop.
    let clientBudget: CheckTimeBudget?
    /// Set by the main loop while votes-only mode is on.
    let votesOnly: AtomicCounter
    /// The height the main loop is deciding (for the vote budget).
    let consensusHeight: AtomicCounter
    /// Vote slots already settled at this node: such votes are dropped before the signature check.
    let voteQuorums: VoteQuorums
    /// Transactions this node committed recently: late gossip copies are dropped before the check.
    let committedTxs: CommittedTransactions
    /// With vote coalescing: each validator's stake (votes are queued latest-per-validator, by stake).
    let voteStakes: [PublicKey: UInt64]?
    let peerAddresses: Set<SocketAddress>
    /// Threads a read burst's signature checks are spread over.
    let verifyWorkers: Int
    let queueMax: Int
    let queueDepth: AtomicCounter
    let drops: DropCounters
    let metrics: NodeMetrics
    let inbox: Inbox
    let logger: Logger

    func read(_ inbound: NIOAsyncChannelInboundStream<[Datagram]>) async throws {
        var state = ReaderState(ingress: ingress, staked: stakedAdmission, unstaked: unstakedAdmission,
                                clientBudget: clientBudget)
        var accepted: [NodeInput] = []
        var acceptedUrgent: [NodeInput] = []
        var checks: [(pending: Ingress.Pending, address: SocketAddress)] = []
        var copies: [(bytes: [UInt8], address: SocketAddress)] = []
        var nowMs: UInt64 = 0
        // The signature checks begun so far (on `verifyWorkers` threads), then what each outcome means.
        func finishChecks() {
            let started = ContinuousClock.now
            let results = SignatureChecks.run(checks.map(\.pending), workers: verifyWorkers)
            state.clientBudget?.measured(checks: checks.count, elapsedMs: (ContinuousClock.now - started).seconds * 1000)
            for (check, result) in zip(checks, results) {
                let outcome = state.ingress.finish(check.pending, result, nowMs: nowMs)
                queue(outcome, from: check.address, nowMs: nowMs, &state, &accepted, &acceptedUrgent)
            }
            // Copies of a datagram checked in this burst: duplicates now if it was valid.
            for (bytes, address) in copies {
                let outcome = state.ingress.admit(bytes, nowMs: nowMs,
                                                  localHeight: UInt64(max(consensusHeight.value, 0)))
                queue(outcome, from: address, nowMs: nowMs, &state, &accepted, &acceptedUrgent)
            }
            checks.removeAll(keepingCapacity: true)
            copies.removeAll(keepingCapacity: true)
        }
        for try await batch in inbound {
            nowMs = UInt64(Date().timeIntervalSince1970 * 1000)
            // Everything but the signature checks in arrival order; then the burst's checks (on
            // `verifyWorkers` threads); then each checked message is classified and queued.
            for datagram in batch {
                var buffer = datagram.data
                let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
                // A bundle's envelopes are taken one by one, exactly as if each had come alone.
                let envelopes: [[UInt8]]
                if Bundle.isBundle(bytes) {
                    do {
                        envelopes = try Bundle.split(bytes)
                    } catch {
                        queue(.rejected(.malformed, detail: "bundle of \(bytes.count) bytes: \(error)"),
                              from: datagram.remoteAddress, nowMs: nowMs, &state, &accepted, &acceptedUrgent)
                        continue
                    }
                } else {
                    envelopes = [bytes]
                }
                for bytes in envelopes {
                    guard shed(bytes, from: datagram.remoteAddress, nowMs: nowMs, &state) else { continue }
                    switch state.ingress.begin(bytes, nowMs: nowMs, localHeight: UInt64(max(consensusHeight.value, 0)),
                                               settled: voteQuorums, committed: committedTxs) {
                    case .done(let outcome):
                        queue(outcome, from: datagram.remoteAddress, nowMs: nowMs, &state, &accepted, &acceptedUrgent)
                    case .verify(let pending):
                        checks.append((pending, datagram.remoteAddress))
                    case .copyInFlight:
                        copies.append((bytes, datagram.remoteAddress))
                    }
                }
                // Bundles multiply a burst's messages: the checks in flight stay bounded.
                if checks.count >= Edge.checksPerRoundMax { finishChecks() }
            }
            finishChecks()
            for (address, ids) in state.shed { accepted.append(.l2Shed(ids, from: address)) }
            state.shed.removeAll(keepingCapacity: true)
            // One hand-off (and at most one wake-up of the main loop) per read burst.
            inbox.push(acceptedUrgent, urgent: true)
            inbox.push(accepted, urgent: false)
            acceptedUrgent.removeAll(keepingCapacity: true)
            accepted.removeAll(keepingCapacity: true)
        }
    }

    /// Signature checks begun before they are run (well under `Ingress.checkingMax`).
    static let checksPerRoundMax = 1_024

    private func queue(_ outcome: Ingress.Outcome, from address: SocketAddress, nowMs: UInt64, _ state: inout ReaderState,
                       _ accepted: inout [NodeInput], _ acceptedUrgent: inout [NodeInput]) {
        guard let (input, kind) = classify(outcome, from: address, nowMs: nowMs, &state) else { return }
        if urgent && kind.isConsensusLane { acceptedUrgent.append(input) } else { accepted.append(input) }
    }

    /// What one reader task owns: its copy of the ingress (de-duplication memory) and admission buckets.
    struct ReaderState {
        var ingress: Ingress
        var staked: TokenBucket?
        var unstaked: TokenBucket?
        var senders: [PublicKey: TokenBucket] = [:]
        var rejectLogBudget = 20
        var clientBudget: CheckTimeBudget?
        /// Client transactions shed in this read burst, by the address to answer (ids: BLAKE2b of the bytes).
        var shed: [SocketAddress: [Bytes32]] = [:]
    }

    /// Load shedding before any decoding: false when the datagram is dropped.
    private func shed(_ bytes: [UInt8], from address: SocketAddress, nowMs: UInt64, _ state: inout ReaderState) -> Bool {
        // Everything before `ingress.admit` happens before the signature check, so shed traffic costs almost nothing.
        if state.clientBudget != nil, let kind = Envelope.peekKind(bytes), kind.isL2Transaction,
           !state.clientBudget!.takeCheck(nowMs: nowMs) {
            drops.count(lane: lane, "busy")
            state.shed[address, default: []].append(Blake2b.hash(bytes))
            if state.shed[address]!.count >= L2Reject.txIdsMax {
                inbox.push([.l2Shed(state.shed.removeValue(forKey: address)!, from: address)], urgent: false)
            }
            return false
        }
        if let kind = Envelope.peekKind(bytes), kind == .transfer || kind == .forcedTx {
            if votesOnly.value > 0 {
                drops.count(lane: lane, "votes_only")
                return false
            }
            let fromPeer = peerAddresses.contains(address)
            if fromPeer, state.staked != nil, !state.staked!.take(nowMs: nowMs) {
                drops.count(lane: lane, "staked_rate_limited")
                return false
            }
            if !fromPeer, state.unstaked != nil, !state.unstaked!.take(nowMs: nowMs) {
                drops.count(lane: lane, "unstaked_rate_limited")
                return false
            }
        } else if let budget = senderBudget, let sender = Envelope.peekSender(bytes),
                  state.ingress.members.contains(sender) {
            // Bounded: only member identities get a bucket.
            if !state.senders[sender, default: budget].take(nowMs: nowMs) {
                drops.count(lane: lane, "sender_rate_limited")
                return false
            }
        }
        return true
    }

    /// Turns a checked datagram into the input to queue in the ordinary way, or nil when it was
    /// dropped, rejected, or already queued as a coalesced vote.
    private func classify(_ outcome: Ingress.Outcome, from address: SocketAddress, nowMs: UInt64,
                          _ state: inout ReaderState) -> (NodeInput, MessageKind)? {
        switch outcome {
        case .accepted(let envelope, let message):
            // With lanes, each port carries one class: anything else is dropped, not queued.
            if !lane.isEmpty, (lane == "user") == envelope.kind.isConsensusLane {
                drops.count(lane: lane, "wrong_lane")
                return nil
            }
            guard queueDepth.value < queueMax else {
                drops.count(lane: lane, "queue_full")
                metrics.ingressQueueDropped.increment()
                return nil
            }
            queueDepth.add(1)
            if envelope.kind.isL2Transaction {
                return (.l2Client(envelope, from: address, receivedMs: nowMs), envelope.kind)
            }
            let input = NodeInput.message(envelope, message, fromPeer: peerAddresses.contains(address), receivedMs: nowMs)
            if urgent, let stakes = voteStakes, let stake = stakes[envelope.sender] {
                switch message {
                case .prevote(let vote), .precommit(let vote):
                    let discarded = inbox.pushVote(input, sender: envelope.sender, kind: envelope.kind, vote: vote,
                                                   stake: stake)
                    if discarded > 0 {
                        queueDepth.add(-discarded)
                        drops.count(lane: "", "coalesced_votes") // superseded, not lost
                    }
                    return nil
                default: break
                }
            }
            return (input, envelope.kind)
        case .rejected(let reason, let detail):
            metrics.rejected[reason]?.increment()
            // Copies and late votes are normal traffic: counted on /metrics, not reported as drops.
            let expected = reason == .duplicate || reason == .staleHeight || reason == .settled || reason == .committed
            // Expected ones still go in the run's record (not in a lane's drops): a replaying or
            // stale-flooding peer shows up as ignored_duplicate / ignored_stale_height.
            drops.count(lane: "", expected ? "ignored_" + reason.rawValue : (lane.isEmpty ? "" : lane + "_") + reason.rawValue)
            if !expected, state.rejectLogBudget > 0 {
                state.rejectLogBudget -= 1
                logger.notice("dropped datagram from \(address): \(reason.rawValue) \(detail)")
            }
            return nil
        }
    }
}

/// A share of the reader's wall time for signature checks: each check is charged what checks last cost in
/// wall time (measured per read burst), so the budget shrinks when the host is busy. A budget in checks per
/// second, sized from a start-up benchmark, let a sequencer on a contended host spend all its time verifying
/// while the kernel dropped three quarters of a burst unanswered; charged in time, the reader keeps the rest
/// of each second for reading and shedding.
struct CheckTimeBudget: Sendable {
    let share: Double
    /// Milliseconds of checking left (refilled at `share` ms per ms, up to a tenth of a second's worth).
    private var milliseconds: TokenBucket
    /// Wall time one check costs, as last measured (moving average over read bursts).
    private(set) var costMs: Double

    static let costMsRange = 0.001...50.0
    /// Bursts with fewer checks than this do not move the estimate (too noisy).
    static let checksMeasuredMin = 8

    init(share: Double, checksPerSecond: Double) {
        self.share = share
        milliseconds = TokenBucket(ratePerSecond: share * 1_000, burst: share * 100)
        costMs = min(max(1_000 / max(checksPerSecond, 1), Self.costMsRange.lowerBound), Self.costMsRange.upperBound)
    }

    /// Checks per second the budget allows at the measured cost.
    var checksPerSecond: Double { share * 1_000 / costMs }

    mutating func takeCheck(nowMs: UInt64) -> Bool { milliseconds.take(costMs, nowMs: nowMs) }

    mutating func measured(checks: Int, elapsedMs: Double) {
        guard checks >= Self.checksMeasuredMin, elapsedMs >= 0 else { return }
        let cost = min(max(elapsedMs / Double(checks), Self.costMsRange.lowerBound), Self.costMsRange.upperBound)
        costMs = 0.7 * costMs + 0.3 * cost
    }
}
