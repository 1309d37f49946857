import DequeModule
import Synchronization
import Sodium
import Wire

/// The edge of a node: turns a datagram into a verified, typed message or a counted rejection. Kinds proved
/// by a root (block parts) carry no signature and pass with their domain checked; the core proves them.
/// De-duplication happens before verification (exact bytes), so gossip copies cost a hash, not a
/// signature check. It forgets after `seenTtlMs`: a message re-sent later (because some peer lost
/// it, or this node set it aside) is verified and delivered again.
public struct Ingress: Sendable {
    public enum Reject: String, Sendable, CaseIterable {
        case oversized, malformed, badSignature = "bad_signature", wrongChain = "wrong_chain"
        case wrongFork = "wrong_fork", unknownSender = "unknown_sender", duplicate
        /// The sender used up its vote signature checks for this height (`VoteCheckBudget`).
        case voteBudget = "vote_budget"
        /// A vote for a height this node has already committed: consensus has no use for it, so it is
        /// not verified (at 100 validators about a sixth of all vote checks arrive after the decision).
        case staleHeight = "stale_height"
        /// A vote of a type and round where one value already has +2/3 at this node (`VoteQuorums`).
        case settled = "quorum_settled"
        /// A transaction this node has already committed (`TransactionIds`): a late gossip copy.
        case committed = "already_committed"
    }

    public enum Outcome: Sendable {
        case accepted(Envelope, Message)
        case rejected(Reject, detail: String)
    }

    public let domain: Domain
    public let datagramBytesMax: Int
    /// Keys allowed to send anything but transactions (validators and cluster nodes).
    public let members: Set<PublicKey>
    public let seenMax: Int
    public let seenTtlMs: UInt64
    private var seen: [Bytes32: UInt64] = [:]
    private var seenOrder: Deque<(id: Bytes32, timeMs: UInt64)> = []
    /// The last vote of each kind whose signature checked out, per member: a re-sent copy arriving
    /// after `seenTtlMs` is accepted without checking it again (bounded: members × 2 vote kinds).
    private var verifiedVotes: [VoteSlot: Bytes32] = [:]
    /// Ids between `begin` and `finish`.
    private var checking: Set<Bytes32> = []
    public var voteBudget: VoteCheckBudget?

    struct VoteSlot: Hashable {
        var sender: PublicKey
        var kind: MessageKind
    }

    public init(domain: Domain, datagramBytesMax: Int, members: Set<PublicKey>, seenMax: Int = 200_000,
                seenTtlMs: UInt64 = 2_000, voteBudget: VoteCheckBudget? = nil) {
        self.domain = domain
        self.datagramBytesMax = datagramBytesMax
        self.members = members
        self.seenMax = seenMax
        self.seenTtlMs = seenTtlMs
        self.voteBudget = voteBudget
    }

    public var seenCount: Int { seen.count }

    /// Decodes and checks everything but the signature; cheap, so junk is shed before the expensive step.
    public func precheck(_ bytes: [UInt8]) -> Result<(Envelope, Message), RejectError> {
        guard bytes.count <= datagramBytesMax else {
            return .failure(RejectError(.oversized, "\(bytes.count) bytes, max \(datagramBytesMax)"))
        }
        let envelope: Envelope
        let message: Message
        do {
            envelope = try Envelope(decoding: bytes, payloadBytesMax: datagramBytesMax)
            message = try Message(kind: envelope.kind, payload: envelope.payload)
        } catch {
            return .failure(RejectError(.malformed, error.description))
        }
        if !envelope.kind.isFromAnyone && !members.contains(envelope.sender) {
            return .failure(RejectError(.unknownSender, "\(envelope.kind) from \(envelope.sender)"))
        }
        return .success((envelope, message))
    }

    public struct RejectError: Error, Sendable {
        public let reason: Reject
        public let detail: String
        init(_ reason: Reject, _ detail: String) {
            self.reason = reason
            self.detail = detail
        }
    }

    /// The full path: precheck, de-duplicate, verify the signature, remember the id. `localHeight` is
    /// the height this node is deciding, for the vote budget.
    public mutating func admit(_ bytes: [UInt8], nowMs: UInt64 = 0, localHeight: UInt64 = 0,
                               checking: () -> Void = {}) -> Outcome {
        switch begin(bytes, nowMs: nowMs, localHeight: localHeight) {
        case .done(let outcome): return outcome
        case .verify(let pending):
            checking()
            return finish(pending, pending.check(), nowMs: nowMs)
        case .copyInFlight: preconditionFailure("no check is in flight outside a burst")
        }
    }

