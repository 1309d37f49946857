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
