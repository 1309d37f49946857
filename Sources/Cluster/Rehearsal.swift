import Formats
import Foundation
import Synchronization
import Yams
#if canImport(Glibc)
import Glibc
#endif

/// `faultline rehearse kubernetes DIR`: an export run on this machine the way a cluster would run it,
/// from the exported files alone. Each StatefulSet pod and the collector get a network namespace of
/// their own (`HostNetwork`), with the pods' DNS names in the namespace's hosts file; each container
/// starts as a process with its args (and `$(POD_NAME)`), its projected volume written from the
/// ConfigMap and Secret and bind-mounted at its mountPath in a mount namespace of its own, its data
/// volume kept across restarts. The Workflow is interpreted: Serial, Parallel, Suspend, Task (the
/// container run to completion), NetworkChaos as nftables/tc rules (`KernelFaults`) for its
/// deadline, PodChaos pod-failure (down for the deadline) and pod-kill (started again at once). The
/// reports are the collector Job's, once its readiness probe (the report exists) holds.
public enum Rehearsal {
    public struct Outcome: Sendable {
        public var reports: String
        public var log: [String]
    }

    struct Pod {
        var name: String
        var service: String
        var args: [String]
        var env: [String: String]
        /// mountPath → host folder.
        var mounts: [(path: String, source: String)]
        var readOnly: [String] = []
    }

    public static func run(_ folder: String, work: String, binaries: String, out: String,
                           say: @escaping @Sendable (String) -> Void) async throws -> Outcome {
        let objects = try load(folder)
        guard let configMap = objects.first(where: { $0["kind"]?.string == "ConfigMap" }),
              let secret = objects.first(where: { $0["kind"]?.string == "Secret" }),
              let workflow = objects.first(where: { $0["kind"]?.string == "Workflow" }),
              let job = objects.first(where: { $0["kind"]?.string == "Job" }) else {
            throw RunError("\(folder): an export has a ConfigMap, a Secret, a Workflow and a collector Job")
        }
        let data = strings(configMap["data"]), secrets = strings(secret["stringData"])
        _ = cleanLeftovers(work: work) // a rehearsal killed before in this folder
        try? FileManager.default.removeItem(atPath: work)
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)

        // Pods: one per StatefulSet replica, its volumes written out.
        var pods: [Pod] = []
        for set in objects where set["kind"]?.string == "StatefulSet" {
            let name = set["metadata"]?["name"]?.string ?? ""
            let spec = set["spec"]
            let template = spec?["template"]?["spec"]
            let container = template?["containers"]?[0]
            for ordinal in 0..<(spec?["replicas"]?.int ?? 1) {
                let podName = "\(name)-\(ordinal)"
                let root = work + "/pods/" + podName
                let mounts = try volumes(template, container: container, root: root, data: data, secrets: secrets,
                                         claims: spec?["volumeClaimTemplates"])
                pods.append(Pod(name: podName, service: spec?["serviceName"]?.string ?? name,
                                args: (container?["args"]?.array() ?? []).compactMap(\.string),
                                env: ["POD_NAME": podName], mounts: mounts))
            }
        }
        let jobSpec = job["spec"]?["template"]?["spec"]
        let collectorContainer = jobSpec?["containers"]?[0]
        var collectorArgs = (collectorContainer?["args"]?.array() ?? []).compactMap(\.string)
        // Every pod shares this machine's cores here: spam rates are shares of them, as in a local run.
        if let flag = collectorArgs.firstIndex(of: "--validator-cores"), flag + 1 < collectorArgs.count {
            say("rehearsal: the pods share this machine's \(ProcessInfo.processInfo.activeProcessorCount) cores, not \(collectorArgs[flag + 1]) each: "
                + "the collector's spam rates are shares of them (--validator-cores dropped)")
            collectorArgs.removeSubrange(flag...(flag + 1))
        }
        // Its container's /tmp is its own on a cluster; here the collected run folder goes under the work folder
        // (where `faultline report` can read it again) instead of piling up in this machine's /tmp.
        if !collectorArgs.contains("--work") { collectorArgs += ["--work", work + "/collector/run"] }
        let collector = Pod(name: "collector", service: "", args: collectorArgs,
                            env: [:], mounts: try volumes(jobSpec, container: collectorContainer, root: work + "/collector",
                                                          data: data, secrets: secrets, claims: nil))

