import Foundation
import Testing
@testable import Cluster
import Formats

extension ClusterEndToEndTests {
    /// A GET to the run's Prometheus HTTP API, decoded.
    static func prometheus(_ port: Int, _ path: String, query: String? = nil) async throws -> [String: Any] {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-_.~")
        let full = query.map { path + "?query=" + ($0.addingPercentEncoding(withAllowedCharacters: allowed) ?? "") } ?? path
        let answer = try await ControlClient.request(port: port, path: full, token: nil, timeout: .seconds(5))
        return (try JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any])?["data"] as? [String: Any] ?? [:]
    }

    static func results(_ port: Int, _ query: String) async throws -> [[String: Any]] {
        try await prometheus(port, "/api/v1/query", query: query)["result"] as? [[String: Any]] ?? []
    }

    /// The issue's check as a user runs it: `faultline up Topologies/partition-halves.toml --prometheus`;
    /// a real Prometheus scrapes every node; the finality-stall alert is silent before the partition,
    /// fires during it and resolves after the heal. Needs Debian's `prometheus` (CI installs it).
    @Test(.timeLimit(.minutes(3)))
    func aRealPrometheusScrapesTheClusterAndSeesThePartitionHalt() async throws {
        guard PrometheusSetup.binary() != nil else {
            if ProcessInfo.processInfo.environment["CI"] != nil {
                Issue.record("prometheus is not installed (Debian package prometheus); CI needs it")
            }
            return
        }
        let root = NSTemporaryDirectory() + "faultline-e2e-prometheus-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let up = try Self.faultline(["up", Self.repositoryRoot + "/Topologies/partition-halves.toml",
                                     "--runs", root + "/runs", "--prometheus"])
        #expect(up.code == 0, "up failed: \(up.out)\(up.err)")
        let dir = try #require(try FileManager.default.contentsOfDirectory(atPath: root + "/runs").first.map { root + "/runs/" + $0 })
        defer { _ = try? Self.faultline(["down", "--run", dir]) }
        let url = try #require(PrometheusSetup.url(runDir: dir), "no prometheus runs: \(up.out)")
        #expect(up.out.contains("prometheus: \(url)"))
        let port = try #require(Int(url.split(separator: ":").last ?? ""))
        let stall = "ALERTS{alertname=\"FaultlineFinalityStalled\"}"

        // Every node a target, and up.
        var health: [String: String] = [:]
        let targetsDeadline = Date().addingTimeInterval(30)
        while Date() < targetsDeadline {
            let active = try await Self.prometheus(port, "/api/v1/targets")["activeTargets"] as? [[String: Any]] ?? []
            health = Dictionary(active.compactMap { target in
                ((target["labels"] as? [String: String])?["node"]).map { ($0, target["health"] as? String ?? "?") }
            }, uniquingKeysWith: { first, _ in first })
            if health.count == 4, health.values.allSatisfy({ $0 == "up" }) { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(health == ["v1": "up", "v2": "up", "v3": "up", "v4": "up"], "\(health)")

        // Before the partition: seven seconds of scrapes (more than the rule's 5 s window), finality moving,
        // and the alert never pending or firing.
        let beforeDeadline = Date().addingTimeInterval(30)
        while Date() < beforeDeadline {
            let samples = try await Self.results(port, "count_over_time(faultline_height{node=\"v1\"}[1m])")
            if let value = (samples.first?["value"] as? [Any])?.last as? String, Int(value) ?? 0 >= 7 { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        let grown = try await Self.results(port, "delta(faultline_height{node=\"v1\"}[1m])")
        #expect(Double((grown.first?["value"] as? [Any])?.last as? String ?? "") ?? 0 > 5, "\(grown)")
        #expect(try await Self.results(port, "max_over_time(\(stall)[5m])").isEmpty, "the stall alert fired before the partition")

        // Every query of the Grafana dashboard parses and runs against this Prometheus (its variables as "all").
        let dashboard = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath:
            Self.repositoryRoot + "/Tools/grafana/faultline-dashboard.json"))) as? [String: Any] ?? [:]
        let queries = (dashboard["panels"] as? [[String: Any]] ?? []).flatMap { panel in
            (panel["targets"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String }
        }
        #expect(queries.count >= 15)
        var heightsShown = false
        for query in queries {
            let expanded = query.replacingOccurrences(of: "$cluster", with: ".*").replacingOccurrences(of: "$node", with: ".*")
            var allowed = CharacterSet.alphanumerics
            allowed.insert(charactersIn: "-_.~")
            let path = "/api/v1/query?query=" + (expanded.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")
            let answer = try await ControlClient.request(port: port, path: path, token: nil, timeout: .seconds(5))
            let json = try JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any]
            #expect(answer.status == 200 && json?["status"] as? String == "success", "\(query): \(String(decoding: answer.body, as: UTF8.self))")
            if query.hasPrefix("faultline_height") {
                heightsShown = ((json?["data"] as? [String: Any])?["result"] as? [Any])?.count == 4
            }
        }
        #expect(heightsShown, "the dashboard's height panel shows the four validators")

        // During it: firing.
        #expect(try Self.faultline(["fault", "partition", "v1,v2", "v3,v4", "--run", dir]).code == 0)
        var firing = false
        let firingDeadline = Date().addingTimeInterval(30)
        while Date() < firingDeadline, !firing {
            firing = try await !Self.results(port, "ALERTS{alertname=\"FaultlineFinalityStalled\",alertstate=\"firing\"}").isEmpty
            if !firing { try await Task.sleep(for: .milliseconds(250)) }
        }
        #expect(firing, "the stall alert did not fire during a 2|2 partition")

        // After the heal: resolved.
        #expect(try Self.faultline(["fault", "heal", "--run", dir]).code == 0)
        var resolved = false
        let resolvedDeadline = Date().addingTimeInterval(30)
        while Date() < resolvedDeadline, !resolved {
            resolved = try await Self.results(port, stall).isEmpty
            if !resolved { try await Task.sleep(for: .milliseconds(250)) }
        }
        #expect(resolved, "the stall alert still fires after the heal")
        #expect(try Self.faultline(["down", "--run", dir]).code == 0)
        #expect(PrometheusSetup.url(runDir: dir) == nil, "down left prometheus running")
    }
}

