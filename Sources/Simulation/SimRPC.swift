import Formats
import RPC
import Wire

/// The JSON-RPC side of a simulated run: rpc nodes answer from the chain they follow (`ServedViews`, as
/// the node's port does, upstream faults included), the gateway node and each `[rpc_load]` client run the
/// failover policy (`Failover.Instance`, as `FailoverClient` does over HTTP), and every request is recorded
/// in `load/rpc-clients.jsonl` for the same analysis. An HTTP exchange takes a round trip of the simulated
/// network; a killed node or a `down` port refuses at once, a paused node never answers (the attempt times
/// out), and an answer the fault delays past the attempt's timeout times out too.
struct RPCState {
    /// Where an engine's upstream `index` is.
    enum Target {
        case node(slot: Int)
        case gateway(engine: Int, slot: Int)
    }

    /// One policy instance and what it has open: a load client, or the gateway node's engine.
    struct Engine {
        let name: String
        /// The gateway node this engine runs in (its event log; its process state), nil for a load client.
        let slot: Int?
        var policy: Failover.Instance
        let targets: [Target]
        var open: [UInt64: Open] = [:]
        var nextId: UInt64 = 1
    }

    struct Open {
        var request: JSONRPC.Request
        var sentMs: UInt64
        /// The load stream it belongs to, or the caller's attempt (a request the gateway forwards).
        var stream: Int?
        var callerToken: Int?
        var attempts = 0
        var bodies: [Int: [UInt8]] = [:]
    }

    /// An upstream exchange in flight: what answers first (the answer or the timeout) ends it.
    struct Attempt {
        var engine: Int
        var request: UInt64
        var attempt: Int
        var upstream: Int
        var method: String
        /// A head poll (`eth_blockNumber` for the policy itself), not a client's request.
        var poll: Bool
        var answer: (outcome: Failover.Outcome, body: [UInt8]?)?
    }

    /// One client's open-loop stream: request i leaves at start + i / rate.
    struct Stream {
        var engine: Int
        var startUs: UInt64
        var total: Int
        var sent = 0
        var lastHead: UInt64 = 0
    }

    let spec: RPCLoadSpec?
    var engines: [Engine] = []
    var ticks = 0
    var streams: [Stream] = []
    var attempts: [Int: Attempt] = [:]
    var nextToken = 0
    var addresses: [String] = []
    var records: [RPCRequestRecord] = []

    /// In-flight exchanges beyond this are refused at once (a bound when every upstream hangs).
    static let attemptsMax = 100_000
    /// How often each engine's breakers and head polls are looked at (as `FailoverClient`'s ticker).
    static let tickMs: UInt64 = 25
    /// A gateway's counters go to its event log every 250 ms (as `GatewayService.statsIntervalMs`).
    static let ticksPerReport = 10
    static let recordsMax = 2_000_000
}

/// The agenda's RPC items (small values: the state lives in `RPCState`).
enum RPCEvent {
    case send(stream: Int)
    case tick
    case timer(engine: Int, request: UInt64, Failover.Timer)
    case answer(token: Int)
    case timeout(token: Int)
}

extension Simulator {
    /// Every `[rpc_load]` request so far, as `load/rpc-clients.jsonl` gets them.
    public var rpcRecords: [RPCRequestRecord] { rpc?.records ?? [] }

