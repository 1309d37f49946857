import DequeModule
import Ledger
import Sodium
import Wire

/// The sequencer (Topologies/README.md, "L2 sequencer"): admission into a queue, L2 blocks from the queue, and the
/// batch poster that puts the blocks on L1 as chunks and re-sends what L1 has not taken. Pure: time, the L1 height and
/// the inbox's progress arrive as arguments; blocks and chunks leave as values.
///
/// The backlog is everything produced and not yet taken by L1: blocks not batched yet plus chunks in
/// flight, in bytes. The naive poster re-sends every chunk in flight each `resendMs`, so a stalled L1
/// makes its sending grow with the backlog; `Admission.Settings.backlogBytesMax` slows intake instead.
public enum Sequencer {
    public struct Settings: Sendable, Equatable {
        public var admission: Admission.Settings
        public var blockTxsMax: Int
        /// A batch is posted every `postIntervalMs`, or sooner once this many bytes of blocks wait.
        public var batchBytesMax: Int
        public var postIntervalMs: UInt64
        /// Data bytes per chunk: one chunk fits one datagram with its envelope.
        public var chunkDataBytesMax: Int
        /// A chunk L1 has not taken this long after it was sent is sent again.
        public var resendMs: UInt64
        /// Blocks produced and not yet on L1; past it the sequencer stops producing (a hard bound).
        public var backlogBlocksMax: Int
        /// The `missed-reorg` fault: a deposit from an L1 block that L1 did not finalize, credited before
        /// the first block of the first batch from `fromBatch` on (so it is the batch's first step).
        public var phantomDeposit: PhantomDeposit?

        public struct PhantomDeposit: Sendable, Equatable {
            public var fromBatch: UInt64
            public var account: PublicKey
            public var amount: UInt64

            public init(fromBatch: UInt64, account: PublicKey, amount: UInt64) {
                self.fromBatch = fromBatch
                self.account = account
                self.amount = amount
            }
        }

        public init(admission: Admission.Settings, blockTxsMax: Int = 2_000, batchBytesMax: Int = 120_000,
                    postIntervalMs: UInt64 = 200, chunkDataBytesMax: Int = 1_000, resendMs: UInt64 = 1_000,
                    backlogBlocksMax: Int = 100_000, phantomDeposit: PhantomDeposit? = nil) {
            precondition(blockTxsMax > 0 && blockTxsMax <= L2Block.txsMax, "blockTxsMax \(blockTxsMax)")
            precondition(chunkDataBytesMax > 0 && batchBytesMax / chunkDataBytesMax < BatchChunk.chunksMax / 2,
                         "batchBytesMax \(batchBytesMax) needs too many chunks of \(chunkDataBytesMax)")
            self.admission = admission
            self.blockTxsMax = blockTxsMax
            self.batchBytesMax = batchBytesMax
            self.postIntervalMs = postIntervalMs
            self.chunkDataBytesMax = chunkDataBytesMax
            self.resendMs = resendMs
            self.backlogBlocksMax = backlogBlocksMax
            self.phantomDeposit = phantomDeposit
        }
    }

    /// A new L2 block and what happened to the queue entries it drew on.
    public struct Produced: Sendable {
        public var block: L2Block
        public var included: [Admission.Entry]
        public var expired: [Admission.Entry]
        public var refused: [(Admission.Entry, Ledger.TxOutcome)]
    }

    struct InFlight {
        var chunk: BatchChunk
        var lastSentMs: UInt64
        var lastBlockHeight: UInt64
    }

    /// A batch whose last chunk L1 has taken.
    public struct Landed: Sendable, Equatable {
        public var batchIndex: UInt64
        public var lastHeight: UInt64
    }

    public struct Instance: Sendable {
        public let settings: Settings
        public private(set) var admission: Admission.Instance
        public private(set) var chain: L2Chain
        var unbatched: Deque<(block: L2Block, bytes: Int)> = []
        var unbatchedBytes = 0
        var inFlight: Deque<InFlight> = []
        var inFlightBytes = 0
        var lastBatchMs: UInt64 = 0
        public private(set) var nextSequence: UInt64
        public private(set) var nextBatchIndex: UInt64
        /// The last L2 height whose batch L1 has taken (the sequencer's view of the safe head).
        public private(set) var postedHeight: UInt64
        /// Blocks above `postedHeight`, kept to re-execute on a rebase (at most `backlogBlocksMax`).
        var unposted: Deque<L2Block> = []
        /// The batch whose first block the phantom deposit went into, once it has.
        public private(set) var phantomDepositBatch: UInt64?

        /// Starts from a derived chain: the L2 state as L1 has it, and the inbox's next chunk sequence.
        public init(settings: Settings, derived: L2Chain, nextSequence: UInt64, nextBatchIndex: UInt64) {
            self.settings = settings
            self.admission = Admission.Instance(settings: settings.admission)
            self.chain = derived
            self.nextSequence = nextSequence
            self.nextBatchIndex = nextBatchIndex
            self.postedHeight = derived.height
        }

        public var backlogBytes: Int { unbatchedBytes + inFlightBytes }
        public var backlogBlocks: Int { Int(chain.height - postedHeight) }
        public var chunksInFlight: Int { inFlight.count }

        /// Offers a verified L2 transaction; nil means queued.
        public mutating func offer(_ tx: Envelope, nowMs: UInt64) -> Admission.Reject? {
            admission.offer(tx, fee: Ledger.fee(of: tx), nowMs: nowMs, backlogBytes: backlogBytes)
        }

