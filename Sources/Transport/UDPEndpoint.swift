import NIOCore
import NIOPosix

/// A peer this node gossips with.
public struct Peer: Sendable, Hashable {
    public var name: String
    public var address: SocketAddress

    public init(name: String, address: SocketAddress) {
        self.name = name
        self.address = address
    }
}

public typealias Datagram = AddressedEnvelope<ByteBuffer>

/// One bound UDP socket on SwiftNIO, used through `NIOAsyncChannel`.
public enum UDPEndpoint {
    public typealias Channel = NIOAsyncChannel<Datagram, Datagram>

    /// Binds `host:port` (port 0 picks a free one) with larger socket buffers for bursts.
    public static func bind(host: String, port: Int, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                            receiveBufferBytes: Int = 4 << 20) async throws -> Channel {
        try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBufferBytes))
            .channelOption(.socketOption(.so_sndbuf), value: SocketOptionValue(receiveBufferBytes))
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<Datagram, Datagram>(wrappingChannelSynchronously: channel)
                }
            }
    }

    public static func datagram(_ bytes: [UInt8], to address: SocketAddress) -> Datagram {
        Datagram(remoteAddress: address, data: ByteBuffer(bytes: bytes))
    }
}
