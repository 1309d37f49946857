import DequeModule
import Ledger
import Sodium
import Wire

/// Derivation: the L2 chain computed from L1 alone (Topologies/README.md, "L2 sequencer"). Fed every committed L1
/// block's inbox items in order; assembles the sequencer's batches from their chunks, checks and executes each L2
/// block, compares its root with the one the sequencer claimed, and, when a forced transaction has waited
/// `forcedInclusionBlocks` L1 blocks without being included, builds an L2 block with it itself. Every replica (and the
/// sequencer after a restart) gets the same chain. Pure.
public enum Derivation {
    public enum Event: Sendable, Equatable {
        /// An L2 block from a batch; `claimedRoot` is the sequencer's, `computedRoot` ours.
        case derived(L2Block, batch: UInt64, computedRoot: Bytes32)
        /// A batch fully applied: its blocks are safe.
        case batchApplied(index: UInt64, firstHeight: UInt64, lastHeight: UInt64, blocks: Int, stateRoot: Bytes32)
        case batchRejected(index: UInt64, reason: String)
        /// An L2 block built by derivation because the sequencer missed a forced-inclusion deadline.
        case forcedBlock(L2Block)
        case forcedRecorded(index: UInt64)
        /// A forced transaction made it into the L2 chain, `l1Blocks` after the inbox took it.
        case forcedIncluded(index: UInt64, l2Height: UInt64, l1Blocks: UInt64, l1WaitMs: UInt64, bySequencer: Bool)
        /// Derivation stopped: a claimed root differs from the computed one (without a dispute contract).
        case halted(String)
        /// With a dispute contract, a block whose claimed root differs from the computed one: derivation
        /// goes on with the computed state (L1's transactions are the truth; a root is only a claim, and
        /// the assertions on L1 are where it is settled).
        case rootMismatch(l2Height: UInt64, batch: UInt64, claimed: Bytes32, computed: Bytes32)
        /// L2 blocks through `l2Height` are final: the L1 block that made them safe (at `safeL1Height`)
        /// is `challengeWindowBlocks` deep.
        case finalized(l2Height: UInt64, safeL1Height: UInt64)
    }

    public struct Instance: Sendable {
        public private(set) var chain: L2Chain
        public private(set) var forced = ForcedQueue()
        public let forcedInclusionBlocks: UInt64
        public private(set) var l1Height: UInt64 = 0
        public private(set) var lastBatchIndex: UInt64?
        public private(set) var halted: String?
        var assembler = BatchAssembler()
        /// L1 blocks a safe L2 block waits before it is final (the challenge window). Nil: finality comes
        /// from the dispute contract confirming assertions (`confirmed(l2Height:)`).
        public let challengeWindowBlocks: UInt64?
        /// The highest final L2 height.
        public private(set) var finalHeight: UInt64 = 0
        /// Safe L2 heads waiting out the window, oldest first.
        var awaitingFinal: Deque<(l1Height: UInt64, l2Height: UInt64)> = []
        /// Past this, a new safe head is merged into the newest waiting one (which then waits for the
        /// later L1 height: never final early, and the queue stays bounded).
        static let awaitingFinalMax = 10_000

        public init(chain: L2Chain, forcedInclusionBlocks: UInt64, challengeWindowBlocks: UInt64? = 0) {
            precondition(forcedInclusionBlocks > 0, "forcedInclusionBlocks must be positive")
            self.chain = chain
            self.forcedInclusionBlocks = forcedInclusionBlocks
            self.challengeWindowBlocks = challengeWindowBlocks
        }

        /// Takes one committed L1 block's inbox items (`Ledger.BlockResult.inbox`), in order. `trusted`:
        /// ids of L2 blocks, by height, whose transactions' signatures this node has already checked (the
        /// sequencer's own blocks); a batch block with the same id is executed without checking them again.
        public mutating func onL1Block(height: UInt64, timeMs: UInt64, inbox: [InboxItem],
                                       trusted: [UInt64: Bytes32] = [:]) -> [Event] {
            var events: [Event] = []
            precondition(height == l1Height + 1, "L1 block \(height) after \(l1Height)")
            l1Height = height
            for item in inbox {
                switch item {
                case .forced(let index, let tx):
                    forced.append(ForcedEntry(index: index, l1Height: height, l1TimeMs: timeMs, tx: tx))
                    events.append(.forcedRecorded(index: index))
                case .chunk(let chunk):
                    events += take(chunk, l1TimeMs: timeMs, trusted: trusted)
                }
            }
            events += includeOverdue(timeMs: timeMs)
            forced.drop(below: chain.forcedConsumed)
            for event in events {
                switch event {
                case .batchApplied(_, _, let last, _, _): awaitFinal(l2Height: last)
                case .forcedBlock(let block): awaitFinal(l2Height: block.header.height)
                default: break
                }
            }
            while let window = challengeWindowBlocks, let first = awaitingFinal.first, first.l1Height + window <= l1Height {
                awaitingFinal.removeFirst()
                finalHeight = max(finalHeight, first.l2Height)
                events.append(.finalized(l2Height: first.l2Height, safeL1Height: first.l1Height))
            }
            return events
        }

