import ArgumentParser
import Cluster
import Foundation

/// `faultline prometheus`: points a real Prometheus at a running cluster.
struct PrometheusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prometheus",
        abstract: "Write a Prometheus config, targets and alert rules for a run, and start Prometheus on loopback.",
        discussion: """
            The run's prometheus/ folder gets prometheus.yml (every node's /metrics with the run's bearer \
            token file), targets.json (file-based discovery; labels cluster, node, role, version and the \
            topology's labels; rewritten as faults restart and upgrade nodes) and rules.yml (the alert \
            rules). Then Debian's `prometheus` starts on 127.0.0.1 and its URL is printed; `faultline down` \
            stops it with the nodes.
            """)

    @OptionGroup var runOption: RunOption

    @Flag(help: "Only write the files; do not start Prometheus.")
    var noStart = false

    @Flag(help: "Stop the run's Prometheus.")
    var stop = false

    @Option(help: ArgumentHelp("Write the alert rules to FILE (for your own Prometheus) and exit; no run needed.",
                               valueName: "FILE"))
    var rules: String?

    func run() async throws {
        if let rules {
            do {
                try AlertRules.yaml.write(toFile: rules, atomically: true, encoding: .utf8)
            } catch {
                throw Exit.badInput("cannot write \(rules): \(error)")
            }
            print("wrote the alert rules to \(rules)")
            return
        }
        let dir = runOption.dir
        if stop {
            print(await PrometheusSetup.stop(runDir: dir) ? "stopped the run's prometheus" : "no prometheus runs for \(dir)")
            return
        }
        try await PrometheusCommand.setUp(runDir: dir, start: !noStart)
    }

    /// Writes the files and, with `start`, starts Prometheus and prints where to look.
    static func setUp(runDir: String, start: Bool) async throws {
        do {
            try PrometheusSetup.write(runDir: runDir)
        } catch {
            throw Exit.badInput("\(error)")
        }
        let folder = PrometheusSetup.folder(runDir)
        print("prometheus: config \(folder)/prometheus.yml (targets.json, rules.yml beside it)")
        guard start else { return }
        let url: String
        do {
            url = try await PrometheusSetup.start(runDir: runDir)
        } catch {
            throw Exit.failure("\(error) (the cluster runs on; `faultline down` stops it)")
        }
        // Debian's build has only the classic web UI (/classic/alerts); `/` leads to whichever there is.
        print("prometheus: \(url) (web UI; as JSON: curl \(url)/api/v1/alerts, \(url)/api/v1/targets)")
    }
}
