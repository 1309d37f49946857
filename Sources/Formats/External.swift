/// A consensus system Faultline did not write, run as the nodes of a cluster (`role = "external"`):
/// how to start one member, how to tell it is up, how to read its progress, and the client workload
/// that exercises it. `[external] system = "etcd"` fills every field for etcd 3.4; any field can be
/// given instead, so another binary needs only a file.
///
/// Templates fill `{name}`, `{index}` (from 1), `{address}` (the member's address in its namespace),
/// `{data}` (its data folder), `{cluster}` (a token unique to the run) and `{peers}` (every member's
/// `peer` template, joined with commas).
public struct ExternalSystem: Codable, Sendable, Equatable {
    /// An HTTP request the runner makes to a member: `url` is a template; `path` is a dotted JSON path to
    /// read (its value as a number or a numeric string; for `ready`, any value other than false/"false").
    public struct Probe: Codable, Sendable, Equatable {
        public var url: String
        public var method: String
        public var body: String
        public var path: String?

        public init(url: String, method: String = "GET", body: String = "", path: String? = nil) {
            self.url = url
            self.method = method
            self.body = body
            self.path = path
        }
    }

    /// The client workload. `etcd`: writes and reads on a few keys (registers) through etcd's v3 JSON
    /// gateway, each write in a transaction with a key of its own (so every acknowledged write can be
    /// looked for at the end); clients spread over the members.
    public struct Workload: Codable, Sendable, Equatable {
        public var kind: String
        /// The client URL of a member (template), e.g. "http://{address}:2379".
        public var url: String
        public var clients: Int
        public var keys: Int
        /// Operations per second over all clients.
        public var ratePerSecond: Int
        /// Share of operations that are writes.
        public var writePercent: Double
        /// A request with no answer after this long counts as unknown (a write may still take effect).
        public var timeoutMs: Int
        /// Reads as etcd's default ("linearizable", through the leader) or "serializable" (served by the
        /// member from its own state: fast, and stale on a member cut off from the leader — not linearizable).
        public var reads: String = "linearizable"
        /// Clients stay on their member when a request fails (instead of moving to the next one).
        public var sticky: Bool = false

        public init(kind: String = "etcd", url: String, clients: Int = 3, keys: Int = 3, ratePerSecond: Int = 60,
                    writePercent: Double = 50, timeoutMs: Int = 1_000) {
            self.kind = kind
            self.url = url
            self.clients = clients
            self.keys = keys
            self.ratePerSecond = ratePerSecond
            self.writePercent = writePercent
            self.timeoutMs = timeoutMs
        }
    }

    /// "etcd", or "custom" when every field comes from the file.
    public var system: String
    /// The program, checked on $PATH before a run starts (with `install`, how to get it).
    public var binary: String
    public var install: String
    public var command: String
    public var peer: String
    public var ready: Probe
    public var progress: Probe
    public var workload: Workload?
    /// JSON paths, in the progress probe's answer, of the leader's member id and of the answering member's
    /// own id: with both, fault selectors can say `leader` and `followers` (resolved when the fault fires).
    public var leaderPath: String?
    public var memberPath: String?

    public static let workloads = ["etcd"]
    /// `leader`, `followers` (every member but the leader) and `follower` (the first of them by name).
    public static let roleSelectors: Set<String> = ["leader", "followers", "follower"]

    /// etcd 3.4 (Debian's etcd-server): client port 2379, peer port 2380, progress as the member's
    /// revision (it grows by one per committed write), elections within a second of a leader's loss.
    public static let etcd = ExternalSystem(
        system: "etcd", binary: "etcd", install: "apt-get install etcd-server etcd-client",
        command: "etcd --name {name} --data-dir {data} --listen-peer-urls http://{address}:2380 "
            + "--listen-client-urls http://{address}:2379 --advertise-client-urls http://{address}:2379 "
            + "--initial-advertise-peer-urls http://{address}:2380 --initial-cluster {peers} "
            + "--initial-cluster-state new --initial-cluster-token {cluster} --heartbeat-interval 100 "
            + "--election-timeout 1000 --logger zap --log-outputs stderr",
        peer: "{name}=http://{address}:2380",
        ready: Probe(url: "http://{address}:2379/health", path: "health"),
        progress: Probe(url: "http://{address}:2379/v3/maintenance/status", method: "POST", body: "{}",
                        path: "header.revision"),
        workload: Workload(url: "http://{address}:2379"), leaderPath: "leader", memberPath: "header.member_id")