        var plan = try HostNetwork.reserve(names: pods.map(\.name) + ["collector", "tasks"])
        let mountPoints = MountPoints()
        let processes = Processes(binaries: binaries, work: work)
        // What to remove if this process is killed: `clean(work)` (also at the next rehearsal there).
        try record(Leftovers(plan: plan, mountPoints: []), work: work)
        defer {
            processes.stopAll()
            let left = clean(Leftovers(plan: plan, mountPoints: mountPoints.paths))
            try? FileManager.default.removeItem(atPath: work + "/" + Leftovers.fileName)
            if !left.isEmpty { say("rehearsal: could not remove \(left.joined(separator: ", "))") }
        }
        try HostNetwork.build(&plan)
        let namespace = workflow["metadata"]?["namespace"]?.string ?? "default"
        for member in plan.members {
            try FileManager.default.createDirectory(atPath: "/etc/netns/" + member.namespace, withIntermediateDirectories: true)
        }
        try writeHosts(plan: plan, pods: pods, namespace: namespace)
        for pod in pods + [collector] { try mountPoints.make(pod.mounts.map(\.path)) }
        try mountPoints.make(["/tmp/run"])
        try record(Leftovers(plan: plan, mountPoints: mountPoints.paths), work: work)

        let started = Date()
        for pod in pods { try processes.start(pod, namespace: plan.member(pod.name)!.namespace) }
        try processes.start(collector, namespace: plan.member("collector")!.namespace)
        say("rehearsal: \(pods.count) pods and the collector in namespaces on \(plan.subnet)")
        let interpreter = WorkflowRun(workflow: workflow, plan: plan, namespace: namespace, pods: pods, processes: processes,
                                      data: data, secrets: secrets, work: work, mountPoints: mountPoints, say: say,
                                      started: started)
        let schedule = Task { try await interpreter.run() }
        // The collector is ready when its readiness probe holds: the report exists.
        let reportPath = collector.mounts.first { $0.path == "/reports" }.map { $0.source + "/report.json" } ?? ""
        let deadline = Date().addingTimeInterval(go(job["spec"]?["activeDeadlineSeconds"]?.int.map { "\($0)s" } ?? "3600s"))
        while !FileManager.default.fileExists(atPath: reportPath) {
            guard Date() < deadline else { throw RunError("the collector wrote no report before its Job's deadline") }
            processes.keepRunning(pods, plan: interpreter.plan, interpreter: interpreter)
            if !processes.isRunning("collector") {
                throw RunError("the collector stopped without a report: " + processes.tail("collector"))
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        schedule.cancel()
        let log = await interpreter.log.all
        try? FileManager.default.removeItem(atPath: out)
        try FileManager.default.copyItem(atPath: (reportPath as NSString).deletingLastPathComponent, toPath: out)
        // A template this machine could not carry out means the report is not the schedule's.
        let failures = interpreter.failures
        guard failures.isEmpty else {
            throw RunError("the Workflow was not carried out as written (reports in \(out) anyway): "
                           + failures.joined(separator: "; "))
        }
        return Outcome(reports: out, log: log)
    }

    // MARK: what a killed rehearsal leaves

    /// The network and the mount points of a rehearsal, in its work folder while it runs.
    public struct Leftovers: Codable, Sendable {
        public var plan: NetworkPlan
        public var mountPoints: [String]
        static let fileName = "rehearsal.json"
    }

    static func record(_ leftovers: Leftovers, work: String) throws {
        try JSONEncoder().encode(leftovers).write(to: URL(fileURLWithPath: work + "/" + Leftovers.fileName))
    }

    /// Removes what a rehearsal in `work` left (its processes, namespaces, bridge, hosts files, mount
    /// points); what could not be removed. Nothing if no rehearsal ran there.
    @discardableResult
    public static func cleanLeftovers(work: String) -> [String] {
        guard let data = FileManager.default.contents(atPath: work + "/" + Leftovers.fileName),
              let leftovers = try? JSONDecoder().decode(Leftovers.self, from: data) else { return [] }
        let left = clean(leftovers)
        if left.isEmpty { try? FileManager.default.removeItem(atPath: work + "/" + Leftovers.fileName) }
        return left
    }

    static func clean(_ leftovers: Leftovers) -> [String] {
        // Every process still in one of the rehearsal's namespaces goes first (they hold the mounts).
        for member in leftovers.plan.members {
            let pids = (try? HostNetwork.run(["ip", "netns", "pids", member.namespace])) ?? ""
            for pid in pids.split(separator: "\n").compactMap({ Int32($0) }) { _ = Glibc.kill(pid, SIGKILL) }
        }
        let left = HostNetwork.destroy(leftovers.plan)
        for member in leftovers.plan.members { try? FileManager.default.removeItem(atPath: "/etc/netns/" + member.namespace) }
        let made = MountPoints()
        made.paths = leftovers.mountPoints
        made.remove()
        return left + made.paths
    }

    // MARK: files

    static func load(_ folder: String) throws -> [Node] {
        let kustomization = try String(contentsOfFile: folder + "/kustomization.yaml", encoding: .utf8)
        let resources = (try Yams.compose(yaml: kustomization)?["resources"]?.array() ?? []).compactMap(\.string)
        var objects: [Node] = []
        for resource in resources {
            let text = try String(contentsOfFile: folder + "/" + resource, encoding: .utf8)
            objects += try Array(Yams.compose_all(yaml: text))
        }
        return objects
    }

    static func strings(_ node: Node?) -> [String: String] {
        var out: [String: String] = [:]
        for (key, value) in node?.mapping ?? [:] { if let k = key.string, let v = value.string { out[k] = v } }
        return out
    }

    /// The container's mounts as host folders: projected volumes written from the ConfigMap and Secret,
    /// claims and emptyDirs as empty folders.
    static func volumes(_ spec: Node?, container: Node?, root: String, data: [String: String], secrets: [String: String],
                        claims: Node?) throws -> [(path: String, source: String)] {
        var out: [(path: String, source: String)] = []
        let fm = FileManager.default
        for mount in container?["volumeMounts"]?.array() ?? [] {
            guard let name = mount["name"]?.string, let path = mount["mountPath"]?.string else { continue }
            let source = root + "/volumes/" + name
            try fm.createDirectory(atPath: source, withIntermediateDirectories: true)
            let volume = spec?["volumes"]?.array().first { $0["name"]?.string == name }
            for item in volume?["projected"]?["sources"]?.array() ?? [] {
                let (store, ref) = item["configMap"] != nil ? (data, item["configMap"]) : (secrets, item["secret"])
                for entry in ref?["items"]?.array() ?? [] {
                    guard let key = entry["key"]?.string, let relative = entry["path"]?.string else { continue }
                    guard let text = store[key] else { throw RunError("volume \(name): no key '\(key)'") }
                    let file = source + "/" + relative
                    try fm.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                    try text.write(toFile: file, atomically: true, encoding: .utf8)
                }
            }
            if volume == nil, claims?.array().contains(where: { $0["metadata"]?["name"]?.string == name }) != true {
                throw RunError("mount \(name) at \(path): no such volume or claim")
            }
            out.append((path, source))
        }
        return out
    }

    /// A Go duration ("4000ms", "1m30s") in seconds.
    static func go(_ text: String) -> Double {
        var total = 0.0, number = ""
        var index = text.startIndex
        while index < text.endIndex {
            let c = text[index]
            if c.isNumber || c == "." { number.append(c); index = text.index(after: index); continue }
            var unit = String(c)
            index = text.index(after: index)
            if unit == "m" || unit == "u" || unit == "n", index < text.endIndex, text[index] == "s" { unit += "s"; index = text.index(after: index) }
            let scales: [String: Double] = ["h": 3_600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6, "ns": 1e-9]
            let scale = scales[unit] ?? 0
            total += (Double(number) ?? 0) * scale
            number = ""
        }
        return total
    }

    /// Empty folders made on the host to bind-mount over (container paths), removed at the end.
    final class MountPoints: @unchecked Sendable {
        private var made: [String] = []
        var paths: [String] {
            get { made }
            set { made = newValue }
        }
        func make(_ paths: [String]) throws {
            for path in paths where !FileManager.default.fileExists(atPath: path) {
                var parts: [String] = []
                var walk = path
                while !FileManager.default.fileExists(atPath: walk) {
                    parts.append(walk)
                    walk = (walk as NSString).deletingLastPathComponent
                }
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
                made += parts.reversed()
            }
        }
        /// Removes the folders made (empty ones only); those that could not be removed stay listed.
        func remove() {
            made = made.reversed().filter { rmdir($0) != 0 && FileManager.default.fileExists(atPath: $0) }.reversed()
        }
    }
}

extension Rehearsal {
    /// Every namespace's hosts file (`ip netns exec` binds it at /etc/hosts): the pods' DNS names, as the
    /// cluster's DNS answers them. Rewritten in place, so processes already running read the new addresses.
    static func writeHosts(plan: NetworkPlan, pods: [Pod], namespace: String) throws {
        var hosts = "127.0.0.1 localhost\n"
        for pod in pods {
            guard let address = plan.member(pod.name)?.address else { continue }
            hosts += "\(address) \(pod.name).\(pod.service) \(pod.name).\(pod.service).\(namespace).svc "
                + "\(pod.name).\(pod.service).\(namespace).svc.cluster.local\n"
        }
        for member in plan.members {
            let path = "/etc/netns/\(member.namespace)/hosts"
            if !FileManager.default.fileExists(atPath: path) {
                try hosts.write(toFile: path, atomically: false, encoding: .utf8)
                continue
            }
            guard let handle = FileHandle(forWritingAtPath: path) else { throw RunError("cannot write \(path)") }
            defer { try? handle.close() }
            try handle.truncate(atOffset: 0)
            try handle.write(contentsOf: Data(hosts.utf8))
        }
    }

