import ArgumentParser
import Cluster
import Formats
import Foundation
import Liveness
import Wire

/// What `run` records next to the cluster's files so `report` can rebuild everything later.
struct ScenarioRecord: Codable {
    var scenario: String
    var seed: UInt64
    var startedAtMs: UInt64
    var endedAtMs: UInt64
    var crashed: [String]
    var stepsFired: [String]
    var firstBlockMs: Double
    var capacity: VerificationCapacity?
    var spam: [SpamRecord]?
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a scenario: up, fault schedule, analysis, down. Exit 0 if every expectation held, "
            + "1 if one failed, 2 for bad input, 3 if none failed but one was inconclusive (the host was "
            + "overloaded where a timing expectation missed).")

    @Argument(help: "Scenario file (TOML): a topology with [scenario], [[step]] and [[expect]].")
    var file: String

    @Option(help: "Where to write report.json, junit.xml and report.html (default: the run folder).")
    var out: String?

    @Option(help: "Seed for keys and accounts (default: the file's).")
    var seed: UInt64?

    @Option(help: "Folder that holds run folders.")
    var runs: String = ".faultline/runs"

    @OptionGroup var network: NetworkOptions
    @OptionGroup var consensus: ProtocolOption

    @Option(help: ArgumentHelp("Run the scenario again, up to N more times, while its verdict is inconclusive (a "
            + "timing expectation missed in a window where the host was overloaded); the last run's verdict counts."))
    var retries: Int = 0

    @Flag(help: ArgumentHelp("Scrape the run with a Prometheus (`faultline prometheus`); its data stays in the run "
                             + "folder, and `faultline prometheus --run DIR` serves it again after the run."))
    var prometheus = false

    func validate() throws {
        guard (0...20).contains(retries) else { throw ValidationError("--retries must be 0...20, got \(retries)") }
    }

    func run() async throws {
        var scenario: Scenario
        do { scenario = try Scenario.load(path: file) } catch { throw Exit.badInput("\(error)") }
        try network.apply(to: &scenario.topology)
        consensus.apply(to: &scenario.topology)
        if scenario.topology.network == .netns {
            print("network: each node in a network namespace of its own; link faults by the "
                  + "\((scenario.topology.faultLayer ?? .kernel).rawValue) layer by default")
        }
        print("scenario \(scenario.topology.name): \(scenario.topology.nodes.count) nodes (\(scenario.topology.consensusProtocol)), "
              + "\(scenario.steps.count) steps, "
              + "\(scenario.expectations.count) expectations, \(Int(scenario.durationSeconds)) s")
        for step in scenario.steps {
            print("  step \(step.id): \(step.spam.map { "\($0)" } ?? step.rollupLoad.map { "\($0)" } ?? step.action.name) \(step.trigger)"
                  + (step.durationSeconds.map { " for \($0) s" } ?? ""))
        }
        var report: Report
        var attempt = 1
        while true {
            report = try await Run.runOnce(scenario, runs: runs, seed: seed, prometheus: prometheus, out: out).report
            guard report.verdict == .inconclusive, attempt <= retries else { break }
            attempt += 1
            print("\ninconclusive: the host was overloaded where a timing expectation missed; running again "
                  + "(attempt \(attempt) of \(retries + 1))")
        }
        throw Reports.exitCode(report)
    }

    /// One run: up, schedule, down, reports written (to `out`, else the run folder); its report and run folder.
    static func runOnce(_ scenario: Scenario, runs: String, seed: UInt64?, prometheus: Bool, out: String?,
                        summary: Bool = true) async throws -> (report: Report, dir: String) {
        let outcome: ScenarioRunner.Outcome
        let rate = RateMeter()
        do {
            outcome = try await ScenarioRunner.run(scenario, runsRoot: runs, seed: seed, prometheus: prometheus) { progress in
                let heights = progress.states.map { "\($0.node.name) \($0.alive ? String($0.status?.height ?? 0) : "down")" }
                let faults = progress.activeFaults.isEmpty ? "no faults" : progress.activeFaults.joined(separator: "; ")
                let finalized = progress.states.compactMap { $0.status?.txsCommitted }.max() ?? 0
                Terminal.progress(String(format: "%5.1f/%.0fs  %@  |  %@  |  %.0f tx/s finalized",
                                         progress.elapsedSeconds, progress.durationSeconds,
                                         heights.joined(separator: ", "), String(faults.prefix(70)),
                                         rate.update(total: finalized)))
            }
        } catch {
            Terminal.endProgress()
            throw Exit.failure("\(error)")
        }
        Terminal.endProgress()
        let record = ScenarioRecord(scenario: scenario.topology.name, seed: outcome.manifest.seed,
                                    startedAtMs: outcome.startedAtMs, endedAtMs: outcome.endedAtMs,
                                    crashed: outcome.crashed, stepsFired: outcome.stepsFired,
                                    firstBlockMs: outcome.firstBlockMs, capacity: outcome.capacity, spam: outcome.spam)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(record).write(to: URL(fileURLWithPath: outcome.dir + "/scenario-run.json"))
        let report = try Reports.build(dir: outcome.dir)
        try Reports.write(report, to: out ?? outcome.dir)
        if summary { Reports.printSummary(report, dir: out ?? outcome.dir) }
        return (report, outcome.dir)
    }
}

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report", abstract: "Rebuild report.json, junit.xml and report.html from a run folder's files.")

    @Argument(help: "Run folder (default: the current run).")
    var dir: String?

    @Option(help: "Where to write the reports (default: the run folder).")
    var out: String?

    func run() async throws {
        let folder = RunFolder.resolve(dir)
        let report: Report
        do { report = try Reports.build(dir: folder) } catch { throw Exit.badInput("\(error)") }
        try Reports.write(report, to: out ?? folder)
        Reports.printSummary(report, dir: out ?? folder)
        throw Reports.exitCode(report)
    }
}

