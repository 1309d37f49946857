import ArgumentParser
import Consensus
import Foundation
import Simulation

/// `simulate --twins COUNT` (guided Twins-style search, every case in this process), `--twins-case FILE` (replay a
/// case it wrote, and shrink it if it fails) and `--twins 1 --shrink SEED` (shrink a drawn case).
extension Simulate {
    func runTwins(count: Int) throws {
        if let shrink { return try shrinkTwins(Twins.draw(seed: shrink), label: "twins seed \(shrink)") }
        let first = seed ?? 1
        let started = Date()
        var failures: [(drawn: Twins.Case, verdict: Swarm.Verdict)] = []
        var search = Twins.Search(planted: planted, firstSeed: first, consensus: consensus.consensusProtocol)
        print("twins: \(count) cases from seed \(first), guided" + (budget.map { String(format: ", budget %.0f s", $0) } ?? "")
              + (plant.map { ", planted bug: \($0)" } ?? "") + " (a case that crashes this process is left in "
              + Simulate.runningTwinsCase + ": replay it with --twins-case)")
        fflush(nil)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try FileManager.default.createDirectory(atPath: Simulate.twinsDir, withIntermediateDirectories: true)
        while search.cases < count {
            if let budget, Date().timeIntervalSince(started) >= budget { break }
            let (drawn, verdict, _) = try search.next { drawn in
                try encoder.encode(drawn).write(to: URL(fileURLWithPath: Simulate.runningTwinsCase))
            }
            guard verdict != .passed else { continue }
            failures.append((drawn, verdict))
            let path = try Simulate.writeTwinsCase(drawn)
            print("✘ case \(search.cases) (seed \(drawn.seed)\(search.cases % 2 == 1 ? "" : ", varied")): \(verdict)")
            print("  case: \(drawn)")
            print("  replay and shrink: faultline simulate --twins-case \(path)\(plantFlag)")
            fflush(nil)
        }
        try? FileManager.default.removeItem(atPath: Simulate.runningTwinsCase)
        let wall = Date().timeIntervalSince(started)
        print(String(format: "twins: %d cases (%d drawn, %d varied from %d near misses) in %.1f s (%.1f cases/s), %d failed",
                     search.cases, search.fresh, search.cases - search.fresh, search.corpus.count, wall,
                     Double(search.cases) / max(wall, 1e-6), failures.count))
        if failures.contains(where: { $0.verdict.kind == "safety" }) { throw ExitCode(Simulate.exitSafety) }
        if !failures.isEmpty { throw ExitCode(Simulate.exitLiveness) }
    }

    static let twinsDir = ".faultline/twins"
    /// The case being run, written before it runs (and removed at the end).
    static let runningTwinsCase = twinsDir + "/running.json"

    /// A failing case as JSON under `.faultline/twins/`, for `--twins-case`.
    static func writeTwinsCase(_ drawn: Twins.Case) throws -> String {
        let dir = twinsDir
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(drawn)
        let path = dir + "/case-\(drawn.seed)-\(String(format: "%08x", UInt32(truncatingIfNeeded: data.hashValue))).json"
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    func replayTwinsCase(_ path: String) throws {
        let drawn: Twins.Case
        do {
            drawn = try JSONDecoder().decode(Twins.Case.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw Exit.badInput("\(path): not a Twins case written by `faultline simulate --twins` (\(error))")
        }
        let (verdict, _) = try Twins.check(drawn, planted: planted, consensus: consensus.consensusProtocol)
        print("twins case \(path): \(verdict)")
        print("  case: \(drawn)")
        if verdict != .passed { try shrinkTwins(drawn, label: path, verdict: verdict) }
    }

    /// Shrinks a failing case (`verdict`: its failure, already printed; nil: run it first).
    func shrinkTwins(_ drawn: Twins.Case, label: String, verdict known: Swarm.Verdict? = nil) throws {
        let verdict = try known ?? Twins.check(drawn, planted: planted, consensus: consensus.consensusProtocol).0
        guard verdict != .passed else {
            throw Exit.badInput("\(label) passes\(plantFlag.isEmpty ? "" : " with" + plantFlag): nothing to shrink")
        }
        if known == nil {
            print("\(label): \(verdict)")
            print("  drawn: \(drawn)")
        }
        let (small, smallVerdict, tries) = Twins.shrink(drawn, verdict: verdict, planted: planted, consensus: consensus.consensusProtocol)
        print("  shrunk after \(tries) runs: \(small)")
        print("  still \(smallVerdict)")
        if verdict.kind == "safety" { throw ExitCode(Simulate.exitSafety) }
        throw ExitCode(Simulate.exitLiveness)
    }
}
