import Ledger
import Sodium
import Wire

/// The protocol interface: what every consensus protocol Faultline runs shares with the replica core and the
/// shells that drive it (see `ConsensusCore`). A protocol is a pure state machine over these inputs and
/// effects, deciding one block per height in numbered rounds (views), with two kinds of votes signed
/// under a write-ahead sign state; a block is committed with a `CommitCertificate` of +2/3 of the stake's
/// precommits (its second vote), which block sync, the store and the checkers read the same way for every
/// protocol. Signatures are checked by the shell before input arrives.
public enum BFT {
    public struct Settings: Sendable, Equatable {
        public var timeouts: ConsensusTimeouts
        /// Rounds ahead of the current one whose messages are kept (more are ignored).
        public var roundsAheadMax: UInt32
        /// Inputs for the next height kept until this node gets there.
        public var futureInputsMax: Int

        /// A deliberately wrong rule (`PlantedBug`), nil in every real node: only the simulator's `--plant`
        /// and `faultline mutants` switch one on, to prove the checkers catch it.
        public var planted: PlantedBug?

        public init(timeouts: ConsensusTimeouts = ConsensusTimeouts(), roundsAheadMax: UInt32 = 64,
                    futureInputsMax: Int = 4096, planted: PlantedBug? = nil) {
            self.timeouts = timeouts
            self.roundsAheadMax = roundsAheadMax
            self.futureInputsMax = futureInputsMax
            self.planted = planted
        }

        /// +2/3 of the stake (a node's sync check of commit certificates uses it too).
        @inlinable
        public func isQuorum(_ stake: UInt64, of validators: ValidatorSet) -> Bool {
            if planted == .quorumHalf { return stake * 2 > validators.totalStake }
            return validators.isQuorum(stake)
        }

        func duration(_ kind: TimeoutKind, round: UInt32) -> UInt64 {
            let r = planted == .fixedTimeouts ? 0 : UInt64(round)
            switch kind {
            case .propose: return timeouts.timeoutProposeMs + r * timeouts.timeoutProposeDeltaMs
            case .prevote: return timeouts.timeoutPrevoteMs + r * timeouts.timeoutPrevoteDeltaMs
            case .precommit: return timeouts.timeoutPrecommitMs + r * timeouts.timeoutPrecommitDeltaMs
            case .commit: return timeouts.timeoutCommitMs
            // HotStuff-2: a view lasts as long as Tendermint's three round timeouts together; the leader waits Δ.
            case .view: return duration(.propose, round: round) + duration(.prevote, round: round)
                + duration(.precommit, round: round)
            case .leaderWait: return duration(.prevote, round: round)
            }
        }
    }

    /// The catalog of planted bugs: each breaks one rule of Algorithm 1 (or of the write-ahead sign state, or of
    /// vote counting) the way a plausible coding mistake would. `faultline mutants` runs each against the rule
    /// checks, the Twins-style schedules and the swarm and says which checker caught it.
    public enum PlantedBug: String, Sendable, Equatable, CaseIterable {
        /// Every quorum (L28, L34, L36, L44, L47, L49) is a majority of the stake instead of +2/3.
        case quorumHalf = "quorum-half"
        /// L22: prevote any valid new proposal, whatever this validator is locked on.
        case lockL22 = "lock-l22"
        /// L28: prevote any valid re-proposal with a proof-of-lock, even one older than this validator's lock.
        case lockL28 = "lock-l28"
        /// L28: never unlock: prevote a re-proposal only if it is the locked value (a newer proof-of-lock ignored).
        case neverUnlockL28 = "never-unlock-l28"
        /// L36: lock, but never record the valid value and round.
        case validValueL36 = "valid-value-l36"
        /// L14-L16: the proposer builds a new block even when it has a valid value to propose.
        case proposeNewL14 = "propose-new-l14"
        /// L44: on +2/3 prevotes for nil, precommit the round's proposal instead of nil.
        case precommitValueL44 = "precommit-value-l44"
        /// L49: decide on the precommits of more than a third of the stake instead of +2/3.
        case decideOneThirdL49 = "decide-one-third-l49"
        /// L55: never skip to a round that f+1 validators are already in.
        case noRoundSkipL55 = "no-round-skip-l55"
        /// The timeouts of later rounds are as short as round 0's (no growth: no progress once the network is
        /// slower than them).
        case fixedTimeouts = "fixed-timeouts"
        /// The write-ahead rule broken: a validator signs without making its sign state durable, so after a crash it
        /// signs the same height, round and step again.
        case signStateUnpersisted = "sign-state-unpersisted"
        /// A validator's second, conflicting vote is dropped: it counts toward no value and yields no evidence.
        case equivocationUncounted = "equivocation-uncounted"
        /// HotStuff-2, Vote: vote1 for any valid proposal, whatever certificate it carries and this validator's lock.
        case hs2VoteIgnoresLock = "hs2-vote-ignores-lock"
        /// HotStuff-2, Commit: decide on the first certificate (+2/3 vote1) instead of the second (a one-phase commit).
        case hs2CommitOnFirstCertificate = "hs2-commit-on-first-certificate"
        /// HotStuff-2, Lock: send vote2 on a certificate without taking it as the lock.
        case hs2NoLock = "hs2-no-lock"
        /// HotStuff-2, Propose: the leader proposes a new block even when it holds a certificate (a lock it ignores).
        case hs2ProposeNewOverCertificate = "hs2-propose-new-over-certificate"
        /// HotStuff-2, pacemaker: a validator sends its timeout for a view once and never again (a lost one is lost).
        case hs2TimeoutOnce = "hs2-timeout-once"

