import Wire

/// A validator's receive path while a scenario spams it, modelled: the kernel's receive buffer in front
/// of a reader that checks one signature at a time at the node's share of the machine's capacity. Only
/// runs with a spam step use it; elsewhere a datagram is taken the moment it arrives, as before.
///
/// The spam is a fluid, not one agenda item per datagram: between two real arrivals the queued work
/// (`backlogUs`, in µs of checking) grows by the spam's work less the second of work done each second,
/// and stops at the buffer's size, past which the kernel drops. A real message (a vote, a proposal, a
/// status) arriving at a full buffer is dropped as often as the spam around it is (1 − capacity ÷ rate);
/// one that gets in is handed to the node after the work queued before it and its own check.
///
/// The node's mitigations act where they act on the real node: with lanes, consensus messages have their
/// own socket and queue and the spam its own, where the unstaked token bucket drops all but the clients'
/// share before it costs a check; in votes-only mode the reader drops every transaction before its check,
/// so the spam costs nothing and the queued spam is read past at once.
struct SimIngress {
    /// One socket: its buffer and the checking behind it.
    struct Queue {
        /// Work queued, in µs of signature checks.
        var backlogUs: Double = 0
        /// Datagrams the kernel dropped at this socket (the node's `kernel…Drops`).
        var kernelDrops: Double = 0
    }

    /// One check, in µs (1 s ÷ the node's capacity).
    let checkUs: Double
    /// The receive buffer, in µs of checks.
    let bufferUs: Double
    let lanes: Bool
    /// With lanes: client transactions admitted per second before their check (`Admission`'s bucket).
    let unstakedPerSecond: Double
    /// Spam arriving now, datagrams per second (0 outside spam windows).
    private(set) var spamPerSecond: Double = 0
    private(set) var votesOnly = false
    private(set) var updatedUs: UInt64
    /// Legacy: the one socket. With lanes: `user` takes transactions (and the spam), `vote` the rest.
    private(set) var one = Queue()
    private(set) var user = Queue()
    private(set) var vote = Queue()
    /// Dropped before their check, by reason as the node counts them (`user_unstaked_rate_limited`,
    /// `votes_only`).
    private(set) var dropsBeforeCheck: [String: Double] = [:]

    /// What a socket's buffer holds: `UDPEndpoint`'s 4 MiB request, doubled by the kernel, at about 1 KiB
    /// charged per small datagram (its buffer's true size).
    static let bufferDatagrams = 8_192.0

    init(capacityPerSecond: Double, lanes: Bool, unstakedPerSecond: Double, nowUs: UInt64) {
        precondition(capacityPerSecond > 0, "ingress capacity \(capacityPerSecond)")
        checkUs = 1_000_000 / capacityPerSecond
        bufferUs = Self.bufferDatagrams * checkUs
        self.lanes = lanes
        self.unstakedPerSecond = unstakedPerSecond
        updatedUs = nowUs
    }

    /// Brings the queues to `nowUs` under the spam arriving since the last update.
    mutating func advance(to nowUs: UInt64) {
        guard nowUs > updatedUs else { return }
        let seconds = Double(nowUs - updatedUs) / 1_000_000
        updatedUs = nowUs
        if let reason = uncheckedReason, spamPerSecond > spamChecked {
            dropsBeforeCheck[reason, default: 0] += (spamPerSecond - spamChecked) * seconds
        }
        if lanes {
            Self.flow(&user, spamPerSecond: spamChecked, seconds: seconds, checkUs: checkUs, bufferUs: bufferUs)
            Self.flow(&vote, spamPerSecond: 0, seconds: seconds, checkUs: checkUs, bufferUs: bufferUs)
        } else {
            Self.flow(&one, spamPerSecond: spamChecked, seconds: seconds, checkUs: checkUs, bufferUs: bufferUs)
        }
    }

    /// The spam that reaches the signature checks (the user queue with lanes, the one queue without), per
    /// second: none in votes-only mode, with lanes what the clients' bucket admits.
    private var spamChecked: Double {
        votesOnly ? 0 : lanes ? min(spamPerSecond, unstakedPerSecond) : spamPerSecond
    }

    /// What the rest of the spam is counted as, dropped before its check (nil: nothing is dropped there).
    private var uncheckedReason: String? {
        votesOnly ? (lanes ? "user_votes_only" : "votes_only") : lanes ? "user_unstaked_rate_limited" : nil
    }

    private static func flow(_ queue: inout Queue, spamPerSecond: Double, seconds: Double, checkUs: Double,
                             bufferUs: Double) {
        let backlog = queue.backlogUs + seconds * (spamPerSecond * checkUs - 1_000_000)
        if backlog > bufferUs {
            queue.kernelDrops += (backlog - bufferUs) / checkUs
            queue.backlogUs = bufferUs
        } else {
            queue.backlogUs = max(backlog, 0)
        }
    }

    /// A real message of `kind` arrives: µs until the node has checked it (for a block part, until the checks
    /// ahead of it are done), or nil when the kernel dropped it.
    /// `draw` is uniform in [0, 1) from the run's generator.
    mutating func arrive(_ kind: MessageKind, nowUs: UInt64, draw: Double) -> Double? {
        advance(to: nowUs)
        let toUser = lanes && !kind.isConsensusLane
        var queue = lanes ? (toUser ? user : vote) : one
        defer {
            if !lanes { one = queue } else if toUser { user = queue } else { vote = queue }
        }
        if queue.backlogUs + checkUs > bufferUs {
            // Full: the spam and this message compete for the room the checks free.
            let spam = lanes && !toUser ? 0 : spamChecked
            let admitted = spam * checkUs > 1_000_000 ? 1_000_000 / (spam * checkUs) : 1
            if draw >= admitted {
                queue.kernelDrops += 1
                return nil
            }
        }
        // A block part has no signature: it waits for the checks queued before it, and costs none of its own.
        let wait = queue.backlogUs + (kind.isProvedByRoot ? 0 : checkUs)
        queue.backlogUs = min(wait, bufferUs)
        return wait
    }

    mutating func setSpam(perSecond rate: Double, nowUs: UInt64) {
        advance(to: nowUs)
        spamPerSecond = rate
    }

    /// Votes-only mode on or off. Turned on, the spam already queued is read and dropped unchecked.
    mutating func setVotesOnly(_ on: Bool, nowUs: UInt64) {
        advance(to: nowUs)
        votesOnly = on
        guard on else { return }
        if lanes {
            dropsBeforeCheck["user_votes_only", default: 0] += user.backlogUs / checkUs
            user.backlogUs = 0
        } else {
            dropsBeforeCheck["votes_only", default: 0] += one.backlogUs / checkUs
            one.backlogUs = 0
        }
    }

    /// The kernel's drops by socket, as the node's once-a-second sample reports them.
    var kernelDrops: [(lane: String, count: UInt64)] {
        lanes ? [("user", UInt64(user.kernelDrops)), ("vote", UInt64(vote.kernelDrops))] : [("", UInt64(one.kernelDrops))]
    }

    /// Drops before the check, whole datagrams, sorted by reason.
    var dropCounts: [(String, Int)] {
        dropsBeforeCheck.sorted { $0.key < $1.key }.map { ($0.key, Int($0.value)) }
    }
}
