import ArgumentParser
import Consensus
import Foundation
import Simulation

/// `simulate --twins COUNT` (and `--twins 1 --shrink SEED`): Twins-style schedules, every case in this process.
extension Simulate {
    func runTwins(count: Int) throws {
        if let shrink { return try shrinkTwins(seed: shrink) }
        let first = seed ?? 1
        let started = Date()
        var ran = 0, simulated = 0.0
        var failures: [(seed: UInt64, verdict: Swarm.Verdict)] = []
        print("twins: \(count) cases from seed \(first)" + (budget.map { String(format: ", budget %.0f s", $0) } ?? "")
              + (plant.map { ", planted bug: \($0)" } ?? ""))
        fflush(nil)
        for seed in first..<(first + UInt64(count)) {
            if let budget, Date().timeIntervalSince(started) >= budget { break }
            let drawn = Twins.draw(seed: seed)
            let (verdict, outcome) = try Twins.check(drawn, planted: planted)
            ran += 1
            simulated += outcome?.virtualSeconds ?? drawn.durationSeconds
            guard verdict != .passed else { continue }
            failures.append((seed, verdict))
            print("✘ seed \(seed): \(verdict)")
            print("  case: \(drawn)")
            print("  replay: faultline simulate --twins 1 --seed \(seed)\(plantFlag)")
            print("  shrink: faultline simulate --twins 1 --shrink \(seed)\(plantFlag)")
            fflush(nil)
        }
        let wall = Date().timeIntervalSince(started)
        print(String(format: "twins: %d cases in %.1f s (%.1f cases/s, %.0f simulated s), %d failed", ran, wall,
                     Double(ran) / max(wall, 1e-6), simulated, failures.count))
        if failures.contains(where: { $0.verdict.kind == "safety" }) { throw ExitCode(Simulate.exitSafety) }
        if !failures.isEmpty { throw ExitCode(Simulate.exitLiveness) }
    }

    func shrinkTwins(seed: UInt64) throws {
        let drawn = Twins.draw(seed: seed)
        let (verdict, _) = try Twins.check(drawn, planted: planted)
        guard verdict != .passed else {
            throw Exit.badInput("twins seed \(seed) passes\(plantFlag.isEmpty ? "" : " with" + plantFlag): nothing to shrink")
        }
        print("twins seed \(seed): \(verdict)")
        print("  drawn: \(drawn)")
        let (small, smallVerdict, tries) = Twins.shrink(drawn, verdict: verdict, planted: planted)
        print("  shrunk after \(tries) runs: \(small)")
        print("  still \(smallVerdict)")
    }
}
