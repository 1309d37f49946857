import Wire

/// Ways a node can misbehave on purpose (topology `byzantine = [...]`, `faultline fault byzantine`).
/// The consensus core stays honest; the node's shell lies around it.
public enum ByzantineMode: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// Two different prevotes and precommits for one height and round, each to half of the peers.
    case equivocate
    /// Two different proposals for one height and round (blocks with different timestamps).
    case doublePropose = "double_propose"
    /// Proposals whose block has a wrong state root.
    case invalidProposal = "invalid_proposal"
    /// Proposals whose parts do not match their Merkle proofs.
    case badParts = "bad_parts"
    /// Signs its votes but never sends them.
    case withholdVotes = "withhold_votes"
    /// Re-sends old consensus messages it received (earlier heights).
    case replay
    /// Sends votes signed for another chain id.
    case otherChain = "other_chain"
    /// Floods validly signed votes for long-past heights.
    case staleFlood = "stale_flood"
    /// Floods validly signed votes for far-future heights.
    case futureFlood = "future_flood"

    public var description: String { rawValue }

    public static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

extension ByzantineMode {
    /// The validly signed votes a flooding node sends in one tick at `height`, with the mode each
    /// serves: `stale_flood` 50 heights below, `future_flood` 1,000 above, a new round each (so none
    /// is a duplicate and every one costs a receiver its checks). Shared by the node and the simulator.
    public static func floodVotes(_ modes: Set<ByzantineMode>, height: UInt64, counter: UInt32,
                                  count: Int) -> [(mode: ByzantineMode, vote: Vote)] {
        var out: [(mode: ByzantineMode, vote: Vote)] = []
        for (mode, target) in [(ByzantineMode.staleFlood, height > 50 ? height - 50 : 0), (.futureFlood, height + 1_000)]
        where modes.contains(mode) && target > 0 {
            for index in 0..<count {
                out.append((mode, Vote(height: target, round: counter &+ UInt32(index), blockId: nil)))
            }
        }
        return out
    }
}
