import Formats
import Foundation

/// A run whose nodes are elsewhere (`RunManifest.remote`: an export to Kubernetes), seen from the
/// collector: a writable copy of the exported run folder, the file's load while the schedule runs,
/// then every node's event log fetched over its control port (`GET /events/OFFSET`) into the folder,
/// so `faultline report` builds the same reports from it as from a local run's.
public enum RemoteRun {
    public struct Outcome: Sendable {
        public var endedAtMs: UInt64
        /// Nodes whose control port did not answer at the end although no step left them down.
        public var crashed: [String]
        public var eventBytes: [String: Int]
    }

    /// Copies the run folder's shared files (not node keys) into `dir`, with a folder per node.
    public static func copy(from source: String, to dir: String) throws -> RunManifest {
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        for name in ["run.json", "genesis.json", "topology.toml", "token"] {
            let data = try Data(contentsOf: URL(fileURLWithPath: source + "/" + name))
            guard fm.createFile(atPath: dir + "/" + name, contents: data, attributes: [.posixPermissions: 0o600]) else {
                throw RunError("cannot write \(dir)/\(name)")
            }
        }
        let manifest = try RunFolder.load(dir)
        guard manifest.remote == true else {
            throw RunError("\(source)/run.json is a local run's (nodes on this machine): `faultline report` reads it as it is")
        }
        for node in manifest.nodes {
            try fm.createDirectory(atPath: dir + "/" + node.dir, withIntermediateDirectories: true,
                                   attributes: [.posixPermissions: 0o700])
        }
        try fm.createDirectory(atPath: dir + "/load", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return manifest
    }

    /// From the schedule's start (`startMs`: the mark its `ready` Task left in the nodes' logs, else when the
    /// collector saw the cluster up): the file's load, its load steps at their times or triggers, the
    /// schedule's length (past `until_height` if the file has one), the settle time; then the event logs,
    /// and the fault windows: a Task's as it marked them, Chaos Mesh's as scheduled from that start.
    public static func observe(_ scenario: Scenario, dir: String, manifest: RunManifest, startMs: UInt64,
                               load: LoadSteps) async throws -> Outcome {
        let started = Date(timeIntervalSince1970: Double(startMs) / 1000)
        var background = ScenarioRunner.backgroundLoad(scenario, dir: dir, manifest: manifest, sent: ScenarioRunner.Sent())
        var pending = scenario.steps.filter(LoadSteps.sends)
        var states: [ClusterOps.NodeState] = []
        while true {
            let elapsed = Date().timeIntervalSince(started)
            if elapsed >= scenario.durationSeconds,
               !ScenarioRunner.waitsForHeight(scenario, elapsed: elapsed, states: states) { break }
            states = (try? await ClusterOps.states(dir: dir)) ?? states
            for step in pending where ScenarioRunner.isDue(step.trigger, elapsed: elapsed, states: states) {
                pending.removeAll { $0.id == step.id }
                do {
                    _ = try await load.start(step, dir: dir, manifest: manifest, background: &background)
                } catch {
                    FileHandle.standardError.write(Data("collect: step \(step.id): \(error)\n".utf8))
                }
            }
            try await Task.sleep(for: .milliseconds(pending.isEmpty ? 500 : 50))
        }
        for task in background { task.cancel() }
        for task in background { await task.value }
        try await Task.sleep(for: .milliseconds(Int(scenario.settleSeconds * 1000)))
        let endedAtMs = FaultEngine.now()
        let final = try await ClusterOps.states(dir: dir)
        let downOnPurpose = Set(scenario.steps.flatMap { step -> [String] in
            guard case .kill = step.action, ChaosSchedule.plannedWindow(step, in: scenario).map({
                $0.start + $0.seconds >= scenario.durationSeconds
            }) ?? true else { return [] }
            return (try? targets(step.action, manifest: manifest)) ?? []
        })
        let crashed = final.filter { !$0.alive && !downOnPurpose.contains($0.node.name) }.map(\.node.name)
        var bytes: [String: Int] = [:]
        for node in manifest.nodes {
            // A node down at the end (crash-looping, a binary that refuses the chain) has no log to give:
            // the others' still make the report, and this one is listed as not running.
            do {
                bytes[node.name] = try await fetchEvents(node, dir: dir)
            } catch {
                FileHandle.standardError.write(Data("collect: \(error); the report has no events of \(node.name)\n".utf8))
            }
        }
        // Chaos Mesh and the Workflow's Tasks apply the faults: a Task's windows are when it marked them in
        // the nodes' logs, Chaos Mesh's are the schedule's (the load steps' are this collector's own).
        try recordWindows(scenario, dir: dir, manifest: manifest, startMs: startMs, marks: marks(dir: dir, manifest: manifest))
        return Outcome(endedAtMs: endedAtMs, crashed: crashed, eventBytes: bytes)
    }

    /// Every step's fault window but the load steps': from its Task's marks (`step:ID`, `end:ID`) when it
    /// left them, else from its trigger's mark or as scheduled from `startMs`, with `scheduleSlackMs` of slack.
    static func recordWindows(_ scenario: Scenario, dir: String, manifest: RunManifest, startMs: UInt64,
                              marks: [String: UInt64]) throws {
        for step in scenario.steps where !LoadSteps.sends(step) && step.killStorm == nil {
            let planned = ChaosSchedule.plannedWindow(step, in: scenario)
            let observed = marks[stepMark(step.id, end: false)]
            // A trigger by height or event that Chaos Mesh then acts on: from when the trigger held, with slack.
            let triggered = marks[triggerMark(step.id)]
            guard planned != nil || observed != nil || triggered != nil, let seconds = planned?.seconds
                ?? ChaosSchedule.windowSeconds(step, in: scenario) else { continue }
            let from = observed ?? triggered ?? startMs + UInt64((planned?.start ?? 0) * 1000)
            let until = marks[stepMark(step.id, end: true)] ?? from + UInt64(seconds * 1000)
            let nodes = (try? targets(step.action, manifest: manifest)) ?? []
            let link = (try? FaultEngine.linkFault(step.action, nodes: manifest.nodes.map { ($0.name, $0.labels) })) ?? nil
            let description = (link?.description ?? "\(step.action.name) \(nodes.joined(separator: ","))")
                + (observed == nil ? " (as scheduled)" : "")
            var start = FaultEvent(t: from, event: seconds == 0 ? "instant" : "start", id: step.id,
                                   action: step.action.name, description: description, nodes: nodes)
            if observed == nil { start.slackMs = scheduleSlackMs }
            try FaultEngine.record(dir, start)
            if seconds == 0 { continue }
            try FaultEngine.record(dir, .init(t: until, event: "end", id: step.id, action: step.action.name,
                                              description: description, nodes: nodes))
        }
    }

    /// The mark a Task leaves in every node's log when it has applied a step (`end`: undone it). An id too
    /// long for a mark (over 59 bytes) leaves none: that window is then the schedule's.
    public static func stepMark(_ id: String, end: Bool) -> String {
        (end ? "end:" : "step:") + id
    }

    /// The mark a Task that only waits for a step's trigger leaves when it holds (Chaos Mesh acts next).
    public static func triggerMark(_ id: String) -> String { "trigger:" + id }

    /// Every mark in the collected logs: its median time over the nodes that logged it (a node whose
    /// clock a TimeChaos shifts does not move it).
    static func marks(dir: String, manifest: RunManifest) -> [String: UInt64] {
        var times: [String: [UInt64]] = [:]
        for node in manifest.nodes {
            guard let handle = FileHandle(forReadingAtPath: dir + "/" + node.dir + "/events.jsonl") else { continue }
            defer { try? handle.close() }
            var seen = Set<String>()
            for line in (handle.readDataToEndOfFile()).split(separator: UInt8(ascii: "\n")) {
                guard let (name, t) = mark(in: line), seen.insert(name).inserted else { continue }
                times[name, default: []].append(t)
            }
        }
        return times.mapValues { $0.sorted()[$0.count / 2] }
    }

    /// A mark event's name and time, from one line of an event log.
    static func mark(in line: some Collection<UInt8>) -> (String, UInt64)? {
        let text = String(decoding: line, as: UTF8.self)
        guard text.contains("\"mark\""),
              let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              object["event"] as? String == "mark", let name = object["name"] as? String,
              let t = object["t"] as? NSNumber else { return nil }
        return (name, t.uint64Value)
    }

    public static let scheduleStartMark = "schedule-start"

    /// How late a scheduled fault may take effect: the Workflow's own steps plus Chaos Mesh's injection
    /// (hundreds of milliseconds; the rehearsal's nftables rules, 0.2-0.3 s for four pods).
    public static let scheduleSlackMs: UInt64 = 1_000

    /// The collector's mark once its load steps are signed and the cluster is up: the `ready` Task of a
    /// file with load steps waits for it, so no step fires while the collector is still signing.
    public static let collectorReadyMark = "collector-ready"

    /// Every node logs a named moment (`POST /mark`); a node that does not answer is skipped.
    public static func mark(_ name: String, dir: String, manifest: RunManifest) async {
        guard let token = try? RunFolder.token(dir), name.utf8.count <= 64,
              let body = try? JSONEncoder().encode(["name": name]) else { return }
        await withTaskGroup(of: Void.self) { group in
            for node in manifest.nodes {
                group.addTask {
                    _ = try? await ControlClient.request(host: node.host, port: node.controlPort, method: .POST,
                                                         path: "/mark", token: token, body: Array(body), timeout: .seconds(1))
                }
            }
        }
    }

    /// When a named moment was marked (`schedule-start`: the Workflow's `ready` Task marks every node once
    /// the cluster finalizes), read from the first nodes' event logs over their control ports as the logs
    /// grow. Nil when none has it within `timeoutSeconds`.
    public static func waitForMark(_ name: String, dir: String, manifest: RunManifest, timeoutSeconds: Double) async -> UInt64? {
        guard let token = try? RunFolder.token(dir) else { return nil }
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        var offsets: [String: Int] = [:]
        let nodes = manifest.nodes.filter { $0.role == "validator" } + manifest.nodes.filter { $0.role != "validator" }
        while Date() < deadline {
            for node in nodes.prefix(4) {
                let offset = offsets[node.name] ?? 0
                guard let response = try? await ControlClient.request(host: node.host, port: node.controlPort,
                                                                      path: "/events/\(offset)", token: token,
                                                                      timeout: .seconds(2)),
                      response.status == 200 else { continue }
                if let t = markTime(in: response.body, named: name) { return t }
                offsets[node.name] = offset + response.body.count
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }

    /// The time of the first mark of that name in whole lines of an event log.
    static func markTime(in bytes: [UInt8], named name: String) -> UInt64? {
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            if let (found, t) = mark(in: line), found == name { return t }
        }
        return nil
    }

    /// A node's whole event log, in chunks of whole lines; its size.
    static func fetchEvents(_ node: RunManifest.NodeEntry, dir: String) async throws -> Int {
        let token = try RunFolder.token(dir)
        let path = dir + "/" + node.dir + "/events.jsonl"
        guard FileManager.default.createFile(atPath: path, contents: nil) else { throw RunError("cannot write \(path)") }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        var offset = 0
        // Bounded: a log of more than 64 GiB is not one a run writes.
        for _ in 0..<16_384 {
            var response: ControlClient.Response?
            for attempt in 0..<5 {
                response = try? await ControlClient.request(host: node.host, port: node.controlPort, path: "/events/\(offset)",
                                                            token: token, timeout: .seconds(10))
                if response?.status == 200 { break }
                try await Task.sleep(for: .milliseconds(200 << attempt))
            }
            guard let response, response.status == 200 else {
                throw RunError("\(node.name) (\(node.host)): its event log could not be fetched from byte \(offset)"
                               + (response.map { ": \(String(decoding: $0.body, as: UTF8.self))" } ?? ""))
            }
            if response.body.isEmpty { break }
            try handle.write(contentsOf: response.body)
            offset += response.body.count
        }
        return offset
    }

    static func targets(_ action: FaultAction, manifest: RunManifest) throws -> [String] {
        switch action {
        case .kill(let t), .pause(let t), .resume(let t), .restart(let t), .skew(let t, _), .upgrade(let t, _, _, _),
             .rpc(let t, _), .byzantine(let t, _):
            return try FaultEngine.resolve(t, in: manifest)
        case .partition(let groups):
            return try FaultEngine.resolve(groups.flatMap { $0 }, in: manifest)
        case .link(_, let from, let to):
            return try FaultEngine.resolve(from + to, in: manifest)
        case .heal:
            return []
        }
    }
}
