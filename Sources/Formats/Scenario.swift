import FoundationEssentials
import Ledger
import RPC
import Wire

/// A topology plus a fault schedule and expectations (`[scenario]`, `[[step]]`, `[[expect]]`).
/// How hard a spam step hits each validator: a fixed rate, or k times the per-node verification bound.
public enum SpamSpec: Sendable, Equatable, CustomStringConvertible {
    case ratePerNode(Int)
    case timesCapacity(Double)

    public func ratePerNode(_ capacity: VerificationCapacity) -> Int {
        switch self {
        case .ratePerNode(let rate): return rate
        case .timesCapacity(let k): return Int(k * capacity.perNodeBound)
        }
    }

    public var description: String {
        switch self {
        case .ratePerNode(let rate): return "spam \(rate) tx/s per validator"
        case .timesCapacity(let k): return "spam \(k)× verification capacity"
        }
    }
}

public struct Scenario: Sendable {
    public enum Trigger: Sendable, Equatable, CustomStringConvertible {
        case atSeconds(Double)
        /// When any node has finalized this height.
        case atHeight(UInt64)
        /// When this node is the proposer of the current height and round (at or after `afterSeconds`).
        case whenProposer(String, afterSeconds: Double)
        /// When any node's L1 ledger has a dispute game open (a fault injected mid-game).
        case whenGameOpen

        public var description: String {
            switch self {
            case .atSeconds(let s): return "at \(s) s"
            case .atHeight(let h): return "at height \(h)"
            case .whenProposer(let node, let after): return "when \(node) proposes (after \(after) s)"
            case .whenGameOpen: return "when a dispute game is open"
            }
        }
    }

    public struct Step: Sendable {
        public var id: String
        public var trigger: Trigger
        public var action: FaultAction
        /// Spam steps blast pre-signed transfers instead of injecting a fault.
        public var spam: SpamSpec?
        /// Rollup load: an airdrop burst to the sequencer, or forced transactions to the L1 inbox.
        public var rollupLoad: RollupLoad?
        /// Heal (or end) after this long; nil keeps the fault until the end of the run.
        public var durationSeconds: Double?
        /// A kill storm runs beside the schedule for its duration instead of injecting one fault.
        public var killStorm: KillStormSpec?
        /// `layer`: who makes this step's link fault (nil: the run's default).
        public var layer: FaultLayer?
    }

    /// How fast a load is sent: a fixed rate, or a multiple of the machine's verification capacity measured
    /// at the start of the run (so "twice what this machine can check" means the same on any machine).
    public enum LoadRate: Sendable, Equatable, CustomStringConvertible {
        case perSecond(Int)
        case timesCapacity(Double)

        /// Per second: k × one core's receive-and-verify rate × the cores of the sequencer's machine (it
        /// checks client signatures on every core).
        public func perSecond(_ capacity: VerificationCapacity) -> Int {
            switch self {
            case .perSecond(let rate): return rate
            case .timesCapacity(let k): return max(1, Int(k * capacity.nodeMachinePerSecond))
            }
        }

        public var description: String {
            switch self {
            case .perSecond(let rate): return "\(rate)/s"
            case .timesCapacity(let k): return "\(k)× the machine's verification capacity"
            }
        }
    }

    public enum RollupLoad: Sendable, Equatable, CustomStringConvertible {
        /// `count` claims from distinct fresh accounts at `rate`, each offering `fee`.
        case airdrop(count: Int, rate: LoadRate, fee: UInt64)
        /// `count` L2 transfers posted to the L1 inbox (forced inclusion), one L1 transaction each.
        case forced(count: Int)

        public var description: String {
            switch self {
            case .airdrop(let count, let rate, let fee): return "airdrop of \(count) claims at \(rate) (fee \(fee))"
            case .forced(let count): return "\(count) forced transaction(s) to the L1 inbox"
            }
        }
    }

