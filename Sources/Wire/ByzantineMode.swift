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
