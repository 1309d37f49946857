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
    /// What is dropped before the expensive verification (each reader task works on its own copy).
    let admission: Admission
    /// Set by the main loop while votes-only mode is on.
    let votesOnly: AtomicCounter
    /// The height the main loop is deciding (for the vote budget).
    let consensusHeight: AtomicCounter
    /// Vote slots already settled at this node: such votes are dropped before the signature check.
    let voteQuorums: VoteQuorums
    /// Transactions this node committed recently: late gossip copies are dropped before the check.
    let committedTxs: TransactionIds
    /// Where this edge publishes the transactions it verified (a block carrying one is not checked again).
    let verifiedTxs: TransactionIds
    /// With vote coalescing: each validator's stake (votes are queued latest-per-validator, by stake).
    let voteStakes: [PublicKey: UInt64]?
    /// Each validator's stake, for settling a round's prevotes at the edge (`PrevoteQuorum`); nil: not done
    /// (an edge that carries no votes, or one that coalesces them: there a queued vote can be replaced by a
    /// later one before consensus counts it).
    let prevoteStakes: [PublicKey: UInt64]?
    /// Whether a source address is a peer's (forwarded, staked) rather than a client's.
    let peerAddresses: PeerDirectory
    /// Threads a read burst's signature checks are spread over.
    let verifyWorkers: Int
    let queueMax: Int
    let queueDepth: AtomicCounter
    let drops: DropCounters
    let metrics: NodeMetrics
    let inbox: Inbox
    let logger: Logger

    func read(_ inbound: NIOAsyncChannelInboundStream<[Datagram]>) async throws {
        var state = ReaderState(ingress: ingress, admission: admission,
                                prevotes: prevoteStakes.map { PrevoteQuorum(stakes: $0) })
        var accepted: [NodeInput] = []
        var acceptedUrgent: [NodeInput] = []
        var checks: [(pending: Ingress.Pending, address: SocketAddress)] = []
        // Prevotes the checks begun may settle (`PrevoteQuorum`): checked after them only if they do not.
        var waiting: [(pending: Ingress.Pending, address: SocketAddress)] = []
        var copies: [(bytes: [UInt8], address: SocketAddress)] = []
        var nowMs: UInt64 = 0
        // Everything before the signature check: the outcome is queued, or the check begun (or put off).
        func consider(_ bytes: [UInt8], from address: SocketAddress, wait: Bool) {
            switch state.ingress.begin(bytes, nowMs: nowMs, localHeight: UInt64(max(consensusHeight.value, 0)),
                                       settled: voteQuorums, committed: committedTxs) {
            case .done(let outcome):
                queue(outcome, from: address, nowMs: nowMs, &state, &accepted, &acceptedUrgent)
            case .verify(let pending):
                plan(pending, from: address, wait: wait)
            case .copyInFlight:
                copies.append((bytes, address))
            }
        }
        func plan(_ pending: Ingress.Pending, from address: SocketAddress, wait: Bool) {
            if case .prevote(let vote) = pending.message, state.prevotes != nil {
                switch state.prevotes!.decide(sender: pending.envelope.sender, vote: vote) {
                case .settled:
                    queue(state.ingress.abandon(pending), from: address, nowMs: nowMs, &state, &accepted, &acceptedUrgent)
                    return
                case .wait where wait:
                    waiting.append((pending, address))
                    return
                case .wait, .check:
                    state.prevotes!.begun(sender: pending.envelope.sender, vote: vote)
                }
            }
            checks.append((pending, address))
        }
        // The signature checks begun so far (on `verifyWorkers` threads), then what each outcome means; then
        // the prevotes put off and the copies of datagrams that were being checked, until none is left.
        func finishChecks() {
            while !checks.isEmpty || !waiting.isEmpty || !copies.isEmpty {
                let started = ContinuousClock.now
                let results = SignatureChecks.run(checks.map(\.pending), workers: verifyWorkers)
                state.admission.measured(checks: checks.count, elapsedMs: (ContinuousClock.now - started).seconds * 1000)
                metrics.edgeSignatureChecks.increment(by: Int64(checks.count))
                var verified: [Bytes32] = []
                for (check, result) in zip(checks, results) {
                    if result == .valid, check.pending.envelope.kind.isL1Transaction { verified.append(check.pending.envelope.id) }
                    let outcome = state.ingress.finish(check.pending, result, nowMs: nowMs)
                    queue(outcome, from: check.address, nowMs: nowMs, &state, &accepted, &acceptedUrgent)
                }
                if !verified.isEmpty { verifiedTxs.insert(verified) }
                checks.removeAll(keepingCapacity: true)
                state.prevotes?.checksFinished()
                // A prevote put off once is settled now or checked in the next pass (it never waits twice).
                let putOff = waiting
                waiting.removeAll(keepingCapacity: true)
                for (pending, address) in putOff { plan(pending, from: address, wait: false) }
                // Copies of a datagram checked in this pass: duplicates now if it was valid (checked again if not).
                let copied = copies
                copies.removeAll(keepingCapacity: true)
                for (bytes, address) in copied { consider(bytes, from: address, wait: false) }
            }
        }
        for try await batch in inbound {
            nowMs = UInt64(Date().timeIntervalSince1970 * 1000)
            state.prevotes?.follow(height: UInt64(max(consensusHeight.value, 0)))
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
                    consider(bytes, from: datagram.remoteAddress, wait: true)
                }
                // Bundles multiply a burst's messages: the checks in flight stay bounded.
                if checks.count + waiting.count >= Edge.checksPerRoundMax { finishChecks() }
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
        if case .accepted(let envelope, .prevote(let vote)) = outcome {
            state.prevotes?.handedOn(sender: envelope.sender, vote: vote)
        }
        if urgent && kind.isConsensusLane { acceptedUrgent.append(input) } else { accepted.append(input) }
    }

    /// What one reader task owns: its copy of the ingress (de-duplication memory) and admission buckets.
    struct ReaderState {
        var ingress: Ingress
        var admission: Admission
        var rejectLogBudget = 20
        /// Client transactions shed in this read burst, by the address to answer (ids: BLAKE2b of the bytes).
        var shed: [SocketAddress: [Bytes32]] = [:]
        /// The prevotes this reader handed on for the height being decided (nil: not settled here).
        var prevotes: PrevoteQuorum?
    }

    /// Load shedding before any decoding (`Admission`): false when the datagram is dropped.
    private func shed(_ bytes: [UInt8], from address: SocketAddress, nowMs: UInt64, _ state: inout ReaderState) -> Bool {
        let sender = state.admission.needsSender ? Envelope.peekSender(bytes) : nil
        let kind = Envelope.peekKind(bytes)
        switch state.admission.decide(kind: kind, sender: sender,
                                      fromPeer: peerAddresses.contains(address), votesOnly: votesOnly.value > 0,
                                      nowMs: nowMs) {
        case .check:
            return true
        case .drop(let reason):
            drops.count(lane: lane, reason)
            if kind == .prevote || kind == .precommit { metrics.votesDropped[.shed]?.increment() }
            return false
        case .busy:
            drops.count(lane: lane, "busy")
            state.shed[address, default: []].append(Blake2b.hash(bytes))
            if state.shed[address]!.count >= L2Reject.txIdsMax {
                inbox.push([.l2Shed(state.shed.removeValue(forKey: address)!, from: address)], urgent: false)
            }
            return false
        }
    }

    /// Turns a checked datagram into the input to queue in the ordinary way, or nil when it was
    /// dropped, rejected, or already queued as a coalesced vote.
    private func classify(_ outcome: Ingress.Outcome, from address: SocketAddress, nowMs: UInt64,
                          _ state: inout ReaderState) -> (NodeInput, MessageKind)? {
        switch outcome {
        case .accepted(let envelope, let message):
            // With lanes, each port carries one class: anything else is dropped, not queued.
            if !Admission.lane(lane, carries: envelope.kind) {
                drops.count(lane: lane, "wrong_lane")
                return nil
            }
            guard queueDepth.value < queueMax else {
                drops.count(lane: lane, "queue_full")
                metrics.ingressQueueDropped.increment()
                if envelope.kind == .prevote || envelope.kind == .precommit { metrics.votesDropped[.queueFull]?.increment() }
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
