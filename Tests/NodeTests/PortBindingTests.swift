import Foundation
import NIOCore
import Testing
import Transport
@testable import Node

/// A node that cannot bind one of its ports stops with an error naming the port, and closes the
/// sockets it had already bound (a restarted node whose vote port was taken used to trap here).
@Suite struct PortBindingTests {
    /// A real UDP socket holding a loopback port until `close(fd)`.
    static func hold() throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(fd >= 0 && bound == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    @Test func aTakenVotePortIsNamedAndTheGossipSocketIsClosed() async throws {
        let taken = try Self.hold()
        defer { close(taken.fd) }
        let free = try Self.hold()
        let gossipPort = free.port
        close(free.fd)
        await #expect {
            _ = try await NodeSockets.bind(host: "127.0.0.1", gossipPort: gossipPort, votePort: taken.port,
                                           datagramBytesMax: 1_024, attempts: 2, pauseMs: 1)
        } throws: { error in
            guard let error = error as? BindError else { return false }
            return error.what == "vote port (udp)" && error.port == taken.port
                && error.description.contains("in use") && error.description.contains("after 2 tries")
        }
        // The gossip socket bound first was closed: its port binds again.
        let again = try await UDPEndpoint.bind(host: "127.0.0.1", port: gossipPort)
        try await again.executeThenClose { _, _ in }
    }

    @Test func bothPortsBoundWhenFree() async throws {
        let (gossip, vote) = try (Self.hold(), Self.hold())
        let ports = (gossip.port, vote.port)
        close(gossip.fd)
        close(vote.fd)
        let sockets = try await NodeSockets.bind(host: "127.0.0.1", gossipPort: ports.0, votePort: ports.1,
                                                 datagramBytesMax: 1_024, attempts: 1, pauseMs: 1)
        #expect(sockets.gossip.channel.localAddress?.port == ports.0)
        #expect(sockets.vote?.channel.localAddress?.port == ports.1)
        await NodeSockets.close(sockets.gossip)
        if let vote = sockets.vote { await NodeSockets.close(vote) }
    }

    @Test func anErrorOtherThanInUseIsNotRetried() async throws {
        var tries = 0
        await #expect {
            _ = try await PortBinding.bind("control port (http)", host: "127.0.0.1", port: 1, attempts: 5, pauseMs: 1) {
                tries += 1
                throw IOError(errnoCode: EACCES, reason: "bind")
            }
        } throws: { error in
            (error as? BindError)?.description == "cannot bind control port (http) 127.0.0.1:1: Permission denied"
        }
        #expect(tries == 1)
    }
}