    /// Sets up the gateway engines and the load's clients (nil: no rpc nodes in the run).
    func makeRPC() -> RPCState? {
        let upstreams = topology.rpcUpstreams
        guard !upstreams.isEmpty else { return nil }
        var state = RPCState(spec: topology.rpcLoad)
        let slotOf = Dictionary(uniqueKeysWithValues: nodes.map { ($0.name, $0.slot) })
        let rpcTargets = upstreams.map { RPCState.Target.node(slot: slotOf[$0.node.name]!) }
        let failoverUpstreams = upstreams.map { Failover.Upstream(name: $0.node.name, tier: $0.tier) }
        var gatewayEngine: (engine: Int, slot: Int)?
        for node in topology.gatewayNodes {
            gatewayEngine = (state.engines.count, slotOf[node.name]!)
            state.engines.append(.init(name: node.name, slot: slotOf[node.name],
                                       policy: Failover.Instance(settings: topology.gateway, upstreams: failoverUpstreams,
                                                                 seed: settings.seed),
                                       targets: rpcTargets))
        }
        guard let spec = topology.rpcLoad else { return state }
        let primary = upstreams.indices.min { upstreams[$0].tier < upstreams[$1].tier }!
        let byTier = upstreams.indices.sorted { upstreams[$0].tier < upstreams[$1].tier }
        for (index, name) in spec.clients.enumerated() {
            let (which, policySettings) = spec.policy(name, gateway: topology.gateway)
            let chosen: [(Failover.Upstream, RPCState.Target)]
            switch which {
            case .primary: chosen = [(failoverUpstreams[primary], rpcTargets[primary])]
            case .byTier: chosen = byTier.map { (failoverUpstreams[$0], rpcTargets[$0]) }
            case .all: chosen = Array(zip(failoverUpstreams, rpcTargets))
            case .gateway:
                // The file has a gateway node (`[rpc_load]` refuses the gateway client without one).
                guard let (engine, slot) = gatewayEngine else { preconditionFailure("a gateway client without a gateway") }
                chosen = [(Failover.Upstream(name: nodes[slot].name, tier: 0), .gateway(engine: engine, slot: slot))]
            case .external:
                preconditionFailure("checkSupported refuses the external client")
            }
            state.streams.append(.init(engine: state.engines.count, startUs: 0, total: 0))
            state.engines.append(.init(name: name, slot: nil,
                                       policy: Failover.Instance(settings: policySettings, upstreams: chosen.map(\.0),
                                                                 seed: settings.seed &+ UInt64(index)),
                                       targets: chosen.map(\.1)))
        }
        state.addresses = (0..<max(topology.load.accounts, 1)).map {
            Address(ClusterSetup.accountKey(chainId: topology.chainId, seed: settings.seed, index: $0).publicKey).description
        }
        return state
    }

    /// The schedule begins: the engines tick, and the load's streams start (as `faultline run` starts its
    /// RPC load `start_s` into the schedule, for the rest of it).
    func beginRPC() {
        guard var state = rpc else { return }
        queue.push(.rpc(.tick), atUs: nowUs)
        if let spec = state.spec {
            let seconds = max(scenario.scheduleSecondsMax - spec.startSeconds, 0)
            for index in state.streams.indices {
                state.streams[index].startUs = nowUs + UInt64(spec.startSeconds * 1_000_000)
                state.streams[index].total = Int(Double(spec.ratePerSecond) * seconds)
                if state.streams[index].total > 0 {
                    queue.push(.rpc(.send(stream: index)), atUs: state.streams[index].startUs)
                }
            }
        }
        rpc = state
    }

    func handleRPC(_ event: RPCEvent) {
        switch event {
        case .tick:
            for engine in rpc!.engines.indices where engineRuns(engine) {
                run(rpc!.engines[engine].policy.tick(nowMs: nowMs), engine: engine)
            }
            rpc!.ticks += 1
            if rpc!.ticks % RPCState.ticksPerReport == 0 { reportGateways() }
            if !ended { queue.push(.rpc(.tick), atUs: nowUs + RPCState.tickMs * 1_000) }
        case .send(let index):
            sendNext(stream: index)
        case .timer(let engine, let request, let timer):
            guard rpc!.engines[engine].open[request] != nil else { return }
            run(rpc!.engines[engine].policy.onTimer(request, timer, nowMs: nowMs), engine: engine)
        case .answer(let token):
            guard let attempt = rpc!.attempts.removeValue(forKey: token), let answer = attempt.answer else { return }
            finish(attempt, answer.outcome, body: answer.body)
        case .timeout(let token):
            guard let attempt = rpc!.attempts.removeValue(forKey: token) else { return }
            finish(attempt, .timedOut, body: nil)
        }
    }

    /// A gateway's process ended: a fresh policy (its breakers and heads are gone) and nothing open.
    func resetGateway(_ slot: Int) {
        guard let index = rpc?.engines.firstIndex(where: { $0.slot == slot }) else { return }
        let old = rpc!.engines[index]
        rpc!.engines[index] = .init(name: old.name, slot: slot,
                                    policy: Failover.Instance(settings: old.policy.settings,
                                                              upstreams: old.policy.upstreams.map(\.upstream),
                                                              seed: settings.seed),
                                    targets: old.targets)
    }

    /// A gateway engine runs while its process does.
    private func engineRuns(_ engine: Int) -> Bool {
        guard let slot = rpc!.engines[engine].slot else { return true }
        return nodes[slot].state == .running
    }

