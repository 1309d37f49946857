import ArgumentParser
import Consensus
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

    struct CaseResult {
        var code: Int32
        var line: String
        var crash: String?
    }

    /// Each case runs in a child process, so a simulator that traps is a reported crash, not the end.
    func runChild(seed: UInt64) throws -> CaseResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        process.arguments = ["simulate", "--swarm-case", String(seed)] + (plant.map { ["--plant", $0] } ?? [])
            + (consensus.consensusProtocol.map { ["--protocol", $0.rawValue] } ?? [])
        process.environment = ProcessInfo.processInfo.environment.merging(["SWIFT_BACKTRACE": "enable=no"]) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let line = output.split(separator: "\n").last.map(String.init) ?? ""
        if process.terminationReason == .uncaughtSignal || ![0, Simulate.exitSafety, Simulate.exitLiveness]
            .contains(process.terminationStatus) {
            let last = errors.split(separator: "\n").suffix(3).joined(separator: " | ")
            return CaseResult(code: Simulate.exitCrash, line: line,
                              crash: "exit \(process.terminationStatus) (\(process.terminationReason == .uncaughtSignal ? "signal" : "code")): \(last)")
        }
        return CaseResult(code: process.terminationStatus, line: line, crash: nil)
    }

    func runSwarm(count: Int) throws {
        let first = seed ?? 1
        let started = Date()
        var failures: [(seed: UInt64, code: Int32, text: String)] = []
        var ran = 0
        var agenda = 0.0, simulated = 0.0
        print("swarm: \(count) cases from seed \(first)" + (budget.map { String(format: ", budget %.0f s", $0) } ?? "")
              + (plant.map { ", planted bug: \($0)" } ?? ""))
        fflush(nil) // each line shows at once, also in a CI log
        for seed in first..<(first + UInt64(count)) {
            if let budget, Date().timeIntervalSince(started) >= budget { break }
            let result = try runChild(seed: seed)
            ran += 1
            let fields = result.line.split(separator: "\t", maxSplits: 3).map(String.init)
            if fields.count == 4 {
                agenda += Double(fields[1]) ?? 0
                simulated += Double(fields[2]) ?? 0
            }
            guard result.code != 0 else { continue }
            let text = result.crash.map { "CRASH: \($0)" } ?? fields.last ?? result.line
            failures.append((seed, result.code, text))
            let drawn = Swarm.draw(seed: seed)
            print("✘ seed \(seed): \(text)")
            print("  case: \(drawn.nodes.count) nodes (\(drawn.byzantineNodes.sorted().joined(separator: ",")) lying), "
                  + "\(drawn.steps.count) faults: " + drawn.steps.map { "\($0.id) \($0.fields.first ?? "")" }.joined(separator: "; "))
            print("  replay: faultline simulate --swarm 1 --seed \(seed)\(plantFlag)")
            print("  shrink: faultline simulate --shrink \(seed)\(plantFlag)")
            fflush(nil)
        }
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