    /// A message that passed every check but its signature; `check()` may run on any thread.
    public struct Pending: Sendable {
        public let envelope: Envelope
        public let message: Message
        let id: Bytes32
        let domain: Domain
        let voteSlot: VoteSlot?

        public func check() -> Envelope.VerifyResult { envelope.verify(domain: domain) }
    }

    public enum Stage: Sendable {
        case done(Outcome)
        case verify(Pending)
        /// The same bytes are between `begin` and `finish`: run this one through `admit` after that
        /// (a duplicate if the first was valid, checked again, and refused again, if it was not).
        case copyInFlight
    }

    /// Everything before the signature check. Nothing is remembered as seen until `finish`.
    public mutating func begin(_ bytes: [UInt8], nowMs: UInt64 = 0, localHeight: UInt64 = 0,
                               settled: VoteQuorums? = nil, committed: TransactionIds? = nil) -> Stage {
        let envelope: Envelope
        let message: Message
        switch precheck(bytes) {
        case .failure(let error): return .done(.rejected(error.reason, detail: error.detail))
        case .success(let pair): (envelope, message) = pair
        }
        let id = envelope.id
        if let seenAt = seen[id], nowMs < seenAt + seenTtlMs { return .done(.rejected(.duplicate, detail: "")) }
        if checking.contains(id) { return .copyInFlight }
        if let committed, !envelope.kind.isConsensusLane, committed.contains(id) {
            return .done(.rejected(.committed, detail: "\(envelope.kind) \(id.short)"))
        }
        if envelope.kind.isProvedByRoot {
            // No signature to check: the core proves the content against its signed proposal's root.
            switch envelope.checkDomain(domain) {
            case .valid: break
            case .wrongChain, .badSignature: return .done(.rejected(.wrongChain, detail: "chain tag \(envelope.chainTag)"))
            case .wrongFork: return .done(.rejected(.wrongFork, detail: "fork \(envelope.forkId)"))
            }
            remember(id, nowMs: nowMs)
            return .done(.accepted(envelope, message))
        }
        var voteSlot: VoteSlot?
        switch message {
        case .prevote(let vote), .precommit(let vote):
            if vote.height < localHeight {
                return .done(.rejected(.staleHeight, detail: "\(envelope.kind) for height \(vote.height), deciding \(localHeight)"))
            }
            if let settled, settled.contains(kind: envelope.kind, height: vote.height, round: vote.round) {
                return .done(.rejected(.settled, detail: "\(envelope.kind) for \(vote.height)/\(vote.round)"))
            }
            let slot = VoteSlot(sender: envelope.sender, kind: envelope.kind)
            if verifiedVotes[slot] == id {
                remember(id, nowMs: nowMs)
                return .done(.accepted(envelope, message))
            }
            if voteBudget != nil,
               !voteBudget!.allow(sender: envelope.sender, height: vote.height, localHeight: localHeight) {
                return .done(.rejected(.voteBudget, detail: "\(envelope.kind) from \(envelope.sender) for height \(vote.height)"))
            }
            voteSlot = slot
        default: break
        }
        precondition(checking.count < Ingress.checkingMax, "\(checking.count) messages begun and never finished")
        checking.insert(id)
        // A hello is checked under the fork id it claims, so the shell can say why it refuses it.
        return .verify(Pending(envelope: envelope, message: message, id: id,
                               domain: envelope.kind == .hello ? domain.onFork(envelope.forkId) : domain,
                               voteSlot: voteSlot))
    }

    /// Messages between `begin` and `finish`: one read burst's worth.
    static let checkingMax = 4_096

    /// Completes `begin` with the signature check's result.
    public mutating func finish(_ pending: Pending, _ result: Envelope.VerifyResult, nowMs: UInt64 = 0) -> Outcome {
        checking.remove(pending.id)
        let envelope = pending.envelope
        switch result {
        case .valid: break
        case .badSignature: return .rejected(.badSignature, detail: "\(envelope.kind) from \(envelope.sender)")
        case .wrongChain: return .rejected(.wrongChain, detail: "chain tag \(envelope.chainTag)")
        case .wrongFork: return .rejected(.wrongFork, detail: "fork \(envelope.forkId)")
        }
        if let voteSlot = pending.voteSlot { verifiedVotes[voteSlot] = pending.id }
        remember(pending.id, nowMs: nowMs)
        return .accepted(envelope, pending.message)
    }

    /// Completes `begin` without the check: a vote whose round is settled by the votes checked alongside it
    /// (`PrevoteQuorum`). Not remembered as seen: a copy that comes later goes through `begin` again.
    public mutating func abandon(_ pending: Pending) -> Outcome {
        checking.remove(pending.id)
        let envelope = pending.envelope
        if case .prevote(let vote) = pending.message {
            return .rejected(.settled, detail: "\(envelope.kind) for \(vote.height)/\(vote.round), settled at the edge")
        }
        return .rejected(.settled, detail: "\(envelope.kind)")
    }

