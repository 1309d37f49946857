import Foundation
import Formats
import Yams

/// A scenario's schedule as a Chaos Mesh Workflow (chaos-mesh.org/v1alpha1). The entry is a Serial of a
/// `ready` Task (the cluster finalizes) and a Parallel with one Serial branch per step: a Suspend until
/// the step's time (or a Task that waits for its height or event), then the fault, whose `deadline` is
/// how long it lasts (its `duration_s`, the heal or restart that ends it, else the end of the schedule).
/// Faults Chaos Mesh has a kind for become NetworkChaos, PodChaos or TimeChaos; every other step runs
/// `faultline step FILE --id ID` in a Task, against the nodes' control ports, as a local run does it.
/// Load steps (spam, airdrops, forced transactions) are the collector's: it signs them before the
/// `ready` Task lets the schedule start, and sends them at their times from that start.
public enum ChaosSchedule {
    /// How one step of the scenario runs on Kubernetes.
    public struct Route: Sendable, Codable, Equatable {
        public var step: String
        /// "chaos-mesh" or "faultline" (a Task running `faultline step`), "ends" (a heal, restart or resume
        /// that is the deadline of an earlier fault), "collector" (load the collector Job sends) or "not-run".
        public var way: String
        public var what: String
    }

    public struct Made {
        public var workflow: Node
        public var routes: [Route]
    }

