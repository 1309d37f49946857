import ArgumentParser
import Cluster
import Foundation
import Liveness

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks that print figures against limits measured on this machine in the same run.",
        subcommands: [BenchSuite.self, SequencerIngest.self, SequencerCore.self, FraudProofBench.self, UDPSend.self,
                      BenchSimulate.self],
        defaultSubcommand: BenchSuite.self)
}

/// `faultline bench sequencer`: signed L2 transactions a sequencer takes in per second, against the
/// verification rate of all cores at once (issue 6's target: at least 60% of it).
struct SequencerIngest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sequencer",
        abstract: "Sequencer ingest of signed transactions per second vs this machine's verification rate.")

    @Option(help: "Topology with one sequencer (and the L1 validators it posts to).")
    var topology = "Topologies/bench-sequencer.toml"

    @Option(help: "Seconds of sending.")
    var seconds = 8.0

    @Option(help: "Claims per second to send (default: the measured bound).")
    var rate: Int?

    @Flag(help: "One datagram per claim (default: bundles of up to 1,232 bytes, as the 4-validator bench sends).")
    var onePerDatagram = false

    @Option(help: "Exit 1 when the ingest phase is below this share of the bound (0: never).")
    var minRatio = 0.0

    @Option(help: "Folder that holds run folders.")
    var runs = ".faultline/runs"

    func validate() throws {
        guard seconds > 0, seconds <= 120 else { throw ValidationError("--seconds must be above 0 and at most 120, got \(seconds)") }
        if let rate, rate < 1 || rate > 1_000_000 { throw ValidationError("--rate must be in 1…1000000, got \(rate)") }
        guard (0...1).contains(minRatio) else { throw ValidationError("--min-ratio must be in 0…1, got \(minRatio)") }
    }

    func run() async throws {
        let parsed = try loadTopology(topology)
        guard parsed.sequencerNode != nil else {
            throw Exit.badInput("\(topology): the bench needs a node with role = \"sequencer\"")
        }
        let record: SequencerBench.Record
        do {
            record = try await SequencerBench.run(
                .init(topologyPath: topology, runsRoot: runs, seconds: seconds, rate: rate, bundled: !onePerDatagram),
                topology: parsed,
                progress: { print($0) })
        } catch {
            throw Exit.failure("\(error)")
        }
        let ratios = Self.report(record, say: { print($0) })
        let ingestRatio = ratios["ingest"] ?? 0
        let ratio = ingestRatio
        if minRatio > 0, ratio < minRatio {
            throw Exit.failure(String(format: "ingest is %.0f%% of the bound, below --min-ratio %.0f%%", ratio * 100, minRatio * 100))
        }
    }

    /// Prints each phase's figures; returns each phase's admitted rate (median second) ÷ the bound.
    static func report(_ record: SequencerBench.Record, say: (String) -> Void) -> [String: Double] {
        var ratios: [String: Double] = [:]
        for phase in record.phases {
            let bound = phase.boundPerSecond(in: record)
            let events = phase.runDir + "/nodes/" + record.sequencer + "/events.jsonl"
            let figures = SequencerBenchFigures.read(eventsPath: events, startMs: phase.startMs, endMs: phase.endMs)
            let ratio = bound > 0 ? figures.admittedPerSecondMedian / bound : 0
            ratios[phase.name] = ratio
            let lost = figures.kernelDrops + figures.ingressDrops.values.reduce(0, +)
            let drops = figures.ingressDrops.sorted { $0.key < $1.key }.map { ", \($0.key) \($0.value)" }.joined()
            say("— \(phase.name) (\(phase.name == "ingest" ? "receive, check, queue; no L2 blocks yet" : "blocks, batches to L1, following L1, derivation")):")
            say(String(format: "  sent %d claims in %.1f s; admitted %.0f/s (median second; best %.0f/s) = %.0f%% of the "
                       + "%d-core verification bound %.0f/s%@", phase.sent, phase.sendSeconds,
                       figures.admittedPerSecondMedian, figures.admittedPerSecondBest, ratio * 100, record.cores, bound,
                       phase.bound.map { String(format: " (%.0f before the phase, %.0f after)", $0.before, $0.after) } ?? ""))
            say(String(format: "  admitted %llu, included in L2 blocks %llu%@; lost before the queue %llu (kernel %llu%@)",
                       figures.admitted, figures.included,
                       figures.included > 0 ? String(format: " (%.0f/s)", figures.includedPerSecond) : "",
                       lost, figures.kernelDrops, drops))
            let perCpuSecond = phase.sequencerCpuSeconds > 0 ? Double(figures.admitted) / phase.sequencerCpuSeconds : 0
            say(String(format: "  sequencer CPU %.1f s over %.1f s (%.2f cores): %.0f admitted per CPU-second (one "
                       + "thread verifies %.0f/s); RSS peak %.0f MiB", phase.sequencerCpuSeconds,
                       phase.sequencerWallSeconds, phase.sequencerCpuSeconds / max(phase.sequencerWallSeconds, 0.001),
                       perCpuSecond, record.verifyOneThreadPerSecond, figures.rssMaxMiB))
            say("  run folder: \(phase.runDir) (bench.json)")
        }
        return ratios
    }
}