    /// The rehearsal's containers as processes: `ip netns exec NS unshare --mount` with the volumes
    /// bound at their mount paths, then the container's args (`$(VAR)` expanded from its env).
    final class Processes: @unchecked Sendable {
        private let lock = NSLock()
        private var running: [String: Process] = [:]
        /// Pods PodChaos holds down (pod-failure): not started again until it ends.
        private var held: Set<String> = []
        private var restarts: [String: Int] = [:]
        let binaries: String
        let work: String

        init(binaries: String, work: String) {
            self.binaries = binaries
            self.work = work
        }

        @discardableResult
        func start(_ pod: Pod, namespace: String, name: String? = nil) throws -> Process {
            let label = name ?? pod.name
            let process = Process()
            process.executableURL = URL(fileURLWithPath: HostNetwork.which("ip") ?? "/usr/sbin/ip")
            let binds = pod.mounts.map { "mount --bind '\($0.source)' '\($0.path)'" }.joined(separator: " && ")
            let args = pod.args.map { arg in
                pod.env.reduce(arg) { $0.replacingOccurrences(of: "$(\($1.key))", with: $1.value) }
            }
            process.arguments = ["netns", "exec", namespace, "unshare", "--mount", "--propagation", "private", "--",
                                 "sh", "-c", (binds.isEmpty ? "" : binds + " && ") + "exec \"$@\"", "sh"] + args
            var environment = ProcessInfo.processInfo.environment
            environment["PATH"] = binaries + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            for (key, value) in pod.env { environment[key] = value }
            process.environment = environment
            let logPath = work + "/\(label).log"
            if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
            let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
            log.seekToEndOfFile()
            process.standardOutput = log
            process.standardError = log
            try process.run()
            lock.withLock { running[label] = process }
            return process
        }