    public static func make(_ scenario: Scenario, placements: [KubernetesExport.Placement], namespace: String,
                            image: String) throws -> Made {
        let topology = scenario.topology
        let nodes = topology.nodes.map { (name: $0.name, labels: $0.labels) }
        let podOf = Dictionary(uniqueKeysWithValues: placements.map { ($0.node, $0.pod) })
        let endSeconds = scenario.scheduleSecondsMax
        var templates: [Node] = []
        var branches: [String] = []
        var routes: [Route] = []
        var names = Set<String>()
        func unique(_ base: String) -> String {
            var name = KubernetesExport.dnsLabel(base).prefix(40).description
            var n = 2
            while names.contains(name) { name = KubernetesExport.dnsLabel(base).prefix(37).description + "-\(n)"; n += 1 }
            names.insert(name)
            return name
        }
        func selector(_ names: [String]) -> Node {
            KubernetesExport.map([("pods", KubernetesExport.map([(namespace, Node(names.compactMap { podOf[$0] }.map { Node($0) }))]))])
        }
        func task(_ name: String, _ arguments: [String]) -> Node {
            let shell = "cp -rL \(KubernetesExport.runDir)/. /tmp/run/ && exec faultline "
                + arguments.map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
            return KubernetesExport.map([
                ("name", Node(name)), ("templateType", "Task"),
                ("task", KubernetesExport.map([
                    ("container", KubernetesExport.map([
                        ("name", "step"), ("image", Node(image)),
                        ("args", Node(["sh", "-c", Node(shell)])),
                        ("volumeMounts", Node([KubernetesExport.map([
                            ("name", "run"), ("mountPath", Node(KubernetesExport.runDir)), ("readOnly", KubernetesExport.bool(true)),
                        ])])),
                    ])),
                    ("volumes", Node([KubernetesExport.runVolume(
                        configItems: [("run.json", "run.json"), ("genesis.json", "genesis.json"),
                                      ("topology.toml", "topology.toml")],
                        secretItems: [("token", "token")])])),
                ])),
            ])
        }
        func duration(_ seconds: Double) -> Node { Node("\(max(1, Int((seconds * 1000).rounded())))ms") }

        let stepCommand = ["step", "/tmp/run/topology.toml", "--run", "/tmp/run"]
        let ready = unique("ready")
        templates.append(task(ready, stepCommand + ["--ready"]))

        for step in scenario.steps {
            let start: Double?
            if case .atSeconds(let seconds) = step.trigger { start = seconds } else { start = nil }
            func lasts(endedBy ends: @escaping (Scenario.Step) -> Bool) -> Double {
                ChaosSchedule.lasts(step, in: scenario, endedBy: ends)
            }
            var chaos: [Node] = []
            var what = ""
            func network(_ action: String, from: [String], to: [String], direction: String, _ extra: [(String, Node)]) {
                let name = unique("\(step.id)-\(action)" + (chaos.isEmpty ? "" : "-\(chaos.count + 1)"))
                chaos.append(KubernetesExport.map([
                    ("name", Node(name)), ("templateType", "NetworkChaos"),
                    ("deadline", duration(lasts(endedBy: { healing($0, step) }))),
                    ("networkChaos", KubernetesExport.map([
                        ("action", Node(action)), ("mode", "all"), ("selector", selector(from)),
                        ("direction", Node(direction)),
                        ("target", KubernetesExport.map([("mode", "all"), ("selector", selector(to))])),
                    ] + extra)),
                ]))
            }
            if LoadSteps.sends(step) {
                let load = step.spam.map { "\($0)" } ?? step.rollupLoad.map { "\($0)" } ?? ""
                routes.append(Route(step: step.id, way: "collector",
                                    what: "sent by the collector Job (\(load), \(step.trigger) from the schedule's start; "
                                        + "signed before it starts)"))
                continue
            }
            if step.killStorm != nil {
                routes.append(Route(step: step.id, way: "not-run",
                                    what: "a kill storm SIGKILLs processes of one machine and tears their stores' tails: "
                                        + "not exported; run this file locally"))
                continue
            }
            switch step.action {
            case .partition(let groups):
                var taken = Set<String>()
                let resolved = try groups.map { group in
                    let names = try FaultEngine.resolve(group, nodes: nodes).filter { !taken.contains($0) }
                    taken.formUnion(names)
                    return names
                }.filter { !$0.isEmpty }
                for a in resolved.indices { for b in resolved.indices where b > a {
                    network("partition", from: resolved[a], to: resolved[b], direction: "both", [])
                } }
                what = "NetworkChaos partition (both directions) between " + resolved.map { $0.joined(separator: ",") }
                    .joined(separator: " | ")
            case .link(let rule, let from, let to):
                let sources = try FaultEngine.resolve(from, nodes: nodes)
                let targets = try FaultEngine.resolve(to, nodes: nodes)
                let everyoneElse = Set(targets).union(sources) == Set(nodes.map(\.name))
                let zero: (String, Node) = ("correlation", "0")
                if !rule.dropKinds.isEmpty {
                    what = "" // by message kind: only the node's own layer knows kinds
                } else if rule.blocked {
                    network("partition", from: sources, to: targets, direction: "to", [])
                    what = "NetworkChaos partition (to)"
                } else if let bandwidth = rule.bandwidthBytesPerSecond {
                    // Chaos Mesh shapes a pod's whole egress (tbf), not one link.
                    if everyoneElse, rule == LinkRule(bandwidthBytesPerSecond: bandwidth) {
                        let kbps = max(1, bandwidth * 8 / 1000)
                        network("bandwidth", from: sources, to: targets, direction: "to", [("bandwidth", KubernetesExport.map([
                            ("rate", Node("\(kbps)kbps")), ("limit", KubernetesExport.int(max(bandwidth, 20_000))),
                            ("buffer", KubernetesExport.int(max(bandwidth / 10, 10_000))),
                        ]))])
                        what = "NetworkChaos bandwidth \(kbps) kbps"
                    }
                } else {
                    if rule.lossPercent > 0 {
                        network("loss", from: sources, to: targets, direction: "to", [("loss", KubernetesExport.map([
                            ("loss", Node(percent(rule.lossPercent))), zero]))])
                    }
                    if rule.delayMs > 0 || rule.jitterMs > 0 || rule.reorderPercent > 0 {
                        var delay: [(String, Node)] = [("latency", Node("\(Int(max(rule.delayMs, rule.reorderPercent > 0 ? 20 : 0)))ms")),
                                                       zero, ("jitter", Node("\(Int(rule.jitterMs))ms"))]
                        if rule.reorderPercent > 0 {
                            delay.append(("reorder", KubernetesExport.map([
                                ("reorder", Node(percent(rule.reorderPercent))), zero, ("gap", 5)])))
                        }
                        network("delay", from: sources, to: targets, direction: "to", [("delay", KubernetesExport.map(delay))])
                    }
                    if rule.duplicatePercent > 0 {
                        network("duplicate", from: sources, to: targets, direction: "to", [("duplicate", KubernetesExport.map([
                            ("duplicate", Node(percent(rule.duplicatePercent))), zero]))])
                    }
                    what = "NetworkChaos " + FaultEngine.describe(rule)
                }
            case .kill(let targets):
                let struck = try FaultEngine.resolve(targets, nodes: nodes)
                let name = unique("\(step.id)-pod-failure")
                // Down until the step that restarts them (or its duration, or the end): pod-failure keeps the
                // pod and its volume while the container does not run.
                chaos.append(KubernetesExport.map([
                    ("name", Node(name)), ("templateType", "PodChaos"),
                    ("deadline", duration(lasts(endedBy: { other in
                        if case .restart(let again) = other.action { return Set(again).isSuperset(of: targets) }
                        return false
                    }))),
                    ("podChaos", KubernetesExport.map([("action", "pod-failure"), ("mode", "all"), ("selector", selector(struck))])),
                ]))
                what = "PodChaos pod-failure on " + struck.joined(separator: ",")
            case .restart(let targets) where !killedBefore(step, in: scenario):
                let struck = try FaultEngine.resolve(targets, nodes: nodes)
                chaos.append(KubernetesExport.map([
                    ("name", Node(unique("\(step.id)-pod-kill"))), ("templateType", "PodChaos"), ("deadline", "5s"),
                    ("podChaos", KubernetesExport.map([("action", "pod-kill"), ("mode", "all"), ("gracePeriod", 0),
                                                       ("selector", selector(struck))])),
                ]))
                what = "PodChaos pod-kill on " + struck.joined(separator: ",") + " (the StatefulSet starts it again)"
            case .skew(let targets, let ms) where ms != 0:
                let struck = try FaultEngine.resolve(targets, nodes: nodes)
                chaos.append(KubernetesExport.map([
                    ("name", Node(unique("\(step.id)-time"))), ("templateType", "TimeChaos"),
                    ("deadline", duration(lasts(endedBy: { other in
                        if case .skew(_, 0) = other.action { return true }
                        return false
                    }))),
                    ("timeChaos", KubernetesExport.map([("mode", "all"), ("selector", selector(struck)),
                                                        ("timeOffset", Node("\(ms)ms"))])),
                ]))
                what = "TimeChaos \(ms) ms on " + struck.joined(separator: ",") + " (the whole process clock, not only block timestamps)"
            case .heal, .restart, .skew, .resume:
                if endsAnother(step, in: scenario) {
                    routes.append(Route(step: step.id, way: "ends", what: "the deadline of the fault it ends"))
                    continue
                }
            default:
                break
            }
            let branch = unique("step-\(step.id)")
            var children: [String] = []
            if let start, start > 0 {
                let wait = unique("\(step.id)-wait")
                templates.append(KubernetesExport.map([("name", Node(wait)), ("templateType", "Suspend"),
                                                      ("deadline", duration(start))]))
                children.append(wait)
            }
            if chaos.isEmpty {
                // Everything else, and triggers by height or event: the same code a local run uses.
                let name = unique("\(step.id)-faultline")
                templates.append(task(name, stepCommand + ["--id", step.id]))
                children.append(name)
                let reason = what.isEmpty ? "\(step.action.name)" : what
                routes.append(Route(step: step.id, way: "faultline",
                                    what: "Task: faultline step --id \(step.id) (\(reason), \(step.trigger))"))
            } else {
                if start == nil {
                    let name = unique("\(step.id)-trigger")
                    templates.append(task(name, stepCommand + ["--id", step.id, "--wait-only"]))
                    children.append(name)
                }
                if chaos.count == 1 {
                    templates.append(chaos[0])
                    children.append(chaos[0]["name"]?.string ?? "")
                } else {
                    let all = unique("\(step.id)-all")
                    templates.append(KubernetesExport.map([("name", Node(all)), ("templateType", "Parallel"),
                                                          ("children", Node(chaos.compactMap { $0["name"] }))]))
                    templates += chaos
                    children.append(all)
                }
                routes.append(Route(step: step.id, way: "chaos-mesh", what: what + " (\(step.trigger))"))
            }
            templates.append(KubernetesExport.map([("name", Node(branch)), ("templateType", "Serial"),
                                                  ("children", Node(children.map { Node($0) }))]))
            branches.append(branch)
        }
        let schedule = unique("schedule")
        let entry = unique("scenario")
        templates.insert(KubernetesExport.map([("name", Node(entry)), ("templateType", "Serial"),
                                               ("deadline", duration(endSeconds + 600)),
                                               ("children", Node([Node(ready)] + (branches.isEmpty ? [] : [Node(schedule)])))]),
                         at: 0)
        if !branches.isEmpty {
            templates.insert(KubernetesExport.map([("name", Node(schedule)), ("templateType", "Parallel"),
                                                   ("children", Node(branches.map { Node($0) }))]), at: 2)
        }
        let workflow = KubernetesExport.object("chaos-mesh.org/v1alpha1", "Workflow", name: "faultline-schedule",
                                               namespace: namespace,
                                               labels: [(KubernetesExport.appLabel, "faultline")], [
            ("spec", KubernetesExport.map([("entry", Node(entry)), ("templates", Node(templates))])),
        ])
        return Made(workflow: workflow, routes: routes)
    }

