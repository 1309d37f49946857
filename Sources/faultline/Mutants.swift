import ArgumentParser
import Consensus
import Cluster
import Foundation
import Simulation

/// `faultline mutants`: every planted bug of the catalog against the checkers, with which one caught it.
struct Mutants: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prove the checkers catch protocol bugs: plant each bug of the catalog in every node's consensus, run "
            + "the rule checks (the unit tests' scripts), Twins-style schedules and (with --swarm) the swarm against it, "
            + "and print which checker caught it, after how many cases and seconds, and the shrunk case. Exit 0 only "
            + "if every bug is caught.")

    @Option(help: ArgumentHelp("Wall seconds each generator may spend on one bug (default: 60 for a bug that breaks "
                               + "safety, 120 for one that breaks liveness: the catalog's goal)."))
    var budget: Double?

    @Option(help: "Only these bugs (comma-separated; default all): \(Tendermint.PlantedBug.names).")
    var only: String?

    @Flag(help: "Also run the swarm (random clusters and fault schedules; slower per case) against each bug.")
    var swarm = false

    @Option(help: "First seed of the generators.")
    var seed: UInt64 = 1

    @Option(help: "Bugs checked at once, each in a process of its own.")
    var jobs = 2

    @Option(help: .hidden)
    var one: String?

    @OptionGroup var consensus: ProtocolOption

    /// The protocol whose catalog runs (Tendermint unless `--protocol` says otherwise).
    var protocolName: BFT.ProtocolName { consensus.consensusProtocol ?? .tendermint }

    var bugs: [Tendermint.PlantedBug] {
        guard let only else { return Tendermint.PlantedBug.catalog(protocolName) }
        return only.split(separator: ",").compactMap { Tendermint.PlantedBug(rawValue: String($0)) }
    }

    func validate() throws {
        if let budget, budget <= 0 || budget > 86_400 { throw ValidationError("--budget must be in (0, 86400] s, got \(budget)") }
        guard (1...64).contains(jobs) else { throw ValidationError("--jobs must be in 1…64, got \(jobs)") }
        for name in (only ?? "").split(separator: ",") where Tendermint.PlantedBug(rawValue: String(name)) == nil {
            throw ValidationError("--only: '\(name)' is not a planted bug; the catalog: \(Tendermint.PlantedBug.names)")
        }
        if let one, Tendermint.PlantedBug(rawValue: one) == nil { throw ValidationError("--one: unknown bug '\(one)'") }
        for bug in bugs where !bug.protocols.contains(protocolName) {
            throw ValidationError("\(bug.rawValue) breaks a rule of \(bug.protocols.map(\.rawValue).joined(separator: ", ")), "
                                  + "not of \(protocolName): --protocol \(bug.protocols[0])")
        }
    }

    func budgetSeconds(_ bug: Tendermint.PlantedBug) -> Double { budget ?? (bug.breaks == "safety" ? 60 : 120) }

    func run() async throws {
        if let one { return try checkOne(Tendermint.PlantedBug(rawValue: one)!) }
        let started = Date()
        let chosen = bugs
        print("mutants: \(chosen.count) planted bugs in \(protocolName); checkers: rule checks, twins\(swarm ? ", swarm" : ""); "
              + (budget.map { String(format: "budget %.0f s per generator", $0) } ?? "budget 60 s (safety) / 120 s (liveness) per generator")
              + "; \(jobs) at once")
        fflush(nil)
        let results = try runChildren(chosen)
        print("")
        print(MutantResult.header)
        for result in results { print(result.row) }
        print("")
        for result in results where result.shrunk != nil || result.crash != nil {
            if let crash = result.crash { print("\(result.bug.rawValue): crashed: \(crash)") }
            if let shrunk = result.shrunk { print("\(result.bug.rawValue): shrunk: \(shrunk)") }
        }
        let missed = results.filter { !$0.caught }
        let late = results.filter { $0.caught && !$0.withinGoal }
        print(String(format: "mutants: %d of %d caught in %.0f s", results.count - missed.count, results.count,
                     Date().timeIntervalSince(started))
              + (late.isEmpty ? "" : "; over the goal (60 s safety, 120 s liveness): " + late.map(\.bug.rawValue).joined(separator: ", "))
              + (missed.isEmpty ? "" : "; NOT caught: " + missed.map(\.bug.rawValue).joined(separator: ", ")))
        if !missed.isEmpty { throw ExitCode(1) }
    }

    /// Each bug in a child process (a planted bug may trip an invariant: that child dies, the others go on).
    func runChildren(_ chosen: [Tendermint.PlantedBug]) throws -> [MutantResult] {
        var results: [MutantResult?] = Array(repeating: nil, count: chosen.count)
        var next = 0
        try ChildProcesses(jobs: jobs).run(next: {
            guard next < chosen.count else { return nil }
            defer { next += 1 }
            return (next, ["mutants", "--one", chosen[next].rawValue, "--seed", String(seed)]
                + (budget.map { ["--budget", String($0)] } ?? []) + (swarm ? ["--swarm"] : [])
                + ["--protocol", protocolName.rawValue])
        }, finished: { child in
            var result = MutantResult(bug: chosen[child.tag], lines: child.output)
            if child.signaled || child.status != 0 {
                let last = child.errors.split(separator: "\n").filter { $0.contains("Fatal error") || $0.contains("precondition") }
                    .suffix(1).joined()
                result.crash = "exit \(child.status) after " + String(format: "%.1f s", child.seconds) + (last.isEmpty ? "" : ": " + last)
            }
            results[child.tag] = result
            print("  \(result.caught ? "✔" : "✘") \(result.bug.rawValue): \(result.summary)")
            fflush(nil)
        })
        return results.map { $0! }
    }

    /// In the child: the rule checks, then each generator until it catches the bug or its budget is spent.
    func checkOne(_ bug: Tendermint.PlantedBug) throws {
        let failures = protocolName == .tendermint ? RuleChecks.failures(planted: bug) : HotStuff2Checks.failures(planted: bug)
        print("unit\t\(failures.count)\t" + (failures.first.map { "\($0.check.rule): \($0.check.name): \($0.why)" } ?? ""))
        fflush(nil)
        let limit = budgetSeconds(bug)
        var started = Date()
        var caught: (seed: UInt64, verdict: Swarm.Verdict, drawn: Twins.Case)?
        var search = Twins.Search(planted: bug, firstSeed: seed, consensus: protocolName)
        while caught == nil, Date().timeIntervalSince(started) < limit {
            let (drawn, verdict, _) = try search.next()
            if verdict != .passed { caught = (drawn.seed, verdict, drawn) }
        }
        let cases = search.cases
        print("twins\t\(caught?.verdict.kind ?? "none")\t\(cases)\t" + String(format: "%.2f", Date().timeIntervalSince(started))
              + "\t\(caught.map { String($0.seed) } ?? "")\t\(caught.map { "\($0.verdict)" } ?? "")")
        fflush(nil)
        if let caught {
            let (small, verdict, tries) = Twins.shrink(caught.drawn, verdict: caught.verdict, planted: bug,
                                                       consensus: protocolName, triesMax: 150)
            print("shrunk\t\(tries) runs: \(small) → \(verdict.kind); replay: faultline simulate --twins-case "
                  + "\(try Simulate.writeTwinsCase(small)) --plant \(bug.rawValue) --protocol \(protocolName)")
            fflush(nil)
        }
        guard swarm else { return }
        started = Date()
        var swarmCases = 0
        var swarmCaught: (seed: UInt64, verdict: Swarm.Verdict)?
        var swarmSeed = seed
        while swarmCaught == nil, Date().timeIntervalSince(started) < limit {
            let (verdict, _) = try Swarm.check(Swarm.draw(seed: swarmSeed), planted: bug, consensus: protocolName)
            swarmCases += 1
            if verdict != .passed { swarmCaught = (swarmSeed, verdict) }
            swarmSeed += 1
        }
        print("swarm\t\(swarmCaught?.verdict.kind ?? "none")\t\(swarmCases)\t" + String(format: "%.2f", Date().timeIntervalSince(started))
              + "\t\(swarmCaught.map { String($0.seed) } ?? "")\t\(swarmCaught.map { "\($0.verdict)" } ?? "")")
    }
}

