import Basics
import DequeModule
import Sodium
import Wire

/// The sequencer's front door (Topologies/README.md, "L2 sequencer"): which L2 transactions enter the ingest queue, and
/// in what order they leave it for L2 blocks. Pure: time arrives as an argument.
///
/// Every refusal has a reason the sender is told: `queue_full` (the queue is at its bound),
/// `rate_limited` (this sender's token bucket is empty), `underpriced` (the fee is below the base
/// fee, which rises with queue depth), `backlog` (batches waiting for L1 are over their limit and
/// intake is slowed), and, for a transaction that waited longer than the queue's timeout, `expired`.
public enum Admission {
    public struct Settings: Sendable, Equatable {
        /// The queue's bound. The unfixed sequencer has a bound so large that a burst never meets it.
        public var queueTxsMax: Int
        /// A transaction queued longer than this is dropped as `expired` (0: never).
        public var queueWaitMsMax: UInt64
        /// Per-sender token bucket (0: no per-sender limit), and the number of senders tracked.
        public var senderPerSecond: Double
        public var senderBurst: Double
        public var sendersTrackedMax: Int
        /// The fee a transaction must pay: `baseFeeMin`, plus `baseFeeMin` for every
        /// `baseFeeStepTxs` queued (0: a flat fee).
        public var baseFeeMin: UInt64
        public var baseFeeStepTxs: Int
        /// While the batch backlog is at or over this many bytes, intake is slowed to
        /// `backlogIntakePerSecond` (0: no backlog limit).
        public var backlogBytesMax: Int
        public var backlogIntakePerSecond: Double

        public init(queueTxsMax: Int, queueWaitMsMax: UInt64 = 0, senderPerSecond: Double = 0, senderBurst: Double = 1,
                    sendersTrackedMax: Int = 100_000, baseFeeMin: UInt64 = 0, baseFeeStepTxs: Int = 0,
                    backlogBytesMax: Int = 0, backlogIntakePerSecond: Double = 0) {
            precondition(queueTxsMax > 0 && sendersTrackedMax > 0,
                         "queueTxsMax \(queueTxsMax) and sendersTrackedMax \(sendersTrackedMax) must be positive")
            self.queueTxsMax = queueTxsMax
            self.queueWaitMsMax = queueWaitMsMax
            self.senderPerSecond = senderPerSecond
            self.senderBurst = senderBurst
            self.sendersTrackedMax = sendersTrackedMax
            self.baseFeeMin = baseFeeMin
            self.baseFeeStepTxs = baseFeeStepTxs
            self.backlogBytesMax = backlogBytesMax
            self.backlogIntakePerSecond = backlogIntakePerSecond
        }

        /// Arbitrum's defaults: 1,024 queued transactions, 12 s.
        public static let bounded = Settings(queueTxsMax: 1_024, queueWaitMsMax: 12_000)
    }

    public enum Reject: String, Sendable, CaseIterable {
        case queueFull = "queue_full"
        case rateLimited = "rate_limited"
        case underpriced
        case backlog
        case expired
    }

    public struct Entry: Sendable, Equatable {
        public var tx: Envelope
        public var fee: UInt64
        public var enqueuedMs: UInt64
    }

    public struct Instance: Sendable {
        public let settings: Settings
        public private(set) var queue: Deque<Entry> = []
        private var buckets: [PublicKey: TokenBucket] = [:]
        private var bucketOrder: Deque<PublicKey> = []
        private var backlogIntake: TokenBucket?
        /// Refusals and expiries so far, by reason.
        public private(set) var rejected: [Reject: Int] = [:]

        public init(settings: Settings) {
            self.settings = settings
        }

        /// The fee a transaction must pay to enter the queue now.
        public var baseFee: UInt64 {
            guard settings.baseFeeStepTxs > 0 else { return settings.baseFeeMin }
            return settings.baseFeeMin &* (1 + UInt64(queue.count / settings.baseFeeStepTxs))
        }

        /// Offers a transaction whose signature the caller has checked; nil means queued.
        public mutating func offer(_ tx: Envelope, fee: UInt64, nowMs: UInt64, backlogBytes: Int) -> Reject? {
            let reject = check(tx, fee: fee, nowMs: nowMs, backlogBytes: backlogBytes)
            if let reject {
                rejected[reject, default: 0] += 1
                return reject
            }
            queue.append(Entry(tx: tx, fee: fee, enqueuedMs: nowMs))
            return nil
        }

        private mutating func check(_ tx: Envelope, fee: UInt64, nowMs: UInt64, backlogBytes: Int) -> Reject? {
            if queue.count >= settings.queueTxsMax { return .queueFull }
            if fee < baseFee { return .underpriced }
            if settings.backlogBytesMax > 0, backlogBytes >= settings.backlogBytesMax {
                if backlogIntake == nil {
                    let rate = settings.backlogIntakePerSecond
                    backlogIntake = TokenBucket(ratePerSecond: rate, burst: max(rate / 10, 1))
                }
                if !backlogIntake!.take(nowMs: nowMs) { return .backlog }
            } else {
                backlogIntake = nil
            }
            if settings.senderPerSecond > 0, !takeSenderToken(tx.sender, nowMs: nowMs) { return .rateLimited }
            return nil
        }

        /// Bounded: past `sendersTrackedMax` the oldest tracked sender is forgotten (it starts again full).
        private mutating func takeSenderToken(_ sender: PublicKey, nowMs: UInt64) -> Bool {
            if buckets[sender] == nil {
                if bucketOrder.count >= settings.sendersTrackedMax, let oldest = bucketOrder.popFirst() {
                    buckets[oldest] = nil
                }
                buckets[sender] = TokenBucket(ratePerSecond: settings.senderPerSecond, burst: settings.senderBurst)
                bucketOrder.append(sender)
            }
            return buckets[sender]!.take(nowMs: nowMs)
        }

        /// Up to `max` transactions in arrival order for the next L2 block; those that waited longer
        /// than `queueWaitMsMax` are returned apart, never included.
        public mutating func take(max: Int, nowMs: UInt64) -> (taken: [Entry], expired: [Entry]) {
            var taken: [Entry] = []
            var expired: [Entry] = []
            while taken.count < max, let entry = queue.first {
                queue.removeFirst()
                if settings.queueWaitMsMax > 0, nowMs > entry.enqueuedMs + settings.queueWaitMsMax {
                    expired.append(entry)
                    rejected[.expired, default: 0] += 1
                } else {
                    taken.append(entry)
                }
            }
            return (taken, expired)
        }

        public var trackedSenders: Int { buckets.count }
    }
}
