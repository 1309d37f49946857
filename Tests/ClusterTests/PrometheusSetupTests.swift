import Foundation
import Testing
@testable import Cluster
import Formats

/// In CI (`CI` set, as `.ci/run` does) a missing promtool fails the tests that need it; on a developer's
/// machine without it they say so and check the rest.
func promtool(_ arguments: [String]) throws -> (code: Int32, output: String)? {
    let result = try Promtool.run(arguments)
    if result == nil, ProcessInfo.processInfo.environment["CI"] != nil {
        Issue.record("promtool is not installed (Debian package prometheus); CI needs it")
    }
    return result
}

@Suite struct PrometheusSetupTests {
    static let topology = """
        [cluster]
        name = "watched"
        base_port = 31000
        [[node]]
        name = "v1"
        labels = { region = "us-east-1", "rack-id" = "7" }
        [[node]]
        name = "v2"
        labels = { region = "eu-west-1" }
        [[node]]
        name = "rpc1"
        role = "rpc"
        [[node]]
        name = "gw"
        role = "gateway"

        """

    func runFolder() throws -> (root: String, dir: String) {
        let root = NSTemporaryDirectory() + "faultline-prometheus-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let (dir, _) = try RunFolder.create(topology: try Topology.parse(Self.topology, path: "watched.toml"),
                                            runsRoot: root + "/runs")
        return (root, dir)
    }

    func targets(_ dir: String) throws -> [String: (target: String, labels: [String: String])] {
        let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/prometheus/targets.json"))
        let groups = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        var byNode: [String: (String, [String: String])] = [:]
        for group in groups {
            let labels = try #require(group["labels"] as? [String: String])
            let targets = try #require(group["targets"] as? [String])
            byNode[labels["node"] ?? "?"] = (targets.joined(separator: ","), labels)
        }
        return byNode
    }

    @Test func everyNodeIsATargetOnItsControlPortWithItsLabels() throws {
        let (root, dir) = try runFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try PrometheusSetup.write(runDir: dir)
        let manifest = try RunFolder.load(dir)
        let byNode = try targets(dir)
        #expect(Set(byNode.keys) == ["v1", "v2", "rpc1", "gw"])
        for node in manifest.nodes {
            #expect(byNode[node.name]?.target == "127.0.0.1:\(node.controlPort)", "\(node.name)")
        }
        #expect(byNode["v1"]?.labels == ["cluster": "watched", "node": "v1", "role": "validator", "version": "1",
                                         "region": "us-east-1", "rack_id": "7"])
        #expect(byNode["gw"]?.labels["role"] == "gateway")
        let config = try String(contentsOfFile: dir + "/prometheus/prometheus.yml", encoding: .utf8)
        let tokenPath = URL(fileURLWithPath: dir).standardizedFileURL.path + "/token"
        #expect(config.contains("credentials_file: \"\(tokenPath)\""), "\(config)")
        #expect(config.contains("files: [targets.json]") && config.contains("- rules.yml"))
    }

    /// An upgrade rewrites the node's config; the targets follow it. A killed node stays a target.
    @Test func theTargetsFollowAnUpgradedNodesVersion() throws {
        let (root, dir) = try runFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try PrometheusSetup.refreshTargets(runDir: dir)
        #expect(!FileManager.default.fileExists(atPath: dir + "/prometheus/targets.json"),
                "a run without Prometheus gets no files")
        try PrometheusSetup.write(runDir: dir)
        try FaultEngine.rewriteConfig(dir + "/nodes/v2/node.json") { $0.version = 3 }
        try PrometheusSetup.refreshTargets(runDir: dir)
        let byNode = try targets(dir)
        #expect(byNode["v2"]?.labels["version"] == "3")
        #expect(byNode["v1"]?.labels["version"] == "1")
    }

    @Test func promtoolAcceptsTheConfigAndTheRules() throws {
        let (root, dir) = try runFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try PrometheusSetup.write(runDir: dir)
        guard let config = try promtool(["check", "config", dir + "/prometheus/prometheus.yml"]) else { return }
        #expect(config.code == 0, "\(config.output)")
        #expect(config.output.contains("SUCCESS: \(AlertRules.names.count) rules found"), "\(config.output)")
    }

    static var tools: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path + "/Tools/prometheus"
    }

    /// The repository's copy is what `faultline prometheus --rules FILE` writes (the recorded tests use it).
    @Test func theRulesFileInToolsIsTheOneTheBinaryWrites() throws {
        let file = try String(contentsOfFile: Self.tools + "/rules.yml", encoding: .utf8)
        #expect(file == AlertRules.yaml, "Tools/prometheus/rules.yml is stale: `faultline prometheus --rules Tools/prometheus/rules.yml`")
    }

    /// `promtool test rules` on series Prometheus scraped from real runs of the library: each rule fires in
    /// its outage, stays silent before it, in quickstart and where the fix is on.
    @Test func eachRuleFiresInItsOutageOnRecordedRuns() throws {
        let tests = try FileManager.default.contentsOfDirectory(atPath: Self.tools + "/tests").filter { $0.hasSuffix(".yml") }.sorted()
        #expect(tests.count >= 12)
        var fired = Set<String>()
        for test in tests {
            let text = try String(contentsOfFile: Self.tools + "/tests/" + test, encoding: .utf8)
            let blocks = text.components(separatedBy: "      - eval_time: ").dropFirst()
            for block in blocks where !block.contains("exp_alerts: []") {
                if let line = block.split(separator: "\n").first(where: { $0.contains("alertname: ") }) {
                    fired.insert(String(line.split(separator: " ").last ?? ""))
                }
            }
            guard let result = try promtool(["test", "rules", Self.tools + "/tests/" + test]) else { continue }
            #expect(result.code == 0, "\(test): \(result.output)")
        }
        let untested: Set<String> = []
        #expect(fired == Set(AlertRules.names).subtracting(untested), "rules expected to fire in a recorded outage")
    }

    @Test func labelNamesArePrometheusLabelNames() {
        #expect(PrometheusSetup.labelName("region") == "region")
        #expect(PrometheusSetup.labelName("rack-id") == "rack_id")
        #expect(PrometheusSetup.labelName("1zone") == "_1zone")
        #expect(PrometheusSetup.labelName("") == "_")
    }
}
