import DequeModule
import Ledger
import Logging
import Metrics
import NIOCore
import Rollup
import Sodium
import Transport
import Wire

/// The rollup part of a `sequencer` or `replica` node. The node follows L1 as a non-voting member
/// (block sync); this shell feeds every committed L1 block to derivation, and:
/// - as the sequencer, admits L2 transactions (answering refusals with a reason), makes L2 blocks,
///   sends them on the feed, and posts batches to the validators through a shared, bounded uplink;
/// - as a replica, follows the feed (the unsafe head) and checks it against what it derives from
///   L1 (the safe head).
/// Owned by the node's main loop, like `NodeShell`.
final class RollupShell {
    enum Role: String { case sequencer, replica }

    let role: Role
    let settings: RollupSettings
    let sequencerKey: PublicKey
    var derivation: Derivation.Instance
    /// The sequencer's core, once the node has caught up with L1 (its readiness check).
    var sequencer: Sequencer.Instance?
    /// The replica's feed-following chain.
    var unsafe: L2Chain
    var uplink: Uplink
    var feed: FeedAssembler
    /// Block ids the sequencer produced and L1 has not made safe yet, by height (bounded by the backlog).
    var producedIds: [UInt64: Bytes32] = [:]
    /// Feed block ids by height, kept until derivation reaches them (bounded).
    var feedIds: [UInt64: Bytes32] = [:]
    static let feedIdsMax = 100_000
    var halted: String?
    /// Ids of the batch chunks this sequencer signed, so L1 blocks carrying them are not checked again.
    var signedChunks = BoundedIdSet(countMax: 50_000)
    var rejectedSinceSample: [String: Int] = [:]
    /// Refusals not yet answered, per client address and reason (see `flushRefusals`); at most
    /// `refusalKeysMax` keys.
    var refusals: [RefusalKey: [Bytes32]] = [:]
    static let refusalKeysMax = 1_024

    struct RefusalKey: Hashable {
        var address: SocketAddress
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
    static let rootMismatchLogMax = 20
    var safeHeight: UInt64 = 0
    /// The node's part in disputes (when genesis has the dispute contract), and the keys it plays as.
    var disputeAgent: DisputeAgent.Instance?
    var disputeKeys: [SigningKey] = []

    init(role: Role, settings: RollupSettings, genesis: Genesis, forkId: UInt32) throws {
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
                ? .init(fromBatch: settings.dispute.batch ?? 1, account: Self.reorgedDepositAccount, amount: 50_000) : nil)
    }

    /// Where the `missed-reorg` fault's deposit goes: an account no one holds a key for.
    static let reorgedDepositAccount = PublicKey(Blake2b.hash(Array("faultline/reorged-deposit".utf8)))

    // MARK: L1

    /// What a committed L1 block means for the rollup.
    struct L1Commit {
        var height: UInt64
        var timeMs: UInt64
        var inbox: [InboxItem]
        var batchSequence: UInt64
        var disputes: [DisputeEvent]

        init(_ block: Block, _ result: Ledger.BlockResult, ledger: Ledger) {
            height = block.header.height
            timeMs = block.header.timeMs
            inbox = result.inbox
            batchSequence = ledger.inbox.batchSequence
            disputes = result.disputes
        }
    }

    /// A committed L1 block: live, or replayed from the store at start (then the dispute agent only
    /// learns from it; it acts on live blocks, against the contract as it stands).
    func onL1Commit(_ commit: L1Commit, live: Bool, host: RollupHost) {
        let now = host.nowMs
        let height = commit.height
        for event in derivation.onL1Block(height: height, timeMs: commit.timeMs, inbox: commit.inbox, trusted: producedIds) {
            record(event, l1Height: height, now: now, host: host)
        }
        if sequencer != nil {
            for landed in sequencer!.onInbox(batchSequence: commit.batchSequence) {
                host.events.write("batch_landed", timeMs: now, [
                    ("batch", .uint(landed.batchIndex)), ("lastHeight", .uint(landed.lastHeight)), ("l1Height", .uint(height)),
                ])
            }
        }
        onDisputes(commit.disputes, l1Height: height, live: live, host: host)
    }

