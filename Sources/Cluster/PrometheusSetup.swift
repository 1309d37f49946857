import Formats
import Foundation

/// Points a real Prometheus at a run: `prometheus/` in the run folder holds a `prometheus.yml` that
/// scrapes every node's `/metrics` (control port, the run's bearer token from its file), a file-based
/// service discovery list of the nodes (`targets.json`), and the alert rules (`rules.yml`). The list is
/// rewritten after every process fault, so an upgraded node's `version` label follows it; a killed node
/// stays listed and Prometheus reports it down (`up == 0`), as it would a machine that died.
public enum PrometheusSetup {
    public static let folderName = "prometheus"
    /// Local clusters make blocks every few milliseconds to a second: a one-second scrape sees a halt
    /// within seconds, and the rules' windows are in seconds for that reason.
    public static let scrapeIntervalS = 1

    public static func folder(_ runDir: String) -> String { runDir + "/" + folderName }

    /// True once `faultline prometheus` (or `up --prometheus`) wrote the files of this run.
    public static func isConfigured(_ runDir: String) -> Bool {
        FileManager.default.fileExists(atPath: folder(runDir) + "/prometheus.yml")
    }

    /// Writes `prometheus.yml`, `rules.yml` and `targets.json` into the run's `prometheus/` folder.
    public static func write(runDir: String) throws {
        let manifest = try RunFolder.load(runDir)
        let dir = folder(runDir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let runPath = URL(fileURLWithPath: runDir).standardizedFileURL.path
        try replace(dir + "/prometheus.yml", with: config(clusterName: manifest.name, tokenPath: runPath + "/token"))
        try replace(dir + "/rules.yml", with: AlertRules.yaml)
        try writeTargets(runDir: runDir, manifest: manifest)
    }

    /// Rewrites `targets.json` from the manifest and each node's current config; a no-op for a run
    /// Prometheus was never set up for.
    public static func refreshTargets(runDir: String) throws {
        guard isConfigured(runDir) else { return }
        try writeTargets(runDir: runDir, manifest: try RunFolder.load(runDir))
    }

    static func writeTargets(runDir: String, manifest: RunManifest) throws {
        var versions: [String: UInt16] = [:]
        for node in manifest.nodes {
            let path = runDir + "/" + node.dir + "/node.json"
            if let data = FileManager.default.contents(atPath: path),
               let config = try? JSONDecoder().decode(NodeConfig.self, from: data) {
                versions[node.name] = config.version
            }
        }
        try replace(folder(runDir) + "/targets.json", with: targets(manifest, versions: versions))
    }

    /// One target group per node (Faultline's own nodes: a foreign binary has no `/metrics` of ours).
    static func targets(_ manifest: RunManifest, versions: [String: UInt16]) -> String {
        let groups: [[String: Any]] = manifest.nodes.filter { $0.role != "external" }.map { node in
            var labels: [String: String] = [:]
            for (key, value) in node.labels { labels[labelName(key)] = value }
            labels["cluster"] = manifest.name
            labels["node"] = node.name
            labels["role"] = node.role
            if let version = versions[node.name] { labels["version"] = String(version) }
            let host = node.host.contains(":") ? "[\(node.host)]" : node.host
            return ["targets": ["\(host):\(node.controlPort)"], "labels": labels]
        }
        let data = (try? JSONSerialization.data(withJSONObject: groups, options: [.prettyPrinted, .sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// A topology label's key as a Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
    static func labelName(_ key: String) -> String {
        var name = String(key.map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
        if name.first?.isNumber ?? true { name = "_" + name }
        return name
    }

    static func config(clusterName: String, tokenPath: String) -> String {
        """
        # Written by `faultline prometheus` for the run '\(clusterName)'. The targets and the rules are
        # the files beside this one; the targets file changes as faults kill, restart and upgrade nodes.
        global:
          scrape_interval: \(scrapeIntervalS)s
          scrape_timeout: \(scrapeIntervalS)s
          evaluation_interval: \(scrapeIntervalS)s
          external_labels:
            faultline_run: \(yamlString(clusterName))
        rule_files:
          - rules.yml
        scrape_configs:
          - job_name: faultline
            metrics_path: /metrics
            authorization:
              type: Bearer
              credentials_file: \(yamlString(tokenPath))
            file_sd_configs:
              - files: [targets.json]
                refresh_interval: \(scrapeIntervalS)s

        """
    }

    static func yamlString(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// Write then rename: Prometheus watches the targets file and must never read half of it.
    static func replace(_ path: String, with text: String) throws {
        let temporary = path + ".tmp"
        try text.write(toFile: temporary, atomically: false, encoding: .utf8)
        guard rename(temporary, path) == 0 else {
            throw RunError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}

/// A Prometheus server for a run: Debian's `prometheus` on loopback, its data, log, pid and URL in the
/// run's `prometheus/` folder; `faultline down` stops it with the nodes.
extension PrometheusSetup {
    /// How long a starting Prometheus may take to answer `/-/ready`.
    public static let readySecondsMax = 60.0

    /// `prometheus` on the PATH, unless $FAULTLINE_PROMETHEUS names another binary.
    public static func binary() -> String? {
        if let explicit = ProcessInfo.processInfo.environment["FAULTLINE_PROMETHEUS"] { return explicit }
        return HostNetwork.which("prometheus")
    }

    /// The URL of the run's Prometheus while its process lives, else nil.
    public static func url(runDir: String) -> String? {
        let dir = folder(runDir)
        guard let pid = readPid(dir + "/pid"), Supervisor.isAlive(pid),
              let url = try? String(contentsOfFile: dir + "/url", encoding: .utf8) else { return nil }
        return url.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Starts Prometheus with the run's files (writing them first if needed) and returns its URL once it
    /// answers ready; an already running one is kept.
    public static func start(runDir: String) async throws -> String {
        if let running = url(runDir: runDir) { return running }
        guard let binary = binary() else {
            throw RunError("prometheus is not installed (Debian: `apt-get install prometheus`; or set FAULTLINE_PROMETHEUS)")
        }
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw RunError("no prometheus binary at \(binary) (FAULTLINE_PROMETHEUS)")
        }
        if !isConfigured(runDir) { try write(runDir: runDir) }
        let dir = URL(fileURLWithPath: folder(runDir)).standardizedFileURL.path
        var picker = PortAllocator.Picker(range: PortAllocator.pickedPortMin..<max(PortAllocator.ephemeralPortMin(),
                                                                                 PortAllocator.pickedPortMin + 1_000))
        let port = try picker.next(SOCK_STREAM, on: "127.0.0.1")
        let pid = try Supervisor.spawn("prometheus", executable: binary, arguments: [
            binary, "--config.file=\(dir)/prometheus.yml", "--storage.tsdb.path=\(dir)/data",
            "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn",
            // Discovered targets are taken at once, not after the default five seconds.
            "--scrape.discovery-reload-interval=1s",
        ], logPath: dir + "/prometheus.log", pidPath: dir + "/pid")
        let url = "http://127.0.0.1:\(port)"
        try replace(dir + "/url", with: url + "\n")
        let deadline = Date().addingTimeInterval(readySecondsMax)
        while Date() < deadline {
            guard Supervisor.isAlive(pid) else {
                throw RunError("prometheus exited while starting; its log (\(dir)/prometheus.log):\n" + logTail(dir))
            }
            if let answer = try? await ControlClient.request(port: port, path: "/-/ready", token: nil), answer.status == 200,
               try await everyTargetScraped(port: port, runDir: runDir) {
                return url
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        _ = Supervisor.signal(pid, SIGKILL)
        throw RunError("prometheus did not answer ready within \(Int(readySecondsMax)) s; its log:\n" + logTail(dir))
    }

    /// True once Prometheus has scraped each target of `targets.json` at least once (up or down): from
    /// then on its data covers the whole cluster.
    static func everyTargetScraped(port: Int, runDir: String) async throws -> Bool {
        let listed = (try? Data(contentsOf: URL(fileURLWithPath: folder(runDir) + "/targets.json")))
            .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [[String: Any]] }?.count ?? 0
        guard let answer = try? await ControlClient.request(port: port, path: "/api/v1/targets?state=active", token: nil),
              let json = try? JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any],
              let active = (json["data"] as? [String: Any])?["activeTargets"] as? [[String: Any]] else { return false }
        return active.filter { ($0["health"] as? String ?? "unknown") != "unknown" }.count >= listed
    }

    /// SIGTERM, then SIGKILL after five seconds; true if one was running.
    @discardableResult
    public static func stop(runDir: String) async -> Bool {
        guard let pid = readPid(folder(runDir) + "/pid"), Supervisor.isAlive(pid) else { return false }
        _ = Supervisor.signal(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(5)
        while Supervisor.isAlive(pid), Date() < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if Supervisor.isAlive(pid) { _ = Supervisor.signal(pid, SIGKILL) }
        return true
    }

    static func readPid(_ path: String) -> pid_t? {
        (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    static func logTail(_ dir: String, lines: Int = 8) -> String {
        let text = (try? String(contentsOfFile: dir + "/prometheus.log", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }
}

/// Prometheus's `promtool` (Debian package prometheus), which checks configs, rules and `/metrics` text.
public enum Promtool {
    public static var path: String? { HostNetwork.which("promtool") }

    /// Runs `promtool ARGUMENTS` with `input` on stdin; nil when promtool is not installed.
    public static func run(_ arguments: [String], input: String? = nil) throws -> (code: Int32, output: String)? {
        guard let path else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let output = Pipe(), stdin = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        try stdin.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// `promtool check metrics` on a node's `/metrics` text: its complaints, empty when clean.
    public static func checkMetrics(_ text: String) throws -> String? {
        guard let result = try run(["check", "metrics"], input: text) else { return nil }
        return result.code == 0 ? "" : "exit \(result.code): " + result.output
    }
}
