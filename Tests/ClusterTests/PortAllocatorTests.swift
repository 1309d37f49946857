import Foundation
import Testing
@testable import Cluster

/// Ports a run picks stay out of the kernel's ephemeral range, so a node down for a kill cannot lose
/// its port to an outgoing connection, and every picked port is distinct and free when picked.
@Suite struct PortAllocatorTests {
    @Test func pickedPortsAreDistinctFreeAndBelowTheEphemeralRange() throws {
        let ephemeralMin = PortAllocator.ephemeralPortMin()
        let ports = try PortAllocator.allocate(count: 7, basePort: 0, host: "127.0.0.1")
        let all = ports.flatMap { [$0.gossip, $0.vote, $0.control, $0.rpc] }
        #expect(Set(all).count == 28)
        #expect(all.allSatisfy { $0 >= PortAllocator.pickedPortMin && $0 < max(ephemeralMin, PortAllocator.pickedPortMin + 1_000) })
        for entry in ports {
            #expect(try PortAllocator.canBind(port: entry.gossip, type: SOCK_DGRAM, host: "127.0.0.1"))
            #expect(try PortAllocator.canBind(port: entry.control, type: SOCK_STREAM, host: "127.0.0.1"))
        }
    }

    @Test func aBasePortGivesConsecutivePorts() throws {
        let ports = try PortAllocator.allocate(count: 2, basePort: 20_000, host: "127.0.0.1")
        #expect(ports.map(\.gossip) == [20_000, 20_003])
        #expect(ports.map(\.control) == [20_002, 20_005])
        #expect(ports.map(\.rpc) == [20_006, 20_007])
    }

    @Test func theEphemeralRangeIsReadFromTheKernel() throws {
        let text = try String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)
        let first = Int(text.split(whereSeparator: \.isWhitespace)[0])
        #expect(PortAllocator.ephemeralPortMin() == first)
    }
}
