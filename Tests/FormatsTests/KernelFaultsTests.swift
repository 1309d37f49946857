import Foundation
import Testing
@testable import Formats

@Suite struct KernelFaultsTests {
    static let base = """
        [cluster]
        name = "k"
        network = "netns"
        [[node]]
        name = "v1"
        [[node]]
        name = "v2"
        """

    @Test func partitionsAndLossBecomeInboundDropsBySource() {
        let script = KernelFaults.nftScript(inbound: [
            ("v3", "10.213.7.4", LinkRule(lossPercent: 30)),
            ("v2", "10.213.7.3", LinkRule(blocked: true, lossPercent: 50)),
            ("v4", "10.213.7.5", LinkRule(delayMs: 10)),
        ])
        let lines = script.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        // Recreated in one transaction, whether or not it existed.
        #expect(Array(lines.prefix(3)) == ["table inet faultline", "delete table inet faultline", "table inet faultline {"])
        #expect(lines.contains("ip saddr 10.213.7.3 counter drop comment \"v2 blocked\""), "blocked wins over loss")
        #expect(lines.contains("ip saddr 10.213.7.4 numgen random mod 10000 < 3000 counter drop comment \"v3 loss 30%\""))
        #expect(!script.contains("10.213.7.5"), "a delay is not an nftables rule")
        #expect(lines.filter { $0.contains("drop") }.count == 2)
    }

    @Test func anEmptyTableStillReplacesTheOldOne() {
        let script = KernelFaults.nftScript(inbound: [])
        #expect(script.contains("delete table inet faultline"))
        #expect(!script.contains("drop"))
    }

    @Test func bandwidthAndNetemShapeByDestination() {
        let batch = KernelFaults.tcBatch(device: "eth0", outbound: [
            ("v3", "10.213.7.4", LinkRule(bandwidthBytesPerSecond: 100_000)),
            ("v2", "10.213.7.3", LinkRule(delayMs: 100, jitterMs: 50, reorderPercent: 25)),
            ("v4", "10.213.7.5", LinkRule(lossPercent: 10)),
        ])
        #expect(batch.first == "qdisc replace dev eth0 root handle 1: htb default 1")
        #expect(batch.contains("class add dev eth0 parent 1: classid 1:10 htb rate 10gbit ceil 10gbit"), "v2 sorts first")
        #expect(batch.contains("qdisc add dev eth0 parent 1:10 handle 10: netem delay 100ms 50ms reorder 25%"))
        #expect(batch.contains("class add dev eth0 parent 1: classid 1:11 htb rate 800000bit ceil 800000bit"))
        #expect(batch.contains("filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip dst 10.213.7.4/32 flowid 1:11"))
        #expect(!batch.contains { $0.contains("10.213.7.5") }, "loss is nftables' job")
        #expect(KernelFaults.tcBatch(device: "eth0", outbound: [("v2", "10.213.7.3", LinkRule(blocked: true))]).isEmpty)
    }

    @Test func whatTheKernelCannotMakeIsNamed() {
        #expect(KernelFaults.unsupported(LinkRule(blocked: true), netem: false) == nil)
        #expect(KernelFaults.unsupported(LinkRule(lossPercent: 5, bandwidthBytesPerSecond: 10), netem: false) == nil)
        #expect(KernelFaults.unsupported(LinkRule(delayMs: 5), netem: false)?.short == "this kernel has no netem")
        #expect(KernelFaults.unsupported(LinkRule(duplicatePercent: 5), netem: true) == nil)
        let kinds = KernelFaults.unsupported(LinkRule(dropKinds: ["precommit"]), netem: true)
        #expect(kinds?.detail.contains("precommit") == true)
    }

    @Test func inboundFoldCombinesEveryFaultIntoOneNode() {
        let faults: [[FaultEngine.Link]] = [
            [.init(from: "v2", to: "v1", rule: .init(lossPercent: 50)), .init(from: "v1", to: "v2", rule: .init(blocked: true))],
            [.init(from: "v2", to: "v1", rule: .init(lossPercent: 50))],
        ]
        let into = FaultEngine.folded(faults, into: "v1")
        #expect(into.keys.sorted() == ["v2"])
        #expect(into["v2"]?.lossPercent == 75)
        #expect(FaultEngine.folded(faults, into: "v2")["v1"]?.blocked == true)
    }

