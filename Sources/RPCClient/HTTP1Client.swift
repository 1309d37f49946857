import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// HTTP/1.1 on SwiftNIO's codec, one request at a time on a connection: the JSON-RPC upstream calls of the
/// gateway and the RPC load (`keepAlive`: a connection that answered is kept for the next request to the same
/// host and port, at most `idlePerHostMax` of them) and the CLI's requests to the nodes' control ports and to
/// etcd (one connection each). Connections in use are bounded by the callers' requests in flight.
public final class HTTP1Client: Sendable {
    public struct Response: Sendable {
        public var status: Int
        public var body: [UInt8]
    }

    /// Why a request got no answer. `notConnected` and `connectTimeout`: nothing was sent.
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case notConnected(host: String, port: Int, reason: String)
        case connectTimeout(host: String, port: Int)
        /// No complete answer within the request's deadline (the connection is closed).
        case timedOut
        /// The connection closed (or failed) before a complete answer.
        case closed(String)
        /// The answer's body is longer than `bodyBytesMax`.
        case tooLarge(Int)

        public var description: String {
            switch self {
            case .notConnected(let host, let port, let reason): "cannot connect to \(host):\(port): \(reason)"
            case .connectTimeout(let host, let port): "cannot connect to \(host):\(port): connect timed out"
            case .timedOut: "timed out before a complete answer"
            case .closed(let reason): "connection closed before a complete answer: \(reason)"
            case .tooLarge(let max): "answer longer than \(max) bytes"
            }
        }

