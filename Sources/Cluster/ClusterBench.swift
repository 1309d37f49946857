import Formats
import Foundation
import NIOCore
import NIOPosix
import Sodium
import Transport
import Wire

/// The cluster phases of `faultline bench`: start a cluster and time it to the first finalized block,
/// saturate it with pre-signed transfers, sample idle nodes, hold 100 validators up. Figures that come
/// from the nodes' event logs are computed by the caller (Liveness); this part runs things and samples
/// the processes.
public enum ClusterBench {
    /// A cluster started for a phase.
    public struct Started: Sendable {
        public var dir: String
        public var manifest: RunManifest
        /// Wall-clock ms just before the run folder was written (what `faultline up` starts with).
        public var startMs: UInt64
        /// When `up` returned: every validator reported a finalized block over its control port.
        public var upReturnedMs: UInt64
    }

    public static func start(_ topology: Topology, runsRoot: String, timeoutSeconds: Double) async throws -> Started {
        let startMs = nowMs()
        let up = try await ClusterOps.up(topology: topology, runsRoot: runsRoot, timeoutSeconds: timeoutSeconds)
        return Started(dir: up.dir, manifest: up.manifest, startMs: startMs, upReturnedMs: nowMs())
    }

    /// CPU seconds and resident memory of every node process of a run.
    public struct ProcessSample: Codable, Sendable {
        public var cpuSeconds: [String: Double]
        public var rssKiB: [String: UInt64]

        public var rssTotalKiB: UInt64 { rssKiB.values.reduce(0, +) }
    }

    public static func sample(_ started: Started) -> ProcessSample {
        var cpu: [String: Double] = [:]
        var rss: [String: UInt64] = [:]
        for node in started.manifest.nodes {
            guard let pid = Supervisor.pid(node, runDir: started.dir), Supervisor.isAlive(pid) else { continue }
            cpu[node.name] = SequencerBench.cpuSeconds(pid: pid)
            rss[node.name] = residentKiB(pid: pid)
        }
        return ProcessSample(cpuSeconds: cpu, rssKiB: rss)
    }