    public var topology: Topology
    /// How long the schedule runs; with `untilHeight`, at least this long.
    public var durationSeconds: Double
    /// Run on past `durationSeconds` until some node has finalized this height, up to `durationMaxSeconds`
    /// (`[scenario] until_height`, `duration_max_s`): a file whose steps fire at heights says how far the chain
    /// must get, not how long a machine of one speed needs to get there.
    public var untilHeight: UInt64?
    public var durationMaxSeconds: Double?
    /// The longest the schedule may run: `durationSeconds`, or with `untilHeight` its `durationMaxSeconds`
    /// (four times `durationSeconds` unless the file says).
    public var scheduleSecondsMax: Double {
        untilHeight == nil ? durationSeconds : max(durationMaxSeconds ?? durationSeconds * 4, durationSeconds)
    }
    public var settleSeconds: Double
    public var haltThresholdSeconds: Double
    /// Runs alone when a library runs scenarios side by side (`ci/liveness.sh` with JOBS > 1, `faultline
    /// bench --library`): it loads the machine on purpose (spam at k× the verification rate, an airdrop
    /// burst), so neighbours would disturb it and it would disturb them.
    public var exclusive: Bool
    /// When the host counts as overloaded (a timing expectation that fails there is inconclusive): the
    /// share of a second runnable tasks waited for a CPU, and how late a node's timers ran (p99 in a second).
    /// Nil where the file does not say: the analysis's standard thresholds apply.
    public var overloadCPUPressurePercent: Double?
    public var overloadTimerLateMs: UInt64?
    public var steps: [Step]
    public var expectations: [ExpectationSpec]

    public static let stepsMax = 200
    static let actions = ["kill", "pause", "resume", "restart", "partition", "heal", "loss", "delay", "duplicate",
                          "reorder", "bandwidth", "drop", "skew", "spam", "upgrade", "airdrop", "forced_tx", "rpc", "byzantine",
                          "kill_storm"]

    public static func load(path: String) throws(TopologyError) -> Scenario {
        try parse(try Topology.text(of: path), path: path)
    }

    /// The cluster and the scenario of one file's text (`path` names it in errors).
    public static func parse(_ text: String, path: String) throws(TopologyError) -> Scenario {
        let topology = try Topology.parse(text, path: path)
        return try parse(root: TableReader(file: path, prefix: "", table: try TableReader.document(text, path: path)),
                         topology: topology)
    }

    static func parse(root: TableReader, topology: Topology) throws(TopologyError) -> Scenario {
        var duration = 20.0, settle = 1.0, haltThreshold = 1.0, exclusive = false
        var pressure: Double?, timerLate: Double?
        var untilHeight: UInt64?, durationMax: Double?
        if let table = try root.table("scenario", required: false) {
            try table.allowOnly(["duration_s", "settle_s", "halt_threshold_s", "exclusive", "overload_cpu_pressure_percent",
                                 "overload_timer_late_ms", "until_height", "duration_max_s"])
            untilHeight = try table.uint("until_height", range: 1...UInt64(Int64.max))
            durationMax = try table.double("duration_max_s", range: 1...3_600)
            if durationMax != nil, untilHeight == nil {
                throw table.fail("duration_max_s", "only with until_height (the run is otherwise duration_s long)")
            }
            if let durationMax, durationMax < (try table.double("duration_s", range: 1...3_600) ?? duration) {
                throw table.fail("duration_max_s", "at least duration_s, got \(durationMax)")
            }
            exclusive = try table.bool("exclusive") ?? false
            pressure = try table.double("overload_cpu_pressure_percent", range: 1...100)
            timerLate = try table.double("overload_timer_late_ms", range: 1...60_000)
            duration = try table.double("duration_s", range: 1...3_600) ?? duration
            settle = try table.double("settle_s", range: 0...60) ?? settle
            haltThreshold = try table.double("halt_threshold_s", range: 0.05...600) ?? haltThreshold
        }
        var steps: [Step] = []
        let stepTables = try root.tableArray("step")
        guard stepTables.count <= stepsMax else { throw root.fail("step", "at most \(stepsMax) steps") }
        for (index, table) in stepTables.enumerated() {
            let step = try parseStep(table, index: index, topology: topology)
            guard !steps.contains(where: { $0.id == step.id }) else {
                throw table.fail("id", "'\(step.id)' is used by two steps")
            }
            steps.append(step)
        }
        var expectations: [ExpectationSpec] = []
        for table in try root.tableArray("expect") {
            expectations.append(try parseExpectation(table, steps: steps, rpcClients: topology.rpcLoad?.clients ?? [],
                                                     nodes: topology.nodes.map(\.name),
                                                     leaderKnown: topology.external?.leaderPath != nil))
        }
        var scenario = Scenario(topology: topology, durationSeconds: duration, settleSeconds: settle,
                                haltThresholdSeconds: haltThreshold, exclusive: exclusive, steps: steps,
                                expectations: expectations)
        scenario.overloadCPUPressurePercent = pressure
        scenario.overloadTimerLateMs = timerLate.map { UInt64($0) }
        scenario.untilHeight = untilHeight
        scenario.durationMaxSeconds = durationMax
        return scenario
    }

