import Formats
import Foundation
import Testing
import Wire
@testable import Cluster

@Suite struct ScenarioTests {
    static let header = """
        [cluster]
        name = "s"
        [[node]]
        name = "v1"
        labels = { region = "x" }
        [[node]]
        name = "v2"
        [[node]]
        name = "v3"

        """

    func parse(_ body: String) throws(TopologyError) -> Scenario {
        let text = Self.header + body
        return try Scenario.parse(text, path: "s.toml")
    }

    @Test func parsesStepsTriggersAndExpectations() throws {
        let scenario = try parse("""
            [scenario]
            duration_s = 12
            [[step]]
            id = "cut"
            at_s = 2
            action = "partition"
            groups = [["v1"], ["v2", "v3"]]
            duration_s = 3
            [[step]]
            at_height = 40
            action = "kill"
            targets = "region=x"
            [[step]]
            on = "proposer:v2"
            action = "drop"
            kinds = ["precommit"]
            from = "v2"
            to = "v3"
            [[step]]
            at_s = 1
            action = "spam"
            rate = 500
            duration_s = 2
            [[expect]]
            metric = "halt"
            window = "during:cut"
            equals = true
            [[expect]]
            metric = "recovery_s"
            window = "after:cut"
            max = 3
            """)
        #expect(scenario.durationSeconds == 12)
        #expect(scenario.steps.map(\.id) == ["cut", "step2", "step3", "step4"])
        #expect(scenario.steps[0].action == .partition(groups: [["v1"], ["v2", "v3"]]))
        #expect(scenario.steps[1].trigger == .atHeight(40))
        #expect(scenario.steps[2].trigger == .whenProposer("v2", afterSeconds: 0))
        #expect(scenario.steps[2].action == .link(rule: .init(dropKinds: ["precommit"]), from: ["v2"], to: ["v3"]))
        #expect(scenario.steps[3].spam == .ratePerNode(500))
        #expect(scenario.expectations[0].window == .during("cut") && scenario.expectations[0].bound == .equals(true))
        #expect(scenario.expectations[1].bound == .max(3))
    }

