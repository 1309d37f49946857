import Ledger
import Sodium
import Wire

extension HotStuff2.Instance {
    /// Applies every rule whose condition holds, until none does.
    mutating func evaluate(_ effects: inout [BFT.Effect]) {
        var changed = true
        var passes = 0
        while changed {
            passes += 1
            precondition(passes < 10_000, "HotStuff-2 rules did not settle at height \(height) view \(round)")
            changed = commitIfCertified(&effects) || forwardCertificates(&effects) || raiseHighCertificate()
                || synchronizeView(&effects) || proposeIfReady(&effects) || voteOnProposal(&effects)
                || lockAndVote(&effects)
        }
    }

    // HS2 Commit: a proposal with +2/3 vote2 (precommits) in its view is decided, in whichever view.
    private mutating func commitIfCertified(_ effects: inout [BFT.Effect]) -> Bool {
        guard step != .commit else { return false }
        for index in rounds.states.indices {
            let view = rounds.numbers[index]
            let oneRound = settings.planted == .hs2CommitOnFirstCertificate // the planted bug: decide on vote1
            guard let proposal = rounds.states[index].proposal, rounds.states[index].proposalValid,
                  isQuorum((oneRound ? rounds.states[index].prevotes : rounds.states[index].precommits)
                    .stake(for: proposal.blockId)) else { continue }
            decided = true
            step = .commit
            effects.append(.decide(height: height, round: view, blockId: proposal.blockId,
                                   signatures: (oneRound ? rounds.states[index].prevotes : rounds.states[index].precommits)
                                    .signatures(for: proposal.blockId)))
            effects.append(.scheduleTimeout(.commit, height: height, round: view,
                                            durationMs: settings.duration(.commit, round: view)))
            return true
        }
        return false
    }

    // HS2 Vote/Lock, the leader's part: +2/3 vote1 (or vote2) for a value in a view it leads becomes a
    // certificate, forwarded once to every validator.
    private mutating func forwardCertificates(_ effects: inout [BFT.Effect]) -> Bool {
        guard let me else { return false }
        let settings = self.settings, validators = self.validators
        func quorum(_ stake: UInt64) -> Bool { settings.isQuorum(stake, of: validators) }
        for index in rounds.states.indices where leader(round: rounds.numbers[index]) == me {
            let view = rounds.numbers[index]
            if !rounds.states[index].forwardedPrevotes,
               case .some(.some(let value)) = rounds.states[index].prevotes.quorumValue(quorum) {
                rounds[view, default: BFT.RoundState()].forwardedPrevotes = true
                effects.append(.sendCertificate(.prevote, Vote(height: height, round: view, blockId: value),
                                                signatures: rounds.states[index].prevotes.signatures(for: value), to: nil))
                return true
            }
            if !rounds.states[index].forwardedPrecommits,
               case .some(.some(let value)) = rounds.states[index].precommits.quorumValue(quorum) {
                rounds[view, default: BFT.RoundState()].forwardedPrecommits = true
                effects.append(.sendCertificate(.precommit, Vote(height: height, round: view, blockId: value),
                                                signatures: rounds.states[index].precommits.signatures(for: value),
                                                to: nil))
                return true
            }
        }
        return false
    }

    /// The latest certificate for a proposal this validator holds (a leader can re-propose only a block it has).
    private mutating func raiseHighCertificate() -> Bool {
        for index in rounds.states.indices.reversed() where Int32(rounds.numbers[index]) > highRound {
            guard let proposal = rounds.states[index].proposal, rounds.states[index].proposalValid,
                  isQuorum(rounds.states[index].prevotes.stake(for: proposal.blockId)) else { continue }
            highValue = proposal.blockId
            highRound = Int32(rounds.numbers[index])
            return true
        }
        return false
    }