/// Finalized transactions per second between two progress updates.
final class RateMeter: @unchecked Sendable {
    private var last: (total: UInt64, time: Date)?
    private var rate = 0.0

    func update(total: UInt64) -> Double {
        let now = Date()
        if let last, now.timeIntervalSince(last.time) > 0.2 {
            rate = total >= last.total ? Double(total - last.total) / now.timeIntervalSince(last.time) : rate
        }
        if last == nil || now.timeIntervalSince(last!.time) > 0.2 { last = (total, now) }
        return rate
    }
}

enum Reports {
    /// Exit codes of `run` and `report`: 0 every expectation held, 1 one failed, 2 bad input, 3 none failed
    /// but at least one was inconclusive (a timing expectation missed while the host was overloaded).
    static func exitCode(_ report: Report) -> ExitCode {
        switch report.verdict {
        case .passed: return .success
        case .failed: return ExitCode(1)
        case .inconclusive: return ExitCode(3)
        }
    }

    /// Expectations every run has unless the scenario states them: safety, durability, no crash.
    static let implicit = [
        ExpectationSpec(name: "all nodes agree on every block", metric: "agreement", window: .whole, bound: .equals(true)),
        ExpectationSpec(name: "no committed block lost", metric: "no_lost_blocks", window: .whole, bound: .equals(true)),
        ExpectationSpec(name: "no node crashed", metric: "all_nodes_running", window: .whole, bound: .equals(true)),
        ExpectationSpec(name: "no validator signed two values for one height/round/step", metric: "double_signs",
                        window: .whole, bound: .max(0)),
        ExpectationSpec(name: "no two commit certificates for different blocks at one height", metric: "forks",
                        window: .whole, bound: .max(0)),
    ]

    /// The checks every run of an external system has (its blocks, votes and signatures are not ours to see).
    static let implicitExternal = [
        ExpectationSpec(name: "every acknowledged write is on every member at the end", metric: "acknowledged_writes_lost",
                        window: .whole, bound: .max(0)),
        ExpectationSpec(name: "the members hold the same values at the end", metric: "members_diverged", window: .whole,
                        bound: .max(0)),
        ExpectationSpec(name: "the history of reads and writes is linearizable", metric: "linearizable", window: .whole,
                        bound: .equals(true)),
        ExpectationSpec(name: "revisions never go backward for a client", metric: "revision_regressions", window: .whole,
                        bound: .max(0)),
        ExpectationSpec(name: "no node crashed", metric: "all_nodes_running", window: .whole, bound: .equals(true)),
    ]