        /// The dispute contract confirmed an assertion whose batch ends at `l2Height`: the L2 chain through
        /// it is final.
        public mutating func confirmed(l2Height: UInt64) -> [Event] {
            guard l2Height > finalHeight else { return [] }
            finalHeight = l2Height
            var safeL1Height = l1Height
            while let first = awaitingFinal.first, first.l2Height <= l2Height {
                safeL1Height = first.l1Height
                awaitingFinal.removeFirst()
            }
            return [.finalized(l2Height: l2Height, safeL1Height: safeL1Height)]
        }

        private mutating func awaitFinal(l2Height: UInt64) {
            if awaitingFinal.count >= Instance.awaitingFinalMax {
                awaitingFinal[awaitingFinal.count - 1] = (l1Height, max(l2Height, awaitingFinal.last!.l2Height))
            } else {
                awaitingFinal.append((l1Height, l2Height))
            }
        }

        private mutating func take(_ chunk: BatchChunk, l1TimeMs: UInt64, trusted: [UInt64: Bytes32]) -> [Event] {
            let (rejected, batch) = assembler.add(chunk)
            let events = rejected.map { Event.batchRejected(index: $0.index, reason: $0.reason) }
            guard let batch else { return events }
            return events + apply(batch, l1TimeMs: l1TimeMs, trusted: trusted)
        }

        private mutating func apply(_ batch: Batch, l1TimeMs: UInt64, trusted: [UInt64: Bytes32]) -> [Event] {
            var events: [Event] = []
            guard halted == nil else { return events }
            lastBatchIndex = batch.index
            var applied: [UInt64] = []
            for block in batch.blocks where block.header.height > chain.height {
                if let problem = chain.problem(with: block, forcedQueue: forced) {
                    events.append(.batchRejected(index: batch.index, reason: problem))
                    break
                }
                let consumedFrom = chain.forcedConsumed
                let computed = chain.apply(block, checkSignatures: trusted[block.header.height] != block.id)
                events.append(.derived(block, batch: batch.index, computedRoot: computed))
                events += included(from: consumedFrom, in: block, l1TimeMs: l1TimeMs)
                applied.append(block.header.height)
                guard computed != block.header.stateRoot else { continue }
                if challengeWindowBlocks == nil {
                    events.append(.rootMismatch(l2Height: block.header.height, batch: batch.index,
                                                claimed: block.header.stateRoot, computed: computed))
                } else {
                    let reason = "L2 block \(block.header.height): the sequencer claims root \(block.header.stateRoot.hex), derivation computes \(computed.hex)"
                    halted = reason
                    events.append(.halted(reason))
                    break
                }
            }
            if let first = applied.first, let last = applied.last {
                events.append(.batchApplied(index: batch.index, firstHeight: first, lastHeight: last, blocks: applied.count,
                                            stateRoot: chain.stateRoot))
            }
            return events
        }

        /// Forced transactions past their deadline at this L1 height go into a block of their own.
        private mutating func includeOverdue(timeMs: UInt64) -> [Event] {
            guard halted == nil else { return [] }
            let pending = forced.pending(from: chain.forcedConsumed, count: forced.entries.count)
            guard let lastDue = pending.lastIndex(where: { $0.l1Height + forcedInclusionBlocks <= l1Height }) else {
                return []
            }
            let consumedFrom = chain.forcedConsumed
            let built = chain.build(forced: Array(pending[...lastDue]), txs: [], timeMs: timeMs, l1Origin: l1Height,
                                    bySequencer: false)
            return [.forcedBlock(built.block)] + included(from: consumedFrom, in: built.block, l1TimeMs: timeMs)
        }

        private func included(from: UInt64, in block: L2Block, l1TimeMs: UInt64) -> [Event] {
            forced.pending(from: from, count: Int(block.header.forcedThrough - from)).map { entry in
                .forcedIncluded(index: entry.index, l2Height: block.header.height, l1Blocks: l1Height - entry.l1Height,
                                l1WaitMs: l1TimeMs > entry.l1TimeMs ? l1TimeMs - entry.l1TimeMs : 0,
                                bySequencer: block.header.bySequencer)
            }
        }
    }
}
