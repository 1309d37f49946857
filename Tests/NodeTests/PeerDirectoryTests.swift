import Formats
import NIOCore
import Testing
@testable import Node

@Suite struct PeerDirectoryTests {
    func entry(_ name: String, _ host: String, vote: Int = 0) -> NodeConfig.PeerEntry {
        NodeConfig.PeerEntry(name: name, publicKey: String(repeating: "ab", count: 32), host: host, port: 26656, votePort: vote)
    }

    @Test func literalAddressesAreKnownAtOnceNamesOnlyOnceResolved() throws {
        let directory = try PeerDirectory.make([entry("a", "10.0.0.2", vote: 26657), entry("b", "localhost")])
        #expect(directory.named.map(\.name) == ["b"])
        #expect(directory.contains(try SocketAddress(ipAddress: "10.0.0.2", port: 26656)))
        #expect(directory.contains(try SocketAddress(ipAddress: "10.0.0.2", port: 26657)))
        let b = directory.named[0]
        #expect(directory.due(nowMs: 0) == [b])
        // A real lookup through the system resolver (/etc/hosts has localhost).
        let address = try #require(PeerDirectory.lookup(b))
        #expect(address.port == 26656)
        #expect(directory.record(b, address: address, nowMs: 1_000))
        #expect(directory.contains(address))
        #expect(!directory.record(b, address: address, nowMs: 1_100), "the same address is no change")
        // Resolved: looked up again only after the backstop interval, or at once when it says hello.
        #expect(directory.due(nowMs: 2_000).isEmpty)
        directory.request("b")
        #expect(directory.due(nowMs: 1_100 + PeerDirectory.retryMs) == [b])
        let moved = try SocketAddress(ipAddress: "10.0.0.9", port: 26656)
        #expect(directory.record(b, address: moved, nowMs: 3_000))
        #expect(directory.contains(moved) && !directory.contains(address), "the old address is no peer's any more")
    }

    @Test func aNameThatCannotBeAHostIsRefusedWithItsField() {
        #expect(throws: ConfigError.self) { try PeerDirectory.make([entry("c", "bad_name.svc")]) }
        do {
            _ = try PeerDirectory.make([entry("c", "-x.validator")])
            Issue.record("accepted a label starting with a hyphen")
        } catch let error as ConfigError {
            #expect(error.description.contains("peers.c.host"), "\(error)")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func anUnresolvedNameStaysDueEveryRetry() throws {
        let directory = try PeerDirectory.make([entry("d", "no-such-pod.invalid")])
        let d = directory.named[0]
        #expect(PeerDirectory.lookup(d) == nil)
        #expect(!directory.record(d, address: nil, nowMs: 0))
        #expect(directory.due(nowMs: PeerDirectory.retryMs - 1).isEmpty)
        #expect(directory.due(nowMs: PeerDirectory.retryMs) == [d])
    }
}
