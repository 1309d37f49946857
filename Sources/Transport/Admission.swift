import Basics
import Sodium
import Wire

/// What a receiving edge decides about a datagram before it spends a signature check on it: the
/// admission rules of the vote-starvation mitigations (votes-only mode, staked and unstaked token
/// buckets for transactions, a per-identity budget on the vote lane, a sequencer's verification budget
/// for client transactions), and which lane may carry an accepted message. Pure: time and the
/// votes-only switch come in as arguments; the edge that owns it counts what it drops.
public struct Admission: Sendable {
    public enum Decision: Sendable, Equatable {
        /// Go on: decode, de-duplicate and verify it.
        case check
        /// Dropped unchecked; the reason as the run's drop counters name it.
        case drop(String)
        /// A client's L2 transaction past the verification budget: shed unchecked and answered `busy`.
        case busy
    }

    /// Transactions forwarded by a peer (staked) and sent by clients (unstaked).
    public private(set) var staked: TokenBucket?
    public private(set) var unstaked: TokenBucket?
    /// One bucket like this per member identity, for what it sends on this lane (bounded by `members`).
    public let senderBudget: TokenBucket?
    public private(set) var clientBudget: CheckTimeBudget?
    let members: Set<PublicKey>
    private var senders: [PublicKey: TokenBucket] = [:]

    public init(staked: TokenBucket?, unstaked: TokenBucket?, senderBudget: TokenBucket?, clientBudget: CheckTimeBudget?,
                members: Set<PublicKey>) {
        self.staked = staked
        self.unstaked = unstaked
        self.senderBudget = senderBudget
        self.clientBudget = clientBudget
        self.members = members
    }

    /// True when `decide` wants the sender (it is peeked only then: the vote lane's per-identity budget).
    public var needsSender: Bool { senderBudget != nil }

    /// The decision for one datagram of `kind` (nil: too short to say) from `sender`; `fromPeer` is asked
    /// only for transactions.
    public mutating func decide(kind: MessageKind?, sender: PublicKey?, fromPeer: @autoclosure () -> Bool,
                                votesOnly: Bool, nowMs: UInt64) -> Decision {
        if let kind, kind.isL2Transaction, clientBudget != nil, !clientBudget!.takeCheck(nowMs: nowMs) { return .busy }
        if let kind, kind == .transfer || kind == .forcedTx {
            if votesOnly { return .drop("votes_only") }
            if fromPeer() {
                if staked != nil, !staked!.take(nowMs: nowMs) { return .drop("staked_rate_limited") }
            } else if unstaked != nil, !unstaked!.take(nowMs: nowMs) {
                return .drop("unstaked_rate_limited")
            }
        } else if let budget = senderBudget, let sender, members.contains(sender),
                  !senders[sender, default: budget].take(nowMs: nowMs) {
            return .drop("sender_rate_limited")
        }
        return .check
    }

    /// A read burst's signature checks took `elapsedMs` of wall time (the client budget's cost estimate).
    public mutating func measured(checks: Int, elapsedMs: Double) {
        clientBudget?.measured(checks: checks, elapsedMs: elapsedMs)
    }

    /// Whether a lane ("" one lane for all, "user" or "vote") carries `kind`: with lanes, each port carries
    /// one class and anything else is dropped, not queued.
    public static func lane(_ lane: String, carries kind: MessageKind) -> Bool {
        lane.isEmpty || (lane == "user") != kind.isConsensusLane
    }
}