    static func build(dir: String) throws -> Report {
        let manifest = try RunFolder.load(dir)
        let scenarioPath = dir + "/topology.toml"
        let scenario: Scenario
        do { scenario = try Scenario.load(path: scenarioPath) } catch { throw RunError("\(error)") }
        let record: ScenarioRecord
        let scenarioRun: Bool
        if let data = FileManager.default.contents(atPath: dir + "/scenario-run.json") {
            record = try JSONDecoder().decode(ScenarioRecord.self, from: data)
            scenarioRun = true
        } else {
            // A cluster from `faultline up`, driven by hand: the file's [[expect]]s describe a
            // `faultline run` of it, not this run, so only the checks every run has apply.
            let analysis = Analysis.run(dir: dir, manifest: manifest)
            scenarioRun = false
            record = ScenarioRecord(scenario: manifest.name + " (manual run)", seed: manifest.seed,
                                    startedAtMs: analysis.firstCommitMs ?? manifest.createdAtMs,
                                    endedAtMs: analysis.lastCommitMs ?? manifest.createdAtMs, crashed: [],
                                    stepsFired: [], firstBlockMs: 0, capacity: nil, spam: nil)
        }
        let analysis = Analysis.run(dir: dir, manifest: manifest)
        let windows = Evaluator.windows(from: FaultEngine.timeline(dir))
        let stated = scenarioRun ? scenario.expectations : []
        let standard = HostHealth.Thresholds.standard
        let thresholds = HostHealth.Thresholds(cpuPressurePercent: scenario.overloadCPUPressurePercent
                                                   ?? standard.cpuPressurePercent,
                                               timerLateMs: scenario.overloadTimerLateMs ?? standard.timerLateMs,
                                               minimumSeconds: HostHealth.Thresholds.standard.minimumSeconds)
        let evaluator = Evaluator(analysis: analysis, windows: windows, startMs: record.startedAtMs,
                                  endMs: record.endedAtMs, haltThresholdSeconds: scenario.haltThresholdSeconds,
                                  crashed: record.crashed,
                                  host: HostHealth.load(dir: dir, analysis: analysis, windows: windows,
                                                        thresholds: thresholds),
                                  timeoutProposeMs: scenario.topology.timing.timeoutProposeMs,
                                  haltingSteps: Evaluator.haltingSteps(stated))
        let checks = manifest.external == nil ? implicit : implicitExternal
        let expectations = stated + checks.filter { check in !stated.contains { $0.metric == check.metric } }
        let load = record.capacity.map { capacity in
            Report.LoadEntry(
                verificationsPerCorePerSecond: capacity.verifyPerCorePerSecond,
                ingressPerCorePerSecond: capacity.ingressPerCorePerSecond, cores: capacity.cores,
                cpuShare: capacity.cpuShare, coresPerValidator: capacity.coresPerValidator,
                perValidatorBound: capacity.perNodeBound,
                spam: (record.spam ?? []).map {
                    Report.SpamEntry(id: $0.id, spec: $0.spec, targetPerValidator: $0.targetPerNode,
                                     achievedPerValidator: $0.achievedPerNode, sent: $0.sent, seconds: $0.seconds)
                })
        }
        var report = Report(scenario: record.scenario, seed: record.seed, evaluator: evaluator, expectations: expectations,
                            load: load)
        report.network = manifest.network.map { plan in
            "netns: each node in a namespace of its own on \(plan.subnet); link faults by the "
                + "\(manifest.defaultFaultLayer.rawValue) layer unless a fault says otherwise"
        } ?? (manifest.remote == true
            ? "remote: nodes on other machines (an export to Kubernetes); their event logs collected over their control "
                + "ports; fault windows a Workflow Task applied as it marked them in the nodes' logs, Chaos Mesh's as "
                + "scheduled (each may take effect up to \(RemoteRun.scheduleSlackMs / 1000) s late: checks during such "
                + "a window start that much later)"
            : "loopback")
        return report
    }

    static func write(_ report: Report, to dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try report.json().write(to: URL(fileURLWithPath: dir + "/report.json"))
        try Data(report.junit().utf8).write(to: URL(fileURLWithPath: dir + "/junit.xml"))
        try Data(report.html().utf8).write(to: URL(fileURLWithPath: dir + "/report.html"))
    }

