import NIOCore
import NIOHTTP1
import NIOPosix

/// The node's loopback HTTP control port: `/status` (JSON) and `/metrics` (Prometheus text), and
/// `POST /shutdown`. Every request needs `Authorization: Bearer <run token>`; others get 401.
public enum ControlServer {
    public struct Response: Sendable {
        public var status: HTTPResponseStatus
        public var contentType: String
        public var body: [UInt8]

        public init(status: HTTPResponseStatus, contentType: String, body: [UInt8]) {
            self.status = status
            self.contentType = contentType
            self.body = body
        }
    }

    public typealias Router = @Sendable (_ method: HTTPMethod, _ path: String, _ body: [UInt8]) -> Response

    /// Request bodies above this are refused with 413 (nothing larger is ever needed).
    public static let bodyBytesMax = 64 * 1024

    /// Binds 127.0.0.1:`port` and serves until the returned channel is closed.
    public static func start(port: Int, token: String, unauthorized: @escaping @Sendable () -> Void,
                             router: @escaping Router) async throws -> Channel {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
                    channel.pipeline.addHandler(Handler(token: token, unauthorized: unauthorized, router: router))
                }
            }
            .bind(host: "127.0.0.1", port: port)
            .get()
    }

    final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let token: String
        let unauthorized: @Sendable () -> Void
        let router: Router
        private var head: HTTPRequestHead?
        private var body: [UInt8] = []
        private var tooLarge = false

        init(token: String, unauthorized: @escaping @Sendable () -> Void, router: @escaping Router) {
            self.token = token
            self.unauthorized = unauthorized
            self.router = router
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let requestHead):
                head = requestHead
                body = []
                tooLarge = false
            case .body(var chunk):
                if body.count + chunk.readableBytes > ControlServer.bodyBytesMax {
                    tooLarge = true
                } else {
                    body += chunk.readBytes(length: chunk.readableBytes) ?? []
                }
            case .end:
                guard let requestHead = head else { return }
                head = nil
                let response: Response
                if tooLarge {
                    response = Response(status: .payloadTooLarge, contentType: "text/plain",
                                        body: Array("body over \(ControlServer.bodyBytesMax) bytes\n".utf8))
                } else if requestHead.headers.first(name: "authorization") != "Bearer \(token)" {
                    unauthorized()
                    response = Response(status: .unauthorized, contentType: "text/plain",
                                        body: Array("missing or wrong run token\n".utf8))
                } else {
                    let path = String(requestHead.uri.split(separator: "?", maxSplits: 1).first ?? "")
                    response = router(requestHead.method, path, body)
                }
                var headers = HTTPHeaders()
                headers.add(name: "content-type", value: response.contentType)
                headers.add(name: "content-length", value: String(response.body.count))
                headers.add(name: "connection", value: "close")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: requestHead.version,
                                                                     status: response.status, headers: headers))),
                              promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
            }
        }
    }
}
