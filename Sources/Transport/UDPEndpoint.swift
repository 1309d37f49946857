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

    /// Transactions go to the peer's main port; everything else to its vote lane if it has one.
    public func address(for kind: MessageKind) -> SocketAddress {
        kind == .transfer ? address : (voteAddress ?? address)
    }
}

/// A token bucket: `ratePerSecond` on average, bursts up to `burst`. Time comes in as an argument.
public struct TokenBucket: Sendable {
    public let ratePerSecond: Double
    public let burst: Double
    private var tokens: Double
    private var lastMs: UInt64?

    public init(ratePerSecond: Double, burst: Double) {
        self.ratePerSecond = ratePerSecond
        self.burst = burst
        self.tokens = burst
    }

    public mutating func take(nowMs: UInt64) -> Bool {
        if let lastMs, nowMs > lastMs {
            tokens = min(burst, tokens + Double(nowMs - lastMs) * ratePerSecond / 1000)
        }
        lastMs = max(lastMs ?? nowMs, nowMs)
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
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
