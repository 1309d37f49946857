import FoundationEssentials
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import Prometheus
import ServiceLifecycle
import Sodium
import Synchronization
import Transport
import Wire
import Ledger
import RPC

/// Runs one node: loads its folder, binds its UDP and control ports, and drives the main loop until
/// SIGTERM, SIGINT or `POST /shutdown`.
public struct NodeService: Service {
    let configPath: String
    let registry: PrometheusCollectorRegistry
    let logger: Logger

    public init(configPath: String, registry: PrometheusCollectorRegistry, logger: Logger) {
        self.configPath = configPath
        self.registry = registry
        self.logger = logger
    }

    public func run() async throws {
        let loaded = try NodeFiles.load(configPath: configPath)
        let config = loaded.config
        var namedLogger = self.logger
        namedLogger[metadataKey: "node"] = "\(config.name)"
        let logger = namedLogger
        if config.role == "gateway" {
            try await GatewayService(loaded: loaded, configPath: configPath, registry: registry, logger: logger).run()
            return
        }
        // Timers, ticks and control inputs are never dropped; network messages are bounded per lane
        // by the edges (`ingressQueueMax`, counted as queue_full).
        let inbox = Inbox()
        let clock: @Sendable () -> UInt64 = { UInt64(Date().timeIntervalSince1970 * 1000) }
        let timers: (UInt64, NodeInput) -> Void = { ms, input in
            Task {
                try? await Task.sleep(for: .milliseconds(ms))
                inbox.push(input, urgent: true)
            }
        }
        try FileSystem.makeDirectory(loaded.dataDir)
        let shell = try NodeShell(config: config, key: loaded.key, genesis: loaded.genesis, dataDir: loaded.dataDir,
                                  eventsPath: loaded.eventsPath, logger: logger, timers: timers, clock: clock)
        if let modes = config.byzantine, !modes.isEmpty { shell.setByzantine(modes) }
        let metrics = shell.metrics
        let status = StatusBox(shell.status)
        let queueDepth = AtomicCounter()
        let voteDepth = AtomicCounter()
        // One byte over the limit is enough for the edge to see an oversized datagram as such.
        let readBytesMax = config.limits.datagramPayloadBytesMax + 1
        let udp = try await UDPEndpoint.bind(host: config.host, port: config.gossipPort, datagramBytesMax: readBytesMax)
        let voteSocket = config.limits.lanes && config.votePort > 0
            ? try await UDPEndpoint.bind(host: config.host, port: config.votePort, datagramBytesMax: readBytesMax) : nil
        let registry = self.registry
        var listener: RPCListener?
        if let box = shell.rpcBox, let rpcPort = config.rpcPort {
            listener = RPCListener(port: rpcPort) { method, _, body in
                RPCEndpoint.route(method: method, body: body, box: box, inbox: inbox, queueDepth: queueDepth,
                                  queueMax: config.limits.ingressQueueMax, metrics: metrics)
            }
            try await listener!.open()
            logger.info("json-rpc http 127.0.0.1:\(rpcPort)")
        }
        let rpcListener = listener
        let control = try await ControlServer.start(
            port: config.controlPort, token: loaded.token,
            unauthorized: { metrics.controlUnauthorized.increment() },
            router: { method, path, body in
                if method == .POST, path == "/rpc-fault" {
                    return NodeService.setRPCFault(body, listener: rpcListener, control: inbox)
                }
                return NodeService.route(method: method, path: path, body: body, status: status, registry: registry,
                                         queueDepth: queueDepth.value, control: inbox)
            })
        let lanes = voteSocket != nil ? ", vote lane udp \(config.host):\(config.votePort)" : ""
        logger.info("listening: gossip udp \(config.host):\(config.gossipPort)\(lanes), control http 127.0.0.1:\(config.controlPort)")
        shell.localPorts = [(config.limits.lanes ? "user" : "", config.gossipPort)]
            + (voteSocket != nil ? [("vote", config.votePort)] : [])
        let (userEdge, voteEdge) = makeEdges(shell: shell, config: config, inbox: inbox, queueDepth: queueDepth,
                                             voteDepth: voteDepth, logger: logger)
        let interval = config.limits.statusIntervalMs
        try await withGracefulShutdownHandler {
            try await udp.executeThenClose { inbound, outbound in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await userEdge.read(inbound) }
                    if let voteSocket {
                        group.addTask {
                            try await voteSocket.executeThenClose { voteInbound, _ in try await voteEdge.read(voteInbound) }
                        }
                    }
                    group.addTask {
                        while !Task.isCancelled {
                            try await Task.sleep(for: .milliseconds(interval))
                            inbox.push(.tick, urgent: true)
                        }
                    }
                    if config.role == "sequencer", let blockMs = config.rollup?.blockIntervalMs {
                        group.addTask {
                            while !Task.isCancelled {
                                try await Task.sleep(for: .milliseconds(max(blockMs, 10)))
                                inbox.push(.l2Tick, urgent: true)
                            }
                        }
                    }
                    try await mainLoop(shell, inbox, outbound, status: status, queueDepth: queueDepth,
                                       voteDepth: voteDepth)
                    group.cancelAll()
                }
            }
        } onGracefulShutdown: {
            inbox.finish()
        }
        try? await control.close()
        await rpcListener?.close()
        let final = shell.status
        shell.events.write("stop", timeMs: clock(), [
            ("height", .uint(shell.store.height)), ("conflictingVotes", .uint(UInt64(final.conflictingVotes))),
            ("invalidProposals", .uint(UInt64(final.invalidProposals))),
        ])
        shell.events.flush()
        logger.info("stopped at height \(shell.store.height)")
    }

    /// The receiving edges. Legacy: one edge, everything in one FIFO. Lanes: consensus traffic on its
    /// own port and urgent queue; user transactions admitted up to a share of the verification rate
    /// this node measures at start, the rest dropped before verification.
    private func makeEdges(shell: NodeShell, config: NodeConfig, inbox: Inbox, queueDepth: AtomicCounter,
                           voteDepth: AtomicCounter, logger: Logger) -> (Edge, Edge) {
        let members = Set(shell.validators.members.map(\.publicKey)).union(shell.peers.keys)
        let budget = config.limits.voteChecksPerHeightMax
        let ingress = Ingress(domain: shell.domain, datagramBytesMax: config.limits.datagramPayloadBytesMax,
                              members: members, voteBudget: budget > 0 ? VoteCheckBudget(perHeightMax: budget) : nil)
        let peerAddresses = Set(shell.everyPeer.flatMap { [$0.address] + ($0.voteAddress.map { [$0] } ?? []) })
        var staked: TokenBucket?
        var unstaked: TokenBucket?
        var senderBudget: TokenBucket?
        let limits = config.limits
        // The sequencer spreads its clients' signature checks over the cores (issue 6's ingest target).
        let verifyWorkers = config.role == "sequencer"
            ? (config.rollup.map { $0.verifyWorkers > 0 ? $0.verifyWorkers : nil } ?? nil)
                ?? ProcessInfo.processInfo.activeProcessorCount
            : 1
        // A sequencer with a verification budget refuses client transactions past it before checking them.
        var clientBudget: TokenBucket?
        if config.role == "sequencer", let share = config.rollup?.verifyShare, share > 0 {
            let rate = VerificationRate.measure(seconds: 0.15) * Double(verifyWorkers) * share
            clientBudget = TokenBucket(ratePerSecond: rate, burst: max(rate / 10, 1))
            logger.info("client transactions checked up to \(Int(rate))/s (\(verifyWorkers) workers × share \(share)); past it refused as busy unchecked")
            shell.events.write("client_budget", timeMs: shell.clock(), [("perSecond", .uint(UInt64(rate)))])
        }
        if limits.lanes {
            let rate = VerificationRate.measure(seconds: 0.15) * limits.userVerifyShare
            let stakedRate = rate * limits.stakedShare
            let unstakedRate = rate - stakedRate
            staked = TokenBucket(ratePerSecond: stakedRate, burst: max(stakedRate / 10, 1))
            unstaked = TokenBucket(ratePerSecond: unstakedRate, burst: max(unstakedRate / 10, 1))
            if limits.voteSenderPerSecond > 0 {
                let perSender = Double(limits.voteSenderPerSecond)
                senderBudget = TokenBucket(ratePerSecond: perSender, burst: perSender / 5)
            }
            logger.info("lanes: user transactions admitted up to \(Int(rate))/s (\(Int(stakedRate)) forwarded by validators, \(Int(unstakedRate)) from clients)")
            shell.events.write("lanes", timeMs: shell.clock(), [
                ("stakedPerSecond", .uint(UInt64(stakedRate))), ("unstakedPerSecond", .uint(UInt64(unstakedRate))),
                ("voteSenderPerSecond", .uint(UInt64(limits.voteSenderPerSecond))),
            ])
        }
        let user = Edge(ingress: ingress, lane: limits.lanes ? "user" : "", urgent: false, stakedAdmission: staked,
                        unstakedAdmission: unstaked, senderBudget: nil, clientBudget: clientBudget, votesOnly: shell.votesOnly,
                        consensusHeight: shell.consensusHeight, voteQuorums: shell.voteQuorums,
                        committedTxs: shell.committedTxs, voteStakes: nil,
                        peerAddresses: peerAddresses, verifyWorkers: verifyWorkers, queueMax: limits.ingressQueueMax,
                        queueDepth: queueDepth, drops: shell.drops, metrics: shell.metrics, inbox: inbox, logger: logger)
        let vote = Edge(ingress: ingress, lane: "vote", urgent: true, stakedAdmission: nil, unstakedAdmission: nil,
                        senderBudget: senderBudget, clientBudget: nil, votesOnly: shell.votesOnly,
                        consensusHeight: shell.consensusHeight,
                        voteQuorums: shell.voteQuorums, committedTxs: shell.committedTxs,
                        voteStakes: limits.coalesceVotes ? Dictionary(uniqueKeysWithValues: shell.validators.members.map {
                            ($0.publicKey, $0.stake)
                        }) : nil,
                        peerAddresses: peerAddresses, verifyWorkers: 1,
                        queueMax: limits.ingressQueueMax, queueDepth: voteDepth, drops: shell.drops,
                        metrics: shell.metrics, inbox: inbox, logger: logger)
        return (user, vote)
    }

    /// The one task that owns the shell: every input, in arrival order; sends what each produced.
    private func mainLoop(_ shell: NodeShell, _ inbox: Inbox,
                          _ outbound: NIOAsyncChannelOutboundWriter<Datagram>, status: StatusBox,
                          queueDepth: AtomicCounter, voteDepth: AtomicCounter) async throws {
        shell.start()
        try await flush(shell, outbound)
        var lastHeight = shell.store.height
        var wakeAtMs: Double?
        while let inputs = await inbox.next() {
            var isTick = false
            for input in inputs {
                switch input {
                case .message(let envelope, _, _, _):
                    // Which lane it came through is what matters for the depth; transfers are user traffic.
                    if !envelope.kind.isConsensusLane || !shell.config.limits.lanes { queueDepth.add(-1) } else { voteDepth.add(-1) }
                case .l2Client: queueDepth.add(-1)
                case .tick: isTick = true
                case .sendDue: wakeAtMs = nil
                case .timeout, .setLinkFaults, .setClockSkew, .l2Tick, .l2Shed, .setRPCFault, .setByzantine: break
                }
                shell.handle(input)
            }
            shell.finishInputs()
            shell.queueLengths = inbox.counts
            shell.consensusHeight.set(Int(shell.consensus.height))
            shell.voteQuorums.publish(height: shell.consensus.height, settled: shell.consensus.settledVoteRounds.map {
                (kind: $0.type.kind, round: $0.round)
            })
            try await flush(shell, outbound)
            // Delayed datagrams (link faults): one wake-up for the earliest, re-armed as needed.
            if let due = shell.shaper.nextDueMs, wakeAtMs.map({ due < $0 }) ?? true {
                wakeAtMs = due
                let delayMs = max(0, due - Double(shell.clock()))
                Task {
                    try? await Task.sleep(for: .microseconds(Int64(delayMs * 1000)))
                    inbox.push(.sendDue, urgent: true)
                }
            }
            if isTick || shell.store.height != lastHeight {
                lastHeight = shell.store.height
                var snapshot = shell.status
                snapshot.ingressQueue = queueDepth.value
                status.set(snapshot)
                status.setConsensus(shell.consensusSnapshot)
            }
        }
    }

    /// `POST /rpc-fault` with an `UpstreamFault`: checked, logged by the main loop, and for `down` the
    /// JSON-RPC socket is closed (bound again by the next mode).
    static func setRPCFault(_ body: [UInt8], listener: RPCListener?, control: Inbox) -> ControlServer.Response {
        guard let listener else { return badRequest("this node serves no JSON-RPC (role rpc has it)") }
        let fault: UpstreamFault
        do {
            fault = try JSONDecoder().decode(UpstreamFault.self, from: Data(body))
        } catch {
            return badRequest("rpc-fault body is not an UpstreamFault: \(error)")
        }
        if let problem = fault.problem { return badRequest("rpc-fault: \(problem)") }
        control.push(.setRPCFault(fault), urgent: true)
        Task { await listener.set(down: fault.mode == "down") }
        return .init(status: .ok, contentType: "text/plain", body: Array("applied\n".utf8))
    }

    private func flush(_ shell: NodeShell, _ outbound: NIOAsyncChannelOutboundWriter<Datagram>) async throws {
        guard !shell.outbox.isEmpty || shell.shaper.pendingCount > 0 else { return }
        let batch = shell.takeOutgoing()
        if !batch.isEmpty { try await outbound.write(contentsOf: batch) }
    }

    static func route(method: HTTPMethod, path: String, body: [UInt8], status: StatusBox,
                      registry: PrometheusCollectorRegistry, queueDepth: Int,
                      control: Inbox) -> ControlServer.Response {
        switch (method, path) {
        case (.GET, "/status"):
            var snapshot = status.get()
            snapshot.ingressQueue = queueDepth
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let body = (try? encoder.encode(snapshot)).map { Array($0) } ?? []
            return .init(status: .ok, contentType: "application/json", body: body + [10])
        case (.GET, "/consensus"):
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            let body = (try? encoder.encode(status.consensus())).map { Array($0) } ?? []
            return .init(status: .ok, contentType: "application/json", body: body + [10])
        case (.GET, "/metrics"):
            return .init(status: .ok, contentType: "text/plain; version=0.0.4", body: registry.emitToBuffer())
        case (.POST, "/shutdown"):
            control.finish()
            return .init(status: .ok, contentType: "text/plain", body: Array("shutting down\n".utf8))
        case (.POST, "/link-faults"):
            do {
                let table = try JSONDecoder().decode(LinkFaultTable.self, from: Data(body))
                control.push(.setLinkFaults(table), urgent: true)
                return .init(status: .ok, contentType: "text/plain", body: Array("applied\n".utf8))
            } catch {
                return badRequest("link-faults body is not a LinkFaultTable: \(error)")
            }
        case (.POST, "/clock-skew"):
            struct Skew: Decodable { var skewMs: Int64 }
            guard let skew = try? JSONDecoder().decode(Skew.self, from: Data(body)) else {
                return badRequest("clock-skew body must be {\"skewMs\": N}")
            }
            control.push(.setClockSkew(skew.skewMs), urgent: true)
            return .init(status: .ok, contentType: "text/plain", body: Array("applied\n".utf8))
        case (.POST, "/byzantine"):
            struct Modes: Decodable { var modes: [String] }
            guard let request = try? JSONDecoder().decode(Modes.self, from: Data(body)) else {
                return badRequest("byzantine body must be {\"modes\": [\"equivocate\", ...]} ([] for honest)")
            }
            var modes: [ByzantineMode] = []
            for name in request.modes {
                guard let mode = ByzantineMode(rawValue: name) else {
                    return badRequest("'\(name)' is not a byzantine mode; expected one of \(ByzantineMode.names)")
                }
                modes.append(mode)
            }
            control.push(.setByzantine(modes), urgent: true)
            return .init(status: .ok, contentType: "text/plain", body: Array("applied\n".utf8))
        default:
            return .init(status: .notFound, contentType: "text/plain", body: Array("no route \(method) \(path)\n".utf8))
        }
    }
}

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
    let clientBudget: TokenBucket?
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
            let results = SignatureChecks.run(checks.map(\.pending), workers: verifyWorkers)
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
        var clientBudget: TokenBucket?
        /// Client transactions shed in this read burst, by the address to answer (ids: BLAKE2b of the bytes).
        var shed: [SocketAddress: [Bytes32]] = [:]
    }

    /// Load shedding before any decoding: false when the datagram is dropped.
    private func shed(_ bytes: [UInt8], from address: SocketAddress, nowMs: UInt64, _ state: inout ReaderState) -> Bool {
        // Everything before `ingress.admit` happens before the signature check, so shed traffic costs almost nothing.
        if state.clientBudget != nil, let kind = Envelope.peekKind(bytes), kind.isL2Transaction,
           !state.clientBudget!.take(nowMs: nowMs) {
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

/// Ingress drop counts by lane and reason, written by the reader tasks and read by the main loop.
final class DropCounters: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    func count(lane: String, _ reason: String) {
        let key = lane.isEmpty ? reason : lane + "_" + reason
        counts.withLock { $0[key, default: 0] += 1 }
    }

    /// Cumulative counts, sorted by name.
    var snapshot: [(String, Int)] { counts.withLock { $0 }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }
}

final class AtomicCounter: Sendable {
    private let atomic = Atomic<Int>(0)

    func add(_ delta: Int) { atomic.add(delta, ordering: .relaxed) }
    func set(_ value: Int) { atomic.store(value, ordering: .relaxed) }
    var value: Int { atomic.load(ordering: .relaxed) }
}

func badRequest(_ message: String) -> ControlServer.Response {
    .init(status: .badRequest, contentType: "text/plain", body: Array((message + "\n").utf8))
}

final class StatusBox: Sendable {
    private let value: Mutex<NodeStatus>
    private let consensusValue = Mutex<[String: String]>([:])

    init(_ initial: NodeStatus) { value = Mutex(initial) }

    func get() -> NodeStatus { value.withLock { $0 } }
    func set(_ new: NodeStatus) { value.withLock { $0 = new } }
    func consensus() -> [String: String] { consensusValue.withLock { $0 } }
    func setConsensus(_ new: [String: String]) { consensusValue.withLock { $0 = new } }
}

/// Reads a node's folder: config, key seed, genesis and run token; errors name the file and field.
enum NodeFiles {
    struct Loaded {
        var config: NodeConfig
        var key: SigningKey
        var genesis: Genesis
        var token: String
        var dataDir: String
        var eventsPath: String
    }

    static func load(configPath: String) throws -> Loaded {
        let base = FileSystem.directory(of: configPath)
        let config: NodeConfig = try decodeJSON(configPath)
        let genesisPath = FileSystem.resolve(config.genesisFile, relativeTo: base)
        let genesis: Genesis = try decodeJSON(genesisPath)
        let keyPath = FileSystem.resolve(config.keyFile, relativeTo: base)
        let keyText = FileSystem.trimmed(try readText(keyPath))
        guard let seedBytes = Hex.decode(keyText), let seed = Bytes32(seedBytes) else {
            throw ConfigError(field: "\(keyPath)", problem: "expected a 64-hex-digit Ed25519 seed")
        }
        let token = FileSystem.trimmed(try readText(FileSystem.resolve(config.tokenFile, relativeTo: base)))
        guard !token.isEmpty else { throw ConfigError(field: config.tokenFile, problem: "run token is empty") }
        return Loaded(config: config, key: SigningKey(seed: seed), genesis: genesis, token: token,
                      dataDir: FileSystem.resolve(config.dataDir, relativeTo: base),
                      eventsPath: FileSystem.resolve(config.eventsFile, relativeTo: base))
    }

    static func readText(_ path: String) throws -> String {
        String(decoding: try FileSystem.readAll(path), as: UTF8.self)
    }

    static func decodeJSON<T: Decodable>(_ path: String) throws -> T {
        let bytes = try FileSystem.readAll(path)
        do {
            return try JSONDecoder().decode(T.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw ConfigError(field: path, problem: describe(error))
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "missing field '\(([path(context)] + [key.stringValue]).filter { !$0.isEmpty }.joined(separator: "."))'"
        case .typeMismatch(let type, let context):
            return "field '\(path(context))': expected \(type)"
        case .valueNotFound(let type, let context):
            return "field '\(path(context))': expected \(type), found null"
        case .dataCorrupted(let context):
            return "not valid JSON at '\(path(context))': \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}

/// Entry point used by the `faultline-node` executable.
public enum NodeMain {
    public static func run(configPath: String) async throws {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let level = ProcessInfo.processInfo.environment["FAULTLINE_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level ?? .info
            return handler
        }
        let logger = Logger(label: "faultline.node")
        let service = NodeService(configPath: configPath, registry: registry, logger: logger)
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
