import Ledger
import Sodium
import Wire

/// The Tendermint consensus algorithm (Buchman, Kwon, Milosevic, "The latest gossip on BFT
/// consensus", 2018, Algorithm 1) as a pure state machine: inputs in, effects out. Line tags `// L22`
/// refer to that algorithm. One implementation of the protocol interface (`BFT`, `ConsensusCore`).
public enum Tendermint {
    public typealias Settings = BFT.Settings
    public typealias PlantedBug = BFT.PlantedBug
    public typealias Step = BFT.Step
    public typealias VoteType = BFT.VoteType
    public typealias TimeoutKind = BFT.TimeoutKind
    public typealias SignState = BFT.SignState
    public typealias Input = BFT.Input
    public typealias Effect = BFT.Effect
    public typealias Metrics = BFT.Metrics
    public typealias HeldVotes = BFT.HeldVotes
    typealias VoteSet = BFT.VoteSet
    typealias RoundState = BFT.RoundState
    typealias Rounds = BFT.Rounds
}

extension Tendermint {
    /// One validator's (or an observer's, when `me` is nil) consensus state for the current height.
    public struct Instance: Sendable {
        public let validators: ValidatorSet
        public let me: Int?
        public let settings: Settings
        public internal(set) var height: UInt64
        public internal(set) var round: UInt32
        public internal(set) var step: Step = .propose
        public internal(set) var lockedValue: Bytes32?
        public internal(set) var lockedRound: Int32 = -1
        public internal(set) var validValue: Bytes32?
        public internal(set) var validRound: Int32 = -1
        public internal(set) var lastSigned: SignState?
        public internal(set) var metrics = Metrics()
        var rounds = Rounds()
        public internal(set) var decided = false
        var futureInputs: [Input] = []

        /// `lastSigned` comes from the node's durable sign state so a restart never signs twice.
        public init(validators: ValidatorSet, me: Int?, settings: Settings, height: UInt64,
                    round: UInt32 = 0, lastSigned: SignState? = nil) {
            precondition(height >= 1, "consensus starts at height 1, got \(height)")
            self.validators = validators
            self.me = me
            self.settings = settings
            self.height = height
            self.round = round
            self.lastSigned = lastSigned
        }

        public func isProposer(round: UInt32) -> Bool { me == validators.proposer(height: height, round: round) }

        public mutating func process(_ input: Input) -> [Effect] {
            var effects: [Effect] = []
            switch input {
            case .start:
                startRound(round, &effects)
            case .proposal, .vote:
                intake(input, &effects)
            case .timeoutVote:
                metrics.otherProtocol += 1
            case .timeout(let kind, let timeoutHeight, let timeoutRound):
                onTimeout(kind, height: timeoutHeight, round: timeoutRound, &effects)
            case .committedElsewhere(let committed):
                if committed >= height {
                    enterHeight(committed + 1, &effects)
                }
            }
            evaluate(&effects)
            return effects
        }

        // L11
        mutating func startRound(_ newRound: UInt32, _ effects: inout [Effect]) {
            round = newRound
            step = .propose
            effects.append(.roundStarted(height: height, round: round))
            if isProposer(round: round) {
                // L14-L19: propose the valid value if there is one, else a new block.
                let state = SignState(height: height, round: round, step: 0)
                if lastSigned.map({ state > $0 }) ?? true {
                    lastSigned = state
                    effects.append(.persistSignState(state))
                    let fresh = settings.planted == .proposeNewL14
                    effects.append(.propose(height: height, round: round, blockId: fresh ? nil : validValue,
                                            polRound: fresh ? -1 : validRound))
                } else {
                    metrics.refusedToResign += 1
                }
            }
            // L21: schedule OnTimeoutPropose (also for the proposer, so a failed build cannot stall us).
            effects.append(.scheduleTimeout(.propose, height: height, round: round,
                                            durationMs: settings.duration(.propose, round: round)))
        }

        mutating func sign(_ type: VoteType, _ blockId: Bytes32?, _ effects: inout [Effect]) {
            let state = SignState(height: height, round: round, step: type == .prevote ? 1 : 2)
            guard lastSigned.map({ state > $0 }) ?? true else {
                metrics.refusedToResign += 1
                return
            }
            guard me != nil else { return }
            lastSigned = state
            effects.append(.persistSignState(state))
            effects.append(.broadcastVote(type, Vote(height: height, round: round, blockId: blockId)))
        }

        private mutating func onTimeout(_ kind: TimeoutKind, height timeoutHeight: UInt64, round timeoutRound: UInt32,
                                        _ effects: inout [Effect]) {
            guard timeoutHeight == height else { return }
            switch kind {
            case .propose: // L57
                if timeoutRound == round && step == .propose {
                    sign(.prevote, nil, &effects)
                    step = .prevote
                }
            case .prevote: // L61
                if timeoutRound == round && step == .prevote {
                    sign(.precommit, nil, &effects)
                    step = .precommit
                }
            case .precommit: // L65
                if timeoutRound == round && step != .commit {
                    startRound(round + 1, &effects)
                }
            case .commit:
                if step == .commit {
                    enterHeight(height + 1, &effects)
                }
            case .view, .leaderWait:
                metrics.otherProtocol += 1
            }
        }

        private mutating func enterHeight(_ newHeight: UInt64, _ effects: inout [Effect]) {
            height = newHeight
            round = 0
            step = .propose
            lockedValue = nil
            lockedRound = -1
            validValue = nil
            validRound = -1
            decided = false
            rounds.removeAll()
            effects.append(.newHeight(height))
            startRound(0, &effects)
            replayFutureInputs(&effects) { core, _, _, _ in core.metrics.otherProtocol += 1 }
        }
    }
}

extension Tendermint.Instance: ConsensusCore, RoundKeeping {
    /// A readable snapshot of the current height for operators (`GET /consensus`).
    public var snapshot: [String: String] {
        var out: [String: String] = [
            "height": "\(height)", "round": "\(round)", "step": step.description,
            "locked": lockedValue.map { "\($0.short)@\(lockedRound)" } ?? "none",
            "valid": validValue.map { "\($0.short)@\(validRound)" } ?? "none",
            "lastSigned": lastSigned.map { "\($0.height)/\($0.round)/\($0.step)" } ?? "none",
            "futureInputs": "\(futureInputs.count)",
        ]
        roundLines(&out)
        return out
    }
}