    /// One member's values for the templates.
    public struct Member: Sendable, Equatable {
        public var name: String
        public var index: Int
        public var address: String
        public var data: String

        public init(name: String, index: Int, address: String, data: String) {
            self.name = name
            self.index = index
            self.address = address
            self.data = data
        }
    }

    /// `template` with one member's values (and every member's `peer` for `{peers}`).
    public func render(_ template: String, member: Member, members: [Member], cluster: String) -> String {
        var text = template
        if text.contains("{peers}") {
            let peers = members.map { render(peer, member: $0, members: [], cluster: cluster) }.joined(separator: ",")
            text = text.replacing("{peers}", with: peers)
        }
        return text.replacing("{name}", with: member.name)
            .replacing("{index}", with: String(member.index))
            .replacing("{address}", with: member.address)
            .replacing("{data}", with: member.data)
            .replacing("{cluster}", with: cluster)
    }

    /// The command line of one member, split into words (no shell: spaces separate, nothing is expanded).
    public func argv(member: Member, members: [Member], cluster: String) -> [String] {
        render(command, member: member, members: members, cluster: cluster).split(separator: " ").map(String.init)
    }

    /// Reads a dotted path (`header.revision`) from a decoded JSON object.
    public static func value(at path: String, in object: Any) -> Any? {
        var current: Any? = object
        for key in path.split(separator: ".") {
            current = (current as? [String: Any])?[String(key)]
        }
        return current
    }

    /// A JSON value as a whole number: a number, or a string of digits (etcd's 64-bit fields).
    public static func number(_ value: Any?) -> UInt64? {
        if let text = value as? String { return UInt64(text) }
        if let number = value as? Int, number >= 0 { return UInt64(number) }
        if let number = value as? Double, number >= 0 { return UInt64(number) }
        return nil
    }
}

