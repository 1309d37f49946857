import NIOCore
import NIOPosix

/// A loopback UDP socket on a free port that the runner's clients send from (load, spam, the bench):
/// a large send buffer so bursts queue in the kernel instead of failing.
enum SenderSocket {
    static func bind(sendBufferBytes: Int = 8 << 20) async throws -> Channel {
        try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.so_sndbuf), value: SocketOptionValue(sendBufferBytes))
            .bind(host: "127.0.0.1", port: 0).get()
    }
}
