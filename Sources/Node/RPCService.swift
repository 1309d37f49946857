import FoundationEssentials
import NIOCore
import NIOHTTP1
import RPC
import Synchronization
import Wire

/// What an rpc node's JSON-RPC port serves (`ServedViews`: the chain view the main loop publishes after
/// each commit, bent by the injected upstream fault) behind a lock: the main loop publishes, HTTP threads serve.
final class RPCViewBox: Sendable {
    private let state = Mutex(ServedViews())

    func publish(_ view: ChainView) { state.withLock { $0.publish(view) } }

    func setFault(_ fault: UpstreamFault) { state.withLock { $0.setFault(fault) } }

    var fault: UpstreamFault { state.withLock { $0.fault } }

    func serve(_ body: [UInt8], submit: (JSON, Envelope) -> JSON) -> (answer: Served, faulted: Bool, malformed: Bool) {
        state.withLock { $0.serve(body, submit: submit) }
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
        metrics.rpcRequests.increment()
        let (served, faulted, malformed) = box.serve(body) { id, envelope in
            if queueDepth.value >= queueMax {
                return JSONRPC.error(id: id, JSONRPC.Failure(.limitExceeded, "node busy: \(queueMax) inputs queued; try again"))
            }
            guard let transfer = try? Transfer(decoding: envelope.payload) else {
                return JSONRPC.error(id: id, JSONRPC.Failure(.invalidParams, "not a transfer"))
            }
            queueDepth.add(1)
            let now = UInt64(Date().timeIntervalSince1970 * 1000)
            inbox.push(.message(envelope, .transfer(transfer), fromPeer: false, receivedMs: now), urgent: false)
            return JSONRPC.result(id: id, .string("0x" + envelope.id.hex))
        }
        if faulted { metrics.rpcFaulted.increment() }
        if malformed { metrics.rpcMalformed.increment() }
        return .init(status: HTTPResponseStatus(statusCode: served.status), contentType: served.contentType,
                     body: served.body, delayMs: served.delayMs)
    }
}

/// The JSON-RPC listening socket, closed while the `down` fault mode is on (clients see connection
/// refused, as from a dead provider) and bound again when it ends.
actor RPCListener {
    let host: String
    let port: Int
    let router: ControlServer.Router
    var channel: Channel?

    init(host: String, port: Int, router: @escaping ControlServer.Router) {
        self.host = host
        self.port = port
        self.router = router
    }

    func open(attempts: Int = PortBinding.attemptsMax, pauseMs: Int = PortBinding.pauseMs) async throws {
        guard channel == nil else { return }
        let (host, port, router) = (self.host, self.port, self.router)
        channel = try await PortBinding.bind("json-rpc port (http)", host: host, port: port, attempts: attempts,
                                             pauseMs: pauseMs) {
            try await ControlServer.start(host: host, port: port, options: RPCEndpoint.options, router: router)
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
