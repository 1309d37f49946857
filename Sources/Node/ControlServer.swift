import NIOCore
import NIOHTTP1
import NIOPosix

/// The node's loopback HTTP servers. The control port: `/status` (JSON), `/metrics` (Prometheus
/// text), `POST /shutdown` and the fault routes, each request with `Authorization: Bearer <run
/// token>` (others get 401). The JSON-RPC port of rpc and gateway nodes: no token, keep-alive, a
/// larger body limit, and answers that may be delayed (the latency fault modes).
public enum ControlServer {
    public struct Response: Sendable {
        public var status: HTTPResponseStatus
        public var contentType: String
        public var body: [UInt8]
        /// Hold the answer this long (an injected latency); 0 answers at once.
        public var delayMs: UInt64 = 0

        public init(status: HTTPResponseStatus, contentType: String, body: [UInt8], delayMs: UInt64 = 0) {
            self.status = status
            self.contentType = contentType
            self.body = body
            self.delayMs = delayMs
        }
    }

    public typealias Router = @Sendable (_ method: HTTPMethod, _ path: String, _ body: [UInt8]) -> Response
    /// A route that waits for its answer (the gateway's, which asks upstreams).
    public typealias AsyncRouter = @Sendable (_ method: HTTPMethod, _ path: String, _ body: [UInt8]) async -> Response

    enum Route: Sendable {
        case now(Router)
        case later(AsyncRouter)
    }

    public struct Options: Sendable {
        /// The bearer token every request needs (nil: none).
        public var token: String?
        /// Request bodies above this are refused with `tooLarge`'s answer.
        public var bodyBytesMax: Int
        /// Keep connections open between requests (HTTP/1.1 keep-alive); else one request each.
        public var keepAlive: Bool
        public var tooLarge: @Sendable (_ limit: Int) -> Response
        public var unauthorized: @Sendable () -> Void

        public init(token: String?, bodyBytesMax: Int, keepAlive: Bool,
                    tooLarge: @escaping @Sendable (Int) -> Response = { limit in
                        Response(status: .payloadTooLarge, contentType: "text/plain", body: Array("body over \(limit) bytes\n".utf8))
                    },
                    unauthorized: @escaping @Sendable () -> Void = {}) {
            self.token = token
            self.bodyBytesMax = bodyBytesMax
            self.keepAlive = keepAlive
            self.tooLarge = tooLarge
            self.unauthorized = unauthorized
        }
    }

    /// Control request bodies above this are refused with 413 (nothing larger is ever needed).
    public static let bodyBytesMax = 64 * 1024

    /// Binds `host`:`port` as the control port (the node's own address: loopback, or its address in
    /// its network namespace) and serves until the returned channel is closed.
    public static func start(host: String = "127.0.0.1", port: Int, token: String,
                             unauthorized: @escaping @Sendable () -> Void,
                             router: @escaping Router) async throws -> Channel {
        try await start(host: host, port: port,
                        options: Options(token: token, bodyBytesMax: bodyBytesMax, keepAlive: false,
                                         unauthorized: unauthorized),
                        router: router)
    }

    public static func start(host: String, port: Int, options: Options, router: @escaping Router) async throws -> Channel {
        try await start(host: host, port: port, options: options, route: .now(router))
    }

    public static func start(host: String, port: Int, options: Options,
                             asyncRouter: @escaping AsyncRouter) async throws -> Channel {
        try await start(host: host, port: port, options: options, route: .later(asyncRouter))
    }

    static func start(host: String, port: Int, options: Options, route: Route) async throws -> Channel {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
                    channel.pipeline.addHandler(Handler(options: options, route: route))
                }
            }
            .bind(host: host, port: port)
            .get()
    }

    final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let options: Options
        let route: Route
        private var head: HTTPRequestHead?
        private var body: [UInt8] = []
        private var tooLarge = false

        init(options: Options, route: Route) {
            self.options = options
            self.route = route
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let requestHead):
                head = requestHead
                body = []
                tooLarge = false
            case .body(var chunk):
                if tooLarge || body.count + chunk.readableBytes > options.bodyBytesMax {
                    tooLarge = true
                    body = []
                } else {
                    body += chunk.readBytes(length: chunk.readableBytes) ?? []
                }
            case .end:
                guard let requestHead = head else { return }
                head = nil
                var response: Response?
                if tooLarge {
                    response = options.tooLarge(options.bodyBytesMax)
                } else if let token = options.token, requestHead.headers.first(name: "authorization") != "Bearer \(token)" {
                    options.unauthorized()
                    response = Response(status: .unauthorized, contentType: "text/plain",
                                        body: Array("missing or wrong run token\n".utf8))
                }
                let path = String(requestHead.uri.split(separator: "?", maxSplits: 1).first ?? "")
                let requestBody = body
                body = []
                // After a refused oversized body the connection's state is unknown: close it.
                let keepOpen = options.keepAlive && requestHead.isKeepAlive && !tooLarge
                switch (response, route) {
                case (let decided?, _):
                    answer(decided, head: requestHead, keepOpen: keepOpen, context: context)
                case (nil, .now(let router)):
                    answer(router(requestHead.method, path, requestBody), head: requestHead, keepOpen: keepOpen,
                           context: context)
                case (nil, .later(let router)):
                    let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                    let eventLoop = context.eventLoop
                    Task {
                        let later = await router(requestHead.method, path, requestBody)
                        eventLoop.execute {
                            let (handler, context) = loopBound.value
                            handler.answer(later, head: requestHead, keepOpen: keepOpen, context: context)
                        }
                    }
                }
            }
        }

        private func answer(_ response: Response, head requestHead: HTTPRequestHead, keepOpen: Bool,
                            context: ChannelHandlerContext) {
            if response.delayMs > 0 {
                let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                context.eventLoop.scheduleTask(in: .milliseconds(Int64(response.delayMs))) {
                    let (handler, context) = loopBound.value
                    handler.write(response, version: requestHead.version, keepOpen: keepOpen, context: context)
                }
            } else {
                write(response, version: requestHead.version, keepOpen: keepOpen, context: context)
            }
        }

        private func write(_ response: Response, version: HTTPVersion, keepOpen: Bool, context: ChannelHandlerContext) {
            guard context.channel.isActive else { return }
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: response.contentType)
            headers.add(name: "content-length", value: String(response.body.count))
            headers.add(name: "connection", value: keepOpen ? "keep-alive" : "close")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: response.status,
                                                                 headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                if !keepOpen { channel.close(promise: nil) }
            }
        }
    }
}
