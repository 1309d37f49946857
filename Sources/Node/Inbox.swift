import DequeModule
import Sodium
import Synchronization
import Wire

/// The main loop's input queue, in two classes: `urgent` (timers, control, and with vote lanes on,
/// consensus traffic) is always taken before `bulk` (user transactions; everything network-borne in
/// legacy mode). A waiting consumer is resumed directly by the next producer, with everything that
/// producer pushed at once (a read burst is one wake-up, not one per datagram).
final class Inbox: Sendable {
    /// A vote waiting to be processed: the latest one per (validator, vote type).
    struct VoteSlot: Hashable {
        var sender: PublicKey
        var kind: MessageKind
    }

    private struct State: ~Copyable {
        var urgent = Deque<NodeInput>()
        var bulk = Deque<NodeInput>()
        var votes: [VoteSlot: (stake: UInt64, position: UInt64, input: NodeInput)] = [:]
        var sequence: UInt64 = 0
        var coalesced = 0
        var waiter: CheckedContinuation<[NodeInput]?, Never>?
        var finished = false

        mutating func popFirst() -> NodeInput? {
            if let input = urgent.popFirst() { return input }
            // Highest stake first (then arrival order): the votes that move a quorum most go first.
            if let best = votes.max(by: { ($0.value.stake, UInt64.max - $0.value.position)
                                        < ($1.value.stake, UInt64.max - $1.value.position) }) {
                votes[best.key] = nil
                return best.value.input
            }
            return bulk.popFirst()
        }
    }

    private let state = Mutex(State())

    func push(_ input: NodeInput, urgent: Bool) {
        push(CollectionOfOne(input), urgent: urgent)
    }

    /// Queues `inputs` in order; a waiting consumer gets them all at once.
    func push(_ inputs: some Collection<NodeInput>, urgent: Bool) {
        guard !inputs.isEmpty else { return }
        let waiter: CheckedContinuation<[NodeInput]?, Never>? = state.withLock { state in
            if state.finished { return nil }
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            if urgent { state.urgent.append(contentsOf: inputs) } else { state.bulk.append(contentsOf: inputs) }
            return nil
        }
        waiter?.resume(returning: Array(inputs))
    }

    /// Ends the loop: the consumer gets nil once; later pushes are ignored.
    func finish() {
        let waiter: CheckedContinuation<[NodeInput]?, Never>? = state.withLock { state in
            state.finished = true
            let waiter = state.waiter
            state.waiter = nil
            return waiter
        }
        waiter?.resume(returning: nil)
    }

    var counts: (urgent: Int, bulk: Int) { state.withLock { ($0.urgent.count + $0.votes.count, $0.bulk.count) } }

    /// Votes replaced by a newer one from the same validator before they were processed.
    var coalesced: Int { state.withLock { $0.coalesced } }

    /// Queues a vote, replacing a queued older vote of the same type from the same validator
    /// (a newer height or round supersedes it); an older one arriving after a newer is dropped.
    /// Returns how many votes were discarded (0 or 1: the older queued one, or this one if older).
    @discardableResult
    func pushVote(_ input: NodeInput, sender: PublicKey, kind: MessageKind, vote: Vote, stake: UInt64) -> Int {
        var discarded = 0
        let waiter: CheckedContinuation<[NodeInput]?, Never>? = state.withLock { state in
            if state.finished { return nil }
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            let slot = VoteSlot(sender: sender, kind: kind)
            if let queued = state.votes[slot], let old = Self.vote(in: queued.input),
               (old.height, old.round) > (vote.height, vote.round) {
                state.coalesced += 1
                discarded = 1
                return nil
            }
            if state.votes[slot] != nil {
                state.coalesced += 1
                discarded = 1
            }
            state.sequence += 1
            state.votes[slot] = (stake, state.sequence, input)
            return nil
        }
        waiter?.resume(returning: [input])
        return discarded
    }

    private static func vote(in input: NodeInput) -> Vote? {
        switch input {
        case .message(_, .prevote(let vote), _, _), .message(_, .precommit(let vote), _, _): return vote
        default: return nil
        }
    }

    /// Up to `max` inputs in priority order (urgent, then votes by stake, then bulk), waiting for the
    /// next push if there are none; nil once finished.
    func next(max: Int = 64) async -> [NodeInput]? {
        await withCheckedContinuation { (continuation: CheckedContinuation<[NodeInput]?, Never>) in
            let ready: [NodeInput]?? = state.withLock { state in
                if state.finished { return .some(nil) }
                var taken: [NodeInput] = []
                while taken.count < max, let input = state.popFirst() { taken.append(input) }
                if !taken.isEmpty { return .some(taken) }
                state.waiter = continuation
                return .none
            }
            if case .some(let inputs) = ready { continuation.resume(returning: inputs) }
        }
    }
}