        /// The next L2 block: pending forced transactions first, then up to `blockTxsMax` from the queue.
        /// Nil while the backlog is at `backlogBlocksMax`.
        public mutating func produce(nowMs: UInt64, l1Height: UInt64, forced: ForcedQueue) -> Produced? {
            guard backlogBlocks < settings.backlogBlocksMax else { return nil }
            // With nothing unbatched, this block is the first of batch `nextBatchIndex`.
            if let deposit = settings.phantomDeposit, phantomDepositBatch == nil, unbatched.isEmpty,
               nextBatchIndex >= deposit.fromBatch {
                chain.credit(deposit.account, amount: deposit.amount)
                phantomDepositBatch = nextBatchIndex
            }
            let due = forced.pending(from: chain.forcedConsumed, count: settings.blockTxsMax)
            let (taken, expired) = admission.take(max: settings.blockTxsMax - due.count, nowMs: nowMs)
            let built = chain.build(forced: due, txs: taken.map(\.tx), timeMs: nowMs, l1Origin: l1Height, bySequencer: true)
            var refusedIds: [Bytes32: Ledger.TxOutcome] = [:]
            for (tx, outcome) in built.refused { refusedIds[tx.id] = outcome }
            var included: [Admission.Entry] = []
            var refused: [(Admission.Entry, Ledger.TxOutcome)] = []
            for entry in taken {
                if let outcome = refusedIds[entry.tx.id] { refused.append((entry, outcome)) } else { included.append(entry) }
            }
            let bytes = built.block.encoded.count
            unbatched.append((built.block, bytes))
            unbatchedBytes += bytes
            unposted.append(built.block)
            return Produced(block: built.block, included: included, expired: expired, refused: refused)
        }

        /// The chunks to send now: a new batch when one is due, and every chunk in flight that L1 has not
        /// taken within `resendMs`.
        public mutating func post(nowMs: UInt64) -> [BatchChunk] {
            if !unbatched.isEmpty, unbatchedBytes >= settings.batchBytesMax || nowMs >= lastBatchMs + settings.postIntervalMs {
                makeBatch()
                lastBatchMs = nowMs
            }
            var out: [BatchChunk] = []
            for position in inFlight.indices where inFlight[position].lastSentMs == 0
                || nowMs >= inFlight[position].lastSentMs + settings.resendMs {
                inFlight[position].lastSentMs = max(nowMs, 1)
                out.append(inFlight[position].chunk)
            }
            return out
        }

        private mutating func makeBatch() {
            var blocks: [L2Block] = []
            var bytes = 0
            while let first = unbatched.first, blocks.isEmpty || bytes + first.bytes <= settings.batchBytesMax {
                unbatched.removeFirst()
                unbatchedBytes -= first.bytes
                blocks.append(first.block)
                bytes += first.bytes
            }
            let encoded = Batch(index: nextBatchIndex, blocks: blocks).encoded
            let size = settings.chunkDataBytesMax
            let count = (encoded.count + size - 1) / size
            precondition(count <= BatchChunk.chunksMax, "batch of \(encoded.count) bytes needs \(count) chunks")
            for index in 0..<count {
                let data = Array(encoded[(index * size)..<min(encoded.count, (index + 1) * size)])
                inFlight.append(InFlight(
                    chunk: BatchChunk(sequence: nextSequence, batchIndex: nextBatchIndex, chunkIndex: UInt16(index),
                                      chunkCount: UInt16(count), data: data),
                    lastSentMs: 0, lastBlockHeight: blocks.last!.header.height))
                inFlightBytes += data.count
                nextSequence += 1
            }
            nextBatchIndex += 1
        }

        /// L1's inbox now expects chunk `batchSequence` next: everything before it has landed.
        public mutating func onInbox(batchSequence: UInt64) -> [Landed] {
            var landed: [Landed] = []
            while let first = inFlight.first, first.chunk.sequence < batchSequence {
                inFlight.removeFirst()
                inFlightBytes -= first.chunk.data.count
                if first.chunk.chunkIndex + 1 == first.chunk.chunkCount {
                    postedHeight = max(postedHeight, first.lastBlockHeight)
                    landed.append(Landed(batchIndex: first.chunk.batchIndex, lastHeight: first.lastBlockHeight))
                }
            }
            while let first = unposted.first, first.header.height <= postedHeight { unposted.removeFirst() }
            return landed
        }

        /// Takes the L1-derived chain as this sequencer's state (its own was defeated on L1) and re-executes
        /// the blocks it made above it. The blocks keep their ids (they may be on L1 already); only the
        /// state under them, and so every later block's root, changes. Returns how many blocks were
        /// re-executed, or nil when `derived` is behind the blocks kept (nothing changes then).
        public mutating func rebase(onto derived: L2Chain) -> Int? {
            guard derived.height <= chain.height,
                  derived.height == chain.height || (unposted.first?.header.height ?? .max) <= derived.height + 1 else {
                return nil
            }
            var rebuilt = derived
            var count = 0
            for block in unposted where block.header.height > derived.height {
                _ = rebuilt.apply(block, checkSignatures: false)
                count += 1
            }
            guard rebuilt.height == chain.height, rebuilt.headId == chain.headId else { return nil }
            chain = rebuilt
            return count
        }
    }
}
