import Formats
import Foundation
import NIOCore
import Synchronization
import Sodium
import Transport
import Wire

/// `faultline bench sequencer`: how many signed L2 transactions a real sequencer process takes in per
/// second, against the verification rate measured on this machine in the same run.
///
/// The bound is what every core verifying at once manages (libsodium, the nodes' envelope check);
/// the sequencer must verify each client signature, so it can never beat that. The cluster (one
/// validator and the sequencer, from a topology) and the client sending pre-signed claims share the
/// same cores, as any one-machine run does; the sequencer's own CPU time is reported too.
public enum SequencerBench {
    public struct Settings: Sendable {
        public var topologyPath: String
        public var runsRoot: String
        public var seconds: Double
        /// Claims per second to send (nil: the bound, above what a sequencer sharing the machine takes in).
        public var rate: Int?
        /// Claims in bundles of up to the default datagram size (about nine each), as the 4-validator bench
        /// sends transfers; false: one datagram per claim. On loopback the kernel delivers each datagram on
        /// the sending core, so one datagram per claim at the bound took a third of a core from the
        /// two the sequencer is measured on (the ingest figure 0.65–0.70 then, 0.74–0.81 with bundles).
        public var bundled: Bool
        /// Verification rates measured earlier in the same run (one thread, all cores), e.g. by `bench all`
        /// before its clusters. The claims go out at the higher of that and a reading of this bench's own:
        /// one reading can come out a third low (25,000/s on 2 cores once, 36,000 a minute on either side),
        /// and a send rate that far under the machine would cap the ingest figure, not measure it.
        public var measuredRates: (one: Double, all: Double)?
        /// Seconds of each measurement of the bound around a phase (one before it, one after).
        public var boundSeconds: Double

        public init(topologyPath: String, runsRoot: String, seconds: Double, rate: Int?, bundled: Bool = true,
                    measuredRates: (one: Double, all: Double)? = nil, boundSeconds: Double = 4) {
            self.topologyPath = topologyPath
            self.runsRoot = runsRoot
            self.seconds = seconds
            self.rate = rate
            self.bundled = bundled
            self.measuredRates = measuredRates
            self.boundSeconds = boundSeconds
        }
    }

    /// One phase: a fresh cluster, the claims sent, the sequencer's CPU over it.
    public struct Phase: Codable, Sendable {
        /// "ingest" (L2 blocks held back: only receiving, checking and queueing) or "pipeline"
        /// (everything: blocks, batches to L1, following L1, derivation).
        public var name: String
        public var rate: Int
        public var sent: Int
        public var sendSeconds: Double
        public var startMs: UInt64
        public var endMs: UInt64
        /// Seconds of CPU the sequencer process used from the first claim sent until it was done.
        public var sequencerCpuSeconds: Double
        public var sequencerWallSeconds: Double
        public var runDir: String
        /// All cores' verification rate just before and just after the phase (absent in older records: the
        /// record's own rate is the bound then).
        public var bound: Bound?

        /// The bound this phase's ratio is taken against.
        public func boundPerSecond(in record: Record) -> Double { bound?.perSecond ?? record.verifyAllCoresPerSecond }
    }

    public struct Record: Codable, Sendable {
        public var cores: Int
        /// Signature checks per second: one thread alone, and all cores at once (the bound).
        public var verifyOneThreadPerSecond: Double
        public var verifyAllCoresPerSecond: Double
        public var sequencer: String
        /// Whether the claims went out in bundles (see `Settings.bundled`).
        public var bundled: Bool?
        public var phases: [Phase]
    }

