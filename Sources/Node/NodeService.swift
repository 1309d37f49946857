import Basics
import Consensus
import FoundationEssentials
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif
import Prometheus
import ServiceLifecycle
import Sodium
import Synchronization
import Transport
import Formats
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
        let shell: NodeShell
        do {
            shell = try NodeShell(config: config, key: loaded.key, genesis: loaded.genesis, dataDir: loaded.dataDir,
                                  eventsPath: loaded.eventsPath, logger: logger, timers: timers, clock: clock,
                                  registry: registry)
        } catch let refused as NodeShell.StartRefused where config.refusedWaitsForUpgrade == true {
            try await waitForUpgrade(refused, loaded: loaded, logger: logger)
            return
        }
        if let modes = config.byzantine, !modes.isEmpty { shell.setByzantine(modes) }
        let metrics = shell.metrics
        let drops = shell.drops
        let status = StatusBox(shell.status)
        let queueDepth = AtomicCounter()
        let voteDepth = AtomicCounter()
        let registry = self.registry
        var listener: RPCListener?
        if let box = shell.rpcBox, let rpcPort = config.rpcPort {
            listener = RPCListener(host: config.host, port: rpcPort) { method, _, body in
                RPCEndpoint.route(method: method, body: body, box: box, inbox: inbox, queueDepth: queueDepth,
                                  queueMax: config.limits.ingressQueueMax, metrics: metrics)
            }
            try await listener!.open()
            logger.info("json-rpc http \(config.host):\(rpcPort)")
        }
        let rpcListener = listener
        let control: Channel
        let sockets: NodeSockets
        do {
            control = try await PortBinding.bind("control port (http)", host: config.host, port: config.controlPort) {
                try await ControlServer.start(
                    host: config.host, port: config.controlPort, token: loaded.token,
                    unauthorized: { metrics.controlUnauthorized.increment() },
                    router: { method, path, body in
                        if method == .POST, path == "/rpc-fault" {
                            return NodeService.setRPCFault(body, listener: rpcListener, control: inbox)
                        }
                        if method == .GET, path == "/metrics" {
                            metrics.refresh(status.get(), ingressQueue: queueDepth.value, drops: drops.snapshot)
                        }
                        return NodeService.route(method: method, path: path, body: body, status: status,
                                                 registry: registry, queueDepth: queueDepth.value, control: inbox,
                                                 eventsPath: loaded.eventsPath)
                    })
            }
            do {
                // The UDP sockets last: from here nothing throws before `executeThenClose` owns them.
                // One byte over the limit is enough for the edge to see an oversized datagram as such.
                sockets = try await NodeSockets.bind(
                    host: config.host, gossipPort: config.gossipPort,
                    votePort: config.limits.lanes && config.votePort > 0 ? config.votePort : nil,
                    datagramBytesMax: config.limits.datagramPayloadBytesMax + 1)
            } catch {
                try? await control.close()
                throw error
            }
        } catch {
            await rpcListener?.close()
            throw error
        }
        let udp = sockets.gossip
        let voteSocket = sockets.vote
        let lanes = voteSocket != nil ? ", vote lane udp \(config.host):\(config.votePort)" : ""
        logger.info("listening: gossip udp \(config.host):\(config.gossipPort)\(lanes), control http \(config.host):\(config.controlPort)")
        shell.localPorts = [(config.limits.lanes ? "user" : "", config.gossipPort)]
            + (voteSocket != nil ? [("vote", config.votePort)] : [])
        metrics.sockets(lanes: shell.localPorts.map(\.lane))
        let (userEdge, voteEdge) = makeEdges(shell: shell, config: config, inbox: inbox, queueDepth: queueDepth,
                                             voteDepth: voteDepth, logger: logger)
        let interval = config.limits.statusIntervalMs
        let eventLoopLateness = EventLoopLateness(loop: udp.channel.eventLoop, intervalMs: interval, clock: clock)
        shell.eventLoopLateness = eventLoopLateness
        defer { eventLoopLateness.cancel() }
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
                    if !shell.directory.named.isEmpty {
                        let directory = shell.directory
                        group.addTask { try await NodeService.resolvePeers(directory, inbox: inbox, clock: clock) }
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
        let peerAddresses = shell.directory
        var staked: TokenBucket?
        var unstaked: TokenBucket?
        var senderBudget: TokenBucket?
        let limits = config.limits
        // The sequencer spreads its clients' signature checks over the cores (issue 6's ingest target).
        let verifyWorkers = config.role == "sequencer"
            ? (config.rollup.map { $0.verifyWorkers > 0 ? $0.verifyWorkers : nil } ?? nil)
                ?? UsableCores.count
            : 1
        // A sequencer with a verification budget refuses client transactions past it before checking them.
        var clientBudget: CheckTimeBudget?
        if config.role == "sequencer", let share = config.rollup?.verifyShare, share > 0 {
            // A share of the reader's time, charged at what checks cost now (first guess: an idle core's rate).
            let budget = CheckTimeBudget(share: share,
                                         checksPerSecond: VerificationRate.measure(seconds: 0.15) * Double(verifyWorkers))
            clientBudget = budget
            let rate = budget.checksPerSecond
            logger.info("client transactions checked for up to \(share) of the reader's time (\(Int(rate))/s idle, \(verifyWorkers) workers); past it refused as busy unchecked")
            shell.events.write("client_budget", timeMs: shell.clock(), [("perSecond", .uint(UInt64(rate)))])
        }
        if limits.lanes {
            let (stakedRate, unstakedRate) = limits.userAdmissionRates(verifyPerSecond: VerificationRate.measure(seconds: 0.15))
            let rate = stakedRate + unstakedRate
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
        let stakes = Dictionary(uniqueKeysWithValues: shell.validators.members.map { ($0.publicKey, $0.stake) })
        // A round's prevotes are settled at the edge that carries them: the only edge without lanes; with
        // lanes, the vote lane unless it coalesces (there a queued vote can be replaced by a later one
        // before consensus counts it).
        let user = Edge(ingress: ingress, lane: limits.lanes ? "user" : "", urgent: false,
                        admission: Admission(staked: staked, unstaked: unstaked, senderBudget: nil,
                                             clientBudget: clientBudget, members: ingress.members),
                        votesOnly: shell.votesOnly,
                        consensusHeight: shell.consensusHeight, voteQuorums: shell.voteQuorums,
                        committedTxs: shell.committedTxs, verifiedTxs: shell.verifiedTxs, voteStakes: nil,
                        prevoteStakes: limits.lanes ? nil : stakes,
                        peerAddresses: peerAddresses, verifyWorkers: verifyWorkers, queueMax: limits.ingressQueueMax,
                        queueDepth: queueDepth, drops: shell.drops, metrics: shell.metrics, inbox: inbox, logger: logger)
        let vote = Edge(ingress: ingress, lane: "vote", urgent: true,
                        admission: Admission(staked: nil, unstaked: nil, senderBudget: senderBudget, clientBudget: nil,
                                             members: ingress.members),
                        votesOnly: shell.votesOnly,
                        consensusHeight: shell.consensusHeight,
                        voteQuorums: shell.voteQuorums, committedTxs: shell.committedTxs, verifiedTxs: shell.verifiedTxs,
                        voteStakes: limits.coalesceVotes ? stakes : nil, prevoteStakes: limits.coalesceVotes ? nil : stakes,
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
        var consensusPublishedMs: UInt64 = 0
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
                case .timeout, .setLinkFaults, .setClockSkew, .l2Tick, .l2Shed, .setRPCFault, .setByzantine, .peerAddress, .mark: break
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
            if let due = shell.outbox.shaper.nextDueMs, wakeAtMs.map({ due < $0 }) ?? true {
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
                // `GET /consensus` is for an operator looking at a stuck node: once a second is fresh enough.
                // (At every tick and height it was 2% of the machine's CPU on a 100-validator cluster.)
                let nowMs = shell.clock()
                if nowMs >= consensusPublishedMs + 1_000 {
                    consensusPublishedMs = nowMs
                    status.setConsensus(shell.consensusSnapshot)
                }
            }
        }
    }

    /// Looks up peers given by DNS name on NIO's blocking-work pool (getaddrinfo can wait seconds on a
    /// cluster's DNS; never on the event loop or the main loop) and tells the main loop of each change.
    static func resolvePeers(_ directory: PeerDirectory, inbox: Inbox, clock: @escaping @Sendable () -> UInt64) async throws {
        while !Task.isCancelled {
            for peer in directory.due(nowMs: clock()) {
                let address = try? await NIOThreadPool.singleton.runIfActive { PeerDirectory.lookup(peer) }
                if directory.record(peer, address: address ?? nil, nowMs: clock()), let address = address ?? nil {
                    inbox.push(.peerAddress(name: peer.name, address: address), urgent: true)
                }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// A binary that refused to run (`NodeConfig.refusedWaitsForUpgrade`): only the control port, which
    /// says why in `/status` (`stopped`), serves the event log and takes `POST /upgrade` (then this
    /// process ends, for its container to start again as that binary) or `/shutdown`. No UDP: it is
    /// no peer while it does not run.
    func waitForUpgrade(_ refused: NodeShell.StartRefused, loaded: NodeFiles.Loaded, logger: Logger) async throws {
        let config = loaded.config
        var snapshot = NodeStatus(
            name: config.name, role: config.role, version: FaultlineVersion.string,
            protocolVersion: config.protocolVersion, height: refused.height, consensusHeight: refused.height, round: 0,
            step: "refused", peers: 0, peersTotal: 0, mempoolTxs: 0, ingressQueue: 0, ingressQueueMax: 0,
            lastCommitTimeMs: 0, lastBlockId: "", stateRoot: "", txsCommitted: 0,
            startedAtMs: UInt64(Date().timeIntervalSince1970 * 1000), conflictingVotes: 0, invalidProposals: 0,
            proposer: "", linkFaults: 0, shapedDrops: 0, clockSkewMs: 0)
        snapshot.stopped = refused.description
        snapshot.rulesVersionMax = config.version
        snapshot.rulesVersionMin = config.versionMin
        snapshot.forkId = config.forkId
        let status = StatusBox(snapshot)
        let control = Inbox()
        let registry = self.registry
        let server = try await PortBinding.bind("control port (http)", host: config.host, port: config.controlPort) {
            try await ControlServer.start(host: config.host, port: config.controlPort, token: loaded.token,
                                          unauthorized: {}, router: { method, path, body in
                // Nothing runs that faults or marks could reach: only what waiting needs is answered.
                guard (method == .GET && (path == "/status" || path == "/metrics" || path.hasPrefix("/events/")))
                        || (method == .POST && (path == "/upgrade" || path == "/shutdown")) else {
                    return .init(status: .serviceUnavailable, contentType: "text/plain",
                                 body: Array("\(config.name) does not run: \(refused.description)\n".utf8))
                }
                return NodeService.route(method: method, path: path, body: body, status: status, registry: registry,
                                         queueDepth: 0, control: control, eventsPath: loaded.eventsPath)
            })
        }
        logger.notice("waiting for an upgrade (POST /upgrade) on control http \(config.host):\(config.controlPort)")
        await withGracefulShutdownHandler {
            while await control.next() != nil {}
        } onGracefulShutdown: {
            control.finish()
        }
        try? await server.close()
    }

    /// `GET /events/OFFSET`: this node's event log from byte OFFSET, whole lines, at most
    /// `eventsChunkMax` bytes (empty: nothing more yet). How a collector on another machine (a
    /// Kubernetes Job) gathers the logs that the reports are made from.
    static func events(_ path: String, from offsetText: Substring) -> ControlServer.Response {
        guard let offset = Int(offsetText), offset >= 0 else {
            return badRequest("GET /events/OFFSET: '\(offsetText)' is not a byte offset")
        }
        do {
            let file = try PosixFile(path: path, flags: O_RDONLY)
            let size = try file.size()
            guard offset < size else { return .init(status: .ok, contentType: "application/x-ndjson", body: []) }
            var chunk = try file.read(count: min(size - offset, eventsChunkMax), at: offset)
            if let lastNewline = chunk.lastIndex(of: 10) { chunk.removeSubrange((lastNewline + 1)...) }
            return .init(status: .ok, contentType: "application/x-ndjson", body: chunk)
        } catch {
            return .init(status: .internalServerError, contentType: "text/plain", body: Array("\(error)\n".utf8))
        }
    }

    static let eventsChunkMax = 4 << 20

    /// `POST /pause {"seconds": S}`: this process stopped (SIGSTOP) for S seconds by a helper it starts,
    /// which also continues it (SIGCONT): a stopped process cannot answer a resume. Where no one can
    /// signal the node from outside (a Kubernetes pod), this is how a pause reaches it.
    static func pause(_ body: [UInt8]) -> ControlServer.Response {
        struct Pause: Decodable { var seconds: Double }
        guard let request = try? JSONDecoder().decode(Pause.self, from: Data(body)), request.seconds > 0,
              request.seconds <= 3_600 else {
            return badRequest("pause body must be {\"seconds\": S} with 0 < S <= 3600")
        }
        let pid = getpid()
        // The answer goes out before the stop: the helper waits 50 ms.
        let script = "sleep 0.05; kill -STOP \(pid); sleep \(request.seconds); kill -CONT \(pid)"
        var child: pid_t = 0
        let arguments = ["/bin/sh", "-c", script]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let spawned = posix_spawn(&child, "/bin/sh", nil, nil, &argv, environ)
        guard spawned == 0 else {
            return .init(status: .internalServerError, contentType: "text/plain",
                         body: Array("could not start the pause helper: errno \(spawned)\n".utf8))
        }
        return .init(status: .ok, contentType: "text/plain", body: Array("pausing for \(request.seconds) s\n".utf8))
    }

    /// Set by `POST /upgrade`: once the node has stopped, `NodeMain` starts this program again in the same
    /// process (execv), as the binary recorded. A container whose process exits is restarted with a
    /// back-off (10 s, 20 s, … on Kubernetes): a second upgrade of one pod would cost 10 s of downtime.
    static let restartRequested = Atomic<Bool>(false)

    /// `POST /upgrade` with a `BinaryOverride`: recorded in the data folder (synced), then this node
    /// stops and starts again in the same process as that binary (see `restartRequested`).
    static func upgrade(_ body: [UInt8], dataDir: String, control: Inbox) -> ControlServer.Response {
        guard let binary = try? JSONDecoder().decode(BinaryOverride.self, from: Data(body)) else {
            return badRequest("upgrade body must be {\"version\": N, \"versionMin\": N?, \"forkId\": N?}")
        }
        do {
            let path = dataDir + "/" + BinaryOverride.fileName
            let file = try PosixFile(path: path + ".new", flags: O_WRONLY | O_CREAT | O_TRUNC)
            try file.write(Array(try JSONEncoder().encode(binary)))
            try file.sync()
            guard rename(path + ".new", path) == 0 else { throw FileError(path: path, operation: "rename", code: errno) }
        } catch {
            return .init(status: .internalServerError, contentType: "text/plain", body: Array("\(error)\n".utf8))
        }
        restartRequested.store(true, ordering: .sequentiallyConsistent)
        control.finish()
        return .init(status: .ok, contentType: "text/plain", body: Array("stopping to restart as version \(binary.version)\n".utf8))
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
        guard !shell.outbox.isIdle else { return }
        let batch = shell.takeOutgoing()
        if !batch.isEmpty { try await outbound.write(contentsOf: batch) }
    }

    static func route(method: HTTPMethod, path: String, body: [UInt8], status: StatusBox,
                      registry: PrometheusCollectorRegistry, queueDepth: Int,
                      control: Inbox, eventsPath: String? = nil) -> ControlServer.Response {
        if method == .GET, path.hasPrefix("/events/"), let eventsPath {
            return events(eventsPath, from: path.dropFirst("/events/".count))
        }
        if method == .POST, path == "/pause" {
            return pause(body)
        }
        if method == .POST, path == "/upgrade", let eventsPath {
            return upgrade(body, dataDir: FileSystem.directory(of: eventsPath), control: control)
        }
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
        case (.POST, "/mark"):
            struct Mark: Decodable { var name: String }
            guard let mark = try? JSONDecoder().decode(Mark.self, from: Data(body)), !mark.name.isEmpty,
                  mark.name.utf8.count <= 64 else {
                return badRequest("mark body must be {\"name\": \"...\"} (1 to 64 bytes)")
            }
            control.push(.mark(mark.name), urgent: true)
            return .init(status: .ok, contentType: "text/plain", body: Array("marked\n".utf8))
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
        var config: NodeConfig = try decodeJSON(configPath)
        if let peersFile = config.peersFile {
            let everyone: [NodeConfig.PeerEntry] = try decodeJSON(FileSystem.resolve(peersFile, relativeTo: base))
            guard everyone.contains(where: { $0.name == config.name }) else {
                throw ConfigError(field: "\(peersFile)", problem: "does not list this node ('\(config.name)')")
            }
            config.peers = everyone.filter { $0.name != config.name }
        }
        let genesisPath = FileSystem.resolve(config.genesisFile, relativeTo: base)
        let genesis: Genesis = try decodeJSON(genesisPath)
        let keyPath = FileSystem.resolve(config.keyFile, relativeTo: base)
        let keyText = FileSystem.trimmed(try readText(keyPath))
        guard let seedBytes = Hex.decode(keyText), let seed = Bytes32(seedBytes) else {
            throw ConfigError(field: "\(keyPath)", problem: "expected a 64-hex-digit Ed25519 seed")
        }
        // An upgrade in place (`POST /upgrade`): the binary it recorded next to the event log.
        let overridePath = FileSystem.directory(of: FileSystem.resolve(config.eventsFile, relativeTo: base))
            + "/" + BinaryOverride.fileName
        if access(overridePath, F_OK) == 0 {
            let binary: BinaryOverride = try decodeJSON(overridePath)
            config = binary.applied(to: config)
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
        // An upgrade over the control port: every socket is closed and the store synced; start again as the
        // recorded binary, in this process (its files are opened close-on-exec).
        if NodeService.restartRequested.load(ordering: .sequentiallyConsistent) {
            logger.notice("restarting as the recorded binary")
            execv("/proc/self/exe", CommandLine.unsafeArgv)
            throw FileError(path: "/proc/self/exe", operation: "execv", code: errno)
        }
    }
}
