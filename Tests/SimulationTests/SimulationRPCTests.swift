import Formats
import Simulation
import Testing

/// JSON-RPC in simulated time: rpc nodes follow the chain and serve it, and the load's three client
/// policies meet the faults as they do over HTTP (`rpc-primary-down.toml`, `rpc-frozen-head.toml`, small).
@Suite struct SimulationRPCTests {
    static func run(_ step: String) throws -> (records: [RPCRequestRecord], startMs: UInt64) {
        let scenario = try SimulationTests.scenario("""
            [rpc_load]
            clients = ["single", "fallback", "gateway"]
            rate_per_s = 50
            timeout_ms = 1000
            retries = 2
            [[node]]
            name = "rpc1"
            role = "rpc"
            [[node]]
            name = "rpc2"
            role = "rpc"
            [[node]]
            name = "gw"
            role = "gateway"
            [[step]]
            id = "fault"
            at_s = 2
            duration_s = 2
            \(step)
            """, duration: 6)
        let simulator = try Simulator(scenario: scenario, settings: Simulator.Settings(seed: 1), logDir: nil)
        let outcome = try simulator.run()
        #expect(outcome.violations.isEmpty)
        #expect((outcome.heights["rpc1"] ?? 0) > 10, "the rpc node follows the chain: \(outcome.heights)")
        return (simulator.rpcRecords, outcome.startedAtMs)
    }

    static func window(_ records: [RPCRequestRecord], _ client: String, startMs: UInt64) -> [RPCRequestRecord] {
        // The fault's 2 s, less its first and last 100 ms (requests in flight across its edges).
        records.filter { $0.client == client && $0.t >= startMs + 2_100 && $0.t < startMs + 3_900 }
    }

    @Test func aKilledPrimaryDownsTheSingleClientAndCostsTheFallbackATryButNotTheGateway() throws {
        let (records, start) = try Self.run("action = \"kill\"\ntargets = [\"rpc1\"]")
        let single = Self.window(records, "single", startMs: start)
        let fallback = Self.window(records, "fallback", startMs: start)
        let gateway = Self.window(records, "gateway", startMs: start)
        #expect(single.count > 80 && single.allSatisfy { !$0.ok }, "single: \(single.filter(\.ok).count) of \(single.count) ok")
        #expect(fallback.allSatisfy(\.ok) && fallback.allSatisfy { $0.attempts == 2 })
        #expect(gateway.count > 80 && gateway.allSatisfy(\.ok))
        // Before the fault every client is answered by the first try.
        let before = records.filter { $0.t < start + 1_900 }
        #expect(before.count > 200 && before.filter { !$0.ok }.count <= 3)
    }

    @Test func aFrozenPrimaryServesAStaleHeadThatTheGatewayRefuses() throws {
        let (records, start) = try Self.run("action = \"rpc\"\ntargets = [\"rpc1\"]\nmode = \"frozen\"")
        func heads(_ client: String) -> [UInt64] {
            Self.window(records, client, startMs: start).filter { $0.method == "eth_blockNumber" }.compactMap(\.head)
        }
        let single = heads("single")
        let gateway = heads("gateway")
        #expect(!single.isEmpty && Set(single).count == 1, "a frozen head does not move: \(Set(single))")
        #expect((gateway.max() ?? 0) > (single.max() ?? 0) + 10, "the gateway follows the live upstream")
    }
}
