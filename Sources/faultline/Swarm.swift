import ArgumentParser
import Consensus
import Cluster
import Foundation
import Simulation

/// `--swarm`, `--shrink` and the per-case child process behind them.
extension Simulate {
    /// Exit codes of a swarm: 3 safety, 4 liveness, 5 the simulator crashed (0 all passed).
    static let exitSafety: Int32 = 3
    static let exitLiveness: Int32 = 4
    static let exitCrash: Int32 = 5

    var planted: Tendermint.PlantedBug? { plant.flatMap(Tendermint.PlantedBug.init(rawValue:)) }
    var plantFlag: String {
        (plant.map { " --plant \($0)" } ?? "") + (consensus.consensusProtocol.map { " --protocol \($0)" } ?? "")
    }

    /// One case in this process: prints its verdict, exits with its code (a crash is a signal).
    func runCase(seed: UInt64) throws {
        let drawn = Swarm.draw(seed: seed)
        let (verdict, outcome) = try Swarm.check(drawn, planted: planted, consensus: consensus.consensusProtocol)
        print("\(verdict.kind)\t\(outcome.agendaItems)\t\(outcome.virtualSeconds)\t\(verdict)")
        switch verdict {
        case .passed: return
        case .safety: throw ExitCode(Simulate.exitSafety)
        case .liveness: throw ExitCode(Simulate.exitLiveness)
        }
    }

    /// Each case runs in a child process, `jobsAtOnce` at a time, so a simulator that traps is a reported crash, not
    /// the end; no case starts once the budget is spent.
    func runSwarm(count: Int) throws {
        let first = seed ?? 1
        let started = Date()
        var failures: [(seed: UInt64, code: Int32, text: String)] = []
        var ran = 0
        var agenda = 0.0, simulated = 0.0
        print("swarm: \(count) cases from seed \(first)" + (budget.map { String(format: ", budget %.0f s", $0) } ?? "")
              + (plant.map { ", planted bug: \($0)" } ?? "") + ", \(jobsAtOnce) at once")
        fflush(nil) // each line shows at once, also in a CI log
        var drawn = 0
        let arguments = (plant.map { ["--plant", $0] } ?? []) + (consensus.consensusProtocol.map { ["--protocol", $0.rawValue] } ?? [])
        try ChildProcesses(jobs: jobsAtOnce).run(next: {
            if drawn >= count { return nil }
            if let budget, Date().timeIntervalSince(started) >= budget { return nil }
            defer { drawn += 1 }
            return (drawn, ["simulate", "--swarm-case", String(first + UInt64(drawn))] + arguments)
        }, finished: { child in
            ran += 1
            let seed = first + UInt64(child.tag)
            let line = child.output.split(separator: "\n").last.map(String.init) ?? ""
            let fields = line.split(separator: "\t", maxSplits: 3).map(String.init)
            if fields.count == 4 {
                agenda += Double(fields[1]) ?? 0
                simulated += Double(fields[2]) ?? 0
            }
            var code = child.status
            var text = fields.last ?? line
            if child.signaled || ![0, Simulate.exitSafety, Simulate.exitLiveness].contains(child.status) {
                let last = child.errors.split(separator: "\n").suffix(3).joined(separator: " | ")
                code = Simulate.exitCrash
                text = "CRASH: exit \(child.status) (\(child.signaled ? "signal" : "code")): \(last)"
            }
            guard code != 0 else { return }
            failures.append((seed, code, text))
            let drawn = Swarm.draw(seed: seed)
            print("✘ seed \(seed): \(text)")
            print("  case: \(drawn.nodes.count) nodes (\(drawn.byzantineNodes.sorted().joined(separator: ",")) lying), "
                  + "\(drawn.steps.count) faults: " + drawn.steps.map { "\($0.id) \($0.fields.first ?? "")" }.joined(separator: "; "))
            print("  replay: faultline simulate --swarm 1 --seed \(seed)\(plantFlag)")
            print("  shrink: faultline simulate --shrink \(seed)\(plantFlag)")
            fflush(nil)
        })
        let wall = Date().timeIntervalSince(started)
        print(String(format: "swarm: %d cases in %.1f s (%.0f simulated s, %.0f agenda items), %d failed",
                     ran, wall, simulated, agenda, failures.count))
        if let worst = failures.map(\.code).max() { throw ExitCode(worst) }
    }

    func runShrink(seed: UInt64) throws {
        var current = Swarm.draw(seed: seed)
        var (verdict, _) = try Swarm.check(current, planted: planted, consensus: consensus.consensusProtocol)
        guard verdict != .passed else {
            throw Exit.badInput("seed \(seed) passes\(plantFlag.isEmpty ? "" : " with" + plantFlag): nothing to shrink")
        }
        print("seed \(seed): \(verdict)")
        print("  drawn: \(current.steps.count) faults over \(Int(current.faultSeconds)) s, load \(current.loadRate) tx/s")
        var tries = 0
        var progress = true
        while progress, tries < 500 {
            progress = false
            for candidate in Swarm.simplifications(of: current) {
                tries += 1
                let (candidateVerdict, _) = try Swarm.check(candidate, planted: planted, consensus: consensus.consensusProtocol)
                if candidateVerdict.kind == verdict.kind {
                    current = candidate
                    verdict = candidateVerdict
                    progress = true
                    break
                }
            }
        }
        let path = out ?? "swarm-\(seed).toml"
        try Data(current.toml.utf8).write(to: URL(fileURLWithPath: path))
        print("  shrunk after \(tries) tries: \(current.steps.count) faults over \(Int(current.faultSeconds)) s, "
              + "load \(current.loadRate) tx/s; still \(verdict)")
        for step in current.steps {
            print("    \(step.id) at \(step.atSeconds) s for \(step.durationSeconds) s: \(step.fields.joined(separator: ", "))")
        }
        print("  wrote \(path); replay: faultline simulate \(path) --seed \(seed)\(plantFlag)")
    }
}
