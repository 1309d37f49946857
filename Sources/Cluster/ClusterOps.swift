import Basics
import Formats
import Foundation
import Wire

/// The operations behind `faultline up/status/down/fault`, usable from tests too.
public enum ClusterOps {
    public struct UpResult: Sendable {
        public var dir: String
        public var manifest: RunManifest
        /// From the first process spawn to the cluster finalizing its first block (`waitUntilUp`).
        public var firstBlockMs: Double
    }

    public struct NodeState: Sendable {
        public var node: RunManifest.NodeEntry
        public var pid: pid_t?
        public var alive: Bool
        public var status: NodeStatus?
        public var error: String?
    }

    /// Creates a run folder, starts every node and returns once the cluster finalizes (`waitUntilUp`).
    public static func up(topology: Topology, runsRoot: String, seed: UInt64? = nil,
                          timeoutSeconds: Double = 30) async throws -> UpResult {
        // With netns the bridge is made first (its subnet decides the addresses in the configs) and
        // the plan is in run.json before any namespace exists, so `down --run DIR` can undo any part.
        var plan = topology.network == .netns ? try HostNetwork.reserve(names: topology.nodes.map(\.name)) : nil
        let dir: String
        var manifest: RunManifest
        do {
            (dir, manifest) = try RunFolder.create(topology: topology, runsRoot: runsRoot, seed: seed, network: plan)
        } catch {
            if let plan { HostNetwork.destroy(plan) }
            throw error
        }
        let started = Date()
        do {
            if plan != nil {
                try HostNetwork.build(&plan!)
                manifest.network = plan
                try RunFolder.writeJSON(dir + "/run.json", manifest, mode: 0o644)
            }
            if let external = manifest.external, HostNetwork.which(external.binary) == nil {
                throw RunError("the [external] system needs `\(external.binary)`, which is not installed"
                               + (external.install.isEmpty ? "" : " (\(external.install))"))
            }
            for node in manifest.nodes { try Supervisor.start(node, runDir: dir) }
            try await waitUntilUp(dir: dir, manifest: manifest, timeoutSeconds: timeoutSeconds)
            if manifest.external != nil { try Observer.start(runDir: dir) }
        } catch {
            await Observer.stop(runDir: dir)
            await Supervisor.stopAll(manifest.nodes, runDir: dir)
            if let plan { HostNetwork.destroy(plan) }
            throw RunError("\(error)\n\(logTails(dir: dir, manifest: manifest))")
        }
        return UpResult(dir: dir, manifest: manifest, firstBlockMs: Date().timeIntervalSince(started) * 1000)
    }

    /// Every validator has finalized a block; or validators with more than 2/3 of the stake have, and
    /// each of the others is one that cannot join: stopped, or refused at (or refusing) the handshake.
    public static func isUp(_ states: [NodeState]) -> Bool { isUp(states, committed: []) }

    /// `committed`: validators known to have finalized a block from their event logs (their status, if
    /// any, is not needed).
    public static func isUp(_ states: [NodeState], committed: Set<String>) -> Bool {
        // rpc nodes and gateways serve the chain once they have a block of it.
        // External members are up once each reports progress (etcd: a revision, 1 on a new store).
        guard states.filter({ $0.node.role == "external" }).allSatisfy({ ($0.status?.height ?? 0) >= 1 }) else { return false }
        let serving = states.filter { $0.node.role == "rpc" || $0.node.role == "gateway" }
        guard serving.allSatisfy({ ($0.status?.height ?? 0) >= 1 }) else { return false }
        let validators = states.filter { $0.node.role == "validator" }
        let hasJoined = { (state: NodeState) in committed.contains(state.node.name) || (state.status?.height ?? 0) >= 1 }
        let joined = validators.filter(hasJoined)
        if joined.count == validators.count { return true }
        let total = validators.reduce(UInt64(0)) { $0 + $1.node.stake }
        let joinedStake = joined.reduce(UInt64(0)) { $0 + $1.node.stake }
        let othersCannotJoin = validators.filter { !hasJoined($0) }.allSatisfy { state in
            guard let status = state.status else { return false }
            return status.stopped != nil || !status.refusedPeers.isEmpty
        }
        return Quorum.holds(joinedStake, of: total) && othersCannotJoin
    }