extension ClusterEndToEndTests {
    static let everyRoleText = """
        [cluster]
        name = "e2e-roles"
        chain_id = "faultline-e2e-roles"
        [timing]
        timeout_propose_ms = 200
        timeout_commit_ms = 50
        [load]
        accounts = 8
        [rollup]
        challenge_window_blocks = 5
        [gateway]
        head_poll_ms = 100
        [[node]]
        name = "v1"
        labels = { region = "us-east-1" }
        [[node]]
        name = "v2"
        [[node]]
        name = "v3"
        [[node]]
        name = "v4"
        [[node]]
        name = "seq"
        role = "sequencer"
        [[node]]
        name = "r1"
        role = "replica"
        [[node]]
        name = "rpc1"
        role = "rpc"
        [[node]]
        name = "gw"
        role = "gateway"
        """

    /// `promtool check metrics` finds nothing to fix on any role's `/metrics`: HELP and TYPE for every
    /// metric, counters named `_total`, units in names. Needs promtool (CI installs it).
    @Test(.timeLimit(.minutes(2)))
    func everyRolesMetricsPassPromtool() async throws {
        guard Promtool.path != nil else {
            if ProcessInfo.processInfo.environment["CI"] != nil {
                Issue.record("promtool is not installed (Debian package prometheus); CI needs it")
            }
            return
        }
        let folder = try ScratchFolder("roles", file: "roles.toml", text: Self.everyRoleText)
        defer { folder.remove() }
        let up = try await ClusterOps.up(topology: try Topology.load(path: folder.file), runsRoot: folder.runs)
        var downed = false
        defer { if !downed { Task { try? await ClusterOps.down(dir: up.dir) } } }
        let token = try RunFolder.token(up.dir)
        // Every node answers (the gauges exist from the start; the check is of names, help and types).
        try await ClusterOps.waitUntil(dir: up.dir, timeoutSeconds: 30) { states in
            states.allSatisfy { $0.status != nil }
        }
        // Every metric the alert rules and the Grafana dashboard read is one some node serves (counters with
        // labels appear at their first increment: waited for, bounded).
        let dashboard = try String(contentsOfFile: Self.repositoryRoot + "/Tools/grafana/faultline-dashboard.json", encoding: .utf8)
        let used = Self.metricNames(in: AlertRules.yaml).union(Self.metricNames(in: dashboard))
        #expect(used.count >= 20, "\(used.sorted())")
        func scrape(_ node: RunManifest.NodeEntry) async throws -> (Int, String) {
            let response = try await ControlClient.request(port: node.controlPort, path: "/metrics", token: token)
            return (response.status, String(decoding: response.body, as: UTF8.self))
        }
        var served = Set<String>()
        let deadline = Date().addingTimeInterval(20)
        while !served.isSuperset(of: used), Date() < deadline {
            for node in up.manifest.nodes { served.formUnion(Self.metricNames(in: try await scrape(node).1)) }
            if !served.isSuperset(of: used) { try await Task.sleep(for: .milliseconds(200)) }
        }
        var checked: [String] = []
        for node in up.manifest.nodes {
            let (status, text) = try await scrape(node)
            #expect(status == 200 && text.contains("# HELP faultline_build_info"), "\(node.name): \(String(text.prefix(200)))")
            let complaints: String = try #require(try Promtool.checkMetrics(text))
            #expect(complaints.isEmpty, "\(node.name) (\(node.role)): \(complaints)")
            checked.append(node.role)
        }
        #expect(Set(checked) == ["validator", "sequencer", "replica", "rpc", "gateway"])
        #expect(used.subtracting(served).isEmpty, "rules or dashboard read metrics no node serves: \(used.subtracting(served).sorted())")
        try await ClusterOps.down(dir: up.dir)
        downed = true
    }
}

extension ClusterEndToEndTests {
    /// `faultline_…` names in a text (a rule, a dashboard, `/metrics`).
    static func metricNames(in text: String) -> Set<String> {
        var names = Set<String>()
        var rest = Substring(text)
        while let start = rest.range(of: "faultline_") {
            let tail = rest[start.lowerBound...]
            let name = tail.prefix { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
            names.insert(String(name))
            rest = tail.dropFirst(name.count)
        }
        return names.filter { !$0.hasPrefix("faultline_version") && $0 != "faultline_" }
    }
}
