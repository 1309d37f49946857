/// Tendermint's round timeouts in milliseconds: propose, prevote, precommit, their growth per round,
/// and the pause after a commit. Part of a node's config and of the consensus settings.
public struct ConsensusTimeouts: Codable, Sendable, Equatable {
    public var timeoutProposeMs: UInt64
    public var timeoutProposeDeltaMs: UInt64
    public var timeoutPrevoteMs: UInt64
    public var timeoutPrevoteDeltaMs: UInt64
    public var timeoutPrecommitMs: UInt64
    public var timeoutPrecommitDeltaMs: UInt64
    public var timeoutCommitMs: UInt64

    public init(timeoutProposeMs: UInt64 = 300, timeoutProposeDeltaMs: UInt64 = 100,
                timeoutPrevoteMs: UInt64 = 100, timeoutPrevoteDeltaMs: UInt64 = 50,
                timeoutPrecommitMs: UInt64 = 100, timeoutPrecommitDeltaMs: UInt64 = 50,
                timeoutCommitMs: UInt64 = 20) {
        self.timeoutProposeMs = timeoutProposeMs
        self.timeoutProposeDeltaMs = timeoutProposeDeltaMs
        self.timeoutPrevoteMs = timeoutPrevoteMs
        self.timeoutPrevoteDeltaMs = timeoutPrevoteDeltaMs
        self.timeoutPrecommitMs = timeoutPrecommitMs
        self.timeoutPrecommitDeltaMs = timeoutPrecommitDeltaMs
        self.timeoutCommitMs = timeoutCommitMs
    }
}
