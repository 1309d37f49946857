import Formats
import Foundation
import Testing
@testable import Cluster

/// Nodes in network namespaces of their own, faults made by the kernel. Needs root, `ip` and `nft`
/// (CI runs as root and installs nftables); elsewhere these tests are disabled and say why.
@Suite(.tags(.e2e), .serialized, .enabled(if: HostNetwork.unavailable() == nil, "\(HostNetwork.unavailable() ?? "")"))
struct NetnsEndToEndTests {
    static let topologyText = ClusterEndToEndTests.topologyText.replacingOccurrences(
        of: "chain_id = \"faultline-e2e\"", with: "chain_id = \"faultline-e2e\"\nnetwork = \"netns\"")

    static func height(_ states: [ClusterOps.NodeState], _ name: String) -> UInt64 {
        states.first { $0.node.name == name }?.status?.height ?? 0
    }

    /// The nftables partition cuts v1 off with no help from the nodes: no node holds a link rule, v1
    /// hears from no peer and stops finalizing while the others go on, and the drop rules' counters show
    /// the datagrams the kernel threw away. Healing brings v1 back; `down` leaves nothing behind.
    @Test(.timeLimit(.minutes(2)))
    func kernelPartitionStopsTheTraffic() async throws {
        let folder = try ScratchFolder("netns", file: "netns.toml", text: Self.topologyText)
        defer { folder.remove() }
        let up = try await ClusterOps.up(topology: try Topology.load(path: folder.file), runsRoot: folder.runs)
        let dir = up.dir
        let plan = try #require(up.manifest.network)
        // Namespaces outlive a test process that ends before an unawaited `down`: always awaited here.
        do {
            try await partitionAndHeal(dir: dir, plan: plan, manifest: up.manifest)
        } catch {
            try? await ClusterOps.down(dir: dir)
            throw error
        }
        try await ClusterOps.down(dir: dir)
        #expect(HostNetwork.leftovers(plan).isEmpty, "left behind: \(HostNetwork.leftovers(plan))")
        // Every rule lived in a node's namespace: the host's own ruleset never had a table of ours.
        #expect(!(try HostNetwork.run(["nft", "list", "tables"])).contains(KernelFaults.table))
    }

    func partitionAndHeal(dir: String, plan: NetworkPlan, manifest: RunManifest) async throws {
        let up = (manifest: manifest, dir: dir)
        #expect(Set(up.manifest.nodes.map(\.host)).count == 4, "each node has an address of its own")
        #expect(plan.members.allSatisfy { HostNetwork.listNamespaces().contains($0.namespace) })

        try await FaultEngine.apply(.partition(groups: [["v1"], ["v2", "v3", "v4"]]), dir: dir, id: "cut", layer: .kernel)
        // Nothing reaches v1 any more: its view of its peers empties (each is dropped after a second unheard).
        try await ClusterOps.waitUntil(dir: dir, timeoutSeconds: 15) { states in
            states.first { $0.node.name == "v1" }?.status?.peers == 0
        }
        let states = try await ClusterOps.states(dir: dir)
        #expect(states.allSatisfy { $0.status?.linkFaults == 0 }, "the nodes' own link layer has no rule")
        let stuck = Self.height(states, "v1")
        try await ClusterOps.waitUntil(dir: dir, timeoutSeconds: 20) { states in
            ["v2", "v3", "v4"].allSatisfy { Self.height(states, $0) >= stuck + 5 }
        }
        let during = try await ClusterOps.states(dir: dir)
        #expect(Self.height(during, "v1") <= stuck + 1, "v1 finalized while cut off")
        let v1 = try HostNetwork.dropCounters(plan.member("v1")!)
        let v2 = try HostNetwork.dropCounters(plan.member("v2")!)
        for peer in ["v2", "v3", "v4"] { #expect((v1["\(peer) blocked"] ?? 0) > 0, "v1 dropped nothing from \(peer): \(v1)") }
        #expect((v2["v1 blocked"] ?? 0) > 0, "v2 dropped nothing from v1: \(v2)")
        #expect(v2["v3 blocked"] == nil, "v2 and v3 are on one side")

        try await FaultEngine.apply(.heal(id: "cut"), dir: dir)
        let target = Self.height(during, "v2")
        try await ClusterOps.waitUntil(dir: dir, timeoutSeconds: 20) { Self.height($0, "v1") > target }
        #expect(try HostNetwork.dropCounters(plan.member("v1")!).isEmpty, "heal left rules in v1's table")
        let timeline = FaultEngine.timeline(dir).filter { $0.id == "cut" }
        #expect(timeline.map(\.layer) == ["kernel", "kernel"])
    }

    /// `faultline run` killed with SIGKILL mid-run leaves its nodes and namespaces; `faultline down --run
    /// DIR` removes every namespace, veth and the bridge, and stops every node.
    @Test(.timeLimit(.minutes(2)))
    func downCleansWhatAKilledRunnerLeft() async throws {
        let scenario = Self.topologyText + """

            [scenario]
            duration_s = 60
            [[step]]
            id = "cut"
            at_s = 1
            action = "loss"
            percent = 20
            """
        let folder = try ScratchFolder("netns-kill", file: "kill.toml", text: scenario)
        defer { folder.remove() }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        let runner = Process()
        runner.executableURL = URL(fileURLWithPath: ((exe as NSString).deletingLastPathComponent as NSString)
            .appendingPathComponent("faultline"))
        runner.arguments = ["run", folder.file, "--runs", folder.runs]
        runner.standardOutput = FileHandle.nullDevice
        runner.standardError = FileHandle.nullDevice
        try runner.run()
        // Wait for the run's loss step to be in the kernel (the cluster is up and a rule is written).
        var dir = ""
        for _ in 0..<1_500 {
            if let run = try? FileManager.default.contentsOfDirectory(atPath: folder.runs).first {
                dir = folder.runs + "/" + run
                if FaultEngine.timeline(dir).contains(where: { $0.id == "cut" }) { break }
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        guard let manifest = try? RunFolder.load(dir), let plan = manifest.network else {
            runner.terminate()
            runner.waitUntilExit()
            Issue.record("the run did not start with a network in \(folder.runs)")
            return
        }
        #expect(FaultEngine.timeline(dir).first { $0.id == "cut" }?.layer == "kernel")
        kill(runner.processIdentifier, SIGKILL)
        runner.waitUntilExit()
        #expect(HostNetwork.leftovers(plan).count == 2 * plan.members.count + 1, "the killed run's network is there")
        let pids = manifest.nodes.compactMap { Supervisor.pid($0, runDir: dir) }
        #expect(pids.contains(where: Supervisor.isAlive), "its nodes outlive it")

        let down = try ClusterEndToEndTests.faultline(["down", "--run", dir])
        #expect(down.code == 0, "down failed: \(down.err)")
        #expect(HostNetwork.leftovers(plan).isEmpty, "left behind: \(HostNetwork.leftovers(plan))")
        #expect(!pids.contains(where: Supervisor.isAlive), "a node still runs")
    }
}
