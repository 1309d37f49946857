import NIOCore
import NIOPosix
import Testing
@testable import Node

@Suite struct ProcessStatsTests {
    /// Three sockets as /proc/self/net/udp lists them (the header, then one line each; the widths vary).
    static let table = """
           sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
          101: 0100007F:1F90 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 81001 2 0000000000000000 0
          102: 0100007F:1F91 00000000:0000 07 00000000:0001F000 00:00000000 00000000     0        0 81002 2 0000000000000000 4711
         1033: 0A000002:11F90 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 81003 2 0000000000000000 99
        """

    /// Each port gets its own socket's drops column, in the order asked; a port not listed reads 0, and a
    /// port whose hex digits end another port's (0x11F90 vs 0x1F90) is not mistaken for it.
    @Test func dropsOfEachPortFromOneRead() {
        let drops = ProcessStats.udpDrops(ports: [0x1F91, 0x1F90, 5], table: Array(Self.table.utf8))
        #expect(drops == [4711, 0, 0])
        #expect(ProcessStats.udpDrops(ports: [0x11F90], table: Array(Self.table.utf8)) == [99])
        #expect(ProcessStats.udpDrops(ports: [0x1F91], table: []) == [0])
    }

    /// On this machine's real file: a socket that never reads, with the smallest receive buffer, is sent
    /// 300 datagrams over loopback (delivered inside each send): its drops read as most of them, a quiet
    /// socket's as 0. And the resident memory reads as a plausible number of KiB.
    @Test func readsTheLiveFiles() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let full = try await DatagramBootstrap(group: group)
            .channelOption(.autoRead, value: false)
            .channelOption(.socketOption(.so_rcvbuf), value: 1)
            .bind(host: "127.0.0.1", port: 0).get()
        let quiet = try await DatagramBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let sender = try await DatagramBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        defer {
            for channel in [full, quiet, sender] { try? channel.close().wait() }
        }
        let target = try #require(full.localAddress)
        for _ in 0..<300 {
            let datagram = AddressedEnvelope(remoteAddress: target, data: ByteBuffer(repeating: 7, count: 512))
            try await sender.writeAndFlush(datagram).get()
        }
        let ports = [try #require(target.port), try #require(quiet.localAddress?.port)]
        let drops = ProcessStats.udpDrops(ports: ports)
        #expect(drops[0] >= 200 && drops[0] <= 300, "drops \(drops)")
        #expect(drops[1] == 0)
        let resident = ProcessStats.residentKiB()
        #expect(resident > 1_024 && resident < 64 << 20, "resident \(resident) KiB")
    }
}
