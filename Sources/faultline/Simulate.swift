import ArgumentParser
import Cluster
import Consensus
import Formats
import Foundation
import Liveness
import Simulation
import Transport

/// `faultline simulate FILE --seed N`: the scenario in simulated time, with the same reports as `run`.
struct Simulate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a scenario in simulated time: every validator's real consensus core, ledger and mempool in "
            + "one process, a simulated network with the same faults, one seed for every random choice. Writes the "
            + "same reports as `run`. Exit 0 if every expectation held, 1 if one failed, 2 for bad input.")

    @Argument(help: "Scenario file (TOML), as for `faultline run` (not with --swarm or --shrink).")
    var file: String?

    @Option(help: ArgumentHelp("Swarm testing: draw and run this many random clusters and fault schedules (seeds "
                               + "from --seed, default 1). Exit 3 if one broke safety, 4 liveness, 5 if the simulator crashed."))
    var swarm: Int?

    @Option(help: ArgumentHelp("Twins-style schedules: draw and run this many cases in this process (a validator run "
                               + "twice with one key, the first rounds' steps split into groups, then a whole network; "
                               + "seeds from --seed, default 1). Exit 3 if one broke safety, 4 liveness."))
    var twins: Int?

    @Option(help: "Replay a Twins case that --twins wrote (JSON), and shrink it if it fails.")
    var twinsCase: String?

    @Option(help: "With --swarm or --twins: stop drawing new cases after this many seconds of wall time.")
    var budget: Double?

    @Option(help: ArgumentHelp("Shrink the failing swarm case of this seed to a smaller schedule that still fails; "
                               + "write it as a scenario file (--out, default swarm-SEED.toml)."))
    var shrink: UInt64?

    @Option(help: .hidden)
    var swarmCase: UInt64?

    @OptionGroup var consensus: ProtocolOption

    @Option(help: "Seed for keys, accounts and every simulated random choice (default: the file's).")
    var seed: UInt64?

    @Option(help: "Where to write report.json, junit.xml and report.html (default: the run folder).")
    var out: String?

    @Option(help: "Folder that holds run folders.")
    var runs: String = ".faultline/runs"

    @Option(help: "One-way latency of every simulated link before faults, in ms (jitter is half of it).")
    var latencyMs = 1.0

    @Option(help: ArgumentHelp("Spam steps: datagrams one core receives and checks per second on the machine modelled "
                               + "(a real run measures it; here it is set, so a seed replays the same anywhere)."))
    var ingressPerCore = Simulator.Settings.ingressPerCoreDefault

    @Option(help: "Spam steps: the cores the modelled machine's nodes share.")
    var cores = Simulator.Settings.coresDefault

    @Option(help: "Plant a consensus bug, to see the checks catch it (`faultline mutants` lists them): \(Tendermint.PlantedBug.names).")
    var plant: String?

    @Option(help: ArgumentHelp("The fidelity check: compare the outcome with a real run's report.json of the same "
                               + "scenario (halts per fault, halted at the end, safety). Exit 0 if they agree, 1 if not."))
    var compare: String?

    @Option(help: ArgumentHelp("With --compare: simulate this many seeds (from --seed on); the real outcome must be "
                               + "among theirs (one real run is one sample of a random process)."))
    var seeds = 1

    @Option(help: ArgumentHelp("Swarm cases, or --compare's seeds, run at once (default: the machine's cores; each "
                               + "swarm case in a process of its own)."))
    var jobs: Int?

    /// `--jobs`, or one per core this process may run on (its affinity: `taskset -c 0` gives one).
    var jobsAtOnce: Int { jobs ?? max(1, UsableCores.count) }

    func validate() throws {
        if let jobs, !(1...64).contains(jobs) { throw ValidationError("--jobs must be in 1…64, got \(jobs)") }
        if compare != nil, file == nil { throw ValidationError("--compare goes with a scenario FILE") }
        guard (1...100).contains(seeds) else { throw ValidationError("--seeds must be in 1…100, got \(seeds)") }
        if seeds > 1, compare == nil { throw ValidationError("--seeds goes with --compare") }
        let modes = [file != nil, swarm != nil, twins != nil, shrink != nil && twins == nil, swarmCase != nil,
                     twinsCase != nil]
            .filter { $0 }.count
        guard modes == 1 else {
            throw ValidationError("give one of: a scenario FILE, --swarm COUNT, --twins COUNT, --twins-case FILE, --shrink SEED")
        }
        if let twins, twins < 1 || twins > 10_000_000 { throw ValidationError("--twins must be in 1…10000000, got \(twins)") }
        if let swarm, swarm < 1 || swarm > 1_000_000 { throw ValidationError("--swarm must be in 1…1000000, got \(swarm)") }
        if let budget, budget <= 0 { throw ValidationError("--budget must be above 0 seconds, got \(budget)") }
        guard latencyMs >= 0, latencyMs <= 10_000 else {
            throw ValidationError("--latency-ms must be in 0…10000, got \(latencyMs)")
        }
        guard ingressPerCore >= 100, ingressPerCore <= 10_000_000 else {
            throw ValidationError("--ingress-per-core must be in 100…10000000, got \(ingressPerCore)")
        }
        guard (1...1_024).contains(cores) else { throw ValidationError("--cores must be in 1…1024, got \(cores)") }
        if let plant, Tendermint.PlantedBug(rawValue: plant) == nil {
            throw ValidationError("--plant: expected one of \(Tendermint.PlantedBug.names), got '\(plant)'")
        }
    }

    func run() async throws {
        if let twins { return try runTwins(count: twins) }
        if let twinsCase { return try replayTwinsCase(twinsCase) }
        if let swarm { return try runSwarm(count: swarm) }
        if let shrink { return try runShrink(seed: shrink) }
        if let swarmCase { return try runCase(seed: swarmCase) }
        guard let file else { return }
        var scenario: Scenario
        do { scenario = try Scenario.load(path: file) } catch { throw Exit.badInput("\(error)") }
        consensus.apply(to: &scenario.topology)
        do { try Simulator.checkSupported(scenario) } catch { throw Exit.badInput("\(error)") }
        let real = try compare.map { try loadRealReport($0, scenario: scenario) }
        var settings = Simulator.Settings(seed: seed ?? scenario.topology.seed)
        settings.latencyMs = latencyMs
        settings.jitterMs = latencyMs / 2
        settings.ingressPerCorePerSecond = ingressPerCore
        settings.cores = cores
        settings.planted = planted
        print("simulating \(scenario.topology.name): \(scenario.topology.nodes.count) nodes (\(scenario.topology.consensusProtocol)), "
              + "\(scenario.steps.count) steps, "
              + "\(scenario.expectations.count) expectations, \(Int(scenario.durationSeconds)) s, seed \(settings.seed)"
              + (plant.map { ", planted bug: \($0)" } ?? ""))
        let (report, outcome, wallSeconds) = try Simulate.simulateOnce(scenario, settings: settings, runs: runs)
        let dir = report.runDir
        try Reports.write(report.report, to: out ?? dir)
        Reports.printSummary(report.report, dir: out ?? dir)
        print(String(format: "  simulated %.1f s in %.2f s of wall time (%.0f× real time), %llu agenda items",
                     outcome.virtualSeconds, wallSeconds, outcome.virtualSeconds / max(wallSeconds, 1e-6),
                     outcome.agendaItems))
        print("  replay: faultline simulate \(file) --seed \(settings.seed)"
              + (consensus.consensusProtocol.map { " --protocol \($0)" } ?? "")
              + (latencyMs != 1.0 ? " --latency-ms \(latencyMs)" : "") + (plant.map { " --plant \($0)" } ?? "")
              + (ingressPerCore != Simulator.Settings.ingressPerCoreDefault ? " --ingress-per-core \(Int(ingressPerCore))" : "")
              + (cores != Simulator.Settings.coresDefault ? " --cores \(cores)" : ""))
        if let compare, let real {
            let more = try await Simulate.simulateSeeds(scenario, settings: settings,
                                                        seeds: (1..<UInt64(seeds)).map { settings.seed + $0 },
                                                        jobs: jobsAtOnce, runs: runs)
            return try compareWithRealRun(compare, real: real, simulated: [report.report] + more, scenario: scenario,
                                          firstSeed: settings.seed)
        }
        if !report.report.passed { throw ExitCode(1) }
    }

    /// Further seeds of one scenario for `--compare`, `jobs` at a time (each simulation is independent and single
    /// threaded), their reports in the order of `seeds`; only their outcomes are kept, not their run folders.
    static func simulateSeeds(_ scenario: Scenario, settings: Simulator.Settings, seeds: [UInt64], jobs: Int,
                              runs: String) async throws -> [Report] {
        try await withThrowingTaskGroup(of: (Int, Report).self) { group in
            var reports = [Report?](repeating: nil, count: seeds.count)
            var next = 0
            func start(_ index: Int) {
                var other = settings
                other.seed = seeds[index]
                group.addTask {
                    let (more, _, _) = try Simulate.simulateOnce(scenario, settings: other, runs: runs)
                    try? FileManager.default.removeItem(atPath: more.runDir)
                    return (index, more.report)
                }
            }
            while next < min(jobs, seeds.count) { start(next); next += 1 }
            while let (index, report) = try await group.next() {
                reports[index] = report
                if next < seeds.count { start(next); next += 1 }
            }
            return reports.map { $0! }
        }
    }

    /// One simulated run in its own run folder, with its reports built (not yet written).
    static func simulateOnce(_ scenario: Scenario, settings: Simulator.Settings, runs: String) throws
        -> (report: (report: Report, runDir: String), outcome: Simulator.Outcome, wallSeconds: Double) {
        let (dir, _) = try RunFolder.createSimulated(topology: scenario.topology, runsRoot: runs, seed: settings.seed,
                                                     timeMs: Simulator.epochMs,
                                                     stamp: (scenario.topology.consensusProtocol == .tendermint ? ""
                                                             : "\(scenario.topology.consensusProtocol)-") + "seed\(settings.seed)")
        let wallStart = Date()
        let outcome: Simulator.Outcome
        do {
            outcome = try Simulator(scenario: scenario, settings: settings, logDir: dir).run()
        } catch {
            throw Exit.failure("simulation failed: \(error)")
        }
        let wallSeconds = Date().timeIntervalSince(wallStart)
        let record = ScenarioRecord(scenario: scenario.topology.name + " (simulated)", seed: settings.seed,
                                    startedAtMs: outcome.startedAtMs, endedAtMs: outcome.endedAtMs, crashed: [],
                                    stepsFired: outcome.stepsFired, firstBlockMs: 0, capacity: outcome.capacity,
                                    spam: outcome.spam.isEmpty ? nil : outcome.spam)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(record).write(to: URL(fileURLWithPath: dir + "/scenario-run.json"))
        return ((try Reports.build(dir: dir), dir), outcome, wallSeconds)
    }

    /// The real run's report for `--compare`, checked before anything is simulated.
    func loadRealReport(_ path: String, scenario: Scenario) throws -> Report {
        let real: Report
        do {
            real = try JSONDecoder().decode(Report.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw Exit.badInput("\(path): not a report.json of `faultline run` (\(error))")
        }
        guard real.scenario == scenario.topology.name else {
            throw Exit.badInput("\(path): a report of scenario '\(real.scenario)', not '\(scenario.topology.name)'")
        }
        return real
    }

    /// `--compare`: the fidelity check against a real run's report (from `faultline run` or `ci/liveness.sh`).
    func compareWithRealRun(_ path: String, real: Report, simulated: [Report], scenario: Scenario,
                            firstSeed: UInt64) throws {
        var outcome = Fidelity.Outcome(real)
        outcome.mechanisms = Set(scenario.expectations.filter { $0.sensitivity == nil }.map(\.name))
        let comparison = Fidelity.compare(real: outcome, simulated: simulated.map(Fidelity.Outcome.init),
                                          haltThresholdSeconds: scenario.haltThresholdSeconds)
        print("fidelity against \(path)" + (simulated.count > 1
            ? " (simulated seeds \(firstSeed)…\(firstSeed + UInt64(simulated.count) - 1)):" : ":"))
        for line in comparison.agreements { print("  = \(line)") }
        for line in comparison.notes { print("  ~ \(line)") }
        for line in comparison.mismatches { print("  ✘ \(line)") }
        if !comparison.figures.isEmpty {
            print("figures (not compared: the real machine's and the model's):")
            for line in comparison.figures { print("  · \(line)") }
        }
        print(comparison.agrees ? "fidelity: the simulated run agrees with the real one on halts and safety"
                                : "fidelity: the simulated run DIFFERS from the real one (\(comparison.mismatches.count) mismatches)")
        if !comparison.agrees { throw ExitCode(1) }
    }
}

