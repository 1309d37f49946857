import Formats
import Foundation
import NIOCore
import NIOHTTP1

/// What Faultline knows of a foreign system's members: their progress (through the `[external]`
/// probes), as node statuses and as the run's event logs.
public enum ExternalProbe {
    /// Host, port and path of a rendered `http://host:port/path` URL.
    static func split(_ url: String) throws -> (host: String, port: Int, path: String) {
        guard url.hasPrefix("http://") else { throw RunError("not an http:// URL: \(url)") }
        let rest = url.dropFirst(7)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        let path = slash == rest.endIndex ? "/" : String(rest[slash...])
        guard let colon = authority.lastIndex(of: ":"), let port = Int(authority[authority.index(after: colon)...]) else {
            return (String(authority), 80, path)
        }
        return (String(authority[..<colon]), port, path)
    }

    static func member(_ node: RunManifest.NodeEntry, manifest: RunManifest, runDir: String) -> ExternalSystem.Member {
        let members = RunFolder.externalMembers(manifest.nodes, runDir: runDir)
        return members.first { $0.name == node.name } ?? members[0]
    }

    /// One request of a probe to a member, its JSON answer decoded.
    static func request(_ probe: ExternalSystem.Probe, system: ExternalSystem, member: ExternalSystem.Member,
                        timeout: TimeAmount = .milliseconds(500)) async throws -> Any {
        let (host, port, path) = try split(system.render(probe.url, member: member, members: [], cluster: ""))
        let response = try await ControlClient.request(host: host, port: port, method: probe.method == "POST" ? .POST : .GET,
                                                       path: path, token: nil, body: Array(probe.body.utf8), timeout: timeout)
        guard response.status == 200 else { throw RunError("\(member.name): HTTP \(response.status) from \(path)") }
        return try JSONSerialization.jsonObject(with: Data(response.body))
    }

    /// The member's progress (etcd: its revision), or nil if it does not answer.
    public static func progress(_ system: ExternalSystem, member: ExternalSystem.Member) async -> UInt64? {
        guard let object = try? await request(system.progress, system: system, member: member) else { return nil }
        return ExternalSystem.number(ExternalSystem.value(at: system.progress.path ?? "", in: object))
    }

    /// Which member leads now, by asking each for its own id and the leader's (nil: none knows one).
    public static func leader(_ system: ExternalSystem, members: [ExternalSystem.Member]) async -> String? {
        guard let leaderPath = system.leaderPath, let memberPath = system.memberPath else { return nil }
        var readings: [(String, Observer.Reading?)] = []
        for member in members {
            let object = try? await request(system.progress, system: system, member: member)
            readings.append((member.name, object.map { object in
                Observer.Reading(revision: nil,
                                 id: ExternalSystem.value(at: memberPath, in: object).map { "\($0)" },
                                 leader: ExternalSystem.value(at: leaderPath, in: object).map { "\($0)" })
            }))
        }
        var ids: [String: String] = [:]
        return Observer.leader(readings, ids: &ids)
    }

    /// A fault's `leader` and `followers` selectors as member names, read from the members now.
    static func resolveRoles(_ action: FaultAction, manifest: RunManifest, runDir: String) async throws -> FaultAction {
        func uses(_ selectors: [String]) -> Bool {
            selectors.flatMap { $0.split(separator: ",") }.contains { ExternalSystem.roleSelectors.contains(String($0)) }
        }
        let all: [String]
        switch action {
        case .kill(let targets), .pause(let targets), .resume(let targets), .restart(let targets): all = targets
        case .partition(let groups): all = groups.flatMap { $0 }
        case .link(_, let from, let to): all = from + to
        default: return action
        }
        guard uses(all) else { return action }
        guard let system = manifest.external, system.leaderPath != nil else {
            throw RunError("'leader' and 'followers' need an [external] system whose probe tells the leader")
        }
        let members = RunFolder.externalMembers(manifest.nodes, runDir: runDir)
        guard let leader = await leader(system, members: members) else {
            throw RunError("no member names a leader now (an election is under way, or a majority is down)")
        }
        func map(_ selectors: [String]) -> [String] {
            selectors.map { selector in
                selector.split(separator: ",").map { part -> String in
                    switch part {
                    case "leader": return leader
                    case "followers": return members.map(\.name).filter { $0 != leader }.joined(separator: ",")
                    case "follower": return members.map(\.name).first { $0 != leader } ?? leader
                    default: return String(part)
                    }
                }.joined(separator: ",")
            }
        }
        switch action {
        case .kill(let targets): return .kill(targets: map(targets))
        case .pause(let targets): return .pause(targets: map(targets))
        case .resume(let targets): return .resume(targets: map(targets))
        case .restart(let targets): return .restart(targets: map(targets))
        case .partition(let groups): return .partition(groups: groups.map(map))
        case .link(let rule, let from, let to): return .link(rule: rule, from: map(from), to: map(to))
        default: return action
        }
    }

