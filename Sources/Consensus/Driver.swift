import DequeModule

/// A shell around the consensus core: the node's (sockets, disk, signatures) and the simulator's
/// (virtual network and disk). Both drive the core the same way: one input, then whatever its effects
/// feed back (our own votes and proposals return as inputs), in order, until it settles.
public protocol ConsensusShell: AnyObject {
    /// False once this shell must decide nothing more (stopped on a state root mismatch or for an
    /// upgrade; crashed, in the simulator).
    var decidesNow: Bool { get }
    /// The core's effects for `input`; nil when no core is running.
    func consensusEffects(for input: Tendermint.Input) -> [Tendermint.Effect]?
    /// Carries out one effect; the inputs it produces go to `feedback`.
    func execute(_ effect: Tendermint.Effect, feedback: inout Deque<Tendermint.Input>)
}

extension ConsensusShell {
    /// Feeds `first` to the core and executes its effects, then the inputs they feed back, in order.
    @inlinable
    public func drive(_ first: Tendermint.Input) {
        // The queue stays empty (no allocation) unless an effect feeds an input back: most inputs feed none.
        var queue = Deque<Tendermint.Input>()
        var next: Tendermint.Input? = first
        var steps = 0
        while decidesNow, let input = next ?? queue.popFirst(), let effects = consensusEffects(for: input) {
            next = nil
            steps += 1
            precondition(steps < 100_000, "consensus feedback did not settle")
            for effect in effects where decidesNow { execute(effect, feedback: &queue) }
        }
    }
}