    /// How long a fault lasts: its own duration, else until the step that ends it, else to the end.
    static func lasts(_ step: Scenario.Step, in scenario: Scenario, endedBy ends: (Scenario.Step) -> Bool) -> Double {
        guard case .atSeconds(let start) = step.trigger else {
            return step.durationSeconds ?? scenario.scheduleSecondsMax
        }
        if let own = step.durationSeconds { return own }
        for other in scenario.steps where other.id != step.id {
            if case .atSeconds(let at) = other.trigger, at >= start, ends(other) { return at - start }
        }
        return max(1, scenario.scheduleSecondsMax - start)
    }

    /// The fault window a time-triggered step makes as scheduled: seconds from the start and how long
    /// (nil: no window, or a trigger by height or event, whose time only the cluster knows).
    public static func plannedWindow(_ step: Scenario.Step, in scenario: Scenario) -> (start: Double, seconds: Double)? {
        guard case .atSeconds(let start) = step.trigger, let seconds = windowSeconds(step, in: scenario) else { return nil }
        return (start, seconds)
    }

    /// How long a step's fault window lasts once it starts (0: an instant; nil: it makes none). For a
    /// trigger by height or event, its `duration_s`, else to the schedule's end.
    public static func windowSeconds(_ step: Scenario.Step, in scenario: Scenario) -> Double? {
        switch step.action {
        case _ where step.spam != nil || step.killStorm != nil || step.rollupLoad != nil:
            return step.durationSeconds
        case .partition, .link:
            return lasts(step, in: scenario) { healing($0, step) }
        case .kill(let targets):
            return lasts(step, in: scenario) { other in
                if case .restart(let again) = other.action { return Set(again).isSuperset(of: targets) }
                return false
            }
        case .pause:
            return lasts(step, in: scenario) { if case .resume = $0.action { true } else { false } }
        case .skew(_, let ms) where ms != 0:
            return lasts(step, in: scenario) { if case .skew(_, 0) = $0.action { true } else { false } }
        case .rpc, .byzantine:
            return step.durationSeconds
        case .upgrade, .restart, .resume:
            return 0 // an instant: what comes after it is "after" it
        default:
            return nil
        }
    }