    private func sendNext(stream index: Int) {
        let stream = rpc!.streams[index]
        guard stream.sent < stream.total, let spec = rpc!.spec else { return }
        rpc!.streams[index].sent += 1
        let request = spec.request(stream.sent, addresses: rpc!.addresses, head: stream.lastHead)
        begin(request, engine: stream.engine, stream: index, callerToken: nil)
        if stream.sent + 1 < stream.total {
            let dueUs = stream.startUs + UInt64(Double(stream.sent + 1) * 1_000_000 / Double(spec.ratePerSecond))
            queue.push(.rpc(.send(stream: index)), atUs: max(dueUs, nowUs))
        }
    }

    private func begin(_ request: JSONRPC.Request, engine: Int, stream: Int?, callerToken: Int?) {
        let id = rpc!.engines[engine].nextId
        rpc!.engines[engine].nextId += 1
        rpc!.engines[engine].open[id] = .init(request: request, sentMs: nowMs, stream: stream, callerToken: callerToken)
        run(rpc!.engines[engine].policy.begin(id, method: request.method, nowMs: nowMs), engine: engine)
    }

    /// Carries out a policy's effects (as `FailoverClient.run`).
    private func run(_ effects: [Failover.Effect], engine: Int) {
        for effect in effects {
            switch effect {
            case .send(let id, let attempt, let upstream):
                guard let open = rpc!.engines[engine].open[id] else { continue }
                rpc!.engines[engine].open[id]!.attempts += 1
                exchange(RPCState.Attempt(engine: engine, request: id, attempt: attempt, upstream: upstream,
                                          method: open.request.method, poll: false), body: open.request.body.rendered)
            case .schedule(let id, let timer, let atMs):
                queue.push(.rpc(.timer(engine: engine, request: id, timer)),
                           atUs: nowUs + (atMs > nowMs ? atMs - nowMs : 0) * 1_000)
            case .respond(let id, let response):
                respond(id, response, engine: engine)
            case .poll(let upstream):
                let poll = JSONRPC.Request(id: .int(0), method: "eth_blockNumber")
                exchange(RPCState.Attempt(engine: engine, request: 0, attempt: 0, upstream: upstream,
                                          method: poll.method, poll: true), body: poll.body.rendered)
            case .event(let kind, let upstream):
                if let slot = rpc!.engines[engine].slot {
                    let name = rpc!.engines[engine].policy.upstreams[upstream].upstream.name
                    log(nodes[slot], "gateway_upstream", [("kind", .string(kind)), ("upstream", .string(name))])
                }
            }
        }
    }

    /// One upstream exchange: its answer (or refusal) is due after a round trip and what the fault adds;
    /// an attempt not answered within the policy's attempt timeout times out.
    private func exchange(_ attempt: RPCState.Attempt, body: [UInt8]) {
        let timeoutMs = rpc!.engines[attempt.engine].policy.settings.attemptTimeoutMs
        guard rpc!.attempts.count < RPCState.attemptsMax else {
            finish(attempt, .connectFailed, body: nil)
            return
        }
        let token = rpc!.nextToken
        rpc!.nextToken += 1
        let roundTripUs = UInt64(2 * settings.latencyMs * 1_000)
        switch rpc!.engines[attempt.engine].targets[attempt.upstream] {
        case .node(let slot):
            let node = nodes[slot]
            rpc!.attempts[token] = attempt
            switch node.state {
            case .down:
                rpc!.attempts[token]!.answer = (.connectFailed, nil)
                queue.push(.rpc(.answer(token: token)), atUs: nowUs + roundTripUs)
                return
            case .paused:
                break // the kernel accepts the connection; nobody answers
            case .running:
                guard node.rpcFault.mode != "down", node.served != nil else {
                    rpc!.attempts[token]!.answer = (.connectFailed, nil)
                    queue.push(.rpc(.answer(token: token)), atUs: nowUs + roundTripUs)
                    return
                }
                let (served, _, _) = node.served!.serve(body) { id, _ in
                    JSONRPC.error(id: id, JSONRPC.Failure(.invalidParams, "the simulated load only reads"))
                }
                if served.delayMs < timeoutMs {
                    rpc!.attempts[token]!.answer = (Failover.classify(httpStatus: served.status, body: served.body,
                                                                      method: attempt.method), served.body)
                    queue.push(.rpc(.answer(token: token)), atUs: nowUs + roundTripUs + served.delayMs * 1_000)
                    return
                }
            }
            queue.push(.rpc(.timeout(token: token)), atUs: nowUs + timeoutMs * 1_000)
        case .gateway(let gateway, let slot):
            rpc!.attempts[token] = attempt
            if nodes[slot].state == .down {
                rpc!.attempts[token]!.answer = (.connectFailed, nil)
                queue.push(.rpc(.answer(token: token)), atUs: nowUs + roundTripUs)
                return
            }
            queue.push(.rpc(.timeout(token: token)), atUs: nowUs + timeoutMs * 1_000)
            if nodes[slot].state == .running, let request = rpcRequest(of: attempt) {
                begin(request, engine: gateway, stream: nil, callerToken: token)
            }
        }
    }

