#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing
@testable import RPCClient

/// The HTTP/1.1 client of the gateway, the RPC load and the CLI, against a real server on loopback.
@Suite struct HTTP1ClientTests {
    /// A keep-alive HTTP server: answers every request with its path, except `/hang` (never answered);
    /// counts the connections it accepted and can drop the open ones (as a server's idle timeout would).
    final class Server: Sendable {
        final class Connections: Sendable {
            let accepted = Atomic<Int>(0)
            let open = Mutex<[any Channel]>([])
        }

        let channel: any Channel
        let connections = Connections()
        var accepted: Int { connections.accepted.load(ordering: .relaxed) }

        init() async throws {
            let connections = self.connections
            channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { child in
                    connections.accepted.add(1, ordering: .relaxed)
                    connections.open.withLock { $0.append(child) }
                    return child.pipeline.configureHTTPServerPipeline().flatMap { child.pipeline.addHandler(Answer()) }
                }
                .bind(host: "127.0.0.1", port: 0).get()
        }

        var port: Int { channel.localAddress!.port! }

        func dropOpenConnections() async throws {
            for child in connections.open.withLock({ channels in defer { channels = [] }; return channels }) {
                try? await child.close()
            }
        }

        func close() async throws { try await channel.close() }
    }

    final class Answer: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        var path = ""

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): path = head.uri
            case .body: break
            case .end:
                guard path != "/hang" else { return }
                var headers = HTTPHeaders()
                headers.add(name: "content-length", value: String(path.utf8.count))
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: path)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }

    /// The deadline of requests that must be answered: generous, as the whole suite shares the test process's
    /// threads (one of these waited 16 s there for its task to run again, and its 5-s deadline had passed).
    static let patience = TimeAmount.seconds(120)

    static func boundNotListening() throws -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard fd >= 0, bound else { throw HTTP1Client.Failure.closed("cannot bind a test socket") }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    /// Kept alive: three requests in turn take one connection; one request at a time on a connection, so two
    /// at once take two. Without keep-alive, or once shut down, each request has its own.
    @Test func keptAliveConnectionsAreReused() async throws {
        let server = try await Server()
        let client = HTTP1Client(keepAlive: true)
        for path in ["/a", "/b", "/c"] {
            let response = try await client.request(host: "127.0.0.1", port: server.port, method: .POST, path: path,
                                                    body: Array("{}".utf8), timeout: Self.patience)
            #expect(response.status == 200 && response.body == Array(path.utf8))
        }
        #expect(server.accepted == 1)
        async let first = client.request(host: "127.0.0.1", port: server.port, method: .GET, path: "/x", timeout: Self.patience)
        async let second = client.request(host: "127.0.0.1", port: server.port, method: .GET, path: "/y", timeout: Self.patience)
        let (x, y) = try await (first, second)
        #expect(x.body == Array("/x".utf8) && y.body == Array("/y".utf8))
        #expect(server.accepted == 2)

        let oneShot = HTTP1Client(keepAlive: false)
        for _ in 0..<2 { _ = try await oneShot.request(host: "127.0.0.1", port: server.port, method: .GET, path: "/z", timeout: Self.patience) }
        #expect(server.accepted == 4)
        // Shut down: still answers, but keeps no connection.
        client.shutdown()
        for _ in 0..<2 { _ = try await client.request(host: "127.0.0.1", port: server.port, method: .GET, path: "/w", timeout: Self.patience) }
        #expect(server.accepted == 6)
        try await server.close()
    }

    /// A kept-alive connection the server closed while it sat idle: the next request is answered anyway, on a
    /// new connection, and nothing is reported as failed.
    @Test func aConnectionClosedWhileIdleIsReplaced() async throws {
        let server = try await Server()
        let client = HTTP1Client(keepAlive: true)
        _ = try await client.request(host: "127.0.0.1", port: server.port, method: .GET, path: "/one", timeout: Self.patience)
        try await server.dropOpenConnections()
        let response = try await client.request(host: "127.0.0.1", port: server.port, method: .GET, path: "/two", timeout: Self.patience)
        #expect(response.body == Array("/two".utf8))
        #expect(server.accepted == 2)
        client.shutdown()
        try await server.close()
    }

    /// No answer before the deadline is `timedOut` (something was sent); a refused connection is `notConnected`
    /// (nothing was); and the gateway's policy reads them as a timeout and a connect failure.
    @Test func failuresSayWhetherTheRequestLeft() async throws {
        let server = try await Server()
        let client = HTTP1Client(keepAlive: true)
        await #expect(throws: HTTP1Client.Failure.timedOut) {
            try await client.request(host: "127.0.0.1", port: server.port, method: .GET, path: "/hang", timeout: .milliseconds(200))
        }
        try await server.close()
        // A port held by a bound socket that does not listen: refused, and no other test can take it meanwhile.
        let (fd, port) = try Self.boundNotListening()
        defer { close(fd) }
        do {
            _ = try await client.request(host: "127.0.0.1", port: port, method: .GET, path: "/", timeout: Self.patience)
            Issue.record("a request to a port nobody listens on was answered")
        } catch let failure as HTTP1Client.Failure {
            #expect(failure.notSent, "\(failure)")
            #expect(FailoverClient.outcome(of: failure) == .connectFailed)
        }
        #expect(FailoverClient.outcome(of: HTTP1Client.Failure.timedOut) == .timedOut)
        #expect(FailoverClient.outcome(of: HTTP1Client.Failure.connectTimeout(host: "h", port: 1)) == .timedOut)
        #expect(FailoverClient.outcome(of: HTTP1Client.Failure.closed("reset")) == .failed("connection closed"))
    }
}