    /// Verifications per second with `threads` threads checking at once (summed), each one's mean over
    /// `seconds`: what the machine sustains, not its best moment. The best of three one-second
    /// measurements, used before, read ~8% above that on this shared host (its seconds range ±10% around
    /// their mean), and every ratio against it looked that much worse than the nodes were.
    public static func verifyRate(threads: Int, seconds: Double) -> Double {
        let total = Mutex(0.0)
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            let rate = VerificationRate.measure(seconds: seconds)
            total.withLock { $0 += rate }
        }
        return total.withLock { $0 }
    }

    /// A phase's verification bound: all cores' rate measured just before its cluster starts and just after
    /// it stops, with nothing else running. Over a minute this shared host's rate drifts by ±10% (33,000 to
    /// 39,000/s on 2 cores, 20 s apart); a bound measured minutes earlier put that drift into the ratio.
    public struct Bound: Codable, Sendable, Equatable {
        public var before: Double
        public var after: Double
        public init(before: Double, after: Double) {
            self.before = before
            self.after = after
        }
        /// The mean of the two: the rate the machine gave around the phase.
        public var perSecond: Double { (before + after) / 2 }
    }

    /// Runs `body` (a phase: a cluster up, measured, down) between two measurements of the bound; `body`
    /// gets the first (to size its load by).
    public static func bracketing<T>(threads: Int, seconds: Double,
                                     _ body: (_ before: Double) async throws -> T) async throws -> (result: T, bound: Bound) {
        let before = verifyRate(threads: threads, seconds: seconds)
        let result = try await body(before)
        return (result, Bound(before: before, after: verifyRate(threads: threads, seconds: seconds)))
    }

    /// Runs both phases, each on its own cluster (started, fed, stopped). `progress` gets one line per step.
    public static func run(_ settings: Settings, topology: Topology,
                           progress: (String) -> Void) async throws -> Record {
        guard let sequencerNode = topology.sequencerNode, var held = topology.rollup else {
            throw RunError("\(settings.topologyPath): the bench needs a node with role = \"sequencer\"")
        }
        let cores = UsableCores.count
        let one = settings.measuredRates?.one ?? verifyRate(threads: 1, seconds: 5)
        let all = max(settings.measuredRates?.all ?? 0, verifyRate(threads: cores, seconds: settings.boundSeconds))
        progress(String(format: "verification on this machine: %.0f/s on one thread, %.0f/s on %d at once (the send rate; each phase is judged against its own bound)",
                        one, all, cores))
        let rate = settings.rate ?? Int(all)
        let count = Int(Double(rate) * settings.seconds)
        guard held.airdropClaims >= UInt64(count) else {
            throw RunError("\(settings.topologyPath): rollup.airdrop_claims is \(held.airdropClaims); the bench sends \(count) claims")
        }
        progress("signing \(count) claims from distinct accounts on \(cores) cores…")
        let pool = await AirdropPool.make(count: count, fee: 0, chainId: topology.chainId, seed: 7_001)
        // Ingest alone: no L2 block falls due while the claims arrive, so nothing downstream runs.
        held.settings.blockIntervalMs = 600_000
        var ingestTopology = topology
        ingestTopology.rollup = held
        var phases: [Phase] = []
        let bundleBytes = NodeConfig.Limits().datagramPayloadBytesMax
        for (name, phaseTopology) in [("ingest", ingestTopology), ("pipeline", topology)] {
            progress("phase \(name): measuring the bound, then starting the cluster…")
            var (phase, bound) = try await bracketing(threads: cores, seconds: settings.boundSeconds) { _ in
                let up = try await ClusterOps.up(topology: phaseTopology, runsRoot: settings.runsRoot)
                do {
                    progress("phase \(name): \(up.dir); sending \(pool.datagrams.count) claims to \(sequencerNode.name) at \(rate)/s"
                             + (settings.bundled ? " in bundles of ≤ \(bundleBytes) bytes…" : ", one datagram each…"))
                    let phase = try await measure(name, up: up, pool: pool, rate: rate, sequencerName: sequencerNode.name,
                                                  bundleBytesMax: settings.bundled ? bundleBytes : nil)
                    try await ClusterOps.down(dir: up.dir)
                    return phase
                } catch {
                    try? await ClusterOps.down(dir: up.dir)
                    throw error
                }
            }
            phase.bound = bound
            phases.append(phase)
        }
        let record = Record(cores: cores, verifyOneThreadPerSecond: one, verifyAllCoresPerSecond: all,
                            sequencer: sequencerNode.name, bundled: settings.bundled, phases: phases)
        for phase in phases { try RunFolder.writeJSON(phase.runDir + "/bench.json", record, mode: 0o644) }
        return record
    }

    private static func measure(_ name: String, up: ClusterOps.UpResult, pool: AirdropPool, rate: Int,
                                sequencerName: String, bundleBytesMax: Int?) async throws -> Phase {
        let node = try ClusterOps.node(named: sequencerName, in: up.manifest)
        let eventsPath = up.dir + "/" + node.dir + "/events.jsonl"
        try await waitForEvent("sequencer_ready", in: eventsPath, timeoutSeconds: 30)
        guard let pid = Supervisor.pid(node, runDir: up.dir), let key = Hex.decode(node.publicKey).flatMap(PublicKey.init)
        else { throw RunError("the sequencer \(node.name) is not running") }
        let target = try SocketAddress.node(node.host, port: node.gossipPort)
        let cpuBefore = cpuSeconds(pid: pid)
        let started = Date()
        let sent = try await pool.send(id: "bench", ratePerSecond: rate, target: target, sequencer: key, drainSeconds: 0,
                                       bundleBytesMax: bundleBytesMax, shouldStop: { false })
        // Done: ingest, a sample a second after the last claim was sent (nothing left to take in);
        // pipeline, a sample after that with the queue empty.
        try await waitForEvent("l2_sample", in: eventsPath, timeoutSeconds: 60) { object in
            let time = (object["t"] as? NSNumber)?.uint64Value ?? 0
            return name == "ingest" ? time > sent.endMs + 1_000
                : time > sent.endMs && (object["queueNow"] as? NSNumber)?.intValue == 0
        }
        return Phase(name: name, rate: rate, sent: sent.sent, sendSeconds: sent.seconds, startMs: sent.startMs,
                     endMs: sent.endMs, sequencerCpuSeconds: cpuSeconds(pid: pid) - cpuBefore,
                     sequencerWallSeconds: Date().timeIntervalSince(started), runDir: up.dir, bound: nil)
    }

    /// User plus system CPU seconds of a process, from /proc.
    static func cpuSeconds(pid: pid_t) -> Double {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return 0 }
        // Fields after the command name: state is field 3; utime and stime are fields 14 and 15.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Polls an event log every 50 ms until a line with `event` (and matching `where`) appears.
    static func waitForEvent(_ event: String, in path: String, timeoutSeconds: Double,
                             where matches: ([String: Any]) -> Bool = { _ in true }) async throws {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        var offset: UInt64 = 0
        var carry = Data()
        while Date() < deadline {
            if let handle = FileHandle(forReadingAtPath: path) {
                try handle.seek(toOffset: offset)
                let data = handle.readDataToEndOfFile()
                try handle.close()
                offset += UInt64(data.count)
                carry.append(data)
                while let newline = carry.firstIndex(of: 0x0A) {
                    let line = carry[carry.startIndex..<newline]
                    carry = Data(carry[carry.index(after: newline)...])
                    guard let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any],
                          object["event"] as? String == event else { continue }
                    if matches(object) { return }
                }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw RunError("no \(event) event in \(path) within \(Int(timeoutSeconds)) s")
    }
}
