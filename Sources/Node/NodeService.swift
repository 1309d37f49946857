import Foundation
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
        // Unbounded so that timeouts, ticks and control inputs are never dropped; network messages
        // are bounded by the edge itself (`ingressQueueMax`, counted as queue_full).
        let (stream, continuation) = AsyncStream.makeStream(of: NodeInput.self, bufferingPolicy: .unbounded)
        let clock: @Sendable () -> UInt64 = { UInt64(Date().timeIntervalSince1970 * 1000) }
        let timers: (UInt64, NodeInput) -> Void = { ms, input in
            Task {
                try? await Task.sleep(for: .milliseconds(ms))
                continuation.yield(input)
            }
        }
        try FileSystem.makeDirectory(loaded.dataDir)
        let shell = try NodeShell(config: config, key: loaded.key, genesis: loaded.genesis, dataDir: loaded.dataDir,
                                  eventsPath: loaded.eventsPath, logger: logger, timers: timers, clock: clock)
        let metrics = shell.metrics
        let status = StatusBox(shell.status)
        let queueDepth = AtomicCounter()
        let drops = shell.drops
        let udp = try await UDPEndpoint.bind(host: config.host, port: config.gossipPort)
        let registry = self.registry
        let control = try await ControlServer.start(
            port: config.controlPort, token: loaded.token,
            unauthorized: { metrics.controlUnauthorized.increment() },
            router: { method, path, body in
                NodeService.route(method: method, path: path, body: body, status: status, registry: registry,
                                  queueDepth: queueDepth.value, control: continuation)
            })
        logger.info("listening: gossip udp \(config.host):\(config.gossipPort), control http 127.0.0.1:\(config.controlPort)")
        let members = Set(shell.validators.members.map(\.publicKey)).union(shell.peers.keys)
        let edge = Edge(
            ingress: Ingress(domain: shell.domain, datagramBytesMax: config.limits.datagramPayloadBytesMax,
                             members: members),
            peerAddresses: Set(shell.peers.values.map(\.address)), queueMax: config.limits.ingressQueueMax,
            queueDepth: queueDepth, drops: drops,
            metrics: metrics, continuation: continuation, logger: logger)
        let interval = config.limits.statusIntervalMs
        try await withGracefulShutdownHandler {
            try await udp.executeThenClose { inbound, outbound in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await edge.read(inbound) }
                    group.addTask {
                        while !Task.isCancelled {
                            try await Task.sleep(for: .milliseconds(interval))
                            continuation.yield(.tick)
                        }
                    }
                    try await mainLoop(shell, stream, outbound, status: status, queueDepth: queueDepth,
                                       wake: continuation)
                    group.cancelAll()
                }
            }
        } onGracefulShutdown: {
            continuation.finish()
        }
        try? await control.close()
        let final = shell.status
        shell.events.write("stop", timeMs: clock(), [
            ("height", .uint(shell.store.height)), ("conflictingVotes", .uint(UInt64(final.conflictingVotes))),
            ("invalidProposals", .uint(UInt64(final.invalidProposals))),
        ])
        shell.events.flush()
        logger.info("stopped at height \(shell.store.height)")
    }

    /// The one task that owns the shell: every input, in arrival order; sends what each produced.
    private func mainLoop(_ shell: NodeShell, _ stream: AsyncStream<NodeInput>,
                          _ outbound: NIOAsyncChannelOutboundWriter<Datagram>, status: StatusBox,
                          queueDepth: AtomicCounter, wake: AsyncStream<NodeInput>.Continuation) async throws {
        shell.start()
        try await flush(shell, outbound)
        var lastHeight = shell.store.height
        var wakeAtMs: Double?
        for await input in stream {
            var isTick = false
            switch input {
            case .message: queueDepth.add(-1)
            case .tick: isTick = true
            case .sendDue: wakeAtMs = nil
            case .timeout, .setLinkFaults, .setClockSkew: break
            }
            shell.handle(input)
            try await flush(shell, outbound)
            // Delayed datagrams (link faults): one wake-up for the earliest, re-armed as needed.
            if let due = shell.shaper.nextDueMs, wakeAtMs.map({ due < $0 }) ?? true {
                wakeAtMs = due
                let delayMs = max(0, due - Double(shell.clock()))
                Task {
                    try? await Task.sleep(for: .microseconds(Int64(delayMs * 1000)))
                    wake.yield(.sendDue)
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

    private func flush(_ shell: NodeShell, _ outbound: NIOAsyncChannelOutboundWriter<Datagram>) async throws {
        guard !shell.outbox.isEmpty || shell.shaper.pendingCount > 0 else { return }
        let batch = shell.takeOutgoing()
        if !batch.isEmpty { try await outbound.write(contentsOf: batch) }
    }

    static func route(method: HTTPMethod, path: String, body: [UInt8], status: StatusBox,
                      registry: PrometheusCollectorRegistry, queueDepth: Int,
                      control: AsyncStream<NodeInput>.Continuation) -> ControlServer.Response {
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
                control.yield(.setLinkFaults(table))
                return .init(status: .ok, contentType: "text/plain", body: Array("applied\n".utf8))
            } catch {
                return badRequest("link-faults body is not a LinkFaultTable: \(error)")
            }
        case (.POST, "/clock-skew"):
            struct Skew: Decodable { var skewMs: Int64 }
            guard let skew = try? JSONDecoder().decode(Skew.self, from: Data(body)) else {
                return badRequest("clock-skew body must be {\"skewMs\": N}")
            }
            control.yield(.setClockSkew(skew.skewMs))
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
    let peerAddresses: Set<SocketAddress>
    let queueMax: Int
    let queueDepth: AtomicCounter
    let drops: DropCounters
    let metrics: NodeMetrics
    let continuation: AsyncStream<NodeInput>.Continuation
    let logger: Logger

    func read(_ inbound: NIOAsyncChannelInboundStream<Datagram>) async throws {
        var ingress = self.ingress
        var rejectLogBudget = 20
        for try await datagram in inbound {
            var buffer = datagram.data
            let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
            switch ingress.admit(bytes, nowMs: UInt64(Date().timeIntervalSince1970 * 1000)) {
            case .accepted(let envelope, let message):
                guard queueDepth.value < queueMax else {
                    drops.queueFull.add(1)
                    metrics.ingressQueueDropped.increment()
                    continue
                }
                let fromPeer = peerAddresses.contains(datagram.remoteAddress)
                queueDepth.add(1)
                continuation.yield(.message(envelope, message, fromPeer: fromPeer))
            case .rejected(let reason, let detail):
                metrics.rejected[reason]?.increment()
                drops.count(reason)
                if reason != .duplicate, rejectLogBudget > 0 {
                    rejectLogBudget -= 1
                    logger.notice("dropped datagram from \(datagram.remoteAddress): \(reason.rawValue) \(detail)")
                }
            }
        }
    }
}

/// Ingress drop counts by reason, written by the reader task and read by the main loop.
final class DropCounters: Sendable {
    private let rejected: [Ingress.Reject: AtomicCounter]
    let queueFull = AtomicCounter()

    init() {
        var counters: [Ingress.Reject: AtomicCounter] = [:]
        for reason in Ingress.Reject.allCases { counters[reason] = AtomicCounter() }
        rejected = counters
    }

    func count(_ reason: Ingress.Reject) { rejected[reason]?.add(1) }

    /// Cumulative counts, duplicates excluded (they are normal gossip, not drops).
    var snapshot: [(String, Int)] {
        Ingress.Reject.allCases.filter { $0 != .duplicate }.map { ($0.rawValue, rejected[$0]!.value) }
            + [("queue_full", queueFull.value)]
    }
}

final class AtomicCounter: Sendable {
    private let atomic = Atomic<Int>(0)

    func add(_ delta: Int) { atomic.add(delta, ordering: .relaxed) }
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
        let base = (configPath as NSString).deletingLastPathComponent
        let config: NodeConfig = try decodeJSON(configPath)
        let genesisPath = FileSystem.resolve(config.genesisFile, relativeTo: base)
        let genesis: Genesis = try decodeJSON(genesisPath)
        let keyPath = FileSystem.resolve(config.keyFile, relativeTo: base)
        let keyText = try readText(keyPath).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let seedBytes = Hex.decode(keyText), let seed = Bytes32(seedBytes) else {
            throw ConfigError(field: "\(keyPath)", problem: "expected a 64-hex-digit Ed25519 seed")
        }
        let token = try readText(FileSystem.resolve(config.tokenFile, relativeTo: base))
            .trimmingCharacters(in: .whitespacesAndNewlines)
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
