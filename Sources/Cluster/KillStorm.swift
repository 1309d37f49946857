import Basics
import Foundation
import Formats
import Wire

/// Runs a kill storm against a run folder's cluster. Every kill and restart is a line of the run's
/// `kills.jsonl` (what analysis counts); the storm as a whole is one `kill_storm` fault window.
/// A restarted target counts as down until its control port answers and it has caught up (finalized
/// within `KillStormSpec.caughtUpHeights` of the best running validator or target), so "at most one down" holds for nodes still
/// replaying their store or syncing blocks, not only for dead processes: on a slow or busy host a node
/// that answers but is still syncing does not vote, and killing the next one then would leave two of
/// four out.
public enum KillStorm {
    public struct Stats: Sendable, Equatable {
        public var kills: Int
        public var restarts: Int
        public var tornTails: Int
        public var seconds: Double
    }

    /// A restarted node that does not answer in this long counts as up again (it may be stuck; the
    /// report will show it), so the storm cannot stall.
    static let startWaitMaxSeconds = 15.0

    struct Victim {
        var node: RunManifest.NodeEntry
        var pid: pid_t
        /// When to start it again; nil once started (then waiting for it to answer).
        var restartAt: Date?
        var startedAt = Date.distantPast
        var lastProbe = Date.distantPast
    }

    /// A node's finalized height from its control port; nil while it does not answer.
    static func height(of node: RunManifest.NodeEntry, token: String) async -> UInt64? {
        try? await ControlClient.status(host: node.host, port: node.controlPort, token: token, timeout: .milliseconds(200)).height
    }

