import FoundationEssentials
import NIOCore
import NIOHTTP1
import NIOPosix
import RPC

/// One HTTP JSON-RPC upstream.
public struct Endpoint: Codable, Sendable, Equatable {
    public var name: String
    public var host: String
    public var port: Int
    /// Priority tier: 0 first, then 1, …
    public var tier: Int

    public init(name: String, host: String, port: Int, tier: Int) {
        self.name = name
        self.host = host
        self.port = port
        self.tier = tier
    }
}

/// A JSON-RPC client that runs the `Failover` policy over HTTP upstreams (`HTTP1Client`, kept-alive): the
/// Swift client library, and the engine inside the `gateway` node. Every request is answered: with
/// an upstream's response, a clamped head, or a JSON-RPC error saying why no upstream could answer.
public actor FailoverClient {
    public struct Reply: Sendable {
        /// The JSON-RPC response object (its `id` is the request's).
        public var response: JSON
        /// Upstream requests this call caused (retries and hedges included).
        public var attempts: Int
        /// The upstream whose answer was passed on (nil: the answer was made here).
        public var upstream: String?
    }

    public static let responseBytesMax = 8 << 20

    let endpoints: [Endpoint]
    let http: HTTP1Client
    var policy: Failover.Instance
    var nextId: UInt64 = 1
    var waiting: [UInt64: CheckedContinuation<Reply, Never>] = [:]
    var requests: [UInt64: JSONRPC.Request] = [:]
    var received: [UInt64: [Int: (upstream: Int, body: [UInt8])]] = [:]
    var attemptCounts: [UInt64: Int] = [:]
    var ticker: Task<Void, Never>?
    let onEvent: @Sendable (_ kind: String, _ upstream: String) -> Void

    public init(endpoints: [Endpoint], settings: Failover.Settings, seed: UInt64,
                onEvent: @escaping @Sendable (String, String) -> Void = { _, _ in }) {
        self.endpoints = endpoints
        self.policy = Failover.Instance(settings: settings,
                                        upstreams: endpoints.map { Failover.Upstream(name: $0.name, tier: $0.tier) },
                                        seed: seed)
        // A refused connection comes back as a failed attempt at once (the policy decides what to do next).
        self.http = HTTP1Client(keepAlive: true, connectTimeout: .milliseconds(Int64(min(settings.attemptTimeoutMs, 1_000))),
                                bodyBytesMax: Self.responseBytesMax)
        self.onEvent = onEvent
    }

    /// Starts head polling and breaker timing (call once; `shutdown` stops them).
    public func start() {
        guard ticker == nil else { return }
        ticker = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(25))
                await self?.tick()
            }
        }
    }

    public func shutdown() async {
        ticker?.cancel()
        ticker = nil
        for (id, continuation) in waiting {
            let request = requests[id]
            continuation.resume(returning: Reply(response: JSONRPC.error(id: request?.id ?? .null,
                JSONRPC.Failure(.resourceUnavailable, "client shut down")), attempts: attemptCounts[id] ?? 0, upstream: nil))
        }
        waiting = [:]
        http.shutdown()
    }

    public var counters: Failover.Counters { policy.counters }
    public var upstreamStates: [Failover.UpstreamState] { policy.upstreams }
    public var servedHead: UInt64 { policy.servedHead }

    /// Sends one request through the policy.
    public func call(_ request: JSONRPC.Request) async -> Reply {
        let id = nextId
        nextId += 1
        requests[id] = request
        attemptCounts[id] = 0
        return await withCheckedContinuation { continuation in
            waiting[id] = continuation
            run(policy.begin(id, method: request.method, nowMs: Self.nowMs()))
        }
    }

    public func call(_ method: String, _ params: [JSON] = []) async -> Reply {
        await call(JSONRPC.Request(id: .int(Int64(nextId)), method: method, params: params))
    }

    static func nowMs() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }

    func tick() { run(policy.tick(nowMs: Self.nowMs())) }

    func run(_ effects: [Failover.Effect]) {
        for effect in effects {
            switch effect {
            case .send(let id, let attempt, let upstream):
                guard let request = requests[id] else { continue }
                attemptCounts[id, default: 0] += 1
                let endpoint = endpoints[upstream]
                let timeoutMs = policy.settings.attemptTimeoutMs
                Task {
                    let (outcome, body) = await self.exchange(endpoint, request, timeoutMs: timeoutMs)
                    self.finished(id, attempt: attempt, upstream: upstream, outcome, body)
                }
            case .schedule(let id, let timer, let atMs):
                let delayMs = atMs > Self.nowMs() ? atMs - Self.nowMs() : 0
                Task {
                    try? await Task.sleep(for: .milliseconds(Int64(delayMs)))
                    self.fired(id, timer)
                }
            case .respond(let id, let response):
                answer(id, response)
            case .poll(let upstream):
                let endpoint = endpoints[upstream]
                let timeoutMs = policy.settings.attemptTimeoutMs
                Task {
                    let poll = JSONRPC.Request(id: .int(0), method: "eth_blockNumber")
                    let (outcome, _) = await self.exchange(endpoint, poll, timeoutMs: timeoutMs)
                    var head: UInt64?
                    if case .answered(let number, _) = outcome { head = number }
                    self.polled(upstream, head)
                }
            case .event(let kind, let upstream):
                onEvent(kind, endpoints[upstream].name)
            }
        }
    }

    func finished(_ id: UInt64, attempt: Int, upstream: Int, _ outcome: Failover.Outcome, _ body: [UInt8]?) {
        if let body, waiting[id] != nil { received[id, default: [:]][attempt] = (upstream, body) }
        run(policy.onOutcome(id, attempt: attempt, outcome, nowMs: Self.nowMs()))
    }

    func fired(_ id: UInt64, _ timer: Failover.Timer) { run(policy.onTimer(id, timer, nowMs: Self.nowMs())) }

    func polled(_ upstream: Int, _ head: UInt64?) { run(policy.onHead(upstream, head, nowMs: Self.nowMs())) }

    func answer(_ id: UInt64, _ response: Failover.Response) {
        guard let continuation = waiting.removeValue(forKey: id) else { return }
        let request = requests.removeValue(forKey: id)
        let clientId = request?.id ?? .null
        let attempts = attemptCounts.removeValue(forKey: id) ?? 0
        let bodies = received.removeValue(forKey: id) ?? [:]
        let (json, attempt) = Failover.response(response, requestId: clientId, bodies: bodies.mapValues(\.body))
        let upstream = attempt.flatMap { bodies[$0] }.map { endpoints[$0.upstream].name }
        continuation.resume(returning: Reply(response: json, attempts: attempts, upstream: upstream))
    }

    /// One HTTP exchange with an upstream, classified for the policy.
    nonisolated func exchange(_ endpoint: Endpoint, _ request: JSONRPC.Request,
                  timeoutMs: UInt64) async -> (Failover.Outcome, [UInt8]?) {
        do {
            let response = try await http.request(host: endpoint.host, port: endpoint.port, method: .POST, path: "/",
                                                  headers: [("content-type", "application/json")],
                                                  body: request.body.rendered,
                                                  timeout: .milliseconds(Int64(timeoutMs)))
            let outcome = Failover.classify(httpStatus: response.status, body: response.body, method: request.method)
            return (outcome, response.body)
        } catch {
            return (Self.outcome(of: error), nil)
        }
    }

    /// Refused connections are safe to retry (nothing was sent); a deadline is a timeout, a connect that
    /// timed out too (an upstream whose backlog is full is as good as one that does not answer).
    static func outcome(of error: any Error) -> Failover.Outcome {
        switch error as? HTTP1Client.Failure {
        case .notConnected: return .connectFailed
        case .connectTimeout, .timedOut: return .timedOut
        case .closed: return .failed("connection closed")
        case .tooLarge(let max): return .failed("answer over \(max) bytes")
        case nil: return .failed(String(String(describing: error).prefix(120)))
        }
    }
}

/// A gateway node's `gateway.json`: its upstreams and policy.
public struct GatewayFile: Codable, Sendable, Equatable {
    public var upstreams: [Endpoint]
    public var settings: Failover.Settings
    public var seed: UInt64

    public init(upstreams: [Endpoint], settings: Failover.Settings, seed: UInt64) {
        self.upstreams = upstreams
        self.settings = settings
        self.seed = seed
    }
}
