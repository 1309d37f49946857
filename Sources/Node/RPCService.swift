import DequeModule
import FoundationEssentials
import NIOCore
import NIOHTTP1
import RPC
import Synchronization
import Wire

/// What an rpc node's JSON-RPC port serves: the chain view the main loop publishes after each
/// commit, bent by the injected upstream fault (frozen, lagging, wrong, errors, latency).
final class RPCViewBox: Sendable {
    struct State {
        var views: Deque<ChainView> = []
        var frozen: ChainView?
        var falsified: (head: UInt64, view: ChainView)?
        var fault = UpstreamFault.ok
        var rng = SplitMix64(seed: 0x5eed)
    }

    private let state = Mutex(State())

    func publish(_ view: ChainView) {
        state.withLock { state in
            state.views.append(view)
            if state.views.count > ChainView.lagViewsKept + 1 { state.views.removeFirst() }
        }
    }

    func setFault(_ fault: UpstreamFault) {
        state.withLock { state in
            state.fault = fault
            state.frozen = fault.mode == "frozen" ? state.views.last : nil
        }
    }

    var fault: UpstreamFault { state.withLock { $0.fault } }

    /// The view to answer one request from, and what the fault does to it.
    func take() -> (ChainView?, UpstreamFault.Decision) {
        state.withLock { state in
            let decision = state.fault.decide(&state.rng)
            var view: ChainView?
            switch state.fault.mode {
            case "frozen": view = state.frozen ?? state.views.last
            case "lag":
                let back = Int(min(state.fault.lagBlocks, UInt64(max(state.views.count - 1, 0))))
                view = state.views.isEmpty ? nil : state.views[state.views.count - 1 - back]
            default: view = state.views.last
            }
            if decision.wrong, let current = view {
                if state.falsified?.head != current.head { state.falsified = (current.head, current.falsified()) }
                view = state.falsified?.view
            }
            return (view, decision)
        }
    }
}

/// The JSON-RPC endpoint of an rpc node: parses a body (single or batch), answers each request from
/// the view, hands verified transactions to the main loop. Malformed input gets JSON-RPC errors.
enum RPCEndpoint {
    static let bodyBytesMax = 1 << 20

    static let options = ControlServer.Options(
        token: nil, bodyBytesMax: bodyBytesMax, keepAlive: true,
        tooLarge: { limit in
            json(.payloadTooLarge, JSONRPC.error(id: .null, JSONRPC.Failure(.limitExceeded, "request body over \(limit) bytes")))
        })

    static func json(_ status: HTTPResponseStatus, _ value: JSON, delayMs: UInt64 = 0) -> ControlServer.Response {
        .init(status: status, contentType: "application/json", body: value.rendered + [10], delayMs: delayMs)
    }

    static func route(method: HTTPMethod, body: [UInt8], box: RPCViewBox, inbox: Inbox, queueDepth: AtomicCounter,
                      queueMax: Int, metrics: NodeMetrics) -> ControlServer.Response {
        guard method == .POST else {
            return json(.methodNotAllowed, JSONRPC.error(id: .null, JSONRPC.Failure(.invalidRequest,
                "JSON-RPC is served by POST with a JSON body")))
        }
        let (view, decision) = box.take()
        metrics.rpcRequests.increment()
        if let status = decision.errorStatus {
            metrics.rpcFaulted.increment()
            if status == 200 {
                return json(.ok, JSONRPC.error(id: .null, JSONRPC.Failure(.internalError, "injected upstream error")),
                            delayMs: decision.delayMs)
            }
            return .init(status: HTTPResponseStatus(statusCode: status), contentType: "text/plain",
                         body: Array("injected upstream error \(status)\n".utf8), delayMs: decision.delayMs)
        }
        guard let view else {
            return json(.serviceUnavailable, JSONRPC.error(id: .null, JSONRPC.Failure(.resourceUnavailable,
                "no block committed yet")))
        }
        func answer(_ item: JSONRPC.Item) -> JSON? {
            switch item {
            case .invalid(let id, let failure):
                return JSONRPC.error(id: id, failure)
            case .request(let request):
                let response: JSON
                switch Methods.handle(request, view: view) {
                case .result(let value):
                    response = JSONRPC.result(id: request.id ?? .null, value)
                case .failure(let failure):
                    response = JSONRPC.error(id: request.id ?? .null, failure)
                case .submit(let envelope):
                    // Signature checked by the method; the main loop runs CheckTx and gossips it. The
                    // main loop's queue is bounded like the UDP edge's: full means busy, not queued.
                    if queueDepth.value >= queueMax {
                        response = JSONRPC.error(id: request.id ?? .null, JSONRPC.Failure(.limitExceeded,
                            "node busy: \(queueMax) inputs queued; try again"))
                    } else if let transfer = try? Transfer(decoding: envelope.payload) {
                        queueDepth.add(1)
                        let now = UInt64(Date().timeIntervalSince1970 * 1000)
                        inbox.push(.message(envelope, .transfer(transfer), fromPeer: false, receivedMs: now), urgent: false)
                        response = JSONRPC.result(id: request.id ?? .null, .string("0x" + envelope.id.hex))
                    } else {
                        response = JSONRPC.error(id: request.id ?? .null, JSONRPC.Failure(.invalidParams, "not a transfer"))
                    }
                }
                return request.id == nil ? nil : response
            }
        }
        switch JSONRPC.parse(body) {
        case .unusable(let failure):
            metrics.rpcMalformed.increment()
            return json(.ok, JSONRPC.error(id: .null, failure), delayMs: decision.delayMs)
        case .single(let item):
            guard let response = answer(item) else {
                return .init(status: .noContent, contentType: "application/json", body: [], delayMs: decision.delayMs)
            }
            return json(.ok, response, delayMs: decision.delayMs)
        case .batch(let items):
            return json(.ok, .array(items.compactMap(answer)), delayMs: decision.delayMs)
        }
    }
}

/// The JSON-RPC listening socket, closed while the `down` fault mode is on (clients see connection
/// refused, as from a dead provider) and bound again when it ends.
actor RPCListener {
    let port: Int
    let router: ControlServer.Router
    var channel: Channel?

    init(port: Int, router: @escaping ControlServer.Router) {
        self.port = port
        self.router = router
    }

    func open(attempts: Int = PortBinding.attemptsMax, pauseMs: Int = PortBinding.pauseMs) async throws {
        guard channel == nil else { return }
        let (port, router) = (self.port, self.router)
        channel = try await PortBinding.bind("json-rpc port (http)", host: "127.0.0.1", port: port, attempts: attempts,
                                             pauseMs: pauseMs) {
            try await ControlServer.start(host: "127.0.0.1", port: port, options: RPCEndpoint.options, router: router)
        }
    }

    func set(down: Bool) async {
        if down {
            try? await channel?.close()
            channel = nil
            return
        }
        // The port was ours a moment ago; a few tries cover a slow release.
        try? await open(attempts: 20, pauseMs: 50)
    }

    func close() async {
        try? await channel?.close()
        channel = nil
    }
}