    private func rpcRequest(of attempt: RPCState.Attempt) -> JSONRPC.Request? {
        attempt.poll ? JSONRPC.Request(id: .int(0), method: "eth_blockNumber")
            : rpc!.engines[attempt.engine].open[attempt.request]?.request
    }

    /// An exchange ended: its outcome goes to the policy that made it.
    private func finish(_ attempt: RPCState.Attempt, _ outcome: Failover.Outcome, body: [UInt8]?) {
        let engine = attempt.engine
        guard engineRuns(engine) else { return }
        if attempt.poll {
            var head: UInt64?
            if case .answered(let number, _) = outcome { head = number }
            run(rpc!.engines[engine].policy.onHead(attempt.upstream, head, nowMs: nowMs), engine: engine)
            return
        }
        guard rpc!.engines[engine].open[attempt.request] != nil else { return }
        if let body { rpc!.engines[engine].open[attempt.request]!.bodies[attempt.attempt] = body }
        run(rpc!.engines[engine].policy.onOutcome(attempt.request, attempt: attempt.attempt, outcome, nowMs: nowMs),
            engine: engine)
    }

    /// The policy answered a request: to the load's record, or back to the caller's attempt (the gateway's).
    private func respond(_ id: UInt64, _ response: Failover.Response, engine: Int) {
        guard let open = rpc!.engines[engine].open.removeValue(forKey: id) else { return }
        let (json, _) = Failover.response(response, requestId: open.request.id ?? .null, bodies: open.bodies)
        if let token = open.callerToken {
            guard rpc!.attempts[token] != nil else { return } // the caller's attempt timed out already
            let body = json.rendered + [10]
            rpc!.attempts[token]!.answer = (Failover.classify(httpStatus: 200, body: body, method: open.request.method), body)
            queue.push(.rpc(.answer(token: token)), atUs: nowUs + UInt64(settings.latencyMs * 1_000))
            return
        }
        guard let stream = open.stream else { return }
        let record = RPCRequestRecord(t: open.sentMs, client: rpc!.engines[engine].name, method: open.request.method,
                                      response: json, ms: nowMs - min(nowMs, open.sentMs), attempts: open.attempts)
        if let head = record.head { rpc!.streams[stream].lastHead = max(rpc!.streams[stream].lastHead, head) }
        if rpc!.records.count < RPCState.recordsMax { rpc!.records.append(record) }
    }

    /// Once a gateway's counters (as `GatewayService.report`, every 250 ms) into its event log.
    func reportGateways() {
        guard let state = rpc else { return }
        for engine in state.engines {
            guard let slot = engine.slot, nodes[slot].state == .running else { continue }
            let counters = engine.policy.counters
            let healthy = engine.policy.upstreams.filter { $0.breaker == .closed && !$0.excluded }.map(\.upstream.name)
            log(nodes[slot], "gateway_stats", [
                ("requests", .uint(UInt64(counters.requests))), ("attempts", .uint(UInt64(counters.attempts))),
                ("retries", .uint(UInt64(counters.retries))), ("hedges", .uint(UInt64(counters.hedges))),
                ("errors", .uint(UInt64(counters.errors))), ("failedAttempts", .uint(UInt64(counters.failedAttempts))),
                ("staleRefused", .uint(UInt64(counters.staleRefused))), ("headClamped", .uint(UInt64(counters.headClamped))),
                ("failedOpen", .uint(UInt64(counters.failedOpen))), ("polls", .uint(UInt64(counters.polls))),
                ("healthy", .array(healthy.map { .string($0) })),
            ])
        }
    }
}