    static func printSummary(_ report: Report, dir: String) {
        let live = report.liveness
        let failed = report.expectations.filter { $0.verdict == .failed }.count
        print("\n\(report.scenario): \(report.verdict.rawValue.uppercased()) "
              + "(\(report.expectations.filter(\.passed).count)/\(report.expectations.count) expectations held"
              + (failed > 0 ? ", \(failed) failed" : "")
              + (report.inconclusiveCount > 0 ? ", \(report.inconclusiveCount) inconclusive" : "") + ")")
        if let network = report.network, network != "loopback" { print("  network: \(network)") }
        if let external = report.external {
            print(String(format: "  %@ workload: %d writes acknowledged (%.1f/s), %d unknown, %d reads; no committed write "
                         + "for %.2f s at most (%.1f–%.1f s); leaders: %@", external.system, external.writesAcknowledged,
                         external.writesPerSecond, external.writesUnknown, external.readsAnswered,
                         external.maxWriteGapSeconds, external.maxWriteGapAt.first ?? 0, external.maxWriteGapAt.last ?? 0,
                         external.leaders.map { String(format: "%@ %.1f s", $0.node, $0.at) }.joined(separator: ", ")))
        }
        print(String(format: "  finalized height %llu, longest gap %.2f s, %d halt(s), %.0f tx/s",
                     live.finalizedHeight, live.maxFinalityGapSeconds, live.halts.count, live.throughputTxPerSecond)
              + (live.commitLatencyMs.map { String(format: ", latency p50 %.0f ms p99 %.0f ms", $0.p50, $0.p99) } ?? ""))
        if let p50 = live.voteInclusionHeightsP50, let p99 = live.voteInclusionHeightsP99 {
            print("  vote inclusion: p50 \(p50), p99 \(p99) heights until a certificate carries a validator's precommit")
        }
        if let messages = live.messagesPerBlock, let signatures = live.signaturesPerBlock {
            print(String(format: "  consensus traffic: %.1f messages and %.1f signature checks per block, all nodes together",
                         messages, signatures))
        }
        if let load = report.load, !load.spam.isEmpty {
            print("  capacity\(report.host == nil && report.network == nil ? " (modelled)" : ""): \(load.boundFormula)")
            for spam in load.spam {
                print(String(format: "  spam %@: target %d tx/s per validator, achieved %.0f (%.2f× capacity; %d sent in %.1f s)",
                             spam.id, spam.targetPerValidator, spam.achievedPerValidator,
                             spam.achievedPerValidator / max(load.perValidatorBound, 1), spam.sent, spam.seconds))
            }
        }
        for halt in live.halts {
            print(String(format: "  halt %.1f–%.1f s (%.2f s): %@", halt.start, halt.end, halt.seconds, halt.cause)
                  + (halt.recoverySeconds.map { String(format: "; recovered %.2f s after heal", $0) } ?? ""))
        }
        for divergence in report.safety.stateRootDivergences.prefix(3) {
            print("  \(divergence.summary)")
        }
        if let storm = report.safety.killStorm {
            print("  kill storm: \(storm.kills) SIGKILLs, \(storm.restarts) restarts, \(storm.tornTailsWritten) torn store "
                  + "tails written (\(storm.tornTailsCut) cut off at start); \(report.safety.signaturesRecorded) consensus "
                  + "signatures logged, \(report.safety.doubleSigns.count) double signs")
        }
        for line in report.rollupLines { print("  " + line) }
        for line in report.disputeLines { print("  " + line) }
        for line in report.rpcLines { print("  " + line) }
        for node in report.nodes {
            if let stopped = node.stopped { print("  \(node.name) stopped: \(stopped)") }
            for refusal in node.refusedStarts { print("  \(node.name) \(refusal)") }
        }
        if let host = report.host {
            print(String(format: "  host: overloaded %.1f s of %.1f s (CPU pressure ≥ %.0f%% or node timers ≥ %d ms late); ",
                         host.overloadedSeconds, report.durationSeconds, host.thresholds.cpuPressurePercent,
                         Int(host.thresholds.timerLateMs))
                  + (host.cpuPressurePeakPercent.map { String(format: "pressure peak %.0f%%, ", $0) } ?? "no CPU pressure figures, ")
                  + "worst node timer p99 \(host.timerLateP99MaxMs) ms")
        }
        for result in report.expectations {
            let mark = result.verdict == .passed ? "✔" : result.verdict == .failed ? "✘" : "?"
            print("  \(mark) \(result.name): \(result.observed) (bound \(result.bound), \(result.window))")
            if let evidence = result.inconclusive { print("      inconclusive: \(evidence.summary)") }
        }
        print("  reports: \(dir)/report.html, report.json, junit.xml")
    }
}