    /// Records `id` as seen at `nowMs`; the oldest entries go first when over `seenMax` or expired.
    public mutating func remember(_ id: Bytes32, nowMs: UInt64) {
        seen[id] = nowMs
        seenOrder.append((id, nowMs))
        while let oldest = seenOrder.first, seenOrder.count > seenMax || oldest.timeMs + seenTtlMs <= nowMs {
            seenOrder.removeFirst()
            if seen[oldest.id] == oldest.timeMs { seen[oldest.id] = nil }
        }
    }
}

/// The vote slots (height, round, type) where this node already holds +2/3 for one value, published
/// by the main loop after each batch and read by the receiving edges before the signature check.
/// Only the height being decided is kept, so it holds at most a few rounds.
public final class VoteQuorums: Sendable {
    private struct State {
        var height: UInt64 = 0
        var slots: Set<UInt64> = []
    }

    private let state = Mutex(State())

    public init() {}

    static func slot(_ kind: MessageKind, round: UInt32) -> UInt64 {
        UInt64(round) << 1 | (kind == .precommit ? 1 : 0)
    }

    /// Replaces what is published (the height being decided and its settled slots).
    public func publish(height: UInt64, settled: [(kind: MessageKind, round: UInt32)]) {
        let slots = Set(settled.map { VoteQuorums.slot($0.kind, round: $0.round) })
        state.withLock { state in
            state.height = height
            state.slots = slots
        }
    }

    public func contains(kind: MessageKind, height: UInt64, round: UInt32) -> Bool {
        let slot = VoteQuorums.slot(kind, round: round)
        return state.withLock { $0.height == height && $0.slots.contains(slot) }
    }
}

/// Recent transaction ids shared by the main loop and the receiving edges (the last `capacity`, oldest
/// forgotten first). Two sets: the transactions this node committed, published by the main loop after each
/// block, so a gossip copy that arrives after its block, or a client replaying a committed transaction
/// (valid signature, spent nonce), is dropped before its signature is checked rather than after; and the
/// transactions whose signature an edge found valid, so a block that carries one still in the inbox (not
/// yet in the mempool) does not check it again (an id is the hash of the signed bytes).
public final class TransactionIds: Sendable {
    private struct State {
        var ids: Set<Bytes32> = []
        var order: Deque<Bytes32> = []
    }

    public let capacity: Int
    private let state = Mutex(State())

    public init(capacity: Int = 50_000) {
        self.capacity = capacity
    }

    public func insert<S: Sequence>(_ ids: S) where S.Element == Bytes32 {
        state.withLock { state in
            for id in ids where state.ids.insert(id).inserted {
                state.order.append(id)
                if state.order.count > capacity, let oldest = state.order.popFirst() { state.ids.remove(oldest) }
            }
        }
    }

    public func contains(_ id: Bytes32) -> Bool { state.withLock { $0.ids.contains(id) } }

    public var count: Int { state.withLock { $0.ids.count } }
}

/// A bound on vote verification work per block: each validator identity may cost this node at most
/// `perHeightMax` vote signature checks at its latest height. The height moves forward with the
/// votes it sends, but never more than `heightsAhead` past the height this node is deciding, so a
/// validator cannot reset its budget by voting for far-future heights; votes for any other height are
/// charged to the current one. Identical re-sends are not charged (see `Ingress`), so an honest
/// validator spends about two checks per round: the default allows over a hundred rounds per height.
public struct VoteCheckBudget: Sendable {
    public let perHeightMax: Int
    public let heightsAhead: UInt64
    /// One entry per member identity (only members get past the precheck).
    private var entries: [PublicKey: (height: UInt64, checks: Int)] = [:]

    public init(perHeightMax: Int, heightsAhead: UInt64 = 2) {
        precondition(perHeightMax > 0, "perHeightMax must be positive, got \(perHeightMax)")
        self.perHeightMax = perHeightMax
        self.heightsAhead = heightsAhead
    }

    public mutating func allow(sender: PublicKey, height: UInt64, localHeight: UInt64) -> Bool {
        var entry = entries[sender] ?? (height: 0, checks: 0)
        if height > entry.height, height <= localHeight + heightsAhead { entry = (height, 0) }
        guard entry.checks < perHeightMax else {
            entries[sender] = entry
            return false
        }
        entry.checks += 1
        entries[sender] = entry
        return true
    }

    public func checks(of sender: PublicKey) -> Int { entries[sender]?.checks ?? 0 }
}
