import NIOCore
import NIOPosix
import Wire

/// A peer this node gossips with.
public struct Peer: Sendable, Hashable {
    public var name: String
    public var address: SocketAddress
    /// Where consensus traffic goes when the peer runs separate ingress lanes.
    public var voteAddress: SocketAddress?

    public init(name: String, address: SocketAddress, voteAddress: SocketAddress? = nil) {
        self.name = name
        self.address = address
        self.voteAddress = voteAddress
    }

    /// Transactions and rollup traffic go to the peer's main port; the rest to its vote lane if it has one.
    public func address(for kind: MessageKind) -> SocketAddress {
        kind.isConsensusLane ? (voteAddress ?? address) : address
    }
}

public typealias Datagram = AddressedEnvelope<ByteBuffer>

/// One bound UDP socket on SwiftNIO, used through `NIOAsyncChannel`.
public enum UDPEndpoint {
    /// Inbound: the datagrams of one read burst at a time (see `DatagramBatcher`); outbound: one datagram.
    public typealias Channel = NIOAsyncChannel<[Datagram], Datagram>

    /// Binds `host:port` (port 0 picks a free one) with larger socket buffers for bursts. Reads take up
    /// to `vectorReadCount` datagrams per system call (recvmmsg), each into `datagramBytesMax` bytes of one
    /// shared buffer that NIO splits evenly (a longer datagram arrives truncated, and the codec rejects it).
    public static func bind(host: String, port: Int, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                            receiveBufferBytes: Int = 4 << 20, datagramBytesMax: Int = 2_048,
                            vectorReadCount: Int = 32) async throws -> Channel {
        try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBufferBytes))
            .channelOption(.socketOption(.so_sndbuf), value: SocketOptionValue(receiveBufferBytes))
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: datagramBytesMax * vectorReadCount))
            .channelOption(.datagramVectorReadMessageCount, value: vectorReadCount)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DatagramBatcher())
                    return try Channel(wrappingChannelSynchronously: channel)
                }
            }
    }

    public static func datagram(_ bytes: [UInt8], to address: SocketAddress) -> Datagram {
        Datagram(remoteAddress: address, data: ByteBuffer(bytes: bytes))
    }
}

/// Hands the datagrams of one socket read burst (up to `batchMax`) to the next stage as one array, so
/// the task behind the channel pays one hand-off and one wake-up per burst instead of per datagram.
public final class DatagramBatcher: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = Datagram
    public typealias InboundOut = [Datagram]

    private let batchMax: Int
    private var batch: [Datagram] = []

    public init(batchMax: Int = 256) {
        self.batchMax = batchMax
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        batch.append(unwrapInboundIn(data))
        if batch.count >= batchMax { emit(context) }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        emit(context)
        context.fireChannelReadComplete()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        emit(context)
        context.fireChannelInactive()
    }

    private func emit(_ context: ChannelHandlerContext) {
        guard !batch.isEmpty else { return }
        let out = batch
        batch.removeAll(keepingCapacity: true)
        context.fireChannelRead(wrapInboundOut(out))
    }
}