    @Test(arguments: [
        ("[[step]]\naction = \"explode\"", "step[1].action", "expected one of"),
        ("[[step]]\naction = \"loss\"", "step[1].percent", "needs percent"),
        ("[[step]]\naction = \"loss\"\npercent = 130", "step[1].percent", "out of range"),
        ("[[step]]\naction = \"kill\"", "step[1].targets", "needs targets"),
        ("[[step]]\naction = \"kill\"\ntargets = \"v7\"", "step[1].targets", "no node named 'v7'"),
        ("[[step]]\naction = \"kill\"\ntargets = \"region=y\"", "step[1].targets", "no node has the label"),
        ("[[step]]\naction = \"drop\"\nkinds = [\"vote\"]", "step[1].kinds", "not a message kind"),
        ("[[step]]\naction = \"spam\"\nrate = 5", "step[1].duration_s", "needs duration_s"),
        ("[[step]]\naction = \"spam\"\nduration_s = 5", "step[1].rate", "rate (transfers/s per validator) or k"),
        ("[[step]]\nat_s = 1\nat_height = 3\naction = \"heal\"", "step[1].at_height", "one trigger"),
        ("[[step]]\non = \"leader:v1\"\naction = \"heal\"", "step[1].on", "proposer:NODE"),
        ("[[step]]\non = \"dispute_game\"\naction = \"heal\"", "step[1].on", "needs the dispute contract"),
        ("[[expect]]\nmetric = \"speed\"\nmax = 1", "expect[1].metric", "expected one of"),
        ("[[expect]]\nmetric = \"halt\"\nmax = 1", "expect[1].equals", "true or false"),
        ("[[expect]]\nmetric = \"max_finality_gap_s\"", "expect[1].max", "needs a bound"),
        ("[[expect]]\nmetric = \"halt\"\nwindow = \"during:nope\"\nequals = true", "expect[1].window", "no step with id"),
        ("[[expect]]\nmetric = \"halt\"\nwindow = \"sometimes\"\nequals = true", "expect[1].window", "expected whole"),
        ("[[expect]]\nmetric = \"stopped_nodes\"\nmin = 2\nmax = 1", "expect[1].min", "is above max"),
        ("[[expect]]\nmetric = \"l2_queue_max\"\nmax = 1\ntiming = \"yes\"", "expect[1].timing", "true or false"),
        ("[[expect]]\nmetric = \"blocks_finalized\"\nmin = 1\nunit = \"block_interval\"", "expect[1].unit", "not a duration"),
        ("[[expect]]\nmetric = \"recovery_s\"\nmax = 1\nunit = \"rounds\"", "expect[1].unit",
         "expected block_interval or timeout_propose"),
        ("[scenario]\noverload_cpu_pressure_percent = 0", "scenario.overload_cpu_pressure_percent", "out of range"),
        ("[scenario]\noverload_timer_late_ms = -5", "scenario.overload_timer_late_ms", "out of range"),
        ("[[step]]\naction = \"upgrade\"\ntargets = \"v1\"", "step[1].version", "upgrade needs version"),
        ("[[step]]\naction = \"upgrade\"\ntargets = \"v1\"\nversion = 9", "step[1].version", "out of range"),
        ("[[step]]\naction = \"upgrade\"\ntargets = \"v1\"\nversion = 1\nversion_min = 2", "step[1].version_min",
         "out of range"),
        ("[[step]]\naction = \"kill_storm\"\ntargets = \"all\"\nduration_s = 9", "step[1].count", "needs count"),
        ("[[step]]\naction = \"kill_storm\"\ntargets = \"all\"\ncount = 5", "step[1].duration_s", "needs duration_s"),
        ("[[step]]\naction = \"kill_storm\"\ncount = 5\nduration_s = 9", "step[1].targets", "needs targets"),
        ("[[step]]\naction = \"kill_storm\"\ntargets = \"all\"\ncount = 5\nduration_s = 9\ntorn_percent = 101",
         "step[1].torn_percent", "out of range"),
        ("[[step]]\naction = \"kill_storm\"\ntargets = \"all\"\ncount = 5\nduration_s = 9\ndown_max = 0",
         "step[1].down_max", "out of range"),
        ("[scenario]\nduration_max_s = 30", "scenario.duration_max_s", "only with until_height"),
        ("[scenario]\nduration_s = 20\nuntil_height = 50\nduration_max_s = 10", "scenario.duration_max_s",
         "at least duration_s"),
    ])
    func errorsNameTheField(body: String, field: String, problem: String) {
        do {
            _ = try parse(body)
            Issue.record("accepted: \(body)")
        } catch {
            #expect(error.file == "s.toml")
            #expect(error.field == field, "field was \(error.field)")
            #expect(error.problem.contains(problem), "problem was \(error.problem)")
        }
    }

    @Test func overloadThresholdsAndTimingOverride() throws {
        let scenario = try parse("""
            [scenario]
            overload_cpu_pressure_percent = 80
            overload_timer_late_ms = 250
            [[expect]]
            metric = "l2_queue_max"
            max = 300
            timing = true
            [[expect]]
            metric = "max_finality_gap_s"
            max = 1
            [[expect]]
            metric = "recovery_s"
            unit = "timeout_propose"
            max = 10
            """)
        #expect(scenario.overloadCPUPressurePercent == 80 && scenario.overloadTimerLateMs == 250)
        #expect(scenario.expectations[2].unit == .timeoutPropose && scenario.expectations[1].unit == nil)
        // "The outage reproduced" RPC checks can be missed by a starved measuring client; the fixed policy's
        // bounds (at most so many errors, no stale answer) stay as they are.
        let reproduced = ExpectationSpec(name: "r", metric: "rpc_error_percent", window: .whole, bound: .min(90), client: "c")
        #expect(reproduced.sensitivity == .either && reproduced.failedTowardOverload(0))
        let stale = ExpectationSpec(name: "s", metric: "rpc_stale_answers", window: .whole, bound: .max(0), client: "c")
        #expect(stale.sensitivity == nil && !stale.failedTowardOverload(3))
        #expect(scenario.expectations[0].timing == true && scenario.expectations[0].sensitivity == .either)
        #expect(scenario.expectations[1].timing == nil && scenario.expectations[1].sensitivity == .higherIsWorse)
        // On a metric with a class of its own, `timing = true` still means either way: a queue wait that
        // should reach 3 s and stayed short (a starved sequencer queued too few claims) may be the host's.
        var wait = ExpectationSpec(name: "w", metric: "l2_wait_p99_ms", window: .whole, bound: .min(3_000))
        #expect(!wait.failedTowardOverload(1_285))
        wait.timing = true
        #expect(wait.sensitivity == .either && wait.failedTowardOverload(1_285))
        wait.timing = false
        #expect(wait.sensitivity == nil && !wait.failedTowardOverload(1_285))
        let defaults = try parse("")
        #expect(defaults.overloadCPUPressurePercent == nil && defaults.overloadTimerLateMs == nil)
    }

