import ArgumentParser
import Cluster
import Consensus
import Formats
import Foundation
import Liveness
import Simulation

/// `faultline compare FILE… --protocols tendermint,hotstuff2`: each scenario run with each protocol, the same
/// cluster, faults and expectations, then a table (terminal, `compare.md`), `compare.json` and `compare.html`.
struct Compare: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run scenarios with several consensus protocols and compare them side by side. Exit 0 if every "
            + "run passed, 1 if one failed, 2 for bad input, 3 if none failed but one was inconclusive.")

    @Argument(help: "Scenario files (TOML); a folder means every scenario file in it.")
    var files: [String]

    @Option(help: "Protocols, comma-separated (\(BFT.ProtocolName.names)).")
    var protocols: String = BFT.ProtocolName.allCases.map(\.rawValue).joined(separator: ",")

    @Flag(help: "Simulate the runs (virtual time, seconds each) instead of running real clusters.")
    var simulate = false

    @Option(help: "Where to write compare.html, compare.json and compare.md (default: a new folder under --runs).")
    var out: String?

    @Option(help: "Seed for keys and accounts (default: each file's).")
    var seed: UInt64?

    @Option(help: "Folder that holds run folders.")
    var runs: String = ".faultline/runs"

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("give at least one scenario file") }
        for name in protocols.split(separator: ",") where BFT.ProtocolName(rawValue: String(name)) == nil {
            throw ValidationError("unknown protocol '\(name)': expected \(BFT.ProtocolName.names)")
        }
    }

    func run() async throws {
        let names = protocols.split(separator: ",").compactMap { BFT.ProtocolName(rawValue: String($0)) }
        var scenarios: [Scenario] = []
        for path in try scenarioPaths() {
            do { scenarios.append(try Scenario.load(path: path)) } catch { throw Exit.badInput("\(error)") }
            if simulate {
                do { try Simulator.checkSupported(scenarios.last!) } catch { throw Exit.badInput("\(error)") }
            }
        }
        let dir = out ?? runs + "/compare-" + RunFolder.stamp()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        print("comparing \(names.map(\.rawValue).joined(separator: ", ")) on \(scenarios.count) scenario(s)"
              + (simulate ? ", simulated" : ""))
        var comparison = Comparison(protocols: names.map(\.rawValue), simulated: simulate)
        for scenario in scenarios {
            for name in names {
                var variant = scenario
                variant.topology.consensusProtocol = name
                let (report, runDir) = try await runOne(variant)
                let path = runDir + "/report.html"
                comparison.add(report, reportPath: path.hasPrefix("/") ? path : Self.relative(path, from: dir))
                let run = comparison.runs.last!
                print(String(format: "  %@ · %@: %@, %@ tx/s, gap %.2f s, %@ msgs and %@ sigs per block",
                             scenario.topology.name, name.rawValue, run.verdict,
                             String(format: "%.0f", run.throughputTxPerSecond), run.longestGapSeconds,
                             run.messagesPerBlock.map { String(format: "%.1f", $0) } ?? "–",
                             run.signaturesPerBlock.map { String(format: "%.1f", $0) } ?? "–"))
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(comparison).write(to: URL(fileURLWithPath: dir + "/compare.json"))
        try comparison.markdown.write(toFile: dir + "/compare.md", atomically: true, encoding: .utf8)
        try comparison.html().write(toFile: dir + "/compare.html", atomically: true, encoding: .utf8)
        print("\n" + comparison.markdown + "\n")
        for line in comparison.summaryLines { print(line) }
        print("comparison: \(dir)/compare.html, compare.json, compare.md")
        let verdicts = comparison.runs.map(\.verdict)
        if verdicts.contains("failed") { throw ExitCode(1) }
        if verdicts.contains("inconclusive") { throw ExitCode(3) }
    }

    /// One scenario with one protocol: a real run (`faultline run`) or a simulated one (`faultline simulate`).
    func runOne(_ scenario: Scenario) async throws -> (Report, String) {
        if simulate {
            let settings = Simulator.Settings(seed: seed ?? scenario.topology.seed)
            let (built, _, _) = try Simulate.simulateOnce(scenario, settings: settings, runs: runs)
            try Reports.write(built.report, to: built.runDir)
            return (built.report, built.runDir)
        }
        let (report, dir) = try await Run.runOnce(scenario, runs: runs, seed: seed, prometheus: false, out: nil,
                                                  summary: false)
        return (report, dir)
    }

    func scenarioPaths() throws -> [String] {
        var paths: [String] = []
        for path in files {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw Exit.badInput("\(path): no such file or folder")
            }
            guard isDirectory.boolValue else {
                paths.append(path)
                continue
            }
            let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            for name in names.sorted() where name.hasSuffix(".toml") {
                let file = path + "/" + name
                // As ci/liveness.sh: a file with a [scenario] table (a line of its own, not a comment's mention).
                if let text = try? String(contentsOfFile: file, encoding: .utf8),
                   text.split(separator: "\n").contains(where: { $0.hasPrefix("[scenario]") }) {
                    paths.append(file)
                }
            }
        }
        return paths
    }

    /// `path` as seen from folder `dir` (both under the working directory).
    static func relative(_ path: String, from dir: String) -> String {
        let depth = dir.split(separator: "/").filter { $0 != "." }.count
        return String(repeating: "../", count: depth) + path
    }
}