        func isRunning(_ name: String) -> Bool { lock.withLock { running[name]?.isRunning ?? false } }

        /// SIGKILL, as a node dies; `hold`: not started again until `release`.
        func kill(_ name: String, hold: Bool) {
            let process = lock.withLock { () -> Process? in
                if hold { held.insert(name) }
                return running[name]
            }
            guard let process, process.isRunning else { return }
            // The node is a child of ip → unshare → sh (exec'd): kill the whole group under ip.
            _ = Glibc.kill(process.processIdentifier, SIGKILL)
            for child in Self.descendants(process.processIdentifier) { _ = Glibc.kill(child, SIGKILL) }
            process.waitUntilExit()
        }

        /// Back in the cluster after PodChaos: it starts at once, its back-off forgotten.
        func release(_ name: String) {
            lock.withLock {
                held.remove(name)
                restarts[name] = 0
                nextStart[name] = nil
            }
        }

        private var nextStart: [String: Date] = [:]
        private var startedAt: [String: Date] = [:]

        /// Containers that exited (a clean stop after an upgrade, a crash) start again, as a
        /// StatefulSet's restartPolicy Always does, with the kubelet's back-off: at once the first time,
        /// then 10 s, 20 s, 40 s, … at most 300 s, the count reset by 10 minutes of running. Pods
        /// PodChaos holds down stay down.
        func keepRunning(_ pods: [Pod], plan: NetworkPlan, interpreter: WorkflowRun) {
            let now = Date()
            for pod in pods {
                let due = lock.withLock { () -> Bool in
                    guard !held.contains(pod.name), !(running[pod.name]?.isRunning ?? false) else { return false }
                    if let ranSince = startedAt[pod.name], now.timeIntervalSince(ranSince) > 600 { restarts[pod.name] = 0 }
                    if let at = nextStart[pod.name] { return now >= at }
                    let count = restarts[pod.name, default: 0]
                    let wait = count == 0 ? 0 : min(300, 10 * pow(2, Double(count - 1)))
                    nextStart[pod.name] = now.addingTimeInterval(wait)
                    return wait == 0
                }
                guard due, let member = plan.member(pod.name) else { continue }
                lock.withLock {
                    restarts[pod.name, default: 0] += 1
                    nextStart[pod.name] = nil
                    startedAt[pod.name] = now
                }
                _ = try? start(pod, namespace: member.namespace)
                interpreter.note("\(pod.name) started again")
            }
        }

