import Basics
import Formats
import FoundationEssentials
import Logging
import NIOCore
import NIOHTTP1
import Prometheus
import RPC
import RPCClient
import ServiceLifecycle
import Synchronization
import Wire

/// The `gateway` role: a JSON-RPC proxy any client can point at, running the failover policy over
/// the rpc nodes listed in its `gateway.json`. Logs breaker and exclusion changes and its counters.
struct GatewayService {
    let loaded: NodeFiles.Loaded
    let configPath: String
    let registry: PrometheusCollectorRegistry
    let logger: Logger

    static let statsIntervalMs: UInt64 = 250

    func run() async throws {
        let config = loaded.config
        guard let rpcPort = config.rpcPort else { throw ConfigError(field: "rpcPort", problem: "a gateway needs an rpc port") }
        let base = FileSystem.directory(of: configPath)
        let file: GatewayFile = try NodeFiles.decodeJSON(base + "/gateway.json")
        guard !file.upstreams.isEmpty else {
            throw ConfigError(field: base + "/gateway.json: upstreams", problem: "a gateway needs at least one upstream")
        }
        let log = SharedEventLog(try EventLog(path: loaded.eventsPath, node: config.name))
        let clock: @Sendable () -> UInt64 = { UInt64(Date().timeIntervalSince1970 * 1000) }
        let startedAtMs = clock()
        let logger = self.logger
        let client = FailoverClient(endpoints: file.upstreams, settings: file.settings, seed: file.seed) { kind, upstream in
            logger.notice("upstream \(upstream): \(kind)")
            log.write("gateway_upstream", timeMs: clock(), [("kind", .string(kind)), ("upstream", .string(upstream))])
        }
        await client.start()
        log.write("start", timeMs: startedAtMs, [
            ("role", .string("gateway")), ("version", .string(FaultlineVersion.string)),
            ("upstreams", .array(file.upstreams.map { .string("\($0.name)@\($0.tier)") })),
        ], flush: true)
        let gatewayMetrics = GatewayMetrics(registry: registry, upstreams: file.upstreams.map(\.name))
        let requests = gatewayMetrics.requests
        let server = try await PortBinding.bind("json-rpc port (http)", host: config.host, port: rpcPort) {
            try await ControlServer.start(host: config.host, port: rpcPort, options: RPCEndpoint.options) {
                method, _, body in
                requests.increment()
                return await GatewayService.route(method: method, body: body, client: client)
            }
        }
        let status = StatusBox(NodeStatus(
            name: config.name, role: "gateway", version: FaultlineVersion.string, protocolVersion: config.protocolVersion,
            height: 0, consensusHeight: 0, round: 0, step: "-", peers: 0, peersTotal: file.upstreams.count, mempoolTxs: 0,
            ingressQueue: 0, ingressQueueMax: 0, lastCommitTimeMs: 0, lastBlockId: "", stateRoot: "", txsCommitted: 0,
            startedAtMs: startedAtMs, conflictingVotes: 0, invalidProposals: 0, proposer: "", linkFaults: 0,
            shapedDrops: 0, clockSkewMs: 0))
        let stop = Inbox()
        let registry = self.registry
        let control: Channel
        do {
            control = try await PortBinding.bind("control port (http)", host: config.host, port: config.controlPort) {
                try await ControlServer.start(host: config.host, port: config.controlPort, token: loaded.token, unauthorized: {}) {
                    method, path, body in
                    NodeService.route(method: method, path: path, body: body, status: status, registry: registry,
                                      queueDepth: 0, control: stop, eventsPath: loaded.eventsPath)
                }
            }
        } catch {
            try? await server.close()
            throw error
        }
        logger.info("gateway: json-rpc http \(config.host):\(rpcPort) over \(file.upstreams.map(\.name).joined(separator: ", ")); control http \(config.host):\(config.controlPort)")
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(Int64(GatewayService.statsIntervalMs)))
                        await GatewayService.report(client: client, status: status, log: log, metrics: gatewayMetrics, nowMs: clock())
                    }
                }
                while await stop.next() != nil {}
                group.cancelAll()
            }
        } onGracefulShutdown: {
            stop.finish()
        }
        try? await server.close()
        try? await control.close()
        await GatewayService.report(client: client, status: status, log: log, metrics: gatewayMetrics, nowMs: clock())
        await client.shutdown()
        log.write("stop", timeMs: clock(), [], flush: true)
        logger.info("gateway stopped")
    }

    /// The counters into the event log and the status (height: the best head an upstream reported).
    static func report(client: FailoverClient, status: StatusBox, log: SharedEventLog, metrics: GatewayMetrics,
                       nowMs: UInt64) async {
        let counters = await client.counters
        let upstreams = await client.upstreamStates
        var snapshot = status.get()
        snapshot.height = upstreams.compactMap(\.head).max() ?? 0
        snapshot.lastCommitTimeMs = nowMs
        let healthy = upstreams.filter { $0.breaker == .closed && !$0.excluded }.map(\.upstream.name)
        snapshot.rpcFault = "upstreams in use: " + (healthy.isEmpty ? "none (failing open)" : healthy.joined(separator: ", "))
        status.set(snapshot)
        let counts: [(String, Int)] = [
            ("requests", counters.requests), ("attempts", counters.attempts), ("retries", counters.retries),
            ("hedges", counters.hedges), ("errors", counters.errors), ("failedAttempts", counters.failedAttempts),
            ("staleRefused", counters.staleRefused), ("headClamped", counters.headClamped),
            ("failedOpen", counters.failedOpen), ("polls", counters.polls),
        ]
        metrics.update(counts, inUse: Set(healthy))
        var fields: [(String, JSONValue)] = counts.map { ($0.0, JSONValue.uint(UInt64($0.1))) }
        fields.append(("healthy", .array(healthy.map { JSONValue.string($0) })))
        log.write("gateway_stats", timeMs: nowMs, fields, flush: true)
    }

    /// One client body: each request of it through the policy, answers in order (a batch's elements
    /// concurrently); notifications are forwarded and not answered.
    static func route(method: HTTPMethod, body: [UInt8], client: FailoverClient) async -> ControlServer.Response {
        guard method == .POST else {
            return RPCEndpoint.json(.methodNotAllowed, JSONRPC.error(id: .null, JSONRPC.Failure(.invalidRequest,
                "JSON-RPC is served by POST with a JSON body")))
        }
        func forward(_ item: JSONRPC.Item) async -> JSON? {
            switch item {
            case .invalid(let id, let failure): return JSONRPC.error(id: id, failure)
            case .request(let request):
                let reply = await client.call(request)
                return request.id == nil ? nil : reply.response
            }
        }
        switch JSONRPC.parse(body) {
        case .unusable(let failure):
            return RPCEndpoint.json(.ok, JSONRPC.error(id: .null, failure))
        case .single(let item):
            guard let response = await forward(item) else {
                return .init(status: .noContent, contentType: "application/json", body: [])
            }
            return RPCEndpoint.json(.ok, response)
        case .batch(let items):
            let answers = await withTaskGroup(of: (Int, JSON?).self) { group in
                for (index, item) in items.enumerated() { group.addTask { (index, await forward(item)) } }
                var out: [(Int, JSON?)] = []
                for await answer in group { out.append(answer) }
                return out.sorted { $0.0 < $1.0 }.compactMap(\.1)
            }
            return RPCEndpoint.json(.ok, .array(answers))
        }
    }
}

