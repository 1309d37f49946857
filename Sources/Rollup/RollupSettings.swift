import Sodium

/// A rollup node's settings (the `[rollup]` table of a topology). The defaults are the unfixed
/// sequencer: a queue bound so large a burst never meets it, no timeout, no per-sender limit, a flat
/// fee and no backlog limit.
public struct RollupSettings: Codable, Sendable, Equatable {
    /// The sequencer makes an L2 block this often when it has anything to include.
    public var blockIntervalMs: UInt64 = 100
    public var blockTxsMax: Int = 500
    public var queueTxsMax: Int = 5_000_000
    public var queueWaitMsMax: UInt64 = 0
    public var senderPerSecond: Double = 0
    public var senderBurst: Double = 1
    public var baseFeeMin: UInt64 = 0
    public var baseFeeStepTxs: Int = 0
    public var backlogBytesMax: Int = 0
    public var backlogIntakePerSecond: Double = 0
    public var batchBytesMax: Int = 120_000
    public var postIntervalMs: UInt64 = 200
    public var chunkDataBytesMax: Int = 1_000
    public var resendMs: UInt64 = 1_000
    public var backlogBlocksMax: Int = 100_000
    /// The sequencer's uplink: bytes per second it can send (0: unlimited) and the datagrams that can
    /// wait for it (drop-tail past that). The batch poster and the feed share it.
    public var uplinkBytesPerSecond: Int = 0
    public var uplinkQueueMax: Int = 4_096
    /// Nodes the sequencer sends its feed to (by name).
    public var feedPeers: [String] = []
    /// Threads the sequencer's edge checks client signatures on (0: one per core).
    public var verifyWorkers: Int = 0
    /// The share of the verification capacity the sequencer measures at start (one core's rate × its
    /// verify workers) that client transactions may use; past it they are refused as `busy` before their
    /// signature is checked, so a burst beyond the machine's capacity is answered, not dropped by the
    /// kernel unanswered (0: no budget, every transaction is checked).
    public var verifyShare: Double = 0
    /// L1 blocks a safe L2 block waits after its batch landed before it is final (the challenge window),
    /// when genesis has no dispute contract (with one, confirmed assertions make L2 blocks final).
    public var challengeWindowBlocks: UInt64 = 20
    /// How this node behaves in disputes (sequencer: as the proposer; replica: as a challenger).
    public var dispute = DisputeBehaviour()

    public init() {}
}

/// How a sequencer or replica behaves in fraud-proof disputes; the default is honest.
public struct DisputeBehaviour: Codable, Sendable, Equatable {
    public static let lies = ["honest", "wrong-root", "missed-reorg", "lie-every-move"]

    /// `honest`; `wrong-root`: executes a batch with a bug (mints to the sequencer before step `step`);
    /// `missed-reorg`: applies a deposit from an L1 block that was reorged away before the batch's first
    /// step; `lie-every-move`: commits to made-up hashes. A replica with a lie challenges right roots.
    public var lie = "honest"
    /// The batch the lie is told at (nil: every batch).
    public var batch: UInt64?
    public var step = 0
    /// Opens (asserts or challenges) but never moves in a game.
    public var silent = false
    /// Identities a lying replica challenges as (a Sybil attack), each with its own bond.
    public var identities = 1
    /// A challenger waits for the last block of the window.
    public var atWindowEnd = false

    public init() {}
}

/// The keys a node plays disputes as: its own, then identities derived from it (a Sybil's extra
/// challengers), which the cluster funds on L1 at genesis.
public enum DisputeIdentity {
    public static func keys(of key: SigningKey, count: Int) -> [SigningKey] {
        [key] + (1..<max(count, 1)).map { index in
            SigningKey(seed: Blake2b.hash(prefix: 7, key.seed, Blake2b.hash(Array("identity/\(index)".utf8))))
        }
    }
}