        func tail(_ name: String) -> String {
            let text = (try? String(contentsOfFile: work + "/\(name).log", encoding: .utf8)) ?? ""
            return text.split(separator: "\n").suffix(5).joined(separator: " | ")
        }

        func stopAll() {
            let names = lock.withLock { Array(running.keys) }
            for name in names { kill(name, hold: true) }
        }

        /// Every process below `pid` (from /proc).
        static func descendants(_ pid: Int32) -> [Int32] {
            var children: [Int32: [Int32]] = [:]
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
                guard let child = Int32(entry),
                      let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                      let close = stat.lastIndex(of: ")") else { continue }
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                if fields.count > 1, let parent = Int32(fields[1]) { children[parent, default: []].append(child) }
            }
            var out: [Int32] = []
            var queue = [pid]
            while let next = queue.popLast() {
                for child in children[next] ?? [] { out.append(child); queue.append(child) }
            }
            return out
        }
    }

    /// The Workflow, run: each template as Chaos Mesh would, faults by this machine's kernel.
    final class WorkflowRun: @unchecked Sendable {
        let templates: [String: Node]
        let entry: String
        /// The pods' addresses: a pod PodChaos kills comes back with a new one, as a new pod does.
        var plan: NetworkPlan { lock.withLock { currentPlan } }
        private var currentPlan: NetworkPlan
        /// The Kubernetes namespace of the pods' DNS names.
        let namespace: String
        let pods: [Pod]
        let processes: Processes
        let data: [String: String]
        let secrets: [String: String]
        let work: String
        let mountPoints: MountPoints
        let say: @Sendable (String) -> Void
        let started: Date
        let log = Log()
        private let lock = NSLock()
        private var active: [String: [FaultEngine.Link]] = [:]

        actor Log {
            var all: [String] = []
            func add(_ line: String) { all.append(line) }
        }

        init(workflow: Node, plan: NetworkPlan, namespace: String, pods: [Pod], processes: Processes, data: [String: String],
             secrets: [String: String], work: String, mountPoints: MountPoints, say: @escaping @Sendable (String) -> Void,
             started: Date) {
            let list = workflow["spec"]?["templates"]?.array() ?? []
            self.templates = Dictionary(list.map { ($0["name"]?.string ?? "", $0) }, uniquingKeysWith: { a, _ in a })
            self.entry = workflow["spec"]?["entry"]?.string ?? ""
            self.currentPlan = plan
            self.namespace = namespace
            self.pods = pods
            self.processes = processes
            self.data = data
            self.secrets = secrets
            self.work = work
            self.mountPoints = mountPoints
            self.say = say
            self.started = started
        }

