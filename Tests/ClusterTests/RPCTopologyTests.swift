import Formats
import Foundation
import RPC
@testable import RPCClient
import Testing
import Wire
@testable import Cluster

/// `[gateway]`, `[rpc_load]`, rpc steps and rpc_* expectations: what is read, and mistakes named.
@Suite struct RPCTopologyTests {
    static let nodes = """
        [cluster]
        name = "r"
        [[node]]
        name = "v1"
        [[node]]
        name = "rpc1"
        role = "rpc"
        [[node]]
        name = "rpc2"
        role = "rpc"
        rpc_tier = 0
        [[node]]
        name = "gw"
        role = "gateway"

        """

    func parse(_ body: String, nodes: String = RPCTopologyTests.nodes) throws(TopologyError) -> Scenario {
        let text = nodes + body
        return try Scenario.parse(text, path: "r.toml")
    }

    @Test func readsTheGatewayPolicyTheLoadAnRpcStepAndAClientExpectation() throws {
        let scenario = try parse("""
            [gateway]
            attempt_timeout_ms = 400
            hedge_quantile = 0.9
            quorum = 2
            fail_open = false
            [rpc_load]
            clients = ["single", "gateway", "library"]
            rate_per_s = 40
            stale_blocks = 10
            [[step]]
            id = "freeze"
            action = "rpc"
            targets = "rpc1"
            mode = "lag"
            lag_blocks = 12
            duration_s = 3
            [[expect]]
            metric = "rpc_error_percent"
            client = "gateway"
            window = "during:freeze"
            max = 0.1
            """)
        let topology = scenario.topology
        #expect(topology.gateway.attemptTimeoutMs == 400 && topology.gateway.quorum == 2 && !topology.gateway.failOpen)
        #expect(topology.gateway.hedgeQuantile == 0.9)
        #expect(topology.rpcLoad?.clients == ["single", "gateway", "library"])
        #expect(topology.rpcLoad?.ratePerSecond == 40 && topology.rpcLoad?.staleBlocks == 10)
        #expect(topology.rpcUpstreams.map(\.tier) == [0, 0], "rpc_tier = 0 puts rpc2 in the primary tier")
        #expect(scenario.steps[0].action == .rpc(targets: ["rpc1"], fault: UpstreamFault(mode: "lag", lagBlocks: 12)))
        #expect(scenario.expectations[0].client == "gateway")
    }

    @Test(arguments: [
        ("[gateway]\nquorum = 3", "gateway.quorum", "can never agree"),
        ("[gateway]\nattempt_timeout_ms = 900\nrequest_deadline_ms = 500", "gateway.request_deadline_ms", "below"),
        ("[gateway]\nretries = 2", "gateway.retries", "unknown field"),
        ("[rpc_load]\nclients = [\"smart\"]", "rpc_load.clients", "not a client policy"),
        ("[rpc_load]\nclients = [\"external\"]", "rpc_load.endpoint", "needs endpoint"),
        ("[rpc_load]\nendpoint = \"localhost\"", "rpc_load.endpoint", "HOST:PORT"),
        ("[rpc_load]\nmethods = [\"eth_sendRawTransaction\"]", "rpc_load.methods", "not a read method"),
        ("[[step]]\naction = \"rpc\"\ntargets = \"rpc1\"", "step[1].mode", "rpc needs mode"),
        ("[[step]]\naction = \"rpc\"\ntargets = \"rpc1\"\nmode = \"sulk\"", "step[1].mode", "is not one of"),
        ("[[step]]\naction = \"rpc\"\ntargets = \"v1\"\nmode = \"down\"", "step[1].targets", "is a validator"),
        ("[[step]]\naction = \"rpc\"\ntargets = \"rpc1\"\nmode = \"lag\"", "step[1].lag_blocks", "needs lag_blocks"),
        ("[[step]]\naction = \"rpc\"\ntargets = \"rpc1\"\nmode = \"errors\"\nstatus = 302", "step[1].mode", "expected 429"),
        ("[rpc_load]\n[[expect]]\nmetric = \"rpc_error_percent\"\nmax = 1", "expect[1].client", "measured per client"),
        ("[rpc_load]\n[[expect]]\nmetric = \"rpc_error_percent\"\nclient = \"library\"\nmax = 1", "expect[1].client",
         "not a client of [rpc_load]"),
        ("[[expect]]\nmetric = \"halt\"\nclient = \"gateway\"\nequals = false", "expect[1].client", "only rpc_* metrics"),
        ("[[expect]]\nmetric = \"rejects\"\nmin = 1", "expect[1].reason", "rejects counts one reason"),
        ("[[expect]]\nmetric = \"halt\"\nreason = \"bad_part\"\nequals = false", "expect[1].reason", "only the rejects"),
    ])
    func mistakesNameTheField(body: String, field: String, problem: String) {
        do {
            _ = try parse(body)
            Issue.record("accepted: \(body)")
        } catch {
            #expect(error.field == field, "field was \(error.field): \(error.problem)")
            #expect(error.problem.contains(problem), "problem was \(error.problem)")
        }
    }

    @Test func aGatewayNeedsRpcNodesAndTheGatewayClientNeedsAGateway() {
        let noUpstream = "[cluster]\nname = \"r\"\n[[node]]\nname = \"v1\"\n[[node]]\nname = \"gw\"\nrole = \"gateway\"\n"
        #expect(throws: TopologyError.self) { try parse("", nodes: noUpstream) }
        let noGateway = "[cluster]\nname = \"r\"\n[[node]]\nname = \"v1\"\n[[node]]\nname = \"rpc1\"\nrole = \"rpc\"\n"
        do {
            _ = try parse("[rpc_load]\nclients = [\"gateway\"]", nodes: noGateway)
            Issue.record("the gateway client without a gateway was accepted")
        } catch {
            #expect(error.field == "rpc_load.clients" && error.problem.contains("role = \"gateway\""))
        }
    }

    @Test func rpcPortsAreAllocatedForRpcAndGatewayNodesOnly() throws {
        let topology = try Topology.parse(Self.nodes.replacingOccurrences(of: "name = \"r\"", with: "name = \"r\"\nbase_port = 30000"),
                                          path: "r.toml")
        let root = NSTemporaryDirectory() + "faultline-rpc-ports-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (dir, manifest) = try RunFolder.create(topology: topology, runsRoot: root + "/runs")
        #expect(manifest.nodes.map(\.rpcPort) == [nil, 30013, 30014, 30015], "base + 3·count + index")
        let gateway = try JSONDecoder().decode(GatewayFile.self,
                                               from: Data(contentsOf: URL(fileURLWithPath: dir + "/nodes/gw/gateway.json")))
        #expect(gateway.upstreams.map(\.port) == [30013, 30014])
        let v1 = try JSONDecoder().decode(NodeConfig.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/nodes/v1/node.json")))
        #expect(!v1.peers.contains { $0.name == "gw" }, "the gateway is no one's gossip peer")
    }
}
