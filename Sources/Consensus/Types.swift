import Ledger
import Sodium
import Wire

/// The Tendermint consensus algorithm (Buchman, Kwon, Milosevic, "The latest gossip on BFT
/// consensus", 2018, Algorithm 1) as a pure state machine: inputs in, effects out. Line tags `// L22`
/// refer to that algorithm. Signatures are checked by the shell before input arrives here.
public enum Tendermint {
    public struct Settings: Sendable, Equatable {
        public var timeouts: ConsensusTimeouts
        /// Rounds ahead of the current one whose messages are kept (more are ignored).
        public var roundsAheadMax: UInt32
        /// Inputs for the next height kept until this node gets there.
        public var futureInputsMax: Int

        /// The quorum rule: +2/3 of the stake. `.plantedHalf` is a deliberate bug (a majority quorum,
        /// unsafe with an equivocating validator) that only the simulator's `--plant` switches on, to
        /// prove the swarm finds a broken quorum check.
        public var quorum: QuorumRule

        public init(timeouts: ConsensusTimeouts = ConsensusTimeouts(), roundsAheadMax: UInt32 = 64,
                    futureInputsMax: Int = 4096, quorum: QuorumRule = .twoThirds) {
            self.timeouts = timeouts
            self.roundsAheadMax = roundsAheadMax
            self.futureInputsMax = futureInputsMax
            self.quorum = quorum
        }

        /// The quorum check of this rule (a node's sync check of commit certificates uses it too).
        public func isQuorum(_ stake: UInt64, of validators: ValidatorSet) -> Bool {
            switch quorum {
            case .twoThirds: return validators.isQuorum(stake)
            case .plantedHalf: return stake * 2 > validators.totalStake
            }
        }

        func duration(_ kind: TimeoutKind, round: UInt32) -> UInt64 {
            let r = UInt64(round)
            switch kind {
            case .propose: return timeouts.timeoutProposeMs + r * timeouts.timeoutProposeDeltaMs
            case .prevote: return timeouts.timeoutPrevoteMs + r * timeouts.timeoutPrevoteDeltaMs
            case .precommit: return timeouts.timeoutPrecommitMs + r * timeouts.timeoutPrecommitDeltaMs
            case .commit: return timeouts.timeoutCommitMs
            }
        }
    }

    public enum QuorumRule: String, Sendable, Equatable, CaseIterable {
        case twoThirds = "two_thirds"
        case plantedHalf = "half"
    }

    public enum Step: UInt8, Sendable, Comparable, CustomStringConvertible {
        case propose = 0, prevote = 1, precommit = 2, commit = 3

        public static func < (lhs: Step, rhs: Step) -> Bool { lhs.rawValue < rhs.rawValue }

        public var description: String { ["propose", "prevote", "precommit", "commit"][Int(rawValue)] }
    }

    public enum VoteType: UInt8, Sendable, Equatable, CustomStringConvertible {
        case prevote = 1, precommit = 2

        public var kind: MessageKind { self == .prevote ? .prevote : .precommit }
        public var description: String { self == .prevote ? "prevote" : "precommit" }
    }

    public enum TimeoutKind: String, Sendable, Equatable, CustomStringConvertible {
        case propose, prevote, precommit, commit

        public var description: String { rawValue }
    }

    /// What a validator has signed last: (height, round, step) in signing order. A validator never
    /// signs at or below it again (the double-sign guard), including after a restart.
    public struct SignState: Sendable, Equatable, Comparable, Codable {
        /// 0 proposal, 1 prevote, 2 precommit.
        public var height: UInt64
        public var round: UInt32
        public var step: UInt8

        public init(height: UInt64, round: UInt32, step: UInt8) {
            self.height = height
            self.round = round
            self.step = step
        }

        public static func < (lhs: SignState, rhs: SignState) -> Bool {
            (lhs.height, lhs.round, lhs.step) < (rhs.height, rhs.round, rhs.step)
        }
    }

    public enum Input: Sendable, Equatable {
        /// Begin (or resume) at the instance's height and round.
        case start
        /// A complete proposal: signature checked, block reassembled, and `valid` per the ledger.
        case proposal(Proposal, from: Int, valid: Bool)
        case vote(VoteType, Vote, from: Int, signature: Bytes64)
        case timeout(TimeoutKind, height: UInt64, round: UInt32)
        /// The shell committed `height` by other means (block sync): move on to `height + 1`.
        case committedElsewhere(height: UInt64)
    }

    public enum Effect: Sendable, Equatable {
        /// Record the sign state durably before the next signing effect. The shell fsyncs it first.
        case persistSignState(SignState)
        /// Sign and broadcast a proposal for `blockId` (nil: build a new block) with `polRound`.
        case propose(height: UInt64, round: UInt32, blockId: Bytes32?, polRound: Int32)
        case broadcastVote(VoteType, Vote)
        case scheduleTimeout(TimeoutKind, height: UInt64, round: UInt32, durationMs: UInt64)
        /// `blockId` is decided at `height` with these precommit signatures (+2/3 of stake).
        case decide(height: UInt64, round: UInt32, blockId: Bytes32, signatures: [CommitCertificate.Signature])
        case roundStarted(height: UInt64, round: UInt32)
        case newHeight(UInt64)
        /// A validator signed two different votes of one type for one height and round: the proof,
        /// for the shell to report as an evidence transaction. The second vote is not counted.
        /// (Boxed: it is rare and large, and every effect list is sized by its largest case.)
        indirect case equivocation(DuplicateVoteEvidence)
    }

    /// Inputs the instance set aside, by reason; the shell exports these as metrics.
    public struct Metrics: Sendable, Equatable {
        public var staleHeight = 0
        public var futureHeightBuffered = 0
        public var futureHeightDropped = 0
        public var roundTooFarAhead = 0
        public var wrongProposer = 0
        public var duplicateProposal = 0
        public var duplicateVote = 0
        public var conflictingVote = 0
        public var unknownValidator = 0
        public var refusedToResign = 0

        public init() {}
    }
}
