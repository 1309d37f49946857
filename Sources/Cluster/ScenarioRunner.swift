import Formats
import Foundation
import NIOCore
import Wire

/// Runs a scenario against a real cluster: up → steps (and their heals) under background load →
/// settle → down. Analysis and expectations are the caller's (they read the run folder's files).
public enum ScenarioRunner {
    public struct Outcome: Sendable {
        public var dir: String
        public var manifest: RunManifest
        public var startedAtMs: UInt64
        public var endedAtMs: UInt64
        public var firstBlockMs: Double
        /// Nodes not running at the end although no step left them down.
        public var crashed: [String]
        public var stepsFired: [String]
        public var loadSent: Int
        public var capacity: VerificationCapacity
        public var spam: [SpamRecord]
    }

    final class SpamResults: @unchecked Sendable {
        private let lock = NSLock()
        private var records: [SpamRecord] = []
        func add(_ record: SpamRecord) { lock.withLock { records.append(record) } }
        var all: [SpamRecord] { lock.withLock { records } }
    }

    public struct Progress: Sendable {
        public var elapsedSeconds: Double
        public var durationSeconds: Double
        public var states: [ClusterOps.NodeState]
        public var activeFaults: [String]
        public var sent: Int
    }

    final class Sent: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func add(_ count: Int) { lock.withLock { value += count } }
        var total: Int { lock.withLock { value } }
    }

    public static func run(_ scenario: Scenario, runsRoot: String, seed: UInt64?, prometheus: Bool = false,
                           progress: @escaping (Progress) -> Void) async throws -> Outcome {
        // Measured before any node runs, then the spam is signed ahead of its window.
        let load = await LoadSteps.prepare(scenario)
        let up = try await ClusterOps.up(topology: scenario.topology, runsRoot: runsRoot, seed: seed)
        let dir = up.dir
        // Scraping from before the schedule's clock starts; `down` stops it, its data stays in the run folder.
        if prometheus {
            do {
                _ = try await PrometheusSetup.start(runDir: dir)
            } catch {
                try? await ClusterOps.down(dir: dir)
                throw error
            }
        }
        let hostSampler = HostSampler.task(dir: dir)
        defer { hostSampler.cancel() }
        let started = Date()
        let startedAtMs = FaultEngine.now()
        let sent = Sent()
        var background: [Task<Void, Never>] = []
        background += backgroundLoad(scenario, dir: dir, manifest: up.manifest, sent: sent)
        var pending = scenario.steps
        var heals: [(dueSeconds: Double, step: Scenario.Step)] = []
        var fired: [String] = []
        var lastProgress = Date.distantPast
        var states: [ClusterOps.NodeState] = []
        let needsStates = scenario.untilHeight != nil
            || scenario.steps.contains { if case .atSeconds = $0.trigger { false } else { true } }
        // A step that fails stops the run: the cluster is stopped and its network removed, not left behind.
        do {
            while true {
                let elapsed = Date().timeIntervalSince(started)
                if elapsed >= scenario.durationSeconds, !Self.waitsForHeight(scenario, elapsed: elapsed, states: states) {
                    break
                }
                if needsStates || Date().timeIntervalSince(lastProgress) >= 0.25 {
                    states = (try? await ClusterOps.states(dir: dir)) ?? states
                }
                for step in pending where isDue(step.trigger, elapsed: elapsed, states: states) {
                    pending.removeAll { $0.id == step.id }
                    fired.append(step.id)
                    if try await load.start(step, dir: dir, manifest: up.manifest, background: &background) {
                        continue
                    }
                    if let storm = step.killStorm {
                        let stormSeed = (seed ?? scenario.topology.seed) &+ UInt64(fired.count)
                        background.append(Task {
                            do {
                                _ = try await KillStorm.run(storm, dir: dir, id: step.id, seed: stormSeed,
                                                            shouldStop: { Task.isCancelled })
                            } catch {
                                FileHandle.standardError.write(Data("\(step.id): \(error)\n".utf8))
                            }
                        })
                        continue
                    }
                    try await FaultEngine.apply(step.action, dir: dir, id: step.id, layer: step.layer)
                    if let duration = step.durationSeconds { heals.append((elapsed + duration, step)) }
                }
                for heal in heals where heal.dueSeconds <= elapsed {
                    heals.removeAll { $0.step.id == heal.step.id }
                    try await undo(heal.step, dir: dir)
                }
                if Date().timeIntervalSince(lastProgress) >= 0.25 {
                    lastProgress = Date()
                    progress(Progress(elapsedSeconds: elapsed, durationSeconds: scenario.durationSeconds, states: states,
                                      activeFaults: openWindows(dir), sent: sent.total))
                }
                try await Task.sleep(for: .milliseconds(needsStates ? 30 : 50))
            }
            // Heal what is still broken so every node can be stopped cleanly, then let the chain settle.
            for heal in heals { try await undo(heal.step, dir: dir) }
            for task in background { task.cancel() }
            for task in background { await task.value }
            try await Task.sleep(for: .milliseconds(Int(scenario.settleSeconds * 1000)))
            let endedAtMs = FaultEngine.now()
            let final = try await ClusterOps.states(dir: dir)
            let crashed = final.filter { !$0.alive && !killedForGood($0.node.name, dir) }.map(\.node.name)
            _ = try? await FaultEngine.apply(.resume(targets: ["all"]), dir: dir, id: "end-resume")
            try await ClusterOps.down(dir: dir)
            return Outcome(dir: dir, manifest: up.manifest, startedAtMs: startedAtMs, endedAtMs: endedAtMs,
                           firstBlockMs: up.firstBlockMs, crashed: crashed, stepsFired: fired, loadSent: sent.total,
                           capacity: load.capacity, spam: load.spam)
        } catch {
            for task in background { task.cancel() }
            _ = try? await FaultEngine.apply(.resume(targets: ["all"]), dir: dir, id: "end-resume")
            try? await ClusterOps.down(dir: dir)
            throw RunError("the scenario stopped at \(String(format: "%.1f", Date().timeIntervalSince(started))) s: "
                           + "\(error) (its nodes are stopped; run folder \(dir))")
        }
    }

    /// Past `duration_s`, a file with `until_height` runs on until a node has finalized it (or its longest time).
    static func waitsForHeight(_ scenario: Scenario, elapsed: Double, states: [ClusterOps.NodeState]) -> Bool {
        guard let target = scenario.untilHeight, elapsed < scenario.scheduleSecondsMax else { return false }
        return !states.contains { ($0.status?.height ?? 0) >= target }
    }

    public static func isDue(_ trigger: Scenario.Trigger, elapsed: Double, states: [ClusterOps.NodeState]) -> Bool {
        switch trigger {
        case .atSeconds(let seconds):
            return elapsed >= seconds
        case .atHeight(let height):
            return states.contains { ($0.status?.height ?? 0) >= height }
        case .whenProposer(let node, let after):
            return elapsed >= after && states.contains { $0.status?.proposer == node && $0.node.name != node }
        case .whenGameOpen:
            return states.contains { ($0.status?.disputeGamesOpen ?? 0) > 0 }
        }
    }

    /// The heal of a step with a duration.
    /// The nodes a step's fault hit, as its timeline says (`leader` then is who led when it fired, not now).
    static func struck(_ step: Scenario.Step, _ targets: [String], _ dir: String) -> [String] {
        FaultEngine.timeline(dir).first { $0.id == step.id && $0.event == "start" }.map(\.nodes) ?? targets
    }

    public static func undo(_ step: Scenario.Step, dir: String) async throws {
        switch step.action {
        case .kill(let targets):
            try await FaultEngine.apply(.restart(targets: struck(step, targets, dir)), dir: dir, id: step.id + "-heal")
        case .pause(let targets):
            try await FaultEngine.apply(.resume(targets: struck(step, targets, dir)), dir: dir, id: step.id + "-heal")
        case .partition, .link: try await FaultEngine.apply(.heal(id: step.id), dir: dir, id: step.id + "-heal")
        case .skew(let targets, _): try await FaultEngine.apply(.skew(targets: targets, ms: 0), dir: dir, id: step.id + "-heal")
        case .rpc(let targets, _):
            try await FaultEngine.apply(.rpc(targets: targets, fault: .ok), dir: dir, id: step.id + "-heal")
        case .byzantine(let targets, _):
            try await FaultEngine.apply(.byzantine(targets: targets, modes: []), dir: dir, id: step.id + "-heal")
        case .resume, .restart, .heal, .upgrade: break
        }
    }

    /// The file's steady load for the whole schedule: `[load]` transfers (not for an external system,
    /// whose observer runs its own workload) and `[rpc_load]` requests, each from its start time.
    static func backgroundLoad(_ scenario: Scenario, dir: String, manifest: RunManifest, sent: Sent) -> [Task<Void, Never>] {
        var tasks: [Task<Void, Never>] = []
        let load = scenario.topology.load
        if load.rateTxPerSecond > 0, scenario.topology.external == nil {
            tasks.append(spamTask(dir: dir, manifest: manifest, rate: load.rateTxPerSecond,
                                  seconds: max(scenario.scheduleSecondsMax - load.startSeconds, 0), sent: sent,
                                  window: nil, delaySeconds: load.startSeconds))
        }
        if let rpcLoad = scenario.topology.rpcLoad {
            let seconds = max(scenario.scheduleSecondsMax - rpcLoad.startSeconds, 0)
            let topology = scenario.topology
            tasks.append(Task {
                if rpcLoad.startSeconds > 0 { try? await Task.sleep(for: .seconds(rpcLoad.startSeconds)) }
                do {
                    _ = try await RPCLoad.run(rpcLoad, topology: topology, manifest: manifest, runDir: dir, seconds: seconds)
                } catch {
                    FileHandle.standardError.write(Data("rpc load: \(error)\n".utf8))
                }
            })
        }
        return tasks
    }

    static func spamTask(dir: String, manifest: RunManifest, rate: Int, seconds: Double, sent: Sent,
                         window: String?, delaySeconds: Double = 0) -> Task<Void, Never> {
        Task {
            if delaySeconds > 0 { try? await Task.sleep(for: .seconds(delaySeconds)) }
            guard let generator = try? LoadGenerator(manifest: manifest, runDir: dir, l2: manifest.load.l2 ?? false) else {
                return
            }
            if let window {
                try? FaultEngine.recordWindow(dir, id: window, action: "spam", description: "spam \(rate) tx/s", start: true)
            }
            var reported = 0
            let stats = try? await generator.run(rate: rate, seconds: seconds, shouldStop: { Task.isCancelled },
                                                 progress: { stats in
                                                     sent.add(stats.sent - reported)
                                                     reported = stats.sent
                                                 })
            sent.add((stats?.sent ?? reported) - reported)
            if let window {
                try? FaultEngine.recordWindow(dir, id: window, action: "spam", description: "spam \(rate) tx/s", start: false)
            }
        }
    }

    /// Blasts a pre-signed pool at every validator for the step's duration; records its window and rate.
    static func blastTask(dir: String, manifest: RunManifest, step: Scenario.Step, spam: SpamSpec, pool: SpamPool,
                          capacity: VerificationCapacity, results: SpamResults) -> Task<Void, Never> {
        Task {
            let targets = manifest.nodes.filter { $0.role == "validator" }.compactMap {
                try? SocketAddress.node($0.host, port: $0.gossipPort)
            }
            let perNode = spam.ratePerNode(capacity)
            let description = "\(spam) (\(perNode) tx/s per validator)"
            try? FaultEngine.recordWindow(dir, id: step.id, action: "spam", description: description, start: true)
            let stats = (try? await pool.blast(ratePerTarget: perNode, seconds: step.durationSeconds ?? 1,
                                               targets: targets, shouldStop: { Task.isCancelled }))
                ?? SpamPool.Stats(sent: 0, seconds: 0)
            try? FaultEngine.recordWindow(dir, id: step.id, action: "spam", description: description, start: false)
            results.add(SpamRecord(id: step.id, spec: "\(spam)", targetPerNode: perNode, validators: targets.count,
                                   sent: stats.sent, seconds: stats.seconds,
                                   achievedPerNode: stats.achievedPerSecond / Double(max(targets.count, 1))))
        }
    }

    /// Descriptions of the fault windows still open.
    static func openWindows(_ dir: String) -> [String] {
        var open: [String: FaultEvent] = [:]
        for event in FaultEngine.timeline(dir) {
            if event.event == "start" { open[event.id] = event } else { open[event.id] = nil }
        }
        return open.values.sorted { $0.t < $1.t }.map(\.description)
    }

    /// A node killed by a step that was never restarted is down on purpose, not crashed.
    static func killedForGood(_ node: String, _ dir: String) -> Bool {
        var down = false
        for event in FaultEngine.timeline(dir) where event.nodes.contains(node) && event.action == "kill" {
            down = event.event == "start"
        }
        return down
    }
}
