import Basics
import Sodium
import Wire

extension RollupNode {
    /// The readiness check before sequencing (the Base incident): the node must have heard from peers
    /// and caught up with L1, so the L2 chain it starts from is the one L1 has.
    public func startSequencingIfReady(host: Host) {
        guard role == .sequencer, sequencer == nil, halted == nil, host.hasHeardPeers else { return }
        let best = host.bestPeerHeight
        guard host.l1Height + 1 >= best, host.nowMs >= host.startedAtMs + 500 else { return }
        let core = Sequencer.Instance(settings: sequencerSettings, derived: derivation.chain,
                                      nextSequence: host.ledger.inbox.batchSequence,
                                      nextBatchIndex: derivation.lastBatchIndex.map { $0 + 1 } ?? 0)
        sequencer = core
        host.log(.notice, "sequencer ready at L1 height \(host.l1Height): L2 head \(core.chain.height) (root \(core.chain.stateRoot.short)), next batch \(core.nextBatchIndex), next chunk \(core.nextSequence)")
        host.record("sequencer_ready", timeMs: host.nowMs, [
            ("l1Height", .uint(host.l1Height)), ("l2Height", .uint(core.chain.height)),
            ("batch", .uint(core.nextBatchIndex)), ("sequence", .uint(core.nextSequence)),
        ])
        host.flushRecords()
    }

    /// An L2 transaction from a client, verified at the edge. Refusals are answered with the reason.
    public func onClientTransaction(_ envelope: Envelope, from address: Address, receivedMs: UInt64, host: Host) {
        guard role == .sequencer else { return }
        // The core is mutated in place (`sequencer!`): a copy would copy its queue and ledger per transaction.
        guard sequencer != nil else {
            refuse([envelope.id], reason: halted == nil ? "not_ready" : "stopped", to: address, host: host)
            return
        }
        if let reject = sequencer!.offer(envelope, nowMs: receivedMs) {
            refuse([envelope.id], reason: reject.rawValue, to: address, host: host)
        } else {
            admittedSinceSample += 1
            queuePeakSinceSample = max(queuePeakSinceSample, sequencer!.admission.queue.count)
        }
    }

    /// Transactions the edge shed before checking them: answered `busy`.
    public func onShed(_ ids: [Bytes32], from address: Address, host: Host) {
        guard role == .sequencer else { return }
        refuse(ids, reason: "busy", to: address, host: host)
    }

    /// Collects refusals per client address and reason; they leave as one signed `L2Reject` each at the end
    /// of the input batch (`flushRefusals`), or as soon as one holds `L2Reject.txIdsMax` ids.
    private func refuse(_ ids: [Bytes32], reason: String, to address: Address, host: Host) {
        rejectedSinceSample[reason, default: 0] += ids.count
        let key = RefusalKey(address: address, reason: reason)
        if refusals[key] == nil, refusals.count >= RollupNodeLimits.refusalKeysMax { flushRefusals(host: host) }
        refusals[key, default: []].append(contentsOf: ids)
        if refusals[key]!.count >= L2Reject.txIdsMax { flushRefusals(host: host) }
    }

    public var hasRefusals: Bool { !refusals.isEmpty }

    /// One signed refusal per (client, reason) for up to `L2Reject.txIdsMax` ids, into the uplink.
    public func flushRefusals(host: Host) {
        let baseFee = sequencer?.admission.baseFee ?? 0
        for (key, ids) in refusals {
            var start = 0
            while start < ids.count {
                let end = min(start + L2Reject.txIdsMax, ids.count)
                let reply = host.sign(.l2Reject, L2Reject(txIds: Array(ids[start..<end]), reason: key.reason, baseFee: baseFee))
                uplink.enqueue(UplinkItem(bytes: reply.bytes, address: key.address, peer: "client", kind: .l2Reject))
                start = end
            }
        }
        refusals.removeAll(keepingCapacity: true)
    }