    /// Whether the member says it is up: its ready probe answers 200 and, with a path, not false there.
    public static func ready(_ system: ExternalSystem, member: ExternalSystem.Member) async -> Bool {
        guard let object = try? await request(system.ready, system: system, member: member) else { return false }
        guard let path = system.ready.path else { return true }
        guard let value = ExternalSystem.value(at: path, in: object) else { return false }
        return !["false", "0"].contains("\(value)")
    }

    /// A node status for `faultline status` and the waits of `up`: height is the member's progress; no
    /// status while its ready probe says it is not up.
    public static func status(_ node: RunManifest.NodeEntry, manifest: RunManifest, runDir: String) async -> NodeStatus? {
        guard let system = manifest.external else { return nil }
        let member = member(node, manifest: manifest, runDir: runDir)
        guard await ready(system, member: member), let progress = await progress(system, member: member) else { return nil }
        return NodeStatus(name: node.name, role: "external", version: system.system, protocolVersion: 0, height: progress,
                          consensusHeight: progress, round: 0, step: "-", peers: 0, peersTotal: manifest.nodes.count - 1,
                          mempoolTxs: 0, ingressQueue: 0, ingressQueueMax: 0, lastCommitTimeMs: 0, lastBlockId: "",
                          stateRoot: "", txsCommitted: 0, startedAtMs: 0, conflictingVotes: 0, invalidProposals: 0,
                          proposer: "", linkFaults: 0, shapedDrops: 0, clockSkewMs: 0)
    }
}

/// The process (`faultline observe`) that watches a run of external nodes while it lasts: it probes
/// every member's progress into that member's `events.jsonl` (so the same analysis reads it), runs the
/// client workload into `workload/history.jsonl`, and on SIGTERM (from `down`) stops the workload,
/// lets the members settle and reads what each one holds into `workload/final.json`.
public enum Observer {
    public static let pidFile = "observer.pid"

    /// The faultline executable (for starting the observer): $FAULTLINE_BIN, else next to this program.
    public static func binary() -> String {
        if let explicit = ProcessInfo.processInfo.environment["FAULTLINE_BIN"] { return explicit }
        return ((Supervisor.nodeBinary() as NSString).deletingLastPathComponent as NSString).appendingPathComponent("faultline")
    }

