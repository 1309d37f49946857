@testable import Cluster
import Formats
import Foundation
import Testing
import Yams

@Suite struct KubernetesExportTests {
    static let library = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Topologies").path

    func export(_ name: String) throws -> KubernetesExport.Result {
        let scenario = try Scenario.load(path: Self.library + "/\(name).toml")
        return try KubernetesExport.make(scenario, options: .init(image: "registry.example/faultline:1", namespace: "chain"),
                                         timeMs: 1_700_000_000_000)
    }

    func documents(_ result: KubernetesExport.Result, _ file: String) throws -> [Node] {
        let text = try #require(result.files.first { $0.name == file }?.text, "\(file) not written")
        return try Array(Yams.compose_all(yaml: text))
    }

    /// Templates of the Workflow by name.
    func templates(_ result: KubernetesExport.Result) throws -> [String: Node] {
        let workflow = try #require(try documents(result, "workflow.yaml").first)
        let list = try #require(workflow["spec"]?["templates"]?.array())
        return Dictionary(uniqueKeysWithValues: list.map { ($0["name"]?.string ?? "", $0) })
    }

    @Test func partitionIsANetworkChaosBetweenTheTwoHalvesForItsDuration() throws {
        let result = try export("partition-halves")
        #expect(result.placements.map(\.dnsName) == ["validator-0.validator", "validator-1.validator",
                                                     "validator-2.validator", "validator-3.validator"])
        let byName = try templates(result)
        let chaos = try #require(byName["split-partition"])
        #expect(chaos["templateType"]?.string == "NetworkChaos")
        #expect(chaos["deadline"]?.string == "5000ms") // duration_s = 5
        #expect(byName["split-wait"]?["deadline"]?.string == "4000ms") // at_s = 4
        let spec = try #require(chaos["networkChaos"])
        #expect(spec["action"]?.string == "partition" && spec["direction"]?.string == "both")
        #expect(spec["selector"]?["pods"]?["chain"]?.array().compactMap(\.string) == ["validator-0", "validator-1"])
        #expect(spec["target"]?["selector"]?["pods"]?["chain"]?.array().compactMap(\.string) == ["validator-2", "validator-3"])
        #expect(result.routes.map(\.way) == ["chaos-mesh"])
    }

    @Test func regionLabelsMakeOneStatefulSetPerRegionAndKillIsPodFailure() throws {
        let result = try export("region-outage")
        #expect(Set(result.placements.map(\.set)) == ["validator-us-east-1", "validator-eu-west-1", "validator-ap-south-1"])
        let set = try #require(try documents(result, "validator-us-east-1.yaml").first { $0["kind"]?.string == "StatefulSet" })
        #expect(set["spec"]?["replicas"]?.int == 2)
        let affinity = set["spec"]?["template"]?["spec"]?["affinity"]?["nodeAffinity"]?["preferredDuringSchedulingIgnoredDuringExecution"]?[0]?["preference"]?["matchExpressions"]?[0]
        #expect(affinity?["key"]?.string == "topology.kubernetes.io/region")
        #expect(affinity?["values"]?[0]?.string == "us-east-1")
        let kill = try #require(try templates(result)["us-east-1-down-pod-failure"])
        #expect(kill["podChaos"]?["action"]?.string == "pod-failure")
        #expect(kill["deadline"]?.string == "5000ms")
        #expect(kill["podChaos"]?["selector"]?["pods"]?["chain"]?.array().compactMap(\.string)
                == ["validator-us-east-1-0", "validator-us-east-1-1"])
    }

    @Test func stepsChaosMeshCannotExpressRunFaultlineStepInATask() throws {
        let result = try export("byzantine-equivocation")
        let route = try #require(result.routes.first)
        #expect(route.way == "faultline", "\(result.routes)")
        let task = try #require(try templates(result)["\(route.step)-faultline"])
        let args = task["task"]?["container"]?["args"]?.array().compactMap(\.string) ?? []
        #expect(args.last?.hasSuffix("faultline step /tmp/run/topology.toml --run /tmp/run --id \(route.step)") == true,
                "\(args)")
        // Triggered by height: the Task waits for it (no Suspend).
        let upgrade = try export("upgrade-at-height")
        #expect(upgrade.routes.allSatisfy { $0.way == "faultline" && $0.what.contains("at height") })
        #expect(try templates(upgrade)["binary-v1-wait"] == nil)
    }

    @Test func loadStepsAreTheCollectorsAndAKillStormIsNotExported() throws {
        let result = try export("vote-starvation")
        #expect(result.routes.map(\.way) == ["collector"])
        // No Workflow branch sends it: only the ready Task is left.
        #expect(try templates(result).keys.sorted() == ["ready", "scenario"])
        let job = try #require(try documents(result, "collector.yaml").first)
        let args = job["spec"]?["template"]?["spec"]?["containers"]?[0]?["args"]?.array().compactMap(\.string) ?? []
        let flag = try #require(args.firstIndex(of: "--validator-cores"))
        #expect(args[flag + 1] == "2.0") // the default CPU limit
        let storm = try export("kill-storm")
        #expect(storm.routes.map(\.way) == ["not-run"])
        #expect(try templates(storm).keys.sorted() == ["ready", "scenario"])
    }

    @Test(arguments: [("2", 2.0), ("1500m", 1.5), ("0.5", 0.5)])
    func cpuLimitsAreCores(quantity: String, cores: Double) throws {
        #expect(try KubernetesExport.cores(quantity) == cores)
    }

    @Test func aCPULimitThatIsNoQuantityIsRefused() {
        #expect(throws: RunError.self) { try KubernetesExport.cores("two") }
        #expect(throws: RunError.self) { try KubernetesExport.cores("0m") }
    }

    @Test func spamOnOtherMachinesIsAMultipleOfTheValidatorsOwnCores() {
        // Measured here: 10,000 datagrams/s per core; 2 cores, 4 validators.
        var capacity = VerificationCapacity(verifyPerCorePerSecond: 12_000, ingressPerCorePerSecond: 10_000, cores: 2,
                                            validators: 4, cpuShare: 1)
        #expect(SpamSpec.timesCapacity(2).ratePerNode(capacity) == 10_000) // 2 × 20,000 ÷ 4: they share this machine
        #expect(Scenario.LoadRate.timesCapacity(2).perSecond(capacity) == 40_000)
        capacity.coresPerValidator = 1.5 // each has a pod with 1.5 cores of its own
        #expect(SpamSpec.timesCapacity(2).ratePerNode(capacity) == 30_000)
        #expect(Scenario.LoadRate.timesCapacity(2).perSecond(capacity) == 30_000)
    }

    /// byzantine-equivocation's `lie` runs in a Task (it marks when it took effect); partition-halves' `split`
    /// is Chaos Mesh's (its window is the schedule's, with slack).
    @Test(arguments: [("byzantine-equivocation", "lie", true), ("partition-halves", "split", false)])
    func aTasksWindowIsWhenItMarkedItChaosMeshsIsTheSchedules(file: String, id: String, marked: Bool) throws {
        let scenario = try Scenario.load(path: Self.library + "/\(file).toml")
        let root = NSTemporaryDirectory() + "faultline-windows-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (dir, manifest) = try RunFolder.create(topology: scenario.topology, runsRoot: root)
        let startMs: UInt64 = 1_000_000
        let step = try #require(scenario.steps.first { $0.id == id })
        let planned = try #require(ChaosSchedule.plannedWindow(step, in: scenario))
        // The Task applied it 700 ms after its time and undid it 300 ms after its planned end.
        let marks = marked ? [RemoteRun.stepMark(id, end: false): startMs + UInt64(planned.start * 1000) + 700,
                              RemoteRun.stepMark(id, end: true): startMs + UInt64((planned.start + planned.seconds) * 1000) + 300]
            : [:]
        try RemoteRun.recordWindows(scenario, dir: dir, manifest: manifest, startMs: startMs, marks: marks)
        let events = FaultEngine.timeline(dir).filter { $0.id == id }
        let start = try #require(events.first { $0.event == "start" })
        let end = try #require(events.first { $0.event == "end" })
        if marked {
            #expect(start.t == marks[RemoteRun.stepMark(id, end: false)] && start.slackMs == nil)
            #expect(end.t == marks[RemoteRun.stepMark(id, end: true)])
        } else {
            #expect(start.t == startMs + UInt64(planned.start * 1000) && start.slackMs == RemoteRun.scheduleSlackMs)
            #expect(end.t == startMs + UInt64((planned.start + planned.seconds) * 1000))
        }
    }

    @Test func marksAreTheMedianOverTheNodesThatLoggedThem() throws {
        let scenario = try Scenario.load(path: Self.library + "/partition-halves.toml")
        let root = NSTemporaryDirectory() + "faultline-marks-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (dir, manifest) = try RunFolder.create(topology: scenario.topology, runsRoot: root)
        // One node's clock is 5 s ahead (a TimeChaos): the median ignores it.
        for (node, t) in zip(manifest.nodes, [100, 102, 5_101, 101] as [UInt64]) {
            let line = "{\"t\":\(t),\"node\":\"\(node.name)\",\"event\":\"mark\",\"name\":\"step:x\"}\n"
            try Data(line.utf8).write(to: URL(fileURLWithPath: dir + "/" + node.dir + "/events.jsonl"))
        }
        #expect(RemoteRun.marks(dir: dir, manifest: manifest)["step:x"] == 102)
    }

    @Test func theScheduleStartIsTheMarkOfThatName() {
        let log = Array(("{\"t\":5,\"event\":\"commit\",\"height\":1}\n"
            + "{\"t\":7,\"event\":\"mark\",\"name\":\"collector-ready\"}\n"
            + "{\"t\":9,\"event\":\"mark\",\"name\":\"schedule-start\"}\n").utf8)
        #expect(RemoteRun.markTime(in: log, named: RemoteRun.scheduleStartMark) == 9)
        #expect(RemoteRun.markTime(in: log, named: RemoteRun.collectorReadyMark) == 7)
        #expect(RemoteRun.markTime(in: Array(log.prefix(40)), named: RemoteRun.scheduleStartMark) == nil)
    }

    @Test func nodeConfigsFindPeersByDNSNameAndBindEveryAddress() throws {
        let result = try export("partition-halves")
        let map = try #require(try documents(result, "configmap.yaml").first?["data"])
        let config = try JSONDecoder().decode(NodeConfig.self, from: Data((map["node.validator-2.json"]?.string ?? "").utf8))
        #expect(config.name == "v3" && config.host == "0.0.0.0" && config.peersFile == "../../peers.json")
        #expect(config.dataDir.hasPrefix(KubernetesExport.dataDir))
        let peers = try JSONDecoder().decode([NodeConfig.PeerEntry].self, from: Data((map["peers.json"]?.string ?? "").utf8))
        #expect(peers.map(\.host) == result.placements.map(\.dnsName))
        // Strings YAML would read as numbers stay strings: the collector's `--keep-s 3600`.
        let collector = try #require(result.files.first { $0.name == "collector.yaml" }?.text)
        #expect(collector.contains("- \"3600\""))
    }

    @Test func aHundredValidatorsFitOneConfigMap() throws {
        let result = try export("bench-100")
        let bytes = result.files.first { $0.name == "configmap.yaml" }?.text.utf8.count ?? 0
        #expect(bytes > 0 && bytes < 1_000_000, "\(bytes)")
    }
}