/// An event log several tasks write to (the gateway's: the policy's events and the stats reporter).
final class SharedEventLog: @unchecked Sendable {
    private let log: EventLog
    private let lock = Mutex(())

    init(_ log: EventLog) { self.log = log }

    func write(_ event: String, timeMs: UInt64, _ fields: [(String, JSONValue)], flush: Bool = false) {
        lock.withLock { _ in
            log.write(event, timeMs: timeMs, fields)
            if flush { log.flush() }
        }
    }
}

/// The policy's counters as Prometheus counters (`faultline_gateway_policy_total{counter=…}`), fed
/// from the counter snapshots the stats reporter takes, and which upstreams are in use (one gauge each:
/// label values are the upstreams the gateway's file names, a fixed set).
final class GatewayMetrics: Sendable {
    static let policyHelp = "The failover policy's counters (requests, attempts, retries, hedges, errors, ...)."
    private let seen = DropsSeen()
    private let registry: PrometheusCollectorRegistry
    private let inUse: Gauge
    private let upstreamInUse: [String: Gauge]
    let requests: Counter

    init(registry: PrometheusCollectorRegistry, upstreams: [String]) {
        self.registry = registry
        NodeMetrics.buildInfo(registry, role: "gateway", version: FaultlineVersion.string, rulesVersion: nil)
        requests = registry.counter("faultline_gateway_requests_total", help: "JSON-RPC bodies the gateway received.")
        inUse = registry.gauge("faultline_gateway_upstreams_in_use",
                                   help: "Upstreams the policy uses now (breaker closed, not excluded).")
        var gauges: [String: Gauge] = [:]
        for name in upstreams {
            gauges[name] = registry.gauge("faultline_gateway_upstream_in_use", labels: [("upstream", name)],
                                              help: "1 while the policy uses this upstream, 0 while it is excluded or its breaker is open.")
        }
        upstreamInUse = gauges
    }

    func update(_ counts: [(String, Int)], inUse used: Set<String>) {
        inUse.set(to: Double(used.count))
        for (name, gauge) in upstreamInUse { gauge.set(to: used.contains(name) ? 1 : 0) }
        for (name, delta) in seen.deltas(counts) {
            registry.counter("faultline_gateway_policy_total", labels: [("counter", name)],
                                 help: GatewayMetrics.policyHelp).increment(by: Int64(delta))
        }
    }
}