        func note(_ text: String) {
            let line = String(format: "%6.1f s  ", Date().timeIntervalSince(started)) + text
            say("rehearsal: " + line)
            Task { await log.add(line) }
        }

        func run() async throws {
            do { try await run(entry) } catch { fail(entry, error) }
        }

        /// Templates that could not be carried out here, with why.
        var failures: [String] { lock.withLock { failed } }
        private var failed: [String] = []

        func fail(_ template: String, _ error: Error) {
            guard !(error is CancellationError) else { return }
            lock.withLock { failed.append("\(template): \(error)") }
            note("FAILED \(template): \(error)")
        }

        func run(_ name: String) async throws {
            guard let template = templates[name] else { throw RunError("workflow: no template '\(name)'") }
            let type = template["templateType"]?.string ?? ""
            let deadline = template["deadline"]?.string.map(Rehearsal.go)
            let children = (template["children"]?.array() ?? []).compactMap(\.string)
            switch type {
            case "Serial":
                for child in children { try await run(child) }
            case "Parallel":
                // A branch that fails does not stop the others (as in Chaos Mesh); the failure is kept.
                await withTaskGroup(of: Void.self) { group in
                    for child in children {
                        group.addTask {
                            do { try await self.run(child) } catch { self.fail(child, error) }
                        }
                    }
                }
            case "Suspend":
                try await Task.sleep(for: .milliseconds(Int((deadline ?? 0) * 1000)))
            case "Task":
                try await task(name, template)
            case "NetworkChaos":
                try await network(name, template["networkChaos"], seconds: deadline ?? 0)
            case "PodChaos":
                try await podChaos(name, template["podChaos"], seconds: deadline ?? 0)
            default:
                throw RunError("workflow template \(name): \(type) is not rehearsed on this machine")
            }
        }

        func selected(_ selector: Node?) -> [String] {
            (selector?["pods"]?.mapping?.values.flatMap { $0.array() } ?? []).compactMap(\.string)
        }

        func task(_ name: String, _ template: Node) async throws {
            let container = template["task"]?["container"]
            let root = work + "/tasks/" + name
            let mounts = try Rehearsal.volumes(template["task"], container: container, root: root, data: data,
                                               secrets: secrets, claims: nil)
            let run = root + "/tmp-run"
            try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
            let pod = Pod(name: name, service: "", args: (container?["args"]?.array() ?? []).compactMap(\.string), env: [:],
                          mounts: mounts + [("/tmp/run", run)])
            note("task \(name): \(pod.args.last ?? "")")
            let process = try processes.start(pod, namespace: plan.member("tasks")!.namespace, name: "task-" + name)
            while process.isRunning { try await Task.sleep(for: .milliseconds(10)) }
            note("task \(name) exited \(process.terminationStatus)")
            guard process.terminationStatus == 0 else {
                throw RunError("task exited \(process.terminationStatus): " + processes.tail("task-" + name))
            }
        }

        func network(_ name: String, _ spec: Node?, seconds: Double) async throws {
            let from = selected(spec?["selector"]), to = selected(spec?["target"]?["selector"])
            let action = spec?["action"]?.string ?? ""
            var rule = LinkRule()
            switch action {
            case "partition": rule.blocked = true
            case "loss": rule.lossPercent = Double(spec?["loss"]?["loss"]?.string ?? "") ?? 0
            case "bandwidth":
                let text = spec?["bandwidth"]?["rate"]?.string ?? ""
                rule.bandwidthBytesPerSecond = Int(text.replacingOccurrences(of: "kbps", with: "")).map { $0 * 1000 / 8 }
            case "delay", "duplicate":
                guard plan.netem == true else {
                    throw RunError("\(name): NetworkChaos \(action) needs netem, which this kernel lacks (sch_netem)")
                }
                rule.delayMs = Rehearsal.go(spec?["delay"]?["latency"]?.string ?? "0ms") * 1000
                rule.jitterMs = Rehearsal.go(spec?["delay"]?["jitter"]?.string ?? "0ms") * 1000
                rule.duplicatePercent = Double(spec?["duplicate"]?["duplicate"]?.string ?? "") ?? 0
            default:
                throw RunError("\(name): NetworkChaos action \(action) is not rehearsed")
            }
            var links: [FaultEngine.Link] = []
            let direction = spec?["direction"]?.string ?? "to"
            for a in from { for b in to where a != b {
                if direction != "from" { links.append(.init(from: a, to: b, rule: rule)) }
                if direction != "to" { links.append(.init(from: b, to: a, rule: rule)) }
            } }
            lock.withLock { active[name] = links }
            try push()
            note("\(name): NetworkChaos \(action) \(from.joined(separator: ",")) \(direction) \(to.joined(separator: ",")) for \(seconds) s")
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            _ = lock.withLock { active.removeValue(forKey: name) }
            try push()
            note("\(name): recovered")
        }