    public static func run(_ spec: KillStormSpec, dir: String, id: String, seed: UInt64,
                           shouldStop: @escaping @Sendable () -> Bool = { false },
                           onEvent: @escaping @Sendable (String) -> Void = { _ in }) async throws -> Stats {
        let manifest = try RunFolder.load(dir)
        let names = try FaultEngine.resolve(spec.targets, in: manifest)
        let nodes = try names.map { try ClusterOps.node(named: $0, in: manifest) }
        /// What a restarted victim must catch up with: the validators (targets or not) and the other targets.
        let peers = manifest.nodes.filter { $0.role == "validator" || names.contains($0.name) }
        let token = try RunFolder.token(dir)
        var rng = SplitMix64(seed: seed ^ 0x6B69_6C6C_5F73_746F) // "kill_sto"
        let log = try KillLog(path: dir + "/kills.jsonl")
        try FaultEngine.record(dir, .init(t: FaultEngine.now(), event: "start", id: id, action: "kill_storm",
                                          description: spec.description, nodes: names))
        let started = Date()
        let meanGapMs = spec.seconds * 1000 / Double(max(spec.count, 1))
        var nextKill = started.addingTimeInterval(meanGapMs * (0.25 + 1.5 * rng.nextUnit()) / 1000)
        var down: [Victim] = []
        var pushes: [Task<Void, Never>] = []
        var stats = Stats(kills: 0, restarts: 0, tornTails: 0, seconds: 0)

        /// Starts a dead victim again (after tearing its store's tail, sometimes); false while the
        /// killed process is still exiting.
        func restart(_ index: Int) throws -> Bool {
            let victim = down[index]
            guard !Supervisor.isAlive(victim.pid) else { return false }
            if spec.tornPercent > 0, rng.nextPercent() < spec.tornPercent {
                let bytes = try tearTail(dir + "/" + victim.node.dir + "/data/blocks.dat", rng: &rng)
                log.write(event: "torn", node: victim.node.name, pid: victim.pid, storm: id, bytes: bytes)
                stats.tornTails += 1
            }
            let pid = try Supervisor.start(victim.node, runDir: dir)
            log.write(event: "restart", node: victim.node.name, pid: pid, storm: id)
            down[index].pid = pid
            down[index].restartAt = nil
            down[index].startedAt = Date()
            stats.restarts += 1
            onEvent("restart \(victim.node.name) (pid \(pid))")
            pushes.append(Task { try? await FaultEngine.pushStateAfterRestart(dir: dir, manifest: manifest,
                                                                             names: [victim.node.name]) })
            return true
        }

        while !shouldStop(), stats.kills < spec.count, Date().timeIntervalSince(started) < spec.seconds {
            let now = Date()
            for index in down.indices.reversed() {
                if let due = down[index].restartAt {
                    if due <= now { _ = try restart(index) }
                } else if now.timeIntervalSince(down[index].startedAt) > startWaitMaxSeconds {
                    onEvent("\(down[index].node.name) did not answer \(Int(startWaitMaxSeconds)) s after its restart")
                    down.remove(at: index)
                } else if now.timeIntervalSince(down[index].lastProbe) * 1000 >= Double(KillStormSpec.probeIntervalMs) {
                    down[index].lastProbe = now
                    if let height = await height(of: down[index].node, token: token) {
                        let others = peers.filter { node in !down.contains { $0.node.name == node.name } }
                        var best: UInt64 = 0
                        for node in others { best = max(best, await self.height(of: node, token: token) ?? 0) }
                        if height + KillStormSpec.caughtUpHeights >= best { down.remove(at: index) }
                    }
                }
            }
            if now >= nextKill, down.count < spec.downMax {
                let candidates = nodes.filter { node in
                    !down.contains { $0.node.name == node.name }
                        && Supervisor.pid(node, runDir: dir).map(Supervisor.isAlive) == true
                }
                if !candidates.isEmpty {
                    let node = candidates[Int(rng.next() % UInt64(candidates.count))]
                    if let pid = Supervisor.pid(node, runDir: dir), Supervisor.signal(pid, SIGKILL) {
                        log.write(event: "kill", node: node.name, pid: pid, storm: id)
                        stats.kills += 1
                        onEvent("kill \(node.name) (pid \(pid)), \(stats.kills)/\(spec.count)")
                        let downMs = Double(spec.downMsMax) * (KillStormSpec.downShareMin + (1 - KillStormSpec.downShareMin) * rng.nextUnit())
                        down.append(Victim(node: node, pid: pid, restartAt: now.addingTimeInterval(downMs / 1000)))
                    }
                    nextKill = now.addingTimeInterval(meanGapMs * (0.25 + 1.5 * rng.nextUnit()) / 1000)
                }
            }
            let wake = ([nextKill] + down.map { $0.restartAt ?? now }).min()!
            let waitMs = min(max(wake.timeIntervalSince(Date()) * 1000, 1), Double(KillStormSpec.probeIntervalMs))
            try? await Task.sleep(for: .milliseconds(Int(waitMs)))
        }
        // Everything the storm killed runs again when it ends (bounded: a process that will not die
        // after SIGKILL is a kernel problem, reported rather than waited on forever).
        let deadline = Date().addingTimeInterval(10)
        down.removeAll { $0.restartAt == nil } // started already
        while !down.isEmpty, Date() < deadline {
            for index in down.indices.reversed() where try restart(index) { down.remove(at: index) }
            if !down.isEmpty { try? await Task.sleep(for: .milliseconds(5)) }
        }
        let dead = down
        for task in pushes { await task.value }
        stats.seconds = Date().timeIntervalSince(started)
        try FaultEngine.record(dir, .init(t: FaultEngine.now(), event: "end", id: id, action: "kill_storm",
                                          description: spec.description, nodes: names))
        if !dead.isEmpty {
            throw RunError("kill storm: \(dead.map(\.node.name).joined(separator: ", ")) still running 10 s after SIGKILL")
        }
        return stats
    }

    /// Appends what a crash in the middle of an append leaves: a record header that promises more
    /// bytes than follow. The node must cut it off at start and fetch what it lacks from peers.
    static func tearTail(_ path: String, rng: inout SplitMix64) throws -> Int {
        guard let handle = FileHandle(forWritingAtPath: path) else { throw RunError("cannot open \(path) to tear it") }
        defer { try? handle.close() }
        handle.seekToEndOfFile()
        let following = Int(rng.next() % 200)
        var bytes = withUnsafeBytes(of: UInt32(4_000 + following).bigEndian) { Array($0) }
        bytes += (0..<(32 + following)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        handle.write(Data(bytes))
        return bytes.count
    }
}

/// `kills.jsonl`: one line a kill or restart, written straight to the file (no buffering).
final class KillLog {
    private let handle: FileHandle

    init(path: String) throws {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o644]) else {
                throw RunError("cannot create \(path)")
            }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else { throw RunError("cannot open \(path)") }
        handle.seekToEndOfFile()
        self.handle = handle
    }

    deinit { try? handle.close() }

    struct Line: Encodable {
        var t: UInt64
        var event: String
        var node: String
        var pid: Int32
        var storm: String
        var bytes: Int?
    }

    func write(event: String, node: String, pid: pid_t, storm: String, bytes: Int? = nil) {
        let line = Line(t: FaultEngine.now(), event: event, node: node, pid: pid, storm: storm, bytes: bytes)
        guard let data = try? JSONEncoder().encode(line) else { return }
        handle.write(data + Data("\n".utf8))
    }
}
