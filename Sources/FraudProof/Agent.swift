import Basics
import Sodium
import Wire

/// How a party to disputes behaves (Topologies/README.md, "Fraud proofs"): honest, or one of the lies the game must
/// defeat. Selectable per node; the same strategies drive the property tests.
public enum Strategy: Sendable, Equatable, CustomStringConvertible {
    /// Executes truly and plays every move.
    case honest
    /// Executes truly up to step `step` of the batch, then mints `amount` to `account` before that step
    /// (a bug, or a deposit from an L1 block that was reorged away) and executes on from there.
    case deviate(step: Int, account: PublicKey, amount: UInt64)
    /// Commits to made-up hashes at every position (only the end is what it claims) and claims them.
    case lieEveryMove(seed: UInt64)
    /// Opens (asserts or challenges) truly or not, then never moves.
    case silent

    public var description: String {
        switch self {
        case .honest: return "honest"
        case .deviate(let step, _, let amount): return "deviate at step \(step) (mint \(amount))"
        case .lieEveryMove: return "lie at every move"
        case .silent: return "silent"
        }
    }
}

/// One party's side of a batch: the execution it believes, the trace it commits to, and how it plays.
/// Pure: built from a batch's input and start state, asked for moves with the game as L1 has it.
public struct Party: Sendable {
    public let execution: Execution
    public let strategy: Strategy
    public let trace: Trace
    /// The root this party claims the batch ends at.
    public let claimedRoot: Bytes32
    /// The L2 state this party believes after the batch (a liar at every move believes the true one).
    public let store: FullStore

    public init(execution: Execution, strategy: Strategy) {
        self.execution = execution
        self.strategy = strategy
        let (trace, final, store) = execution.run(deviation: Party.deviation(strategy, steps: execution.steps))
        self.store = store
        if case .lieEveryMove(let seed) = strategy {
            // Made-up hashes everywhere, ending on a made-up root (never executed to).
            var rng = SplitMix64(seed: seed)
            claimedRoot = Party.madeUpHash(&rng)
            let end = Machine.State.halted(root: claimedRoot, itemCount: execution.itemCount).hash
            let madeUp = (0..<(trace.length - 1)).map { _ in Party.madeUpHash(&rng) }
            self.trace = Trace(start: trace.start, after: madeUp + [end])
        } else {
            claimedRoot = final.root
            self.trace = trace
        }
    }

    public var endClaim: Bisection.Claim { trace.claim(at: trace.length) }

    /// What this party sends next in `game` as `side`, or nil: not its turn, over, or it stays silent.
    public func nextMove(in game: Bisection.Game, as side: Bisection.Side) -> Move? {
        guard game.outcome == nil, game.turn == side, strategy != .silent else { return nil }
        guard game.atOneStep else { return .claim(trace.claim(at: game.midpoint)) }
        guard side == .challenger else { return nil }
        return .oneStep(execution.proof(step: game.low, deviation: Party.deviation(strategy, steps: execution.steps)))
    }

    public enum Move: Sendable, Equatable {
        case claim(Bisection.Claim)
        case oneStep(OneStepProof)
    }

    static func deviation(_ strategy: Strategy, steps: Int) -> Execution.Deviation? {
        guard case .deviate(let step, let account, let amount) = strategy else { return nil }
        let at = step % max(steps, 1)
        return { index, store in
            guard index == at else { return }
            var minted = store.account(account)
            minted.balance &+= amount
            store.set(account, minted)
        }
    }

    private static func madeUpHash(_ rng: inout SplitMix64) -> Bytes32 {
        Bytes32(storage: (rng.next(), rng.next(), rng.next(), rng.next()))
    }
}