    /// Each node's process and status (`only`: just the nodes named, in the manifest's order).
    public static func states(dir: String, only: Set<String>? = nil) async throws -> [NodeState] {
        let manifest = try RunFolder.load(dir)
        let token = try RunFolder.token(dir)
        return await withTaskGroup(of: (Int, NodeState).self) { group in
            for (index, node) in manifest.nodes.enumerated() where only?.contains(node.name) ?? true {
                group.addTask {
                    if manifest.remote == true {
                        // Another machine's process: alive is what its control port says.
                        var state = NodeState(node: node, pid: nil, alive: false, status: nil, error: nil)
                        do {
                            state.status = try await ControlClient.status(host: node.host, port: node.controlPort, token: token)
                            state.alive = true
                        } catch {
                            state.error = "\(error)"
                        }
                        return (index, state)
                    }
                    let pid = Supervisor.pid(node, runDir: dir)
                    let alive = pid.map(Supervisor.isAlive) ?? false
                    var state = NodeState(node: node, pid: pid, alive: alive, status: nil, error: nil)
                    guard alive else { return (index, state) }
                    if node.role == "external" {
                        state.status = await ExternalProbe.status(node, manifest: manifest, runDir: dir)
                        if state.status == nil { state.error = "no answer to the progress probe" }
                        return (index, state)
                    }
                    do {
                        state.status = try await ControlClient.status(host: node.host, port: node.controlPort, token: token)
                    } catch {
                        state.error = "\(error)"
                    }
                    return (index, state)
                }
            }
            var out: [(Int, NodeState)] = []
            for await item in group { out.append(item) }
            return out.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    /// Polls the nodes' status every 20 ms (2 ms per node for large clusters, so polling 100 nodes does
    /// not take a core from them) until `condition` holds.
    public static func waitUntil(dir: String, timeoutSeconds: Double,
                                 _ condition: ([NodeState]) -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        var last: [NodeState] = []
        while Date() < deadline {
            last = try await states(dir: dir)
            if condition(last) { return }
            try await Task.sleep(for: .milliseconds(max(20, 2 * last.count)))
        }
        let summary = last.map { "\($0.node.name): \($0.alive ? "height \($0.status?.height ?? 0)" : "not running")" }
        var views: [String] = []
        if let token = try? RunFolder.token(dir) {
            for state in last where state.alive {
                if let response = try? await ControlClient.request(host: state.node.host, port: state.node.controlPort, path: "/consensus",
                                                                  token: token) {
                    views.append("\(state.node.name) /consensus: " + String(decoding: response.body, as: UTF8.self)
                        .replacingOccurrences(of: "\n", with: " "))
                }
            }
        }
        throw RunError("timed out after \(Int(timeoutSeconds)) s waiting for the cluster (\(summary.joined(separator: ", ")))"
                       + (views.isEmpty ? "" : "\n" + views.joined(separator: "\n")))
    }

    /// Stops every node, then removes the run's namespaces, veths and bridge (also what a killed
    /// runner left); throws if any of them could not be removed.
    public static func down(dir: String) async throws {
        let manifest = try RunFolder.load(dir)
        // The observer reads what every member holds before they stop: with the network whole and no
        // member paused, so a member still cut off by a fault that never healed is not read as one
        // that lost writes (a member killed for good is reported as not read).
        if manifest.external != nil {
            _ = try? await FaultEngine.apply(.heal(id: nil), dir: dir, id: "down-heal")
            _ = try? await FaultEngine.apply(.resume(targets: ["all"]), dir: dir, id: "down-resume")
            await Observer.stop(runDir: dir)
        }
        await Supervisor.stopAll(manifest.nodes, runDir: dir)
        await PrometheusSetup.stop(runDir: dir)
        if let plan = manifest.network {
            let left = HostNetwork.destroy(plan)
            if !left.isEmpty { throw RunError("could not remove the run's \(left.joined(separator: ", "))") }
        }
    }

    public static func node(named name: String, in manifest: RunManifest) throws -> RunManifest.NodeEntry {
        guard let node = manifest.nodes.first(where: { $0.name == name }) else {
            throw RunError("no node named '\(name)'; nodes are \(manifest.nodes.map(\.name).joined(separator: ", "))")
        }
        return node
    }

    /// The last lines of each node's log, for error messages.
    public static func logTails(dir: String, manifest: RunManifest, lines: Int = 5) -> String {
        manifest.nodes.map { node in
            let text = (try? String(contentsOfFile: dir + "/" + node.dir + "/node.log", encoding: .utf8)) ?? ""
            let tail = text.split(separator: "\n").suffix(lines).map { "    \($0)" }.joined(separator: "\n")
            return "  \(node.name) (\(node.dir)/node.log):\n\(tail)"
        }.joined(separator: "\n")
    }
}
