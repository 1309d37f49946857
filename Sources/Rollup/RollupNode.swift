import Ledger
import Sodium
import Wire

/// The rollup part of a `sequencer` or `replica` node. The node follows L1 as a non-voting member
/// (block sync); this shell feeds every committed L1 block to derivation, and:
/// - as the sequencer, admits L2 transactions (answering refusals with a reason), makes L2 blocks,
///   sends them on the feed, and posts batches to the validators through a shared, bounded uplink;
/// - as a replica, follows the feed (the unsafe head) and checks it against what it derives from
///   L1 (the safe head).
/// Owned by the node's main loop, like `NodeShell`.
public final class RollupNode<Host: RollupHost> {
    public typealias Address = Host.Address

    public let role: RollupRole
    let settings: RollupSettings
    let sequencerKey: PublicKey
    public var derivation: Derivation.Instance
    /// The sequencer's core, once the node has caught up with L1 (its readiness check).
    var sequencer: Sequencer.Instance?
    /// The replica's feed-following chain.
    var unsafe: L2Chain
    public var uplink: Uplink<Address>
    var feed: FeedAssembler
    /// Block ids the sequencer produced and L1 has not made safe yet, by height (bounded by the backlog).
    var producedIds: [UInt64: Bytes32] = [:]
    /// Feed block ids by height, kept until derivation reaches them (bounded).
    var feedIds: [UInt64: Bytes32] = [:]
    var halted: String?
    /// Ids of the batch chunks this sequencer signed, so L1 blocks carrying them are not checked again.
    public var signedChunks = BoundedIdSet(countMax: 50_000)
    var rejectedSinceSample: [String: Int] = [:]
    /// Refusals not yet answered, per client address and reason (see `flushRefusals`); at most
    /// `refusalKeysMax` keys.
    var refusals: [RefusalKey: [Bytes32]] = [:]

    struct RefusalKey: Hashable {
        var address: Address
        var reason: String
    }
    var admittedSinceSample = 0
    /// The deepest the queue has been since the last sample.
    var queuePeakSinceSample = 0
    var waitsMs: [UInt64] = []
    var lastSampleMs: UInt64 = 0
    var lastFeedMs: UInt64 = 0
    var feedRootMismatches = 0
    /// Derived root mismatches logged at warning level (each is in the event log; the log stays short).
    var rootMismatchesLogged = 0
    var safeHeight: UInt64 = 0
    /// The node's part in disputes (when genesis has the dispute contract), and the keys it plays as.
    var disputeAgent: DisputeAgent.Instance?
    var disputeKeys: [SigningKey] = []

    public init(role: RollupRole, settings: RollupSettings, genesis: Genesis, forkId: UInt32) throws {
        self.role = role
        self.settings = settings
        let chain = try L2Chain(genesis: genesis, forkId: forkId)
        guard let rollup = genesis.rollup else { throw Genesis.Problem.noRollup }
        self.sequencerKey = chain.sequencer
        self.derivation = Derivation.Instance(chain: chain, forcedInclusionBlocks: rollup.forcedInclusionBlocks,
                                              challengeWindowBlocks: rollup.disputes == nil ? settings.challengeWindowBlocks : nil)
        self.unsafe = chain
        self.uplink = Uplink(bytesPerSecond: settings.uplinkBytesPerSecond, queueMax: settings.uplinkQueueMax)
        self.feed = FeedAssembler()
    }

    var sequencerSettings: Sequencer.Settings {
        Sequencer.Settings(
            admission: Admission.Settings(
                queueTxsMax: settings.queueTxsMax, queueWaitMsMax: settings.queueWaitMsMax,
                senderPerSecond: settings.senderPerSecond, senderBurst: settings.senderBurst,
                baseFeeMin: settings.baseFeeMin, baseFeeStepTxs: settings.baseFeeStepTxs,
                backlogBytesMax: settings.backlogBytesMax, backlogIntakePerSecond: settings.backlogIntakePerSecond),
            blockTxsMax: settings.blockTxsMax, batchBytesMax: settings.batchBytesMax,
            postIntervalMs: settings.postIntervalMs, chunkDataBytesMax: settings.chunkDataBytesMax,
            resendMs: settings.resendMs, backlogBlocksMax: settings.backlogBlocksMax,
            phantomDeposit: settings.dispute.lie == "missed-reorg"
                ? .init(fromBatch: settings.dispute.batch ?? 1, account: RollupNodeLimits.reorgedDepositAccount, amount: 50_000) : nil)
    }

    // MARK: L1

