import Foundation
import Formats
import RPC
import Wire

/// Applies faults to a running cluster (the vocabulary and the pure rules are in `Formats`). State lives in the run folder (`faults-active.json`,
/// `faults.jsonl`), so one-shot commands from any script and the scenario runner share it.
extension FaultEngine {
    struct ActiveLinkFault: Codable {
        var id: String
        var description: String
        var links: [Link]
        /// Which layer makes it (absent: node, as before layers existed).
        var layer: FaultLayer?
    }

    /// Resolves selectors: a node name, `all`, or `key=value` for every node with that label.
    public static func resolve(_ selectors: [String], in manifest: RunManifest) throws -> [String] {
        try resolve(selectors, nodes: manifest.nodes.map { ($0.name, $0.labels) })
    }

    /// Applies `action`; returns the fault id recorded in the timeline. `layer` chooses who makes a link
    /// fault (nil: the run's default, falling back to the node layer for what the kernel cannot do).
    @discardableResult
    public static func apply(_ action: FaultAction, dir: String, id explicitId: String? = nil,
                             layer: FaultLayer? = nil) async throws -> String {
        let manifest = try RunFolder.load(dir)
        let action = try await ExternalProbe.resolveRoles(action, manifest: manifest, runDir: dir)
        let id = explicitId ?? "\(action.name)-\(UInt64(Date().timeIntervalSince1970 * 1000) % 100_000_000)"
        if let external = manifest.external {
            switch action {
            case .skew, .upgrade, .rpc, .byzantine:
                throw RunError("\(action.name) needs Faultline's own nodes; these run \(external.system) (process faults "
                               + "and link faults by the kernel apply to them)")
            default: break
            }
        }
        if manifest.remote == true {
            switch action {
            case .kill, .restart, .resume:
                throw RunError("\(action.name): these nodes are not this machine's processes; on Kubernetes the export "
                               + "makes kill and restart PodChaos objects, and a pause ends by itself")
            case .pause(let targets):
                return try await RemoteFaults.pause(targets, seconds: 3_600, dir: dir, manifest: manifest, id: id)
            case .upgrade(let targets, let version, let versionMin, let forkId):
                return try await RemoteFaults.upgrade(targets, to: .init(version: version, versionMin: versionMin, forkId: forkId),
                                                      dir: dir, manifest: manifest, id: id)
            default:
                break
            }
        }
        switch action {
        case .kill(let targets), .pause(let targets):
            let names = try resolve(targets, in: manifest)
            let signal = action.name == "kill" ? SIGKILL : SIGSTOP
            for name in names {
                let node = try ClusterOps.node(named: name, in: manifest)
                guard let pid = Supervisor.pid(node, runDir: dir), Supervisor.isAlive(pid) else { continue }
                _ = Supervisor.signal(pid, signal)
            }
            try record(dir, .init(t: now(), event: "start", id: id, action: action.name,
                                  description: "\(action.name) \(names.joined(separator: ","))", nodes: names))
        case .resume(let targets):
            let names = try resolve(targets, in: manifest)
            for name in names {
                let node = try ClusterOps.node(named: name, in: manifest)
                if let pid = Supervisor.pid(node, runDir: dir) { _ = Supervisor.signal(pid, SIGCONT) }
            }
            try endWindows(dir, action: "pause", nodes: names)
        case .restart(let targets):
            let names = try resolve(targets, in: manifest)
            var wereRunning: [String] = []
            for name in names {
                let node = try ClusterOps.node(named: name, in: manifest)
                if let pid = Supervisor.pid(node, runDir: dir), Supervisor.isAlive(pid) {
                    wereRunning.append(name)
                    _ = Supervisor.signal(pid, SIGKILL)
                    let deadline = Date().addingTimeInterval(5)
                    while Supervisor.isAlive(pid), Date() < deadline { try await Task.sleep(for: .milliseconds(5)) }
                }
                try Supervisor.start(node, runDir: dir)
            }
            // Restarting a running node is a moment on the timeline; restarting a killed one ends its window.
            if !wereRunning.isEmpty {
                try record(dir, .init(t: now(), event: "instant", id: id, action: "restart",
                                      description: "restart \(wereRunning.joined(separator: ","))", nodes: wereRunning))
            }
            try endWindows(dir, action: "kill", nodes: names)
            try endWindows(dir, action: "pause", nodes: names)
            try PrometheusSetup.refreshTargets(runDir: dir)
            try await pushStateAfterRestart(dir: dir, manifest: manifest, names: names)
        case .partition, .link:
            let (description, links) = try linkFault(action, nodes: manifest.nodes.map { ($0.name, $0.labels) })!
            let (chosen, note) = try chooseLayer(layer, rule: links.first?.rule ?? .clear, manifest: manifest)
            try await addLinkFault(dir: dir, manifest: manifest, id: id, description: description, links: links,
                                   layer: chosen, note: note)
        case .skew(let targets, let ms):
            let names = try resolve(targets, in: manifest)
            let token = try RunFolder.token(dir)
            for name in names {
                let node = try ClusterOps.node(named: name, in: manifest)
                let body = Array("{\"skewMs\":\(ms)}".utf8)
                _ = try? await ControlClient.request(host: node.host, port: node.controlPort, method: .POST, path: "/clock-skew",
                                                     token: token, body: body)
            }
            if ms == 0 {
                try endWindows(dir, action: "skew", nodes: names)
            } else {
                try record(dir, .init(t: now(), event: "start", id: id, action: "skew",
                                      description: "clock skew \(ms) ms on \(names.joined(separator: ","))", nodes: names))
            }
        case .byzantine(let targets, let modes):
            let names = try resolve(targets, in: manifest)
            let token = try RunFolder.token(dir)
            let body = Array("{\"modes\":[\(modes.map { "\"\($0.rawValue)\"" }.joined(separator: ","))]}".utf8)
            for name in names {
                let node = try ClusterOps.node(named: name, in: manifest)
                _ = try? await ControlClient.request(host: node.host, port: node.controlPort, method: .POST, path: "/byzantine",
                                                     token: token, body: body)
            }
            if modes.isEmpty {
                try endWindows(dir, action: "byzantine", nodes: names)
            } else {
                try record(dir, .init(t: now(), event: "start", id: id, action: "byzantine",
                                      description: "byzantine \(modes.map(\.rawValue).joined(separator: "+")) on "
                                          + names.joined(separator: ","), nodes: names))
            }
        case .upgrade(let targets, let version, let versionMin, let forkId):
            let names = try resolve(targets, in: manifest)
            var changes = ["version \(version)"]
            if let versionMin { changes.append("version_min \(versionMin)") }
            if let forkId { changes.append("fork id \(forkId)") }
            for name in names {
                let node = try ClusterOps.node(named: name, in: manifest)
                try rewriteConfig(dir + "/" + node.dir + "/node.json") { config in
                    config.version = version
                    config.versionMin = versionMin ?? min(config.versionMin, version)
                    if let forkId { config.forkId = forkId }
                }
                // Like an operator swapping binaries: a graceful stop (SIGTERM), then the new one.
                if let pid = Supervisor.pid(node, runDir: dir), Supervisor.isAlive(pid) {
                    _ = Supervisor.signal(pid, SIGCONT) // a paused node could not act on SIGTERM
                    _ = Supervisor.signal(pid, SIGTERM)
                    var deadline = Date().addingTimeInterval(5)
                    while Supervisor.isAlive(pid), Date() < deadline { try await Task.sleep(for: .milliseconds(5)) }
                    if Supervisor.isAlive(pid) { _ = Supervisor.signal(pid, SIGKILL) }
                    deadline = Date().addingTimeInterval(5)
                    while Supervisor.isAlive(pid), Date() < deadline { try await Task.sleep(for: .milliseconds(5)) }
                }
                try Supervisor.start(node, runDir: dir)
            }
            try endWindows(dir, action: "kill", nodes: names)
            try endWindows(dir, action: "pause", nodes: names)
            let description = "upgrade \(names.joined(separator: ",")) to \(changes.joined(separator: ", "))"
            try record(dir, .init(t: now(), event: "instant", id: id, action: "upgrade", description: description,
                                  nodes: names))
            try PrometheusSetup.refreshTargets(runDir: dir)
            try await pushStateAfterRestart(dir: dir, manifest: manifest, names: names)
        case .rpc(let targets, let fault):
            let names = try resolve(targets, in: manifest)
            if let problem = fault.problem { throw RunError("rpc fault: \(problem)") }
            for name in names {
                let node = try ClusterOps.node(named: name, in: manifest)
                guard node.role == "rpc" else { throw RunError("\(name) is a \(node.role); rpc faults apply to rpc nodes") }
            }
            var active = loadActiveRPC(dir)
            for name in names { active[name] = fault.mode == "ok" ? nil : fault }
            try RunFolder.writeJSON(dir + "/faults-rpc.json", active, mode: 0o644)
            try await pushRPCFaults(dir: dir, manifest: manifest, faults: Dictionary(uniqueKeysWithValues: names.map { ($0, fault) }))
            try endWindows(dir, action: "rpc", nodes: names)
            if fault.mode != "ok" {
                try record(dir, .init(t: now(), event: "start", id: id, action: "rpc",
                                      description: "rpc \(fault) on \(names.joined(separator: ","))", nodes: names))
            }
        case .heal(let healId):
            // The window ends when the undoing begins: from then on some link may already be whole (an etcd
            // member cut off in a minority caught up 7 ms before a heal stamped after its rules were gone).
            let healBeganMs = now()
            var active = try loadActive(dir)
            let healed = active.filter { healId == nil || $0.id == healId }
            if let healId, healed.isEmpty { throw RunError("no active link fault with id '\(healId)'") }
            active.removeAll { healId == nil || $0.id == healId }
            try saveActive(dir, active)
            if healed.contains(where: { ($0.layer ?? .node) == .node }) {
                try await pushLinkTables(dir: dir, manifest: manifest, only: nil, waitForNodes: false)
            }
            let kernelTouched = Set(healed.filter { $0.layer == .kernel }.flatMap { $0.links.flatMap { [$0.from, $0.to] } })
            if !kernelTouched.isEmpty { try pushKernelRules(manifest: manifest, active: active, only: kernelTouched) }
            for fault in healed {
                let nodes = Array(Set(fault.links.flatMap { [$0.from, $0.to] })).sorted()
                var event = FaultEvent(t: healBeganMs, event: "end", id: fault.id, action: "heal",
                                       description: fault.description, nodes: nodes)
                event.layer = fault.layer?.rawValue
                try record(dir, event)
            }
        }
        return id
    }

    /// Reads a node's `node.json`, changes it, and writes it back.
    static func rewriteConfig(_ path: String, _ change: (inout NodeConfig) -> Void) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw RunError("cannot read \(path)") }
        var config: NodeConfig
        do {
            config = try JSONDecoder().decode(NodeConfig.self, from: data)
        } catch {
            throw RunError("\(path) is not a valid node config: \(error)")
        }
        change(&config)
        try RunFolder.writeJSON(path, config, mode: 0o644)
    }

    /// Records a window the caller runs itself (load spam), so reports can shade it.
    public static func recordWindow(_ dir: String, id: String, action: String, description: String,
                                    start: Bool, instant: Bool = false) throws {
        try record(dir, .init(t: now(), event: instant ? "instant" : start ? "start" : "end", id: id, action: action,
                              description: description, nodes: []))
    }

    /// The fault windows recorded so far.
    public static func timeline(_ dir: String) -> [FaultEvent] {
        guard let data = FileManager.default.contents(atPath: dir + "/faults.jsonl") else { return [] }
        return data.split(separator: UInt8(ascii: "\n")).compactMap { try? JSONDecoder().decode(FaultEvent.self, from: Data($0)) }
    }

    static func now() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }

    static func record(_ dir: String, _ event: FaultEvent) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let line = String(decoding: try encoder.encode(event), as: UTF8.self) + "\n"
        let path = dir + "/faults.jsonl"
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: path) else { throw RunError("cannot write \(path)") }
        defer { try? handle.close() }
        handle.seekToEndOfFile()
        handle.write(Data(line.utf8))
    }

    /// Ends the open windows of `action` that touch `nodes`.
    static func endWindows(_ dir: String, action: String, nodes: [String]) throws {
        var open: [String: FaultEvent] = [:]
        for event in timeline(dir) {
            if event.event == "start" { open[event.id] = event } else { open[event.id] = nil }
        }
        for (_, event) in open.sorted(by: { $0.key < $1.key }) where event.action == action {
            let touched = event.nodes.filter { nodes.contains($0) }
            guard !touched.isEmpty else { continue }
            try record(dir, .init(t: now(), event: "end", id: event.id, action: action,
                                  description: event.description, nodes: event.nodes))
        }
    }

    /// A restarted node comes back with no link rules and no rpc fault: give it its current ones
    /// (once it answers; a node that died again meanwhile gets them at its next start).
    static func pushStateAfterRestart(dir: String, manifest: RunManifest, names: [String]) async throws {
        try await pushLinkTables(dir: dir, manifest: manifest, only: Set(names), waitForNodes: true)
        try await pushRPCFaults(dir: dir, manifest: manifest, faults: loadActiveRPC(dir).filter { names.contains($0.key) })
    }

    /// The rpc fault modes in force, by node (`faults-rpc.json`), re-applied when a node restarts.
    static func loadActiveRPC(_ dir: String) -> [String: UpstreamFault] {
        guard let data = FileManager.default.contents(atPath: dir + "/faults-rpc.json") else { return [:] }
        return (try? JSONDecoder().decode([String: UpstreamFault].self, from: data)) ?? [:]
    }

    /// Sends each node its rpc fault mode; a node that is down gets it when it restarts.
    static func pushRPCFaults(dir: String, manifest: RunManifest, faults: [String: UpstreamFault]) async throws {
        guard !faults.isEmpty else { return }
        let token = try RunFolder.token(dir)
        for (name, fault) in faults.sorted(by: { $0.key < $1.key }) {
            let node = try ClusterOps.node(named: name, in: manifest)
            let body = Array(try JSONEncoder().encode(fault))
            let response = try? await ControlClient.request(host: node.host, port: node.controlPort, method: .POST, path: "/rpc-fault",
                                                            token: token, body: body)
            if let response, response.status != 200 {
                throw RunError("\(name) refused the rpc fault: \(String(decoding: response.body, as: UTF8.self))")
            }
        }
    }

    static func loadActive(_ dir: String) throws -> [ActiveLinkFault] {
        guard let data = FileManager.default.contents(atPath: dir + "/faults-active.json") else { return [] }
        return try JSONDecoder().decode([ActiveLinkFault].self, from: data)
    }

    static func saveActive(_ dir: String, _ active: [ActiveLinkFault]) throws {
        try RunFolder.writeJSON(dir + "/faults-active.json", active, mode: 0o644)
    }

    static func addLinkFault(dir: String, manifest: RunManifest, id: String, description: String,
                             links: [Link], layer: FaultLayer, note: String?) async throws {
        var active = try loadActive(dir)
        let replaced = active.filter { $0.id == id }
        active.removeAll { $0.id == id }
        active.append(ActiveLinkFault(id: id, description: description, links: links,
                                      layer: layer == .node ? nil : layer))
        try saveActive(dir, active)
        let nodes = Array(Set(links.flatMap { [$0.from, $0.to] })).sorted()
        if layer == .node || replaced.contains(where: { ($0.layer ?? .node) == .node }) {
            try await pushLinkTables(dir: dir, manifest: manifest, only: nil, waitForNodes: false)
        }
        if layer == .kernel || replaced.contains(where: { $0.layer == .kernel }) {
            let touched = Set(nodes + replaced.flatMap { $0.links.flatMap { [$0.from, $0.to] } })
            try pushKernelRules(manifest: manifest, active: active, only: touched)
        }
        // Where two layers exist (nodes in namespaces), the description names the one that made it.
        let named = manifest.network == nil ? "" : " [\(layer.rawValue) layer" + (note.map { ": \($0)" } ?? "") + "]"
        var event = FaultEvent(t: now(), event: "start", id: id, action: links.first.map { $0.rule.blocked } == true
                                ? "partition" : "link", description: description + named, nodes: nodes)
        event.layer = layer.rawValue
        try record(dir, event)
    }

    /// The layer a link fault with `rule` runs on, and why it is not the one asked for (nil: it is).
    /// An explicit kernel layer that cannot make the rule is refused; the run's default falls back to
    /// the node layer and says why.
    static func chooseLayer(_ explicit: FaultLayer?, rule: LinkRule, manifest: RunManifest) throws
        -> (FaultLayer, String?) {
        let wanted = explicit ?? manifest.defaultFaultLayer
        if manifest.external != nil, wanted == .node {
            throw RunError("the nodes run \(manifest.external?.system ?? "an external system"), which has no Faultline UDP "
                           + "layer: link faults are the kernel's here (--layer kernel)")
        }
        guard wanted == .kernel else { return (.node, nil) }
        guard let plan = manifest.network else {
            throw RunError("the kernel layer needs a run whose nodes are in network namespaces (network = \"netns\", "
                           + "or `--network netns` on up/run); this run's nodes share loopback")
        }
        guard let refusal = KernelFaults.unsupported(rule, netem: plan.netem ?? false) else { return (.kernel, nil) }
        if explicit == .kernel || manifest.external != nil {
            throw RunError("the kernel layer cannot make this fault: \(refusal.detail); use --layer node")
        }
        return (.node, refusal.short)
    }

    /// Writes the kernel rules of the nodes in `only` (the fold of the active kernel-layer faults).
    static func pushKernelRules(manifest: RunManifest, active: [ActiveLinkFault], only: Set<String>) throws {
        guard let plan = manifest.network else { return }
        let kernel = active.filter { $0.layer == .kernel }.map(\.links)
        for member in plan.members where only.contains(member.name) {
            try HostNetwork.applyRules(member, plan: plan, inbound: folded(kernel, into: member.name),
                                       outbound: linkTable(of: member.name, faults: kernel).links)
        }
    }

    /// Sends every node (or `only` these) the fold of the active node-layer link faults on its outgoing links.
    static func pushLinkTables(dir: String, manifest: RunManifest, only: Set<String>?, waitForNodes: Bool) async throws {
        let active = try loadActive(dir).filter { ($0.layer ?? .node) == .node }
        let token = try RunFolder.token(dir)
        // External members have no control port: their link faults are the kernel's.
        for node in manifest.nodes where (only?.contains(node.name) ?? true) && node.role != "external" {
            let body = try JSONEncoder().encode(linkTable(of: node.name, faults: active.map(\.links)))
            let attempts = waitForNodes ? 250 : 1
            for attempt in 0..<attempts {
                // A node that exited at start (e.g. a binary refusing the chain's rules) will not answer.
                if attempt > 0, let pid = Supervisor.pid(node, runDir: dir), !Supervisor.isAlive(pid) { break }
                // A paused or dead node cannot take its rules now; it gets them on restart.
                if (try? await ControlClient.request(host: node.host, port: node.controlPort, method: .POST, path: "/link-faults",
                                                     token: token, body: Array(body), timeout: .milliseconds(500)))?
                    .status == 200 { break }
                if attempt + 1 < attempts { try await Task.sleep(for: .milliseconds(20)) }
            }
        }
    }
}