    static func parseStep(_ table: TableReader, index: Int, topology: Topology) throws(TopologyError) -> Step {
        try table.allowOnly(["id", "at_s", "at_height", "on", "action", "targets", "groups", "from", "to", "percent",
                             "ms", "jitter_ms", "bytes_per_s", "kinds", "rate", "k", "duration_s", "heal_id",
                             "version", "version_min", "fork_id", "count", "fee", "mode", "status", "tail_percent",
                             "tail_ms", "lag_blocks", "modes", "down_ms", "down_max", "torn_percent", "layer"])
        let id = try table.string("id") ?? "step\(index + 1)"
        let triggers = ["at_s", "at_height", "on"].filter { table.table[$0] != nil }
        guard triggers.count <= 1 else { throw table.fail(triggers[1], "a step has one trigger: at_s, at_height or on") }
        let trigger: Trigger
        if let height = try table.uint("at_height", range: 1...UInt64(Int64.max)) {
            trigger = .atHeight(height)
        } else if let on = try table.string("on"), on == "dispute_game" {
            guard topology.rollup?.disputes != nil else {
                throw table.fail("on", "\"dispute_game\" needs the dispute contract: [rollup] dispute_window_blocks, "
                                 + "dispute_clock_blocks, assertion_bond or challenge_bond")
            }
            trigger = .whenGameOpen
        } else if let on = try table.string("on") {
            guard on.hasPrefix("proposer:"), topology.nodes.contains(where: { $0.name == String(on.dropFirst(9)) }) else {
                throw table.fail("on", "expected \"proposer:NODE\" with a node of the topology or \"dispute_game\", got '\(on)'")
            }
            trigger = .whenProposer(String(on.dropFirst(9)), afterSeconds: 0)
        } else {
            trigger = .atSeconds(try table.double("at_s", range: 0...3_600) ?? 0)
        }
        guard let action = try table.string("action", required: true), actions.contains(action) else {
            throw table.fail("action", "expected one of \(actions.joined(separator: ", "))")
        }
        let from = try table.string("from") ?? "all"
        let to = try table.string("to") ?? "all"
        let targets = try table.stringList("targets")
        let needsTargets = ["kill", "pause", "resume", "restart", "skew", "upgrade", "rpc", "byzantine", "kill_storm"]
            .contains(action)
        if needsTargets && targets.isEmpty { throw table.fail("targets", "\(action) needs targets (names, all, key=value)") }
        func percent() throws(TopologyError) -> Double {
            guard let value = try table.double("percent", range: 0...100) else {
                throw table.fail("percent", "\(action) needs percent = 0...100")
            }
            return value
        }
        let faultAction: FaultAction
        var spam: SpamSpec?
        var rollupLoad: RollupLoad?
        var killStorm: KillStormSpec?
        if action == "airdrop" || action == "forced_tx" {
            guard topology.rollup != nil else { throw table.fail("action", "\(action) needs a node with role = \"sequencer\"") }
            guard let count = try table.uint("count", range: 1...2_000_000) else {
                throw table.fail("count", "\(action) needs count (how many transactions)")
            }
            if action == "airdrop" {
                let rate: LoadRate
                if let k = try table.double("k", range: 0.01...100) {
                    guard table.table["rate"] == nil else { throw table.fail("k", "give rate or k, not both") }
                    rate = .timesCapacity(k)
                } else if let perSecond = try table.uint("rate", range: 1...1_000_000) {
                    rate = .perSecond(Int(perSecond))
                } else {
                    throw table.fail("rate", "airdrop needs rate (claims per second) or k (× the machine's verification capacity)")
                }
                rollupLoad = .airdrop(count: Int(count), rate: rate, fee: try table.uint("fee", range: 0...1_000_000) ?? 1)
            } else {
                rollupLoad = .forced(count: Int(count))
            }
        }
        switch action {
        case "airdrop", "forced_tx":
            faultAction = .heal(id: nil) // not applied; the runner sends the transactions instead
        case "kill_storm":
            killStorm = try parseKillStorm(table, targets: targets)
            faultAction = .heal(id: nil) // not applied; the runner runs the storm beside the schedule
        case "kill": faultAction = .kill(targets: targets)
        case "pause": faultAction = .pause(targets: targets)
        case "resume": faultAction = .resume(targets: targets)
        case "restart": faultAction = .restart(targets: targets)
        case "heal": faultAction = .heal(id: try table.string("heal_id"))
        case "partition":
            let groups = try table.groups("groups")
            guard groups.count >= 2 else { throw table.fail("groups", "a partition needs at least two groups") }
            faultAction = .partition(groups: groups)
        case "loss": faultAction = .link(rule: .init(lossPercent: try percent()), from: [from], to: [to])
        case "duplicate": faultAction = .link(rule: .init(duplicatePercent: try percent()), from: [from], to: [to])
        case "reorder": faultAction = .link(rule: .init(reorderPercent: try percent()), from: [from], to: [to])
        case "delay":
            guard let ms = try table.double("ms", range: 0...60_000) else { throw table.fail("ms", "delay needs ms") }
            let jitter = try table.double("jitter_ms", range: 0...60_000) ?? 0
            faultAction = .link(rule: .init(delayMs: ms, jitterMs: jitter), from: [from], to: [to])
        case "bandwidth":
            guard let rate = try table.uint("bytes_per_s", range: 1...10_000_000_000) else {
                throw table.fail("bytes_per_s", "bandwidth needs bytes_per_s")
            }
            faultAction = .link(rule: .init(bandwidthBytesPerSecond: Int(rate)), from: [from], to: [to])
        case "drop":
            let kinds = try table.stringList("kinds")
            for kind in kinds where MessageKind(name: kind) == nil {
                throw table.fail("kinds", "'\(kind)' is not a message kind; expected "
                                 + MessageKind.allCases.map(\.description).joined(separator: ", "))
            }
            guard !kinds.isEmpty else { throw table.fail("kinds", "drop needs kinds, e.g. [\"precommit\"]") }
            faultAction = .link(rule: .init(dropKinds: kinds), from: [from], to: [to])
        case "upgrade":
            let newest = UInt64(Rules.newestVersion)
            guard let version = try table.uint("version", range: 1...newest) else {
                throw table.fail("version", "upgrade needs version = 1...\(newest)")
            }
            let versionMin = try table.uint("version_min", range: 1...version).map { UInt16($0) }
            let forkId = try table.uint("fork_id", range: 0...UInt64(UInt32.max)).map { UInt32($0) }
            faultAction = .upgrade(targets: targets, version: UInt16(version), versionMin: versionMin, forkId: forkId)
        case "rpc":
            faultAction = .rpc(targets: targets, fault: try parseUpstreamFault(table, topology: topology, targets: targets))
        case "byzantine":
            let modes = try table.byzantineModes("modes")
            guard !modes.isEmpty else { throw table.fail("modes", "byzantine needs modes, e.g. [\"equivocate\"]") }
            for name in targets where name != "all" && !name.contains("=") {
                guard topology.nodes.first(where: { $0.name == name })?.role == "validator" else {
                    throw table.fail("targets", "'\(name)' is not a validator of the topology (only validators can be byzantine)")
                }
            }
            faultAction = .byzantine(targets: targets, modes: modes)
        case "skew":
            guard let ms = try table.double("ms", range: -3_600_000...3_600_000) else { throw table.fail("ms", "skew needs ms") }
            faultAction = .skew(targets: targets, ms: Int64(ms))
        default: // spam
            if let k = try table.double("k", range: 0.01...100) {
                spam = .timesCapacity(k)
            } else if let rate = try table.uint("rate", range: 1...1_000_000) {
                spam = .ratePerNode(Int(rate))
            } else {
                throw table.fail("rate", "spam needs rate (transfers/s per validator) or k (× verification capacity)")
            }
            faultAction = .heal(id: nil) // not applied; the runner blasts the pool instead
        }
        let duration = try table.double("duration_s", range: 0.01...3_600)
        if action == "spam" && duration == nil { throw table.fail("duration_s", "spam needs duration_s") }
        if let duration { killStorm?.seconds = duration }
        for (field, names) in [("targets", targets), ("from", [from]), ("to", [to]),
                               ("groups", (try table.groups("groups")).flatMap { $0 })] {
            for name in names { try checkSelector(name, field: field, topology: topology, table: table) }
        }
        var layer: FaultLayer?
        if let layerName = try table.string("layer") {
            guard let chosen = FaultLayer(rawValue: layerName) else {
                throw table.fail("layer", "expected \"node\" or \"kernel\", got '\(layerName)'")
            }
            guard ["partition", "loss", "delay", "duplicate", "reorder", "bandwidth", "drop"].contains(action) else {
                throw table.fail("layer", "only link faults have a layer; \(action) is not one")
            }
            guard chosen == .node || topology.network == .netns else {
                throw table.fail("layer", "\"kernel\" needs [cluster] network = \"netns\"")
            }
            layer = chosen
        }
        return Step(id: id, trigger: trigger, action: faultAction, spam: spam, rollupLoad: rollupLoad,
                    durationSeconds: duration, killStorm: killStorm, layer: layer)
    }

