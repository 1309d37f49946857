import NIOCore
import NIOPosix

/// A UDP socket on a free port that the runner's clients send from (load, spam, the bench): a large
/// send buffer so bursts queue in the kernel instead of failing. It binds loopback when every target
/// is on loopback, else the wildcard address (nodes in network namespaces are reached over the run's
/// bridge, which a loopback socket cannot send to).
enum SenderSocket {
    static func bind(sendBufferBytes: Int = 8 << 20, toward targets: [SocketAddress]) async throws -> Channel {
        try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.so_sndbuf), value: SocketOptionValue(sendBufferBytes))
            .bind(host: localHost(toward: targets), port: 0).get()
    }

    /// The address a socket that sends to `targets` binds.
    static func localHost(toward targets: [SocketAddress]) -> String {
        let hosts = targets.compactMap(\.ipAddress)
        if !hosts.isEmpty, hosts.allSatisfy({ $0 == "::1" }) { return "::1" }
        return hosts.allSatisfy { $0.hasPrefix("127.") } ? "127.0.0.1" : "0.0.0.0"
    }
}

extension SocketAddress {
    /// A node's address as its manifest gives it: an IP address, or a DNS name (an exported cluster's
    /// pods), looked up now (blocking, getaddrinfo).
    static func node(_ host: String, port: Int) throws -> SocketAddress {
        if let address = try? SocketAddress(ipAddress: host, port: port) { return address }
        return try SocketAddress.makeAddressResolvingHost(host, port: port)
    }
}