    /// Every `blockIntervalMs`: an L2 block if there is anything to include, its feed, and the poster's chunks.
    public func onBlockTimer(host: Host) {
        startSequencingIfReady(host: host)
        guard sequencer != nil else { return }
        let now = host.nowMs
        // The poster's chunks (new and re-sent) are offered to the uplink before this tick's feed: at
        // tick granularity both arrive together, and a drop-tail queue full of re-sends has no room
        // for whichever comes second.
        for chunk in sequencer!.post(nowMs: now) {
            let envelope = host.sign(.batchChunk, chunk)
            signedChunks.insert(envelope.id)
            for target in host.chunkTargets {
                uplink.enqueue(UplinkItem(bytes: envelope.bytes, address: target.address, peer: target.name,
                                          kind: .batchChunk))
            }
        }
        let forcedPending = derivation.forced.recorded > sequencer!.chain.forcedConsumed
        if !sequencer!.admission.queue.isEmpty || forcedPending,
           let produced = sequencer!.produce(nowMs: now, l1Height: host.l1Height, forced: derivation.forced) {
            let core = sequencer!
            producedIds[produced.block.header.height] = produced.block.id
            if let batch = sequencer!.phantomDepositBatch, disputeAgent?.settings.lieBatch == .max {
                disputeAgent!.lie(atBatch: batch)
                host.log(.notice, "sequencer: credited a deposit from an L1 block L1 did not finalize (missed reorg) before L2 block \(produced.block.header.height), the first of batch \(batch)")
                host.record("phantom_deposit", timeMs: now, [
                    ("batch", .uint(batch)), ("l2Height", .uint(produced.block.header.height)), ("amount", .uint(sequencer!.settings.phantomDeposit?.amount ?? 0)),
                ])
            }
            for entry in produced.included { waitsMs.append(now > entry.enqueuedMs ? now - entry.enqueuedMs : 0) }
            if waitsMs.count > 200_000 { waitsMs.removeFirst(100_000) }
            host.record("l2_block", timeMs: now, [
                ("l2Height", .uint(produced.block.header.height)), ("txs", .uint(UInt64(produced.block.txs.count))),
                ("forcedThrough", .uint(produced.block.header.forcedThrough)),
                ("expired", .uint(UInt64(produced.expired.count))), ("refused", .uint(UInt64(produced.refused.count))),
                ("queue", .uint(UInt64(core.admission.queue.count))), ("backlogBytes", .uint(UInt64(core.backlogBytes))),
                ("stateRoot", .string(produced.block.header.stateRoot.hex)), ("id", .string(produced.block.id.hex)),
                ("txIds", .array(produced.block.txs.map { .string($0.id.short) })),
            ])
            sendFeed(produced.block, host: host)
        }
        sample(host: host, now: now)
    }

    private func sendFeed(_ block: L2Block, host: Host) {
        // Nobody to feed (no replica takes the feed): no parts to sign (they were 5% of a sequencer's CPU).
        guard !settings.feedPeers.isEmpty else { return }
        let (root, parts) = PartSet.split(block.encoded, payloadBytesMax: host.datagramPayloadBytesMax,
                                          fixedOverhead: Envelope.overheadBytes + 72)
        for part in parts {
            let envelope = host.sign(.l2BlockPart, L2BlockPart(height: block.header.height, blockId: block.id,
                                                               partsRoot: root, part: part))
            for name in settings.feedPeers {
                guard let address = host.feedAddress(named: name) else { continue }
                uplink.enqueue(UplinkItem(bytes: envelope.bytes, address: address, peer: name, kind: .l2BlockPart))
            }
        }
    }

    /// The node's status tick: the sequencer's readiness check, and the sample when one is due.
    public func onStatusTick(host: Host) {
        startSequencingIfReady(host: host)
        sample(host: host, now: host.nowMs)
    }

    /// Once a second: the queue, waits, rejects, backlog and memory.
    public func sample(host: Host, now: UInt64) {
        guard now >= lastSampleMs + 1_000 else { return }
        lastSampleMs = now
        var fields: [(String, JSONValue)] = [("role", .string(role.rawValue)), ("l2Safe", .uint(safeHeight)),
                                             ("l1Height", .uint(host.l1Height))]
        if let resident = host.residentKiB { fields.append(("rssKiB", .uint(resident))) }
        if let core = sequencer {
            let waits = waitsMs.sorted()
            waitsMs.removeAll(keepingCapacity: true)
            fields += [
                ("queue", .uint(UInt64(max(queuePeakSinceSample, core.admission.queue.count)))),
                ("queueNow", .uint(UInt64(core.admission.queue.count))), ("baseFee", .uint(core.admission.baseFee)),
                ("waitP50Ms", .uint(waits.sampledPercentile(0.5))), ("waitP99Ms", .uint(waits.sampledPercentile(0.99))),
                ("included", .uint(UInt64(waits.count))), ("admitted", .uint(UInt64(admittedSinceSample))),
                ("rejected", .object(rejectedSinceSample.sorted { $0.key < $1.key }.map { ($0.key, .uint(UInt64($0.value))) })),
                ("backlogBytes", .uint(UInt64(core.backlogBytes))), ("backlogBlocks", .uint(UInt64(core.backlogBlocks))),
                ("chunksInFlight", .uint(UInt64(core.chunksInFlight))), ("l2Unsafe", .uint(core.chain.height)),
                ("uplinkQueue", .uint(UInt64(uplink.queue.count))),
                ("uplinkDropped", .object(uplink.dropped.sorted { $0.key < $1.key }.map { ($0.key, .uint(UInt64($0.value))) })),
            ]
        } else {
            fields += [("l2Unsafe", .uint(unsafe.height)), ("feedAgeMs", .uint(lastFeedMs == 0 ? 0 : now - lastFeedMs)),
                       ("feedRootMismatches", .uint(UInt64(feedRootMismatches)))]
        }
        admittedSinceSample = 0
        queuePeakSinceSample = 0
        rejectedSinceSample.removeAll(keepingCapacity: true)
        host.record("l2_sample", timeMs: now, fields)
        host.flushRecords()
    }
}
