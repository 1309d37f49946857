/// A checker of single-register histories for linearizability, in the style of Knossos and Porcupine:
/// the Wing–Gong search with Lowe's memoization (WGL). It looks for an order of the operations that
/// respects real time (an operation that completed before another began comes first) and the
/// register's rules (a read returns the value of the latest write before it; none: the key is absent).
///
/// A write whose outcome is unknown (the client timed out) may have taken effect at any time after it
/// began, or never. Each key of a key-value store is one register, checked on its own.
///
/// Bounds: the search is exponential in the worst case (many concurrent operations); it stops after
/// `statesMax` distinct (linearized set, value) states and then says it could not decide. With a few
/// clients and thousands of operations per key it needs a few times as many states as operations.
public enum Linearizability {
    public struct Operation: Sendable, Equatable {
        public enum Kind: Sendable, Equatable {
            case write(Int)
            /// The value read; nil: the key was absent.
            case read(Int?)
        }

        /// The caller's id, reported back in a violation.
        public var id: Int
        public var kind: Kind
        public var invokeMs: UInt64
        /// nil: the outcome is unknown (writes only; a read with no answer tells nothing).
        public var completeMs: UInt64?

        public init(id: Int, kind: Kind, invokeMs: UInt64, completeMs: UInt64?) {
            self.id = id
            self.kind = kind
            self.invokeMs = invokeMs
            self.completeMs = completeMs
        }
    }

    public enum Outcome: Sendable, Equatable {
        case linearizable(statesExplored: Int)
        /// No order exists. `linearizedMax`: the most operations any order placed before getting stuck;
        /// `stuckAt`: the ids of the operations that could come next there and could not.
        case violation(linearizedMax: Int, stuckAt: [Int])
        /// The search hit `statesMax` before deciding.
        case undecided(statesExplored: Int)
    }

    public static func check(_ history: [Operation], initial: Int? = nil, statesMax: Int = 2_000_000) -> Outcome {
        // Reads without an answer say nothing; everything else takes part, in order of invocation.
        let ops = history.filter { op in
            if case .read = op.kind { return op.completeMs != nil }
            return true
        }.sorted { ($0.invokeMs, $0.id) < ($1.invokeMs, $1.id) }
        let count = ops.count
        let required = ops.filter { $0.completeMs != nil }.count
        guard required > 0 else { return .linearizable(statesExplored: 0) }
        let words = (count + 63) / 64

        struct Frame {
            var done: [UInt64]
            var value: Int?
            var placed: Int
            var placedRequired: Int
        }
        struct Seen: Hashable {
            var done: [UInt64]
            var value: Int?
        }
        var seen = Set<Seen>()
        var stack = [Frame(done: Array(repeating: 0, count: words), value: initial, placed: 0, placedRequired: 0)]
        var deepest = 0
        var stuck: [Int] = []
        while let frame = stack.popLast() {
            if frame.placedRequired == required { return .linearizable(statesExplored: seen.count) }
            // The earliest completion among the operations not yet placed: only operations invoked by
            // then may come next (anything later began after that one had ended).
            var horizon = UInt64.max
            var first = count
            for index in 0..<count where frame.done[index / 64] & (1 << UInt64(index % 64)) == 0 {
                if first == count { first = index }
                if let complete = ops[index].completeMs { horizon = min(horizon, complete) }
            }
            var candidates: [Int] = []
            var index = first
            while index < count, ops[index].invokeMs <= horizon {
                if frame.done[index / 64] & (1 << UInt64(index % 64)) == 0 { candidates.append(index) }
                index += 1
            }
            var advanced = false
            for candidate in candidates.reversed() {
                let op = ops[candidate]
                let next: Int?
                switch op.kind {
                case .write(let written): next = written
                case .read(let read):
                    guard read == frame.value else { continue }
                    next = frame.value
                }
                var done = frame.done
                done[candidate / 64] |= 1 << UInt64(candidate % 64)
                guard seen.insert(Seen(done: done, value: next)).inserted else { continue }
                if seen.count >= statesMax { return .undecided(statesExplored: seen.count) }
                advanced = true
                stack.append(Frame(done: done, value: next, placed: frame.placed + 1,
                                   placedRequired: frame.placedRequired + (op.completeMs != nil ? 1 : 0)))
            }
            if !advanced, frame.placed >= deepest {
                deepest = frame.placed
                stuck = candidates.map { ops[$0].id }
            }
        }
        return .violation(linearizedMax: deepest, stuckAt: stuck)
    }
}