    static func percent(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(format: "%.2f", value)
    }

    /// Whether `other` (a heal) ends the link fault `step`.
    static func healing(_ other: Scenario.Step, _ step: Scenario.Step) -> Bool {
        if case .heal(let id) = other.action, other.spam == nil, other.killStorm == nil, other.rollupLoad == nil {
            return id == nil || id == step.id
        }
        return false
    }

    static func killedBefore(_ step: Scenario.Step, in scenario: Scenario) -> Bool {
        guard case .restart(let targets) = step.action else { return false }
        return scenario.steps.prefix { $0.id != step.id }.contains {
            if case .kill(let killed) = $0.action { return Set(targets).isSubset(of: killed) }
            return false
        }
    }

    /// A heal, restart, resume or zero skew that is the end of an earlier fault exported as Chaos Mesh.
    static func endsAnother(_ step: Scenario.Step, in scenario: Scenario) -> Bool {
        guard case .atSeconds = step.trigger else { return false }
        let earlier = scenario.steps.prefix { $0.id != step.id }
        switch step.action {
        case .heal where step.spam == nil && step.killStorm == nil && step.rollupLoad == nil:
            return earlier.contains { other in
                switch other.action {
                case .partition: return healing(step, other)
                case .link(let rule, _, _): return rule.dropKinds.isEmpty && healing(step, other)
                default: return false
                }
            }
        case .restart: return killedBefore(step, in: scenario)
        case .skew(_, 0): return earlier.contains { if case .skew(_, let ms) = $0.action { ms != 0 } else { false } }
        default: return false
        }
    }
}