    /// The keys of an `action = "kill_storm"` step: count, duration_s, down_ms, down_max, torn_percent.
    static func parseKillStorm(_ table: TableReader, targets: [String]) throws(TopologyError) -> KillStormSpec {
        guard let count = try table.uint("count", range: 1...UInt64(KillStormSpec.countMax)) else {
            throw table.fail("count", "kill_storm needs count (how many SIGKILLs)")
        }
        guard let seconds = try table.double("duration_s", range: 0.01...3_600) else {
            throw table.fail("duration_s", "kill_storm needs duration_s (the kills are spread over it)")
        }
        let downMs = try table.uint("down_ms", range: 10...600_000) ?? 1_000
        let downMax = try table.uint("down_max", range: 1...1_000) ?? 1
        return KillStormSpec(targets: targets, count: Int(count), seconds: seconds, downMsMax: Int(downMs),
                             downMax: Int(downMax), tornPercent: try table.double("torn_percent", range: 0...100) ?? 0)
    }

    /// The keys of an `action = "rpc"` step: mode, percent, status, ms, tail_percent, tail_ms, lag_blocks.
    static func parseUpstreamFault(_ table: TableReader, topology: Topology,
                                   targets: [String]) throws(TopologyError) -> UpstreamFault {
        guard let mode = try table.string("mode") else {
            throw table.fail("mode", "rpc needs mode, one of " + UpstreamFault.modes.joined(separator: ", "))
        }
        var fault = UpstreamFault(mode: mode)
        fault.percent = try table.double("percent", range: 0...100) ?? 100
        fault.status = Int(try table.uint("status", range: 200...599) ?? 503)
        fault.ms = try table.uint("ms", range: 0...600_000) ?? 0
        fault.tailPercent = try table.double("tail_percent", range: 0...100) ?? 0
        fault.tailMs = try table.uint("tail_ms", range: 0...600_000) ?? 0
        fault.lagBlocks = try table.uint("lag_blocks", range: 0...UInt64(ChainView.lagViewsKept)) ?? 0
        if let problem = fault.problem { throw table.fail("mode", problem) }
        if mode == "lag", fault.lagBlocks == 0 { throw table.fail("lag_blocks", "mode \"lag\" needs lag_blocks >= 1") }
        for target in targets where !target.contains("=") && target != "all" {
            if let node = topology.nodes.first(where: { $0.name == target }), node.role != "rpc" {
                throw table.fail("targets", "'\(target)' is a \(node.role); rpc faults apply to nodes with role = \"rpc\"")
            }
        }
        return fault
    }

