import Ledger
import Sodium
import Wire

extension Tendermint.Instance {
    /// Applies every rule of Algorithm 1 whose condition holds, until none does.
    mutating func evaluate(_ effects: inout [Tendermint.Effect]) {
        var changed = true
        var passes = 0
        while changed {
            passes += 1
            precondition(passes < 10_000, "consensus rules did not settle at height \(height) round \(round)")
            changed = decideIfPossible(&effects) || skipRoundIfBehind(&effects) || applyRoundRules(&effects)
        }
    }

    // L49: upon PROPOSAL(h, r', v, *) and 2f+1 PRECOMMIT(h, r', id(v)) while decision[h] = nil.
    private mutating func decideIfPossible(_ effects: inout [Tendermint.Effect]) -> Bool {
        guard step != .commit else { return false }
        for index in rounds.states.indices {
            let proposalRound = rounds.numbers[index]
            guard let proposal = rounds.states[index].proposal, rounds.states[index].proposalValid else { continue }
            let stake = rounds.states[index].precommits.stake(for: proposal.blockId)
            if settings.planted == .decideOneThirdL49 ? validators.isOneThirdPlus(stake) : isQuorum(stake) {
                markDecided()
                effects.append(.decide(height: height, round: proposalRound, blockId: proposal.blockId,
                                       signatures: rounds.states[index].precommits.signatures(for: proposal.blockId)))
                effects.append(.scheduleTimeout(.commit, height: height, round: proposalRound,
                                                durationMs: settings.duration(.commit, round: proposalRound)))
                return true
            }
        }
        return false
    }

    // L55: upon f+1 messages (h, round r' > r) from distinct validators: StartRound(r').
    private mutating func skipRoundIfBehind(_ effects: inout [Tendermint.Effect]) -> Bool {
        guard step != .commit, settings.planted != .noRoundSkipL55 else { return false }
        for index in rounds.states.indices where rounds.numbers[index] > round {
            let futureRound = rounds.numbers[index]
            var voters = Set(rounds.states[index].prevotes.voters)
            voters.formUnion(rounds.states[index].precommits.voters)
            var stake: UInt64 = 0
            for voter in voters { stake += validators.stake(of: voter) }
            if validators.isOneThirdPlus(stake) {
                startRound(futureRound, &effects)
                return true
            }
        }
        return false
    }

    private mutating func applyRoundRules(_ effects: inout [Tendermint.Effect]) -> Bool {
        // A round with no state satisfies no rule (no proposal, no stake). Its state is read in place
        // (`rounds.states[at]`, see `Tendermint.Rounds`).
        guard step != .commit, let at = rounds.index(of: round) else { return false }
        // Not `isQuorum` as a value: a method reference captures a copy of the whole instance (every
        // rule evaluation copied and released it: ~10% of the simulator's time).
        let settings = self.settings, validators = self.validators
        func quorum(_ stake: UInt64) -> Bool { settings.isQuorum(stake, of: validators) }
        if step == .propose, let proposal = rounds.states[at].proposal {
            let value = proposal.blockId
            if proposal.polRound == -1 { // L22
                let accept = rounds.states[at].proposalValid
                    && (lockedRound == -1 || lockedValue == value || settings.planted == .lockL22)
                sign(.prevote, accept ? value : nil, &effects)
                setStep(.prevote)
                return true
            }
            let pol = UInt32(proposal.polRound)
            if pol < round, quorum(prevoteStake(round: pol, for: value)) { // L28
                var accept = rounds.states[at].proposalValid && (lockedRound <= proposal.polRound || lockedValue == value)
                if settings.planted == .lockL28 { accept = rounds.states[at].proposalValid }
                if settings.planted == .neverUnlockL28 {
                    accept = rounds.states[at].proposalValid && (lockedRound == -1 || lockedValue == value)
                }
                sign(.prevote, accept ? value : nil, &effects)
                setStep(.prevote)
                return true
            }
        }
        if step == .prevote, quorum(rounds.states[at].prevotes.totalStake),
           !rounds.states[at].prevoteTimeoutScheduled { // L34
            updateRound(round) { $0.prevoteTimeoutScheduled = true }
            effects.append(.scheduleTimeout(.prevote, height: height, round: round,
                                            durationMs: settings.duration(.prevote, round: round)))
            return true
        }
        if step >= .prevote, let proposal = rounds.states[at].proposal, rounds.states[at].proposalValid,
           !rounds.states[at].lockedOrUpdatedValid, quorum(rounds.states[at].prevotes.stake(for: proposal.blockId)) { // L36
            updateRound(round) { $0.lockedOrUpdatedValid = true }
            if step == .prevote {
                setLock(proposal.blockId, round: Int32(round))
                sign(.precommit, proposal.blockId, &effects)
                setStep(.precommit)
            }
            if settings.planted != .validValueL36 { setValid(proposal.blockId, round: Int32(round)) }
            return true
        }
        if step == .prevote, quorum(rounds.states[at].prevotes.stake(for: nil)) { // L44
            let planted = settings.planted == .precommitValueL44 && rounds.states[at].proposalValid
                ? rounds.states[at].proposal?.blockId : nil
            sign(.precommit, planted, &effects)
            setStep(.precommit)
            return true
        }
        if quorum(rounds.states[at].precommits.totalStake), !rounds.states[at].precommitTimeoutScheduled { // L47
            updateRound(round) { $0.precommitTimeoutScheduled = true }
            effects.append(.scheduleTimeout(.precommit, height: height, round: round,
                                            durationMs: settings.duration(.precommit, round: round)))
            return true
        }
        return false
    }
}

extension Tendermint.Instance {
    fileprivate func prevoteStake(round number: UInt32, for value: Bytes32?) -> UInt64 {
        guard let at = rounds.index(of: number) else { return 0 }
        return rounds.states[at].prevotes.stake(for: value)
    }

    fileprivate mutating func updateRound(_ number: UInt32, _ change: (inout Tendermint.RoundState) -> Void) {
        change(&rounds[number, default: Tendermint.RoundState()])
    }

    fileprivate mutating func markDecided() {
        decided = true
        step = .commit
    }

    fileprivate mutating func setStep(_ newStep: Tendermint.Step) { step = newStep }

    fileprivate mutating func setLock(_ value: Bytes32, round lockRound: Int32) {
        lockedValue = value
        lockedRound = lockRound
    }

    fileprivate mutating func setValid(_ value: Bytes32, round valueRound: Int32) {
        validValue = value
        validRound = valueRound
    }
}