    /// Starts `faultline observe --run DIR` in its own session, its output in `observer.log`.
    public static func start(runDir: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary())
        process.arguments = ["observe", "--run", runDir]
        let log = FileHandle(forWritingAtPath: runDir + "/observer.log")
            ?? { _ = FileManager.default.createFile(atPath: runDir + "/observer.log", contents: nil)
                 return FileHandle(forWritingAtPath: runDir + "/observer.log") }()
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        guard FileManager.default.isExecutableFile(atPath: binary()) else {
            throw RunError("the observer needs the faultline binary at \(binary()) (or set FAULTLINE_BIN)")
        }
        try process.run()
        try "\(process.processIdentifier)\n".write(toFile: runDir + "/" + pidFile, atomically: true, encoding: .utf8)
    }

    /// Asks the observer to finish (SIGTERM) and waits for it to write its final reading and exit.
    public static func stop(runDir: String, timeoutSeconds: Double = 30) async {
        guard let text = try? String(contentsOfFile: runDir + "/" + pidFile, encoding: .utf8),
              let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), Supervisor.isAlive(pid) else { return }
        _ = Supervisor.signal(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while Supervisor.isAlive(pid), Date() < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        if Supervisor.isAlive(pid) { _ = Supervisor.signal(pid, SIGKILL) }
        Supervisor.reapChildren()
    }

    /// The observer's main loop; returns after SIGTERM, once the final reading is written.
    public static func run(runDir: String) async throws {
        let manifest = try RunFolder.load(runDir)
        guard let system = manifest.external else { throw RunError("\(runDir) has no external nodes to observe") }
        let members = RunFolder.externalMembers(manifest.nodes, runDir: runDir)
        let stop = StopFlag()
        signal(SIGTERM, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
        source.setEventHandler { stop.set() }
        source.resume()
        let logs = EventLogs(runDir: runDir, manifest: manifest)
        for member in members {
            logs.append(member.name, ["event": "start", "role": "external", "stake": 1, "system": system.system])
        }
        try FileManager.default.createDirectory(atPath: runDir + "/workload", withIntermediateDirectories: true)
        let history = HistoryLog(path: runDir + "/workload/history.jsonl")
        let probe = Task {
            var ids: [String: String] = [:]
            var leader: String?
            while !stop.isSet {
                // Each member's progress, and (where the system tells) its own id and the leader it follows.
                let answers = await withTaskGroup(of: (String, Reading?).self) { group in
                    for member in members {
                        group.addTask {
                            guard let object = try? await ExternalProbe.request(system.progress, system: system,
                                                                                member: member) else { return (member.name, nil) }
                            func text(_ path: String?) -> String? {
                                path.flatMap { ExternalSystem.value(at: $0, in: object) }.map { "\($0)" }
                            }
                            return (member.name, Reading(
                                revision: ExternalSystem.number(ExternalSystem.value(at: system.progress.path ?? "", in: object)),
                                id: text(system.memberPath), leader: text(system.leaderPath)))
                        }
                    }
                    var out: [(String, Reading?)] = []
                    for await answer in group { out.append(answer) }
                    return out
                }
                for (name, reading) in answers {
                    if let revision = reading?.revision { logs.progress(name, revision) }
                }
                // A change of leader, as most members that answer see it, goes into the new leader's log.
                if let name = Observer.leader(answers, ids: &ids), name != leader {
                    leader = name
                    logs.append(name, ["event": "leader", "source": "probe"])
                }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        var workers: [Task<Void, Never>] = []
        if let workload = system.workload {
            for client in 0..<workload.clients {
                workers.append(Task {
                    await EtcdWorkload.client(client, workload: workload, system: system, members: members,
                                              history: history, logs: logs, stop: stop)
                })
            }
        }
        while !stop.isSet { try await Task.sleep(for: .milliseconds(50)) }
        for worker in workers { await worker.value }
        await probe.value
        if let workload = system.workload {
            let final = await EtcdWorkload.finalReading(workload: workload, system: system, members: members)
            // Where each member ended, once settled (the probe stopped with the workload).
            for (name, member) in final.members { if let revision = member.revision { logs.progress(name, revision) } }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(final).write(to: URL(fileURLWithPath: runDir + "/workload/final.json"))
        }
        history.close()
        logs.close()
    }

    /// The member that more than half of those answering name as leader (nil: none), learning each
    /// member's own id into `ids` as it goes (a member that answers later still counts by name).
    static func leader(_ readings: [(String, Reading?)], ids: inout [String: String]) -> String? {
        var named: [String: Int] = [:]
        for (name, reading) in readings {
            guard let reading else { continue }
            if let id = reading.id { ids[id] = name }
            if let id = reading.leader, id != "0" { named[id, default: 0] += 1 }
        }
        guard let top = named.max(by: { $0.value < $1.value }),
              top.value * 2 > readings.filter({ $0.1 != nil }).count else { return nil }
        return ids[top.key]
    }

    /// One probe answer: the member's progress, its own id and the leader it names.
    struct Reading: Sendable {
        var revision: UInt64?
        var id: String?
        var leader: String?
    }

    final class StopFlag: @unchecked Sendable {
        private let lock = NSLock()
        private var value = false
        var isSet: Bool { lock.withLock { value } }
        func set() { lock.withLock { value = true } }
    }

    /// Each member's `events.jsonl`, written by the observer alone: a `commit` event each time the
    /// member's progress (etcd: its revision) is seen to grow, by the probe or by a client's answer.
    final class EventLogs: @unchecked Sendable {
        private let lock = NSLock()
        private var files: [String: UnsafeMutablePointer<FILE>] = [:]
        private var seen: [String: UInt64] = [:]

        init(runDir: String, manifest: RunManifest) {
            for node in manifest.nodes {
                files[node.name] = fopen(runDir + "/" + node.dir + "/events.jsonl", "a")
            }
        }

        func append(_ name: String, _ fields: [String: Any]) {
            var object = fields
            object["t"] = Int(Date().timeIntervalSince1970 * 1000)
            guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
            lock.withLock {
                guard let file = files[name] else { return }
                data.withUnsafeBytes { _ = fwrite($0.baseAddress, 1, $0.count, file) }
                fputc(0x0A, file)
                fflush(file)
            }
        }

        func progress(_ name: String, _ revision: UInt64) {
            let previous: UInt64? = lock.withLock {
                let last = seen[name] ?? 0
                guard revision > last else { return nil }
                seen[name] = revision
                return last
            }
            guard let previous else { return }
            append(name, ["event": "commit", "height": revision, "hash": "", "txs": Int(revision - previous),
                          "source": "probe"])
        }

        func close() { lock.withLock { for file in files.values { fclose(file) }; files = [:] } }
    }

    /// `workload/history.jsonl`: one line per operation when it ends.
    final class HistoryLog: @unchecked Sendable {
        private let lock = NSLock()
        private var file: UnsafeMutablePointer<FILE>?

        init(path: String) { file = fopen(path, "a") }

        func write(_ record: WorkloadRecord) {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            guard let data = try? encoder.encode(record) else { return }
            lock.withLock {
                guard let file else { return }
                data.withUnsafeBytes { _ = fwrite($0.baseAddress, 1, $0.count, file) }
                fputc(0x0A, file)
                fflush(file)
            }
        }

        func close() { lock.withLock { if let file { fclose(file) }; file = nil } }
    }
}
