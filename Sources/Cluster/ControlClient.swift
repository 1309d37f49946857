import Formats
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Wire

/// A small HTTP/1.1 client for the nodes' control ports (SwiftNIO's HTTP codec, one request per connection).
public enum ControlClient {
    public struct Response: Sendable {
        public var status: Int
        public var body: [UInt8]
    }

    public static func request(host: String = "127.0.0.1", port: Int, method: HTTPMethod = .GET, path: String, token: String?,
                               body: [UInt8] = [], timeout: TimeAmount = .seconds(2)) async throws -> Response {
        // The collector is in the pipeline before the channel is registered, so it sees every event of
        // the connection (a node that hangs up at once included) and the promise is always completed:
        // NIO traps on a promise that is dropped unfulfilled, and a collector added after the channel
        // closed would leave the request waiting forever.
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let promise = loop.makePromise(of: Response.self)
        let collector = ResponseCollector(promise: promise, port: port)
        let channel: Channel
        do {
            channel = try await ClientBootstrap(group: loop)
                .connectTimeout(timeout)
                .channelInitializer { channel in
                    channel.pipeline.addHTTPClientHandlers().flatMap { channel.pipeline.addHandler(collector) }
                }
                .connect(host: host, port: port)
                .get()
        } catch {
            promise.fail(error)
            throw NotConnected(host: host, port: port, underlying: "\(error)")
        }
        var headers = HTTPHeaders()
        headers.add(name: "host", value: host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
        headers.add(name: "connection", value: "close")
        headers.add(name: "content-length", value: String(body.count))
        if !body.isEmpty { headers.add(name: "content-type", value: "application/json") }
        if let token { headers.add(name: "authorization", value: "Bearer \(token)") }
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if !body.isEmpty { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        // A silent node (e.g. paused with SIGSTOP) is cut off; the collector then fails the promise.
        let timeoutTask = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        defer { timeoutTask.cancel() }
        return try await promise.futureResult.get()
    }

    /// The connection was never made (refused, unreachable, timed out connecting): the request was not sent.
    public struct NotConnected: Error, CustomStringConvertible {
        public var host: String
        public var port: Int
        public var underlying: String
        public var description: String { "cannot connect to \(host):\(port): \(underlying)" }
    }

    /// GET /status decoded.
    public static func status(host: String = "127.0.0.1", port: Int, token: String,
                              timeout: TimeAmount = .seconds(2)) async throws -> NodeStatus {
        let response = try await request(host: host, port: port, path: "/status", token: token, timeout: timeout)
        guard response.status == 200 else { throw RunError("control port \(port): HTTP \(response.status)") }
        return try JSONDecoder().decode(NodeStatus.self, from: Data(response.body))
    }

    /// GET /metrics: the sum of one metric's samples over its label sets (nil if the node does not export it).
    public static func metricSum(_ name: String, host: String = "127.0.0.1", port: Int, token: String,
                                 timeout: TimeAmount = .seconds(2)) async throws -> Double? {
        let response = try await request(host: host, port: port, path: "/metrics", token: token, timeout: timeout)
        guard response.status == 200 else { throw RunError("control port \(port): HTTP \(response.status)") }
        return metricSum(name, in: String(decoding: response.body, as: UTF8.self))
    }

    /// The sum of `name`'s samples in Prometheus text (`name value` or `name{labels} value` lines).
    public static func metricSum(_ name: String, in text: String) -> Double? {
        var sum: Double?
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            let rest = line.dropFirst(name.count)
            guard rest.first == " " || rest.first == "{", let value = rest.split(separator: " ").last.flatMap({ Double($0) })
            else { continue }
            sum = (sum ?? 0) + value
        }
        return sum
    }

    final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPClientResponsePart
        static let bodyBytesMax = 8 << 20
        let promise: EventLoopPromise<Response>
        let port: Int
        var status = 0
        var body: [UInt8] = []
        var done = false

        init(promise: EventLoopPromise<Response>, port: Int) {
            self.promise = promise
            self.port = port
        }

        private func complete(_ result: Result<Response, Error>) {
            guard !done else { return }
            done = true
            promise.completeWith(result)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                status = Int(head.status.code)
            case .body(var buffer):
                if body.count + buffer.readableBytes <= ResponseCollector.bodyBytesMax {
                    body += buffer.readBytes(length: buffer.readableBytes) ?? []
                }
            case .end:
                complete(.success(Response(status: status, body: body)))
                context.close(promise: nil)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            complete(.failure(error))
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            complete(.failure(RunError("control port \(port): no complete answer (closed or timed out)")))
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            complete(.failure(RunError("control port \(port): connection torn down before an answer")))
        }
    }
}