/// What a child reported for one bug (`Mutants.checkOne`'s lines).
struct MutantResult {
    struct Catch {
        var kind: String
        var cases: Int
        var seconds: Double
        var seed: String
        var verdict: String
    }

    var bug: Tendermint.PlantedBug
    var unitFailed = 0
    var unitFirst = ""
    var twins: Catch?
    var swarm: Catch?
    var shrunk: String?
    var crash: String?

    init(bug: Tendermint.PlantedBug, lines: String) {
        self.bug = bug
        for line in lines.split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            switch fields.first {
            case "unit" where fields.count >= 3:
                unitFailed = Int(fields[1]) ?? 0
                unitFirst = fields[2]
            case "twins" where fields.count >= 6:
                twins = Catch(kind: fields[1], cases: Int(fields[2]) ?? 0, seconds: Double(fields[3]) ?? 0, seed: fields[4],
                              verdict: fields[5])
            case "swarm" where fields.count >= 6:
                swarm = Catch(kind: fields[1], cases: Int(fields[2]) ?? 0, seconds: Double(fields[3]) ?? 0, seed: fields[4],
                              verdict: fields[5])
            case "shrunk" where fields.count >= 2:
                shrunk = fields[1]
            default: break
            }
        }
    }

    /// Caught by a rule check, a generator's safety or liveness check, or an invariant that stopped the run.
    var caught: Bool {
        unitFailed > 0 || (twins.map { $0.kind != "none" } ?? false) || (swarm.map { $0.kind != "none" } ?? false)
            || crash != nil
    }

    /// A generator caught it within the catalog's goal (60 s safety, 120 s liveness), or a rule check did.
    var withinGoal: Bool {
        let goal = bug.breaks == "safety" ? 60.0 : 120.0
        let generator = [twins, swarm].compactMap { $0 }.filter { $0.kind != "none" }.map(\.seconds).min()
        return unitFailed > 0 || generator.map { $0 <= goal } ?? (crash != nil)
    }

    /// The bug column fits the longest name of the catalog (HotStuff-2's run to 32 characters).
    static let bugWidth = (Tendermint.PlantedBug.allCases.map(\.rawValue.count).max() ?? 24) + 2
    static let header = "bug".padding(toLength: bugWidth, withPad: " ", startingAt: 0)
        + "breaks    rule checks   twins                           swarm"

    func column(_ found: Catch?) -> String {
        guard let found else { return crash != nil ? "crash" : "—" }
        guard found.kind != "none" else { return "not in \(found.cases) cases" }
        return "\(found.kind), case \(found.cases), " + String(format: "%.1f s", found.seconds)
    }

    var row: String {
        bug.rawValue.padding(toLength: Self.bugWidth, withPad: " ", startingAt: 0) + bug.breaks.padding(toLength: 10, withPad: " ", startingAt: 0)
            + (unitFailed > 0 ? "\(unitFailed) failed" : "passed").padding(toLength: 14, withPad: " ", startingAt: 0)
            + column(twins).padding(toLength: 32, withPad: " ", startingAt: 0) + column(swarm)
    }

    var summary: String {
        var parts = [unitFailed > 0 ? "rule checks: \(unitFirst)" : "rule checks pass"]
        if let twins { parts.append("twins: \(column(twins))" + (twins.kind != "none" ? " (seed \(twins.seed): \(twins.verdict))" : "")) }
        if let swarm { parts.append("swarm: \(column(swarm))" + (swarm.kind != "none" ? " (seed \(swarm.seed))" : "")) }
        if let crash { parts.append("crashed: \(crash)") }
        return parts.joined(separator: "; ")
    }
}