        /// What the bug breaks when a checker catches it: safety (two decisions, a double sign) or liveness.
        public var breaks: String {
            switch self {
            case .quorumHalf, .lockL22, .lockL28, .precommitValueL44, .decideOneThirdL49, .signStateUnpersisted,
                 .hs2VoteIgnoresLock, .hs2CommitOnFirstCertificate, .hs2NoLock:
                return "safety"
            case .neverUnlockL28, .validValueL36, .proposeNewL14, .noRoundSkipL55, .fixedTimeouts, .equivocationUncounted,
                 .hs2ProposeNewOverCertificate, .hs2TimeoutOnce:
                return "liveness"
            }
        }

        /// The protocols whose rules the bug breaks (a bug in one protocol's rule does nothing to the other).
        public var protocols: [ProtocolName] {
            switch self {
            case .quorumHalf, .fixedTimeouts, .signStateUnpersisted, .equivocationUncounted: return [.tendermint, .hotstuff2]
            case .lockL22, .lockL28, .neverUnlockL28, .validValueL36, .proposeNewL14, .precommitValueL44,
                 .decideOneThirdL49, .noRoundSkipL55: return [.tendermint]
            case .hs2VoteIgnoresLock, .hs2CommitOnFirstCertificate, .hs2NoLock, .hs2ProposeNewOverCertificate,
                 .hs2TimeoutOnce: return [.hotstuff2]
            }
        }

        /// The catalog for one protocol.
        public static func catalog(_ name: ProtocolName) -> [PlantedBug] { allCases.filter { $0.protocols.contains(name) } }

        /// The names, for help texts and errors.
        public static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
    }

    public enum Step: UInt8, Sendable, Comparable, CustomStringConvertible {
        case propose = 0, prevote = 1, precommit = 2, commit = 3

        public static func < (lhs: Step, rhs: Step) -> Bool { lhs.rawValue < rhs.rawValue }

        public var description: String { ["propose", "prevote", "precommit", "commit"][Int(rawValue)] }
    }

    public enum VoteType: UInt8, Sendable, Equatable, CustomStringConvertible {
        case prevote = 1, precommit = 2

        public var kind: MessageKind { self == .prevote ? .prevote : .precommit }

        public init?(kind: MessageKind) {
            switch kind {
            case .prevote: self = .prevote
            case .precommit: self = .precommit
            default: return nil
            }
        }
        public var description: String { self == .prevote ? "prevote" : "precommit" }
    }

    /// The protocols Faultline runs (`[cluster] protocol`, `--protocol`).
    public enum ProtocolName: String, Sendable, Equatable, CaseIterable, Codable, CustomStringConvertible {
        case tendermint
        case hotstuff2

        public var description: String { rawValue }
        public static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }

        /// The protocol's number in a hello (`Hello.consensus`).
        public var wireCode: UInt8 { self == .tendermint ? 0 : 1 }

        public init?(wireCode: UInt8) {
            guard let name = Self.allCases.first(where: { $0.wireCode == wireCode }) else { return nil }
            self = name
        }
    }

    /// Tendermint's three round timeouts and the pause after a commit; HotStuff-2's view timer and its
    /// leader's wait for the locks of a view that ended without a certificate (and the same pause).
    public enum TimeoutKind: String, Sendable, Equatable, CustomStringConvertible {
        case propose, prevote, precommit, commit
        case view, leaderWait

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
        /// A validator's view (round) ended without a decision (HotStuff-2's pacemaker; a `Vote` with no value).
        case timeoutVote(Vote, from: Int, signature: Bytes64)
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
        /// Sign a vote like `broadcastVote`, but send it to validator `to` only (HotStuff-2: to the leader).
        case sendVote(VoteType, Vote, to: Int)
        /// Forward these votes' signatures (a quorum certificate) to every peer (`to` nil) or to one validator.
        case sendCertificate(VoteType, Vote, signatures: [CommitCertificate.Signature], to: Int?)
        /// Sign and send this validator's timeout for a view to every peer (no sign state: a timeout decides nothing).
        case broadcastTimeout(Vote)
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
        /// HotStuff-2: proposals this validator did not vote for (its lock is on another value from a later view).
        public var lockRefused = 0
        /// Input of a kind this protocol does not use (a HotStuff-2 timeout reaching a Tendermint node).
        public var otherProtocol = 0

        public init() {}
    }
}
