import ArgumentParser
import Cluster
import Formats
import Foundation
import Simulation

/// `faultline bench simulate`: how much faster than real time the simulator runs a cluster (issue
/// 11's target: one hour of a 4-validator chain at 100 ms blocks in under 4 s, ≥ 1,000×).
struct BenchSimulate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Simulated seconds per wall second for a validator cluster at a block interval, with and without "
            + "event logs.")

    @Option(help: "Simulated hours.")
    var hours = 1.0

    @Option(help: "Validators.")
    var validators = 4

    @Option(help: "Block interval to aim for, in ms (timeout_commit is set to it, less the network's hops).")
    var blockMs = 100

    @Option(help: "Exit 1 when the ratio without logs is below this (0: never).")
    var minRatio = 0.0

    func validate() throws {
        guard hours > 0, hours <= 24 else { throw ValidationError("--hours must be above 0 and at most 24, got \(hours)") }
        guard (1...100).contains(validators) else { throw ValidationError("--validators must be in 1…100, got \(validators)") }
        guard (10...10_000).contains(blockMs) else { throw ValidationError("--block-ms must be in 10…10000, got \(blockMs)") }
    }

    /// One measured run: a `validators`-validator chain at `blockMs` blocks for `hours` simulated hours.
    struct Measurement {
        var ratio: Double
        var wallSeconds: Double
        var outcome: Simulator.Outcome
        var logBytes: Int
    }

    static func measure(hours: Double, validators: Int, blockMs: Int, logsIn folder: String?) throws -> Measurement {
        let text = """
            [cluster]
            name = "bench-simulate"
            [timing]
            timeout_propose_ms = 1000
            timeout_commit_ms = \(max(blockMs - 4, 1))
            [load]
            rate_tx_per_s = 0
            [scenario]
            duration_s = \(Int(hours * 3_600))
            settle_s = 0
            """ + (1...validators).map { "\n[[node]]\nname = \"v\($0)\"" }.joined() + "\n"
        let scenario = try Scenario.parse(text, path: "bench-simulate.toml")
        var settings = Simulator.Settings(seed: 1)
        settings.eventLogs = folder != nil
        let started = Date()
        let outcome = try Simulator(scenario: scenario, settings: settings, logDir: folder).run()
        let wall = Date().timeIntervalSince(started)
        let bytes = folder.map { folder in
            ((try? FileManager.default.subpathsOfDirectory(atPath: folder)) ?? []).reduce(0) { total, path in
                total + ((try? FileManager.default.attributesOfItem(atPath: folder + "/" + path)[.size] as? Int) ?? 0)
            }
        } ?? 0
        return Measurement(ratio: outcome.virtualSeconds / wall, wallSeconds: wall, outcome: outcome, logBytes: bytes)
    }

    func run() async throws {
        print("simulating \(validators) validators for \(hours) h at \(blockMs) ms blocks (release build: "
              + "`swift build -c release`; a debug build is ~10× slower)")
        let folder = FileManager.default.temporaryDirectory.path + "/faultline-bench-sim-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var ratios: [Double] = []
        for logs in [false, true] {
            let measured = try Self.measure(hours: hours, validators: validators, blockMs: blockMs,
                                            logsIn: logs ? folder : nil)
            let outcome = measured.outcome
            ratios.append(measured.ratio)
            let heights = outcome.heights.values
            print(String(format: "  %@: %.0f simulated s in %.2f s of wall time = %.0f× real time; height %llu "
                         + "(%.1f ms a block), %llu agenda items (%.2f µs each)%@",
                         logs ? "with event logs   " : "without event logs", outcome.virtualSeconds, measured.wallSeconds,
                         measured.ratio, heights.min() ?? 0,
                         outcome.virtualSeconds * 1_000 / Double(max(heights.min() ?? 1, 1)),
                         outcome.agendaItems, measured.wallSeconds * 1e6 / Double(max(outcome.agendaItems, 1)),
                         logs ? String(format: ", %.0f MB of logs", Double(measured.logBytes) / 1e6) : ""))
        }

        print(String(format: "  target ≥ 1000× (one hour in under 3.6 s): %.2f× the target without logs, %.2f× with",
                     ratios[0] / 1_000, ratios[1] / 1_000))
        if minRatio > 0, ratios[0] < minRatio { throw ExitCode(1) }
    }
}