        /// Every pod's rules at once (one by one, five pods took 0.3-0.6 s: a fault that late is not the schedule's).
        func push() throws {
            let faults = lock.withLock { Array(active.values) }
            let members = plan.members.filter { member in pods.contains { $0.name == member.name } }
            let errors = Mutex<[String]>([])
            let plan = self.plan
            DispatchQueue.concurrentPerform(iterations: members.count) { index in
                let member = members[index]
                do {
                    try HostNetwork.applyRules(member, plan: plan, inbound: FaultEngine.folded(faults, into: member.name),
                                               outbound: FaultEngine.linkTable(of: member.name, faults: faults).links)
                } catch {
                    errors.withLock { $0.append("\(member.name): \(error)") }
                }
            }
            let problems = errors.withLock { $0 }
            if !problems.isEmpty { throw RunError("fault rules: " + problems.joined(separator: "; ")) }
        }

        /// Gives a pod's namespace the lowest address of the subnet no member has; the old and new address.
        func readdress(_ pod: String) throws -> (String, String) {
            let (member, address) = try lock.withLock { () throws -> (NetworkPlan.Member, String) in
                guard let index = currentPlan.members.firstIndex(where: { $0.name == pod }) else {
                    throw RunError("pod-kill: no pod \(pod) in the rehearsal's network")
                }
                let prefix = currentPlan.bridgeAddress.split(separator: ".").dropLast().joined(separator: ".")
                let taken = Set(currentPlan.members.map(\.address) + [currentPlan.bridgeAddress])
                guard let free = (2...254).map({ "\(prefix).\($0)" }).first(where: { !taken.contains($0) }) else {
                    throw RunError("pod-kill: no free address left in \(currentPlan.subnet)")
                }
                let member = currentPlan.members[index]
                currentPlan.members[index].address = free
                return (member, free)
            }
            try HostNetwork.readdress(member, to: address)
            return (member.address, address)
        }

        func podChaos(_ name: String, _ spec: Node?, seconds: Double) async throws {
            let targets = selected(spec?["selector"])
            let action = spec?["action"]?.string ?? ""
            switch action {
            case "pod-failure":
                for pod in targets { processes.kill(pod, hold: true) }
                note("\(name): pod-failure \(targets.joined(separator: ",")) for \(seconds) s")
                try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
                for pod in targets { processes.release(pod) }
                note("\(name): recovered (the pods start again)")
            case "pod-kill":
                // A killed pod is a new pod: it comes back with a new address under the same DNS name, which
                // its peers must look up again (they do when it says hello).
                for pod in targets { processes.kill(pod, hold: true) }
                var moved: [String] = []
                for pod in targets {
                    let (before, after) = try readdress(pod)
                    moved.append("\(pod) \(before) → \(after)")
                }
                try Rehearsal.writeHosts(plan: plan, pods: pods, namespace: namespace)
                try push()
                for pod in targets { processes.release(pod) }
                note("\(name): pod-kill \(targets.joined(separator: ",")); new addresses: \(moved.joined(separator: ", "))")
            case "container-kill":
                for pod in targets { processes.kill(pod, hold: false) }
                note("\(name): \(action) \(targets.joined(separator: ","))")
            default:
                throw RunError("\(name): PodChaos action \(action) is not rehearsed")
            }
        }
    }
}