extension Topology {
    /// `[external]`: the foreign system the `role = "external"` nodes run.
    static func parseExternal(_ reader: TableReader, nodes: [Node], network: NetworkMode, path: String)
        throws(TopologyError) -> ExternalSystem? {
        let table = try reader.table("external", required: false)
        let members = nodes.filter { $0.role == "external" }
        guard let table else {
            if !members.isEmpty {
                throw TopologyError(file: path, field: "external", problem: "role = \"external\" nodes need an [external] "
                                    + "table (e.g. system = \"etcd\")")
            }
            return nil
        }
        guard !members.isEmpty else {
            throw table.fail("system", "[external] needs nodes with role = \"external\" to run it")
        }
        if let other = nodes.first(where: { $0.role != "external" }) {
            throw TopologyError(file: path, field: "node", problem: "'\(other.name)' is a \(other.role): a run tests one "
                                + "system, so with [external] every node has role = \"external\"")
        }
        guard network == .netns else {
            throw TopologyError(file: path, field: "cluster.network", problem: "external nodes need network = \"netns\" "
                                + "(each member is a host of its own with the same ports)")
        }
        try table.allowOnly(["system", "binary", "install", "command", "peer", "ready_url", "ready_method", "ready_body",
                             "ready_path", "progress_url", "progress_method", "progress_body", "progress_path",
                             "workload", "workload_url", "clients", "keys", "rate_ops_per_s", "write_percent",
                             "timeout_ms", "leader_path", "member_path", "reads", "sticky", "args"])
        let name = try table.string("system") ?? "custom"
        var system: ExternalSystem
        switch name {
        case "etcd": system = .etcd
        case "custom":
            guard let command = try table.string("command") else {
                throw table.fail("command", "a custom system needs command (or system = \"etcd\")")
            }
            guard let ready = try table.string("ready_url"), let progress = try table.string("progress_url") else {
                throw table.fail(table.table["ready_url"] == nil ? "ready_url" : "progress_url",
                                 "a custom system needs ready_url and progress_url")
            }
            system = ExternalSystem(system: "custom", binary: String(command.split(separator: " ").first ?? ""),
                                    install: "", command: command, peer: "{name}={address}",
                                    ready: .init(url: ready), progress: .init(url: progress), workload: nil)
        default:
            throw table.fail("system", "expected \"etcd\" or \"custom\", got '\(name)'")
        }
        system.binary = try table.string("binary") ?? system.binary
        system.install = try table.string("install") ?? system.install
        system.command = try table.string("command") ?? system.command
        // `args`: flags appended to the command (e.g. etcd's "--pre-vote"), without restating it all.
        if let args = try table.string("args"), !args.isEmpty { system.command += " " + args }
        system.peer = try table.string("peer") ?? system.peer
        system.leaderPath = try table.string("leader_path") ?? system.leaderPath
        system.memberPath = try table.string("member_path") ?? system.memberPath
        if (system.leaderPath == nil) != (system.memberPath == nil) {
            throw table.fail(system.leaderPath == nil ? "leader_path" : "member_path",
                             "leader_path and member_path go together (the leader's id, and each member's own)")
        }
        for (probe, prefix) in [(\ExternalSystem.ready, "ready"), (\ExternalSystem.progress, "progress")] {
            system[keyPath: probe].url = try table.string(prefix + "_url") ?? system[keyPath: probe].url
            let method = try table.string(prefix + "_method") ?? system[keyPath: probe].method
            guard ["GET", "POST"].contains(method) else { throw table.fail(prefix + "_method", "expected GET or POST, got '\(method)'") }
            system[keyPath: probe].method = method
            system[keyPath: probe].body = try table.string(prefix + "_body") ?? system[keyPath: probe].body
            system[keyPath: probe].path = try table.string(prefix + "_path") ?? system[keyPath: probe].path
            guard system[keyPath: probe].url.hasPrefix("http://") else {
                throw table.fail(prefix + "_url", "expected an http:// URL template, got '\(system[keyPath: probe].url)'")
            }
        }
        guard system.progress.path != nil else {
            throw table.fail("progress_path", "the progress probe needs the JSON path of a number that grows with each "
                             + "committed write (etcd: header.revision)")
        }
        if let kind = try table.string("workload") {
            guard kind == "none" || ExternalSystem.workloads.contains(kind) else {
                throw table.fail("workload", "expected one of \(ExternalSystem.workloads.joined(separator: ", ")) or \"none\", got '\(kind)'")
            }
            system.workload = kind == "none" ? nil : system.workload ?? ExternalSystem.Workload(kind: kind, url: "")
        }
        if var workload = system.workload {
            workload.url = try table.string("workload_url") ?? workload.url
            guard workload.url.hasPrefix("http://") else {
                throw table.fail("workload_url", "the workload needs the members' client URL template, e.g. "
                                 + "\"http://{address}:2379\"")
            }
            workload.clients = Int(try table.uint("clients", range: 1...64) ?? UInt64(workload.clients))
            workload.keys = Int(try table.uint("keys", range: 1...64) ?? UInt64(workload.keys))
            workload.ratePerSecond = Int(try table.uint("rate_ops_per_s", range: 1...10_000) ?? UInt64(workload.ratePerSecond))
            workload.writePercent = try table.double("write_percent", range: 0...100) ?? workload.writePercent
            workload.timeoutMs = Int(try table.uint("timeout_ms", range: 50...60_000) ?? UInt64(workload.timeoutMs))
            workload.reads = try table.string("reads") ?? workload.reads
            guard ["linearizable", "serializable"].contains(workload.reads) else {
                throw table.fail("reads", "expected \"linearizable\" or \"serializable\", got '\(workload.reads)'")
            }
            workload.sticky = try table.bool("sticky") ?? workload.sticky
            system.workload = workload
        }
        return system
    }
}
