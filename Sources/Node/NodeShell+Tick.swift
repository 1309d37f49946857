import Basics
import Consensus
import Ledger
import Sodium
import Transport
import Wire

/// The node's tick (the replica's, see `ReplicaHost.tickReplica`) and its once-a-second records.
extension NodeShell {
    func onTick() {
        // Ticks are due every `statusIntervalMs`: their lateness is how late the host ran this node's timers
        // and main loop (CPU starved, or the process paused).
        tickLateness.note(wallMs: clock())
        rollup?.onStatusTick(host: self)
        tickReplica()
        logDropsIfChanged()
        logSample()
    }

    /// Votes-only mode (`Replica.Instance.updateVotesOnly`): the edge reads the switch.
    func votesOnlyChanged(_ on: Bool) {
        votesOnly.add(on ? 1 : -1)
        logger.notice("votes-only mode \(on ? "on: no block finalized for \(config.limits.votesOnlyAfterMs) ms" : "off")")
    }

    /// Once a second: vote queueing delay, timer lateness, memory, queue lengths and kernel socket drops.
    func logSample() {
        let now = clock()
        guard now - lastSampleMs >= 1_000 else { return }
        lastSampleMs = now
        logTrafficIfDue()
        let delays = voteDelaysMs.sorted()
        voteDelaysMs.removeAll(keepingCapacity: true)
        let late = (tickLateness.drain() + (eventLoopLateness?.drain() ?? [])).sorted()
        let kernelDrops = zip(localPorts, ProcessStats.udpDrops(ports: localPorts.map(\.port))).map { (lane: $0.lane, count: $1) }
        metrics.sample(voteDelaysMs: delays, kernelDrops: kernelDrops)
        write(.sample(voteDelaysMs: delays, kernelDrops: kernelDrops,
                      extra: [
                        ("timerLateP99Ms", .uint(late.sampledPercentile(0.99))), ("timerLateMaxMs", .uint(late.last ?? 0)),
                        ("rssKiB", .uint(ProcessStats.residentKiB())), ("urgentQueue", .uint(UInt64(queueLengths.urgent))),
                        ("bulkQueue", .uint(UInt64(queueLengths.bulk))), ("mempool", .uint(UInt64(mempool.count))),
                      ]))
    }

    /// Once a second at most: the cumulative ingress drops by reason, when they changed.
    func logDropsIfChanged() {
        let now = clock()
        guard now - lastDropsLogMs >= 1_000 else { return }
        let snapshot = drops.snapshot
            + outbox.shaper.droppedByReason.sorted { $0.key < $1.key }.map { ("link_" + $0.key, $0.value) }
            + replicaRejects
        let values = snapshot.map(\.1)
        guard values != lastDropsLogged, values.contains(where: { $0 > 0 }) else { return }
        lastDropsLogMs = now
        lastDropsLogged = values
        write(.drops(snapshot), flush: true)
    }

    /// The highest committed height a peer has told this node of (0 before any status).
    var bestPeerHeight: UInt64 { replica.bestPeerHeight }

    var decidedElsewhereSigners: [Int]? { consensus.decidedElsewhere?.signers }
}
