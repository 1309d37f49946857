import Basics
import Sodium
import Wire

/// What an rpc node answers from, and how: the views it published (the newest last, a few kept for the
/// lagging-head mode), and the upstream fault it plays (`UpstreamFault`). Pure, so the node (behind a
/// lock, for its HTTP threads) and the simulator serve requests the same way.
public struct ServedViews: Sendable {
    public private(set) var views: [ChainView] = []
    public private(set) var fault = UpstreamFault.ok
    private var frozen: ChainView?
    private var falsified: (head: UInt64, view: ChainView)?
    private var rng: SplitMix64

    public init(seed: UInt64 = 0x5eed) { rng = SplitMix64(seed: seed) }

    /// A new view, after a commit (bounded: `ChainView.lagViewsKept` + 1).
    public mutating func publish(_ view: ChainView) {
        views.append(view)
        if views.count > ChainView.lagViewsKept + 1 { views.removeFirst() }
    }

    /// `frozen` keeps the view of this moment until the mode ends.
    public mutating func setFault(_ fault: UpstreamFault) {
        self.fault = fault
        frozen = fault.mode == "frozen" ? views.last : nil
    }

    /// The view one request is answered from (nil: nothing committed yet) and what the fault does to it.
    public mutating func take() -> (ChainView?, UpstreamFault.Decision) {
        let decision = fault.decide(&rng)
        var view: ChainView?
        switch fault.mode {
        case "frozen": view = frozen ?? views.last
        case "lag":
            let back = Int(min(fault.lagBlocks, UInt64(max(views.count - 1, 0))))
            view = views.isEmpty ? nil : views[views.count - 1 - back]
        default: view = views.last
        }
        if decision.wrong, let current = view {
            if falsified?.head != current.head { falsified = (current.head, current.falsified()) }
            view = falsified?.view
        }
        return (view, decision)
    }

    /// One HTTP request body answered: the status, the body and the delay an rpc node gives it.
    /// `submit` answers a signed transaction (the node queues it for its main loop).
    public mutating func serve(_ body: [UInt8],
                               submit: (JSON, Envelope) -> JSON) -> (answer: Served, faulted: Bool, malformed: Bool) {
        let (view, decision) = take()
        if let status = decision.errorStatus {
            let answer = status == 200
                ? Served(status: 200, json: JSONRPC.error(id: .null, JSONRPC.Failure(.internalError, "injected upstream error")),
                         delayMs: decision.delayMs)
                : Served(status: status, contentType: "text/plain", body: Array("injected upstream error \(status)\n".utf8),
                         delayMs: decision.delayMs)
            return (answer, true, false)
        }
        guard let view else {
            return (Served(status: 503, json: JSONRPC.error(id: .null, JSONRPC.Failure(.resourceUnavailable,
                                                                                         "no block committed yet"))),
                    false, false)
        }
        func answer(_ item: JSONRPC.Item) -> JSON? {
            switch item {
            case .invalid(let id, let failure):
                return JSONRPC.error(id: id, failure)
            case .request(let request):
                let id = request.id ?? .null
                let response: JSON
                switch Methods.handle(request, view: view) {
                case .result(let value): response = JSONRPC.result(id: id, value)
                case .failure(let failure): response = JSONRPC.error(id: id, failure)
                case .submit(let envelope): response = submit(id, envelope)
                }
                return request.id == nil ? nil : response
            }
        }
        switch JSONRPC.parse(body) {
        case .unusable(let failure):
            return (Served(status: 200, json: JSONRPC.error(id: .null, failure), delayMs: decision.delayMs), false, true)
        case .single(let item):
            guard let response = answer(item) else {
                return (Served(status: 204, contentType: "application/json", body: [], delayMs: decision.delayMs), false, false)
            }
            return (Served(status: 200, json: response, delayMs: decision.delayMs), false, false)
        case .batch(let items):
            return (Served(status: 200, json: .array(items.compactMap(answer)), delayMs: decision.delayMs), false, false)
        }
    }
}

/// An HTTP answer to a JSON-RPC body, before any socket: status, content type, body, and how long to hold it.
public struct Served: Sendable, Equatable {
    public var status: Int
    public var contentType: String
    public var body: [UInt8]
    public var delayMs: UInt64

    public init(status: Int, contentType: String, body: [UInt8], delayMs: UInt64 = 0) {
        self.status = status
        self.contentType = contentType
        self.body = body
        self.delayMs = delayMs
    }

    public init(status: Int, json: JSON, delayMs: UInt64 = 0) {
        self.init(status: status, contentType: "application/json", body: json.rendered + [10], delayMs: delayMs)
    }
}