    @Test func topologyNetworkAndLayer() throws {
        let topology = try Topology.parse(Self.base, path: "k.toml")
        #expect(topology.network == .netns)
        #expect(topology.faultLayer == nil)
        let node = try Topology.parse(Self.base + "\n", path: "k.toml")
        #expect(node.network == .netns)
        let loopback = try Topology.parse(Self.base.replacingOccurrences(of: "network = \"netns\"\n", with: ""), path: "k.toml")
        #expect(loopback.network == .loopback)
    }

    @Test(arguments: [
        ("network = \"netns\"", "network = \"vm\"", "cluster.network"),
        ("network = \"netns\"", "network = \"loopback\"\nfault_layer = \"kernel\"", "cluster.fault_layer"),
        ("network = \"netns\"", "network = \"netns\"\nfault_layer = \"nic\"", "cluster.fault_layer"),
    ])
    func badNetworkSettingsNameTheField(from: String, to: String, field: String) {
        let text = Self.base.replacingOccurrences(of: from, with: to)
        #expect {
            _ = try Topology.parse(text, path: "bad.toml")
        } throws: { error in
            (error as? TopologyError)?.field == field
        }
    }

    @Test func aStepLayerIsForLinkFaultsOnly() throws {
        let steps = Self.base + """

            [scenario]
            duration_s = 5
            [[step]]
            action = "loss"
            percent = 10
            layer = "kernel"
            """
        let scenario = try Scenario.parse(steps, path: "s.toml")
        #expect(scenario.steps.first?.layer == .kernel)
        #expect {
            _ = try Scenario.parse(steps.replacingOccurrences(of: "action = \"loss\"\npercent = 10",
                                                              with: "action = \"kill\"\ntargets = [\"v1\"]"), path: "s.toml")
        } throws: { error in
            (error as? TopologyError)?.field.hasSuffix("layer") == true
        }
    }
}

@Suite struct ExternalTopologyTests {
    static let etcd = """
        [cluster]
        name = "e"
        network = "netns"
        [external]
        system = "etcd"
        args = "--pre-vote"
        [[node]]
        name = "e1"
        role = "external"
        [[node]]
        name = "e2"
        role = "external"
        """

    @Test func etcdPresetFillsTheTemplates() throws {
        let topology = try Topology.parse(Self.etcd, path: "e.toml")
        let system = try #require(topology.external)
        let members = [ExternalSystem.Member(name: "e1", index: 1, address: "10.213.7.2", data: "/r/e1"),
                       ExternalSystem.Member(name: "e2", index: 2, address: "10.213.7.3", data: "/r/e2")]
        let argv = system.argv(member: members[1], members: members, cluster: "c1")
        #expect(argv.first == "etcd")
        #expect(argv.contains("--initial-cluster"))
        #expect(argv[argv.firstIndex(of: "--initial-cluster")! + 1] == "e1=http://10.213.7.2:2380,e2=http://10.213.7.3:2380")
        #expect(argv.contains("http://10.213.7.3:2379") && argv.contains("/r/e2") && argv.last == "--pre-vote")
        #expect(system.workload?.url == "http://{address}:2379")
    }

    @Test(arguments: [
        ("network = \"netns\"\n", "", "cluster.network"),
        ("system = \"etcd\"", "system = \"zookeeper\"", "external.system"),
        ("args = \"--pre-vote\"", "reads = \"eventual\"", "external.reads"),
        ("[external]\nsystem = \"etcd\"\nargs = \"--pre-vote\"\n", "", "external"),
        ("name = \"e2\"\nrole = \"external\"", "name = \"v1\"", "node"),
    ])
    func mistakesNameTheField(from: String, to: String, field: String) {
        #expect {
            _ = try Topology.parse(Self.etcd.replacingOccurrences(of: from, with: to), path: "bad.toml")
        } throws: { error in
            (error as? TopologyError)?.field == field
        }
    }

    @Test func jsonPathsReadEtcdsStringNumbers() {
        let status: [String: Any] = ["header": ["revision": "42", "member_id": "7"], "leader": "7"]
        #expect(ExternalSystem.number(ExternalSystem.value(at: "header.revision", in: status)) == 42)
        #expect(ExternalSystem.value(at: "header.missing", in: status) == nil)
    }
}