    static func checkSelector(_ selector: String, field: String, topology: Topology,
                              table: TableReader) throws(TopologyError) {
        for part in selector.split(separator: ",").map(String.init) where part != "all" {
            if ExternalSystem.roleSelectors.contains(part) {
                guard topology.external?.leaderPath != nil else {
                    throw table.fail(field, "'\(part)' names a member by its role, which only an [external] system with "
                                     + "leader_path can tell")
                }
                continue
            }
            if let equals = part.firstIndex(of: "=") {
                let key = String(part[..<equals]), value = String(part[part.index(after: equals)...])
                guard topology.nodes.contains(where: { $0.labels[key] == value }) else {
                    throw table.fail(field, "no node has the label \(key)=\(value)")
                }
            } else if !topology.nodes.contains(where: { $0.name == part }) {
                throw table.fail(field, "no node named '\(part)'")
            }
        }
    }

    static func parseExpectation(_ table: TableReader, steps: [Step], rpcClients: [String] = [],
                                 nodes: [String] = [], leaderKnown: Bool = false) throws(TopologyError) -> ExpectationSpec {
        try table.allowOnly(["name", "metric", "window", "max", "min", "equals", "client", "timing", "unit", "reason", "node"])
        guard let metric = try table.string("metric", required: true), let isBool = ExpectationSpec.metrics[metric] else {
            throw table.fail("metric", "expected one of " + ExpectationSpec.metrics.keys.sorted().joined(separator: ", "))
        }
        let windowText = try table.string("window") ?? "whole"
        guard let window = ExpectationSpec.Window(windowText) else {
            throw table.fail("window", "expected whole, outside_faults, during:STEP or after:STEP, got '\(windowText)'")
        }
        switch window {
        case .during(let id), .after(let id):
            guard steps.contains(where: { $0.id == id }) else {
                throw table.fail("window", "no step with id '\(id)'; ids are " + steps.map(\.id).joined(separator: ", "))
            }
        case .whole, .outsideFaults: break
        }
        let bound: ExpectationSpec.Bound
        if isBool {
            guard let value = table.table["equals"]?.bool else {
                throw table.fail("equals", "\(metric) is true or false: give equals = true or false")
            }
            bound = .equals(value)
        } else if let max = try table.double("max", range: -1e15...1e15) {
            if let min = try table.double("min", range: -1e15...1e15) {
                guard min <= max else { throw table.fail("min", "\(min) is above max \(max)") }
                bound = .between(min, max)
            } else {
                bound = .max(max)
            }
        } else if let min = try table.double("min", range: -1e15...1e15) {
            bound = .min(min)
        } else {
            throw table.fail("max", "\(metric) needs a bound: max = N or min = N")
        }
        let client = try table.string("client")
        if metric.hasPrefix("rpc_") {
            guard let client else {
                throw table.fail("client", "\(metric) is measured per client: give client = one of "
                                 + (rpcClients.isEmpty ? "the [rpc_load] clients (there is no [rpc_load])" : rpcClients.joined(separator: ", ")))
            }
            guard rpcClients.contains(client) else {
                throw table.fail("client", "'\(client)' is not a client of [rpc_load]; clients are "
                                 + (rpcClients.isEmpty ? "none (no [rpc_load])" : rpcClients.joined(separator: ", ")))
            }
        } else if client != nil {
            throw table.fail("client", "only rpc_* metrics are measured per client")
        }
        var unit: ExpectationSpec.Unit?
        if let text = try table.string("unit") {
            guard let parsed = ExpectationSpec.Unit(rawValue: text) else {
                throw table.fail("unit", "expected " + ExpectationSpec.Unit.allCases.map(\.rawValue).joined(separator: " or ")
                                 + ", got '\(text)'")
            }
            guard ExpectationSpec.isDuration(metric) else {
                throw table.fail("unit", "\(metric) is not a duration; a unit applies to metrics ending in _s or _ms")
            }
            unit = parsed
        }
        let reason = try table.string("reason")
        if metric == "rejects", reason?.isEmpty ?? true {
            throw table.fail("reason", "rejects counts one reason: give reason = \"invalid_proposal\", \"bad_part\", "
                             + "\"stale_height\", \"future_height\", \"wrong_chain\" or another of the report's drops column")
        } else if metric != "rejects", reason != nil {
            throw table.fail("reason", "only the rejects metric takes a reason")
        }
        let node = try table.string("node")
        if metric == "node_progress" {
            guard let node, nodes.contains(node) || (node == "leader" && leaderKnown) else {
                throw table.fail("node", "node_progress is measured on one node: give node = one of \(nodes.joined(separator: ", "))")
            }
        } else if node != nil {
            throw table.fail("node", "only node_progress is measured on one node")
        }
        let name = try table.string("name")
            ?? "\(metric)\(client.map { "[\($0)]" } ?? "")\(reason.map { "[\($0)]" } ?? "")\(node.map { "[\($0)]" } ?? "") \(bound) (\(window))"
        var spec = ExpectationSpec(name: name, metric: metric, window: window, bound: bound, client: client,
                                   timing: try table.bool("timing"), unit: unit, reason: reason)
        spec.node = node
        return spec
    }
}

extension TableReader {
    func stringList(_ key: String) throws(TopologyError) -> [String] {
        guard let value = table[key] else { return [] }
        if let text = value.string { return [text] }
        guard let array = value.array else { throw fail(key, "expected a string or a list of strings") }
        var out: [String] = []
        for element in array {
            guard let text = element.string else { throw fail(key, "expected a list of strings") }
            out.append(text)
        }
        return out
    }

    /// `[["v1","v2"],["v3","v4"]]` or `["v1,v2", "v3,v4"]`.
    func groups(_ key: String) throws(TopologyError) -> [[String]] {
        guard let value = table[key] else { return [] }
        guard let array = value.array else { throw fail(key, "expected a list of groups, e.g. [[\"v1\"], [\"v2\", \"v3\"]]") }
        var out: [[String]] = []
        for element in array {
            if let text = element.string {
                out.append([text])
            } else if let inner = element.array {
                var group: [String] = []
                for item in inner {
                    guard let text = item.string else { throw fail(key, "a group is a list of node names") }
                    group.append(text)
                }
                out.append(group)
            } else {
                throw fail(key, "a group is a list of node names or a comma-separated string")
            }
        }
        return out
    }
}