    func record(_ event: Derivation.Event, l1Height: UInt64, now: UInt64, host: RollupHost) {
        switch event {
        case .derived(let block, _, _):
            let height = block.header.height
            if let fed = feedIds.removeValue(forKey: height), fed != block.id {
                host.events.write("feed_mismatch", timeMs: now, [
                    ("l2Height", .uint(height)), ("feed", .string(fed.hex)), ("derived", .string(block.id.hex)),
                ])
            }
            if let produced = producedIds.removeValue(forKey: height), produced != block.id {
                stopSequencing("L1 has another L2 block \(height) than this sequencer made (\(block.id.short), ours \(produced.short)); restart it to rebuild from L1", host: host)
            }
        case .batchApplied(let index, let first, let last, let blocks, let root):
            safeHeight = last
            host.events.write("l2_safe", timeMs: now, [
                ("batch", .uint(index)), ("firstHeight", .uint(first)), ("lastHeight", .uint(last)),
                ("blocks", .uint(UInt64(blocks))), ("l1Height", .uint(l1Height)),
                ("stateRoot", .string(root.hex)),
            ])
            catchUpUnsafe(host: host)
        case .batchRejected(let index, let reason):
            host.logger.warning("rollup: batch \(index) rejected: \(reason)")
            host.events.write("batch_rejected", timeMs: now, [("batch", .uint(index)), ("reason", .string(reason))])
        case .forcedBlock(let block):
            safeHeight = block.header.height
            host.logger.notice("rollup: derivation included \(block.header.txCount) forced transaction(s) in L2 block \(block.header.height) (the sequencer missed the deadline)")
            host.events.write("l2_forced_block", timeMs: now, [
                ("l2Height", .uint(block.header.height)), ("txs", .uint(UInt64(block.header.txCount))), ("l1Height", .uint(l1Height)),
                ("stateRoot", .string(block.header.stateRoot.hex)),
            ])
            if let produced = producedIds.removeValue(forKey: block.header.height), produced != block.id {
                stopSequencing("derivation built L2 block \(block.header.height) from overdue forced transactions; this sequencer's block \(block.header.height) is void; restart it to rebuild from L1", host: host)
            }
            catchUpUnsafe(host: host)
        case .forcedRecorded(let index):
            host.events.write("forced_recorded", timeMs: now, [("index", .uint(index)), ("l1Height", .uint(l1Height))])
        case .forcedIncluded(let index, let l2Height, let l1Blocks, let l1WaitMs, let bySequencer):
            host.events.write("forced_included", timeMs: now, [
                ("index", .uint(index)), ("l2Height", .uint(l2Height)), ("l1Blocks", .uint(l1Blocks)),
                ("l1WaitMs", .uint(l1WaitMs)), ("bySequencer", .bool(bySequencer)),
            ])
        case .finalized(let l2Height, let safeL1Height):
            host.events.write("l2_final", timeMs: now, [
                ("l2Height", .uint(l2Height)), ("safeL1Height", .uint(safeL1Height)), ("l1Height", .uint(l1Height)),
            ])
        case .rootMismatch(let l2Height, let batch, let claimed, let computed):
            if rootMismatchesLogged < Self.rootMismatchLogMax {
                rootMismatchesLogged += 1
                host.logger.warning("rollup: L2 block \(l2Height) of batch \(batch) claims root \(claimed.short), L1's transactions give \(computed.short); deriving on")
            }
            host.events.write("l2_root_mismatch", timeMs: now, [
                ("l2Height", .uint(l2Height)), ("batch", .uint(batch)), ("claimed", .string(claimed.hex)),
                ("computed", .string(computed.hex)), ("l1Height", .uint(l1Height)),
            ])
        case .halted(let reason):
            halted = reason
            host.logger.critical("rollup: derivation stopped: \(reason)")
            host.events.write("derivation_halted", timeMs: now, [("reason", .string(reason))])
        }
    }

    /// The safe chain is authoritative: an unsafe head behind it (missed feed blocks) jumps to it.
    private func catchUpUnsafe(host: RollupHost) {
        guard role == .replica, derivation.chain.height > unsafe.height else { return }
        unsafe = derivation.chain
        applyBufferedFeed(host: host)
    }

    private func stopSequencing(_ reason: String, host: RollupHost) {
        guard sequencer != nil else { return }
        sequencer = nil
        halted = reason
        host.logger.critical("sequencer stopped: \(reason)")
        host.events.write("sequencer_stopped", timeMs: host.nowMs, [("reason", .string(reason))])
        host.events.flush()
    }
}

/// A set of ids that forgets the oldest past `countMax`.
struct BoundedIdSet {
    let countMax: Int
    private var members: Set<Bytes32> = []
    private var order: Deque<Bytes32> = []

    init(countMax: Int) {
        precondition(countMax > 0, "countMax \(countMax)")
        self.countMax = countMax
    }

    func contains(_ id: Bytes32) -> Bool { members.contains(id) }

    mutating func insert(_ id: Bytes32) {
        guard members.insert(id).inserted else { return }
        order.append(id)
        if order.count > countMax, let oldest = order.popFirst() { members.remove(oldest) }
    }
}

/// What the rollup part uses of its node, as ports instead of the whole shell: where its events and log
/// lines go, how it signs and sends, and what it reads of L1 and of its peers. `NodeShell` is one.
protocol RollupHost: AnyObject {
    var events: EventLog { get }
    var logger: Logger { get }
    /// The node's clock (ms since the epoch).
    var nowMs: UInt64 { get }
    var startedAtMs: UInt64 { get }
    /// Envelopes signed with the node's key for its chain and fork.
    func sign(_ kind: MessageKind, _ payload: some WireCodable) -> Envelope
    var domain: Domain { get }
    var datagramPayloadBytesMax: Int { get }
    /// L1 as this node has committed it (height, ledger: the inbox and the dispute contract).
    var l1Height: UInt64 { get }
    var ledger: Ledger { get }
    /// Peers' committed L1 heights: whether any was heard, and the best.
    var hasHeardPeers: Bool { get }
    var bestPeerHeight: UInt64 { get }
    /// Where batch chunks go (every validator) and the feed (by peer name).
    var validatorPeers: [Peer] { get }
    func peer(named name: String) -> Peer?
    func broadcast(_ envelope: Envelope, except: Set<PublicKey>)
}

extension RollupHost {
    func broadcast(_ envelope: Envelope) { broadcast(envelope, except: []) }
}

extension NodeShell: RollupHost {
    var nowMs: UInt64 { clock() }
    var datagramPayloadBytesMax: Int { config.limits.datagramPayloadBytesMax }
    var l1Height: UInt64 { store.height }
    var hasHeardPeers: Bool { !replica.peerHeights.isEmpty }
    var validatorPeers: [Peer] { peers.filter { validators.index(of: $0.key) != nil }.map(\.value) }
    func peer(named name: String) -> Peer? { peerByName[name] }
}