        /// Nothing of the request left this process.
        public var notSent: Bool {
            switch self {
            case .notConnected, .connectTimeout: true
            case .timedOut, .closed, .tooLarge: false
            }
        }
    }

    public let keepAlive: Bool
    public let connectTimeout: TimeAmount
    public let bodyBytesMax: Int
    public let idlePerHostMax: Int
    private let group: any EventLoopGroup
    private let idle = Mutex<(byHost: [HostPort: [Connection]], shutDown: Bool)>(([:], false))

    public init(keepAlive: Bool, connectTimeout: TimeAmount = .seconds(1), bodyBytesMax: Int = 8 << 20,
                idlePerHostMax: Int = 64, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        precondition(idlePerHostMax >= 0 && bodyBytesMax > 0, "idlePerHostMax \(idlePerHostMax), bodyBytesMax \(bodyBytesMax)")
        self.keepAlive = keepAlive
        self.connectTimeout = connectTimeout
        self.bodyBytesMax = bodyBytesMax
        self.idlePerHostMax = idlePerHostMax
        self.group = group
    }

    /// One request; throws a `Failure`. A kept-alive connection the server closed while it sat idle is noticed
    /// when nothing at all comes back on it: the request is then sent once more on a new connection.
    public func request(host: String, port: Int, method: HTTPMethod, path: String, headers: [(String, String)] = [],
                        body: [UInt8] = [], timeout: TimeAmount) async throws -> Response {
        let key = HostPort(host: host, port: port)
        let deadline = NIODeadline.now() + timeout
        if keepAlive, let reused = takeIdle(key) {
            do {
                return try await exchange(on: reused, key, method: method, path: path, headers: headers, body: body,
                                          deadline: deadline)
            } catch is Exchange.Stale {
                // Fall through to a new connection.
            }
        }
        let connection = try await connect(key, timeout: min(connectTimeout, max(deadline - .now(), .milliseconds(1))))
        return try await exchange(on: connection, key, method: method, path: path, headers: headers, body: body,
                                  deadline: deadline)
    }

    /// Closes the idle connections, and from now on each connection once its request is done (requests in
    /// flight finish or time out on their own).
    public func shutdown() {
        let all = idle.withLock { state in
            defer { state = ([:], true) }
            return state.byHost.values.flatMap { $0 }
        }
        for connection in all { connection.channel.close(promise: nil) }
    }

    struct HostPort: Hashable {
        var host: String
        var port: Int
    }

    struct Connection: Sendable {
        let channel: any Channel
        let exchange: Exchange
    }

    private func takeIdle(_ key: HostPort) -> Connection? {
        idle.withLock { state in
            while let connection = state.byHost[key]?.popLast() {
                if connection.channel.isActive { return connection }
            }
            return nil
        }
    }

    private func putIdle(_ connection: Connection, _ key: HostPort) {
        let kept = idle.withLock { state in
            guard !state.shutDown, state.byHost[key, default: []].count < idlePerHostMax else { return false }
            state.byHost[key, default: []].append(connection)
            return true
        }
        if !kept { connection.channel.close(promise: nil) }
    }

    private func connect(_ key: HostPort, timeout: TimeAmount) async throws -> Connection {
        let exchange = Exchange(bodyBytesMax: bodyBytesMax)
        do {
            // The handler is in the pipeline before the channel is registered, so it sees every event of the
            // connection (a server that hangs up at once included).
            let channel = try await ClientBootstrap(group: group)
                .connectTimeout(timeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(exchange)
                    }
                }
                .connect(host: key.host, port: key.port)
                .get()
            return Connection(channel: channel, exchange: exchange)
        } catch ChannelError.connectTimeout {
            throw Failure.connectTimeout(host: key.host, port: key.port)
        } catch {
            throw Failure.notConnected(host: key.host, port: key.port, reason: "\(error)")
        }
    }

    private func exchange(on connection: Connection, _ key: HostPort, method: HTTPMethod, path: String,
                          headers extra: [(String, String)], body: [UInt8], deadline: NIODeadline) async throws -> Response {
        var headers = HTTPHeaders()
        headers.add(name: "host", value: key.host.contains(":") ? "[\(key.host)]:\(key.port)" : "\(key.host):\(key.port)")
        headers.add(name: "connection", value: keepAlive ? "keep-alive" : "close")
        headers.add(name: "content-length", value: String(body.count))
        for (name, value) in extra { headers.add(name: name, value: value) }
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)
        let channel = connection.channel
        let exchange = connection.exchange
        let answer: Exchange.Answer
        do {
            answer = try await channel.eventLoop.flatSubmit {
                let promise = channel.eventLoop.makePromise(of: Exchange.Answer.self)
                exchange.begin(promise, channel: channel, deadline: deadline)
                channel.write(HTTPClientRequestPart.head(head), promise: nil)
                if !body.isEmpty { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil) }
                channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
                return promise.futureResult
            }.get()
        } catch let failure as Failure {
            channel.close(promise: nil)
            throw failure
        } catch let stale as Exchange.Stale {
            channel.close(promise: nil)
            throw stale
        } catch {
            channel.close(promise: nil)
            throw Failure.closed("\(error)")
        }
        if keepAlive, answer.keepAlive, channel.isActive {
            putIdle(connection, key)
        } else {
            channel.close(promise: nil)
        }
        return Response(status: answer.status, body: answer.body)
    }

    /// The connection's one exchange at a time; touched only on its channel's event loop.
    final class Exchange: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPClientResponsePart

        struct Answer: Sendable {
            var status: Int
            var body: [UInt8]
            var keepAlive: Bool
        }

        /// A kept-alive connection that closed without a byte of the answer to its next request: the server
        /// had closed it while it sat idle (the request is sent again on a new connection).
        struct Stale: Error {}

        let bodyBytesMax: Int
        private var pending: EventLoopPromise<Answer>?
        private var exchanges = 0
        private var timer: Scheduled<Void>?
        private var status = 0
        private var keepAlive = false
        private var body: [UInt8] = []
        private var closed: String?
        private var answeredAnything = false

        init(bodyBytesMax: Int) { self.bodyBytesMax = bodyBytesMax }

        func begin(_ promise: EventLoopPromise<Answer>, channel: any Channel, deadline: NIODeadline) {
            precondition(pending == nil, "a second request on a connection whose answer is still pending")
            exchanges += 1
            if let closed {
                promise.fail(exchanges > 1 ? Stale() : Failure.closed(closed))
                return
            }
            pending = promise
            status = 0
            keepAlive = false
            body = []
            answeredAnything = false
            timer = channel.eventLoop.scheduleTask(deadline: deadline) { [weak self] in
                self?.finish(.failure(Failure.timedOut))
                channel.close(promise: nil)
            }
        }

        private func finish(_ result: Result<Answer, Error>) {
            timer?.cancel()
            timer = nil
            guard let promise = pending else { return }
            pending = nil
            promise.completeWith(result)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            answeredAnything = true
            switch unwrapInboundIn(data) {
            case .head(let head):
                status = Int(head.status.code)
                keepAlive = head.isKeepAlive
            case .body(var buffer):
                guard body.count + buffer.readableBytes <= bodyBytesMax else {
                    finish(.failure(Failure.tooLarge(bodyBytesMax)))
                    context.close(promise: nil)
                    return
                }
                body += buffer.readBytes(length: buffer.readableBytes) ?? []
            case .end:
                finish(.success(Answer(status: status, body: body, keepAlive: keepAlive)))
                body = []
            }
        }

        /// The connection is gone: a pending request fails (as `Stale` when it was a reused connection's and not
        /// a byte of its answer came).
        private func lost(_ reason: String) {
            closed = closed ?? reason
            finish(.failure(exchanges > 1 && !answeredAnything ? Stale() : Failure.closed(reason)))
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            lost("\(error)")
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) { lost("by the server") }

        func handlerRemoved(context: ChannelHandlerContext) { lost("torn down") }
    }
}