    /// VmRSS of a process, from /proc (0 if it is gone).
    public static func residentKiB(pid: pid_t) -> UInt64 {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return UInt64(line.split(separator: " ").dropFirst().first ?? "") ?? 0
        }
        return 0
    }

    /// What the saturation phase did; the finalized rate is read from the nodes' status counters.
    public struct Saturation: Codable, Sendable {
        public var sent: Int
        public var windowTxs: Int
        public var measureStartMs: UInt64
        public var measureEndMs: UInt64
        public var committedAtStart: Int
        public var committedAtEnd: Int
        public var signSeconds: Double
        /// Signatures the validators checked at their receiving edges over the measured window (all
        /// validators together); ideally the number of validators per finalized transaction.
        public var edgeSignatureChecks: Int?

        public var finalizedPerSecond: Double {
            let seconds = Double(measureEndMs - measureStartMs) / 1000
            return seconds > 0 ? Double(committedAtEnd - committedAtStart) / seconds : 0
        }
    }

    /// Closed-loop load: signed transfers (signed before the clock starts, on every core, so the
    /// client's signing does not compete with the nodes) are sent round-robin to the validators
    /// whenever the first validator's mempool holds fewer than `windowTxs`, so the cluster always has a
    /// full block waiting and never an ever-growing backlog. The finalized rate is the first validator's
    /// committed-transaction counter over the `seconds` after `warmupSeconds`.
    public static func saturate(_ started: Started, ratePerSecondMax: Double, seconds: Double, warmupSeconds: Double,
                                windowTxs: Int, progress: (String) -> Void) async throws -> Saturation {
        let manifest = started.manifest
        let validators = manifest.nodes.filter { $0.role == "validator" }
        guard let watched = validators.first else { throw RunError("the bench cluster has no validator") }
        let token = try RunFolder.token(started.dir)
        let count = Int(ratePerSecondMax * (seconds + warmupSeconds)) + windowTxs
        let signStart = Date()
        let datagrams = await presignedTransfers(manifest: manifest, count: count)
        let signSeconds = Date().timeIntervalSince(signStart)
        progress(String(format: "signed %d transfers in %.1f s (before the clock starts); sending while %@'s mempool "
                        + "holds under %d", count, signSeconds, watched.name, windowTxs))
        let targets = try validators.map { try SocketAddress.node($0.host, port: $0.gossipPort) }
        let datagramBytesMax = NodeConfig.Limits().datagramPayloadBytesMax
        let channel = try await SenderSocket.bind(toward: targets)
        defer { channel.close(promise: nil) }
        let begun = Date()
        var sent = 0
        var committedAtStart: Int?
        var measureStartMs: UInt64 = 0
        var checksAtStart: Int?
        var last = try await ControlClient.status(host: watched.host, port: watched.controlPort, token: token)
        while Date().timeIntervalSince(begun) < seconds + warmupSeconds, sent < datagrams.count {
            if committedAtStart == nil, Date().timeIntervalSince(begun) >= warmupSeconds {
                committedAtStart = Int(last.txsCommitted)
                measureStartMs = nowMs()
                checksAtStart = await edgeChecks(validators, token: token)
            }
            // Between two status polls at most a quarter of the window goes out: the mempool figure
            // lags what is still in socket buffers and ingress queues.
            let room = min(windowTxs - last.mempoolTxs, windowTxs / 4, datagrams.count - sent)
            if room > 0 {
                // Round-robin over the validators, several transfers per datagram (bundles of the default
                // 1,232-byte datagram size, whatever the cluster's: a client's path MTU is not a jumbo frame).
                var perTarget = [[[UInt8]]](repeating: [], count: targets.count)
                for _ in 0..<room {
                    perTarget[sent % targets.count].append(datagrams[sent])
                    sent += 1
                }
                for (target, transfers) in zip(targets, perTarget) {
                    for bytes in Bundle.pack(transfers, datagramBytesMax: datagramBytesMax) {
                        channel.write(AddressedEnvelope(remoteAddress: target, data: ByteBuffer(bytes: bytes)), promise: nil)
                    }
                }
                channel.flush()
            }
            try await Task.sleep(for: .milliseconds(20))
            last = try await ControlClient.status(host: watched.host, port: watched.controlPort, token: token)
        }
        let end = try await ControlClient.status(host: watched.host, port: watched.controlPort, token: token)
        let measureEndMs = nowMs()
        let checksAtEnd = await edgeChecks(validators, token: token)
        return Saturation(sent: sent, windowTxs: windowTxs, measureStartMs: measureStartMs, measureEndMs: measureEndMs,
                          committedAtStart: committedAtStart ?? 0, committedAtEnd: Int(end.txsCommitted),
                          signSeconds: signSeconds,
                          edgeSignatureChecks: checksAtEnd.flatMap { end in checksAtStart.map { end - $0 } })
    }

    /// Every validator's `faultline_edge_signature_checks_total`, summed (nil if one did not answer).
    static func edgeChecks(_ validators: [RunManifest.NodeEntry], token: String) async -> Int? {
        var total = 0
        for node in validators {
            guard let value = try? await ControlClient.metricSum("faultline_edge_signature_checks_total", host: node.host,
                                                                 port: node.controlPort, token: token) ?? nil
            else { return nil }
            total += Int(value)
        }
        return total
    }

    /// `count` transfers from the run's accounts, nonces increasing per account from the clock (as the
    /// load generator does, so a later load run stays valid), signed on every core.
    static func presignedTransfers(manifest: RunManifest, count: Int) async -> [[UInt8]] {
        let domain = Domain(chainId: manifest.chainId)
        let accounts = (0..<manifest.accounts).map {
            ClusterSetup.accountKey(chainId: manifest.chainId, seed: manifest.seed, index: $0)
        }
        let nonceBase = nowMs() * 1_000
        let workers = max(UsableCores.count, 1)
        let parts = await withTaskGroup(of: (Int, [[UInt8]]).self) { group in
            for worker in 0..<workers {
                group.addTask {
                    var out: [[UInt8]] = []
                    out.reserveCapacity(count / workers + 1)
                    for index in stride(from: worker, to: count, by: workers) {
                        let from = index % accounts.count
                        let transfer = Transfer(to: accounts[(from + 1) % accounts.count].publicKey, amount: 1, fee: 1,
                                                nonce: nonceBase + UInt64(index / accounts.count))
                        out.append(Envelope(kind: .transfer, payload: transfer.encoded, domain: domain,
                                            key: accounts[from]).bytes)
                    }
                    return (worker, out)
                }
            }
            var all: [(Int, [[UInt8]])] = []
            for await part in group { all.append(part) }
            return all.sorted { $0.0 < $1.0 }.map(\.1)
        }
        // Back into index order, so each account's nonces go out increasing.
        return (0..<count).map { parts[$0 % workers][$0 / workers] }
    }

    /// Per node: CPU share (of one core) and resident memory over `seconds` with no load.
    public struct Idle: Codable, Sendable {
        public var seconds: Double
        public var cpuShare: [String: Double]
        public var rssKiB: [String: UInt64]
    }

    public static func idle(_ started: Started, seconds: Double) async throws -> Idle {
        let before = sample(started)
        let clock = Date()
        try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
        let elapsed = Date().timeIntervalSince(clock)
        let after = sample(started)
        var share: [String: Double] = [:]
        for (name, cpu) in after.cpuSeconds {
            share[name] = (cpu - (before.cpuSeconds[name] ?? 0)) / elapsed
        }
        return Idle(seconds: elapsed, cpuShare: share, rssKiB: after.rssKiB)
    }

    /// Holds a cluster for `seconds`, sampling every node's memory each second; returns the peak of
    /// the total and when the hold started and ended (blocks per second come from the event logs).
    public struct Hold: Codable, Sendable {
        public var startMs: UInt64
        public var endMs: UInt64
        public var rssTotalPeakKiB: UInt64
        public var rssNodeMaxKiB: UInt64
        public var cpuSeconds: Double
        public var nodesAlive: Int
    }

    public static func hold(_ started: Started, seconds: Double, progress: (String) -> Void) async throws -> Hold {
        let startMs = nowMs()
        let before = sample(started)
        var peak: UInt64 = 0
        var nodeMax: UInt64 = 0
        var alive = 0
        var samples = 0
        var after = before
        while Double(nowMs() - startMs) < seconds * 1000 {
            try await Task.sleep(for: .seconds(1))
            after = sample(started)
            peak = max(peak, after.rssTotalKiB)
            nodeMax = max(nodeMax, after.rssKiB.values.max() ?? 0)
            alive = after.rssKiB.count
            let elapsed = Double(nowMs() - startMs) / 1000
            samples += 1
            if samples % 10 == 0 {
                progress(String(format: "  %.0f s: %d nodes, %.0f MiB in all", elapsed, alive, Double(after.rssTotalKiB) / 1024))
            }
        }
        let cpu = after.cpuSeconds.reduce(0.0) { $0 + $1.value - (before.cpuSeconds[$1.key] ?? 0) }
        return Hold(startMs: startMs, endMs: nowMs(), rssTotalPeakKiB: peak, rssNodeMaxKiB: nodeMax, cpuSeconds: cpu,
                    nodesAlive: alive)
    }

    static func nowMs() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }
}
