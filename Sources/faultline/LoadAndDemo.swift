import ArgumentParser
import Cluster
import Formats
import Foundation
import Liveness

struct Load: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send signed transfers to a running cluster at a rate, with a live progress line.")

    @OptionGroup var runOption: RunOption

    @Option(help: "Transactions per second (default: the topology's [load] rate).")
    var rate: Int?

    @Option(help: "Seconds to send for (default: the topology's [load] duration).")
    var duration: Double?

    func run() async throws {
        let dir = runOption.dir
        let manifest: RunManifest
        do {
            manifest = try RunFolder.load(dir)
        } catch {
            throw Exit.badInput("\(error)")
        }
        let stats = try await LoadRunner.run(dir: dir, manifest: manifest, rate: rate ?? manifest.load.rateTxPerSecond,
                                             seconds: duration ?? manifest.load.durationSeconds)
        print("sent \(stats.sent) transfers in \(String(format: "%.1f", stats.seconds)) s")
    }
}

enum LoadRunner {
    static func run(dir: String, manifest: RunManifest, rate: Int, seconds: Double) async throws -> LoadGenerator.Stats {
        let generator = try LoadGenerator(manifest: manifest, runDir: dir, l2: manifest.load.l2 ?? false)
        let progress = Progress(dir: dir)
        let stats = try await generator.run(rate: rate, seconds: seconds, progress: { stats in
            await progress.show(stats: stats)
        })
        // Give the last transactions time to be finalized, then draw the final line.
        try await Task.sleep(for: .milliseconds(500))
        await progress.show(stats: stats)
        progress.finish()
        return stats
    }
}

/// The one live line: elapsed, heights, finalized tx/s, mempool.
final class Progress: @unchecked Sendable {
    let dir: String
    let started = Date()
    var lastTxs: UInt64 = 0
    var lastTime = Date()
    var rate = 0.0

    init(dir: String) { self.dir = dir }

    func show(stats: LoadGenerator.Stats) async {
        guard let states = try? await ClusterOps.states(dir: dir) else { return }
        let heights = states.map { "\($0.node.name) \($0.alive ? String($0.status?.height ?? 0) : "down")" }
        let txs = states.compactMap { $0.status?.txsCommitted }.max() ?? 0
        let now = Date()
        let dt = now.timeIntervalSince(lastTime)
        if dt > 0.2 {
            rate = Double(txs &- lastTxs) / dt
            lastTxs = txs
            lastTime = now
        }
        let mempool = states.compactMap { $0.status?.mempoolTxs }.max() ?? 0
        Terminal.progress(String(format: "%5.1fs  height %@  |  sent %d  finalized %d tx (%.0f tx/s)  mempool %d",
                                 now.timeIntervalSince(started), heights.joined(separator: ", "), stats.sent,
                                 Int(txs), rate, mempool))
    }

    func finish() { Terminal.endProgress() }
}

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start four validators, send signed transfers with a live progress line, stop, summarize.")

    @OptionGroup var options: StartOptions

    @Option(help: "Seconds of load (default: the topology's).")
    var duration: Double?

    @Option(help: "Transactions per second (default: the topology's).")
    var rate: Int?

    func run() async throws {
        print("starting the cluster from \(options.topology) …")
        let (parsed, up) = try await options.start()
        print("\(parsed.validators.count) validators up; first block finalized \(Terminal.ms(up.firstBlockMs)) "
              + "after start; run folder \(up.dir)")
        let rate = rate ?? parsed.load.rateTxPerSecond
        let seconds = duration ?? parsed.load.durationSeconds
        print("sending \(rate) signed transfers/s for \(Int(seconds)) s")
        do {
            _ = try await LoadRunner.run(dir: up.dir, manifest: up.manifest, rate: rate, seconds: seconds)
        } catch {
            try? await ClusterOps.down(dir: up.dir)
            throw Exit.failure("load failed: \(error)")
        }
        let states = (try? await ClusterOps.states(dir: up.dir)) ?? []
        let crashed = states.filter { !$0.alive }.map(\.node.name)
        try await ClusterOps.down(dir: up.dir)
        let analysis = Analysis.run(dir: up.dir, manifest: up.manifest)
        print(Terminal.summary(analysis))
        if !crashed.isEmpty { throw Exit.failure("nodes not running at the end: \(crashed.joined(separator: ", "))") }
        if !analysis.agreement { throw Exit.failure("safety violated: nodes committed different blocks") }
        if !analysis.noCommittedBlockLost { throw Exit.failure("a restarted node lost committed blocks") }
    }
}
