import DequeModule
import Synchronization

/// The main loop's input queue, in two classes: `urgent` (timers, control, and with vote lanes on,
/// consensus traffic) is always taken before `bulk` (user transactions; everything network-borne in
/// legacy mode). A waiting consumer is resumed directly by the next producer.
final class Inbox: Sendable {
    private struct State: ~Copyable {
        var urgent = Deque<NodeInput>()
        var bulk = Deque<NodeInput>()
        var waiter: CheckedContinuation<NodeInput?, Never>?
        var finished = false
    }

    private let state = Mutex(State())

    func push(_ input: NodeInput, urgent: Bool) {
        let waiter: CheckedContinuation<NodeInput?, Never>? = state.withLock { state in
            if state.finished { return nil }
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            if urgent { state.urgent.append(input) } else { state.bulk.append(input) }
            return nil
        }
        waiter?.resume(returning: input)
    }

    /// Ends the loop: the consumer gets nil once; later pushes are ignored.
    func finish() {
        let waiter: CheckedContinuation<NodeInput?, Never>? = state.withLock { state in
            state.finished = true
            let waiter = state.waiter
            state.waiter = nil
            return waiter
        }
        waiter?.resume(returning: nil)
    }

    var counts: (urgent: Int, bulk: Int) { state.withLock { ($0.urgent.count, $0.bulk.count) } }

    func next() async -> NodeInput? {
        await withCheckedContinuation { (continuation: CheckedContinuation<NodeInput?, Never>) in
            let ready: NodeInput?? = state.withLock { state in
                if state.finished { return .some(nil) }
                if let input = state.urgent.popFirst() { return .some(input) }
                if let input = state.bulk.popFirst() { return .some(input) }
                state.waiter = continuation
                return .none
            }
            if case .some(let input) = ready { continuation.resume(returning: input) }
        }
    }
}