    @Test func untilHeightStretchesTheScheduleUpToItsLongest() throws {
        let plain = try parse("[scenario]\nduration_s = 12")
        #expect(plain.untilHeight == nil && plain.scheduleSecondsMax == 12)
        let defaulted = try parse("[scenario]\nduration_s = 10\nuntil_height = 250")
        #expect(defaulted.untilHeight == 250 && defaulted.scheduleSecondsMax == 40)
        let stated = try parse("[scenario]\nduration_s = 5\nuntil_height = 215\nduration_max_s = 90")
        #expect(stated.durationSeconds == 5 && stated.scheduleSecondsMax == 90)
    }

    @Test func hostSamplerReadsPressureAndStat() {
        let psi = "some avg10=12.50 avg60=3.10 avg300=0.80 total=123456789\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
        #expect(HostSampler.parsePressure(psi) == 123_456_789)
        #expect(HostSampler.parsePressure("nothing here") == nil)
        let stat = "cpu  100 0 50 800 10 0 5 20 0 0\ncpu0 50 0 25 400 5 0 2 10 0 0\nprocs_running 7\nprocs_blocked 0\n"
        let parsed = HostSampler.parseStat(stat)
        #expect(parsed.cpu == 985 && parsed.steal == 20 && parsed.running == 7)
        // Two readings 1 s apart: 0.45 s of the second stalled → 45%; 10 of 200 jiffies stolen → 5%.
        let old = HostSampler.Counters(cpuSomeMicros: 1_000_000, cpuJiffies: 1_000, stealJiffies: 100, procsRunning: 1)
        let new = HostSampler.Counters(cpuSomeMicros: 1_450_000, cpuJiffies: 1_200, stealJiffies: 110, procsRunning: 3)
        let line = HostSampler.line(timeMs: 5_000, elapsedMs: 1_000, from: old, to: new, cores: 2)
        #expect(line == "{\"t\":5000,\"cores\":2,\"runQueue\":3,\"cpuSomePercent\":45.0,\"stealPercent\":5.0}\n")
    }

    @Test func killStormSteps() throws {
        let scenario = try parse("""
            [[step]]
            id = "storm"
            at_s = 2
            action = "kill_storm"
            targets = ["v1", "region=x"]
            count = 150
            duration_s = 40
            down_ms = 500
            torn_percent = 12.5
            [[expect]]
            metric = "kills"
            window = "during:storm"
            min = 100
            """)
        #expect(scenario.steps[0].killStorm == KillStormSpec(targets: ["v1", "region=x"], count: 150, seconds: 40,
                                                             downMsMax: 500, downMax: 1, tornPercent: 12.5))
        #expect(scenario.steps[0].durationSeconds == 40)
        #expect(scenario.expectations[0].bound == .min(100))
    }

    @Test func upgradeStepsAndRangeBounds() throws {
        let scenario = try parse("""
            [[step]]
            id = "up"
            at_height = 10
            action = "upgrade"
            targets = "v1,v2"
            version = 2
            fork_id = 3
            [[expect]]
            metric = "stopped_nodes"
            min = 1
            max = 1
            """)
        #expect(scenario.steps[0].action == .upgrade(targets: ["v1,v2"], version: 2, versionMin: nil, forkId: 3))
        #expect(scenario.expectations[0].bound == .between(1, 1))
    }

    @Test func selectorsResolveNamesLabelsAndAll() throws {
        let topology = try Topology.parse(Self.header, path: "s.toml")
        let root = NSTemporaryDirectory() + "faultline-selectors-\(getpid())/runs"
        defer { try? FileManager.default.removeItem(atPath: (root as NSString).deletingLastPathComponent) }
        let (_, manifest) = try RunFolder.create(topology: topology, runsRoot: root)
        #expect(try FaultEngine.resolve(["all"], in: manifest) == ["v1", "v2", "v3"])
        #expect(try FaultEngine.resolve(["region=x", "v3"], in: manifest) == ["v1", "v3"])
        #expect(try FaultEngine.resolve(["v2,v1,v2"], in: manifest) == ["v2", "v1"])
        #expect(throws: RunError.self) { try FaultEngine.resolve(["v9"], in: manifest) }
    }
}