    /// A committed L1 block: live, or replayed from the store at start (then the dispute agent only
    /// learns from it; it acts on live blocks, against the contract as it stands).
    public func onL1Commit(_ commit: L1Commit, live: Bool, host: Host) {
        let now = host.nowMs
        let height = commit.height
        for event in derivation.onL1Block(height: height, timeMs: commit.timeMs, inbox: commit.inbox, trusted: producedIds) {
            record(event, l1Height: height, now: now, host: host)
        }
        if sequencer != nil {
            for landed in sequencer!.onInbox(batchSequence: commit.batchSequence) {
                host.record("batch_landed", timeMs: now, [
                    ("batch", .uint(landed.batchIndex)), ("lastHeight", .uint(landed.lastHeight)), ("l1Height", .uint(height)),
                ])
            }
        }
        onDisputes(commit.disputes, l1Height: height, live: live, host: host)
    }

    func record(_ event: Derivation.Event, l1Height: UInt64, now: UInt64, host: Host) {
        switch event {
        case .derived(let block, _, _):
            let height = block.header.height
            if let fed = feedIds.removeValue(forKey: height), fed != block.id {
                host.record("feed_mismatch", timeMs: now, [
                    ("l2Height", .uint(height)), ("feed", .string(fed.hex)), ("derived", .string(block.id.hex)),
                ])
            }
            if let produced = producedIds.removeValue(forKey: height), produced != block.id {
                stopSequencing("L1 has another L2 block \(height) than this sequencer made (\(block.id.short), ours \(produced.short)); restart it to rebuild from L1", host: host)
            }
        case .batchApplied(let index, let first, let last, let blocks, let root):
            safeHeight = last
            host.record("l2_safe", timeMs: now, [
                ("batch", .uint(index)), ("firstHeight", .uint(first)), ("lastHeight", .uint(last)),
                ("blocks", .uint(UInt64(blocks))), ("l1Height", .uint(l1Height)),
                ("stateRoot", .string(root.hex)),
            ])
            catchUpUnsafe(host: host)
        case .batchRejected(let index, let reason):
            host.log(.warning, "rollup: batch \(index) rejected: \(reason)")
            host.record("batch_rejected", timeMs: now, [("batch", .uint(index)), ("reason", .string(reason))])
        case .forcedBlock(let block):
            safeHeight = block.header.height
            host.log(.notice, "rollup: derivation included \(block.header.txCount) forced transaction(s) in L2 block \(block.header.height) (the sequencer missed the deadline)")
            host.record("l2_forced_block", timeMs: now, [
                ("l2Height", .uint(block.header.height)), ("txs", .uint(UInt64(block.header.txCount))), ("l1Height", .uint(l1Height)),
                ("stateRoot", .string(block.header.stateRoot.hex)),
            ])
            if let produced = producedIds.removeValue(forKey: block.header.height), produced != block.id {
                stopSequencing("derivation built L2 block \(block.header.height) from overdue forced transactions; this sequencer's block \(block.header.height) is void; restart it to rebuild from L1", host: host)
            }
            catchUpUnsafe(host: host)
        case .forcedRecorded(let index):
            host.record("forced_recorded", timeMs: now, [("index", .uint(index)), ("l1Height", .uint(l1Height))])
        case .forcedIncluded(let index, let l2Height, let l1Blocks, let l1WaitMs, let bySequencer):
            host.record("forced_included", timeMs: now, [
                ("index", .uint(index)), ("l2Height", .uint(l2Height)), ("l1Blocks", .uint(l1Blocks)),
                ("l1WaitMs", .uint(l1WaitMs)), ("bySequencer", .bool(bySequencer)),
            ])
        case .finalized(let l2Height, let safeL1Height):
            host.record("l2_final", timeMs: now, [
                ("l2Height", .uint(l2Height)), ("safeL1Height", .uint(safeL1Height)), ("l1Height", .uint(l1Height)),
            ])
        case .rootMismatch(let l2Height, let batch, let claimed, let computed):
            if rootMismatchesLogged < RollupNodeLimits.rootMismatchLogMax {
                rootMismatchesLogged += 1
                host.log(.warning, "rollup: L2 block \(l2Height) of batch \(batch) claims root \(claimed.short), L1's transactions give \(computed.short); deriving on")
            }
            host.record("l2_root_mismatch", timeMs: now, [
                ("l2Height", .uint(l2Height)), ("batch", .uint(batch)), ("claimed", .string(claimed.hex)),
                ("computed", .string(computed.hex)), ("l1Height", .uint(l1Height)),
            ])
        case .halted(let reason):
            halted = reason
            host.log(.critical, "rollup: derivation stopped: \(reason)")
            host.record("derivation_halted", timeMs: now, [("reason", .string(reason))])
        }
    }

    /// The safe chain is authoritative: an unsafe head behind it (missed feed blocks) jumps to it.
    private func catchUpUnsafe(host: Host) {
        guard role == .replica, derivation.chain.height > unsafe.height else { return }
        unsafe = derivation.chain
        applyBufferedFeed(host: host)
    }

    private func stopSequencing(_ reason: String, host: Host) {
        guard sequencer != nil else { return }
        sequencer = nil
        halted = reason
        host.log(.critical, "sequencer stopped: \(reason)")
        host.record("sequencer_stopped", timeMs: host.nowMs, [("reason", .string(reason))])
        host.flushRecords()
    }
}