    // HS2 pacemaker: +2/3 timeouts of a view (a timeout certificate) move to the next view; a certificate of a
    // later view, or timeouts of more than a third there, mean correct validators are in it: join them; more
    // than a third timed out of this view: time out too (so that +2/3 do).
    private mutating func synchronizeView(_ effects: inout [BFT.Effect]) -> Bool {
        guard step != .commit else { return false }
        for index in rounds.states.indices where rounds.numbers[index] >= round {
            let view = rounds.numbers[index]
            if isQuorum(rounds.states[index].timeouts.totalStake) {
                enterView(view + 1, &effects)
                return true
            }
            guard view > round else { continue }
            let certified = rounds.states[index].prevotes.quorumValue(isQuorum).map { $0 != nil } ?? false
            if certified || validators.isOneThirdPlus(rounds.states[index].timeouts.totalStake) {
                enterView(view, &effects)
                return true
            }
        }
        if !timedOut, let at = rounds.index(of: round), validators.isOneThirdPlus(rounds.states[at].timeouts.totalStake) {
            sendTimeout(&effects)
            return true
        }
        return false
    }

    // HS2 Propose: the leader proposes the value of its latest certificate (sent first, so that validators can
    // check it) or a new block; at once in view 0 and after a certified view, else after its wait.
    private mutating func proposeIfReady(_ effects: inout [BFT.Effect]) -> Bool {
        guard let me, me == leader(round: round), step == .propose else { return false }
        let state = BFT.SignState(height: height, round: round, step: 0)
        guard lastSigned.map({ state > $0 }) ?? true else { return false }
        let previous = round > 0 ? rounds.index(of: round - 1) : nil
        let everyoneTimedOut = previous.map { rounds.states[$0].timeouts.totalStake == validators.totalStake } ?? false
        guard round == 0 || highRound == Int32(round) - 1 || everyoneTimedOut || leaderWaitOver else { return false }
        if highRound >= 0, let value = highValue, let at = rounds.index(of: UInt32(highRound)) {
            effects.append(.sendCertificate(.prevote, Vote(height: height, round: UInt32(highRound), blockId: value),
                                            signatures: rounds.states[at].prevotes.signatures(for: value), to: nil))
        }
        lastSigned = state
        effects.append(.persistSignState(state))
        let fresh = settings.planted == .hs2ProposeNewOverCertificate
        effects.append(.propose(height: height, round: round, blockId: fresh ? nil : highValue,
                                polRound: fresh ? -1 : highRound))
        return true
    }

    // HS2 Vote (vote1): for the leader's proposal if its certificate is at least as recent as this validator's
    // lock (a new block: if it holds no lock, or its lock is that block). A re-proposal waits for its certificate.
    private mutating func voteOnProposal(_ effects: inout [BFT.Effect]) -> Bool {
        guard step == .propose, let at = rounds.index(of: round), let proposal = rounds.states[at].proposal else {
            return false
        }
        let value = proposal.blockId
        let accept: Bool
        if settings.planted == .hs2VoteIgnoresLock {
            accept = true // the planted bug
        } else if proposal.polRound < 0 {
            accept = lockedRound == -1 || lockedValue == value
        } else {
            let view = UInt32(proposal.polRound)
            guard view < round, let pol = rounds.index(of: view), isQuorum(rounds.states[pol].prevotes.stake(for: value))
            else { return false }
            accept = lockedRound <= proposal.polRound || lockedValue == value
        }
        step = .prevote
        if !accept { metrics.lockRefused += 1 }
        if accept, rounds.states[at].proposalValid { sign(.prevote, value, &effects) }
        return true
    }

    // HS2 Lock (and vote2): a certificate of this view for its proposal becomes the lock, and the vote2.
    private mutating func lockAndVote(_ effects: inout [BFT.Effect]) -> Bool {
        guard step <= .prevote, let at = rounds.index(of: round), let proposal = rounds.states[at].proposal,
              rounds.states[at].proposalValid, isQuorum(rounds.states[at].prevotes.stake(for: proposal.blockId))
        else { return false }
        if settings.planted != .hs2NoLock {
            lockedValue = proposal.blockId
            lockedRound = Int32(round)
        }
        step = .precommit
        sign(.precommit, proposal.blockId, &effects)
        return true
    }
}
