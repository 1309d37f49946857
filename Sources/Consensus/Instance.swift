import Ledger
import Sodium
import Wire

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
        var decided = false
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

        /// +2/3 of the stake, or what a planted bug says instead (`Settings.planted`).
        func isQuorum(_ stake: UInt64) -> Bool { settings.isQuorum(stake, of: validators) }

        /// Stake that has voted for `blockId` (or nil) in `round` (for status and tests).
        public func stake(_ type: VoteType, round: UInt32, blockId: Bytes32?) -> UInt64 {
            let state = rounds[round]
            return (type == .prevote ? state?.prevotes : state?.precommits)?.stake(for: blockId) ?? 0
        }

        public mutating func process(_ input: Input) -> [Effect] {
            var effects: [Effect] = []
            switch input {
            case .start:
                startRound(round, &effects)
            case .proposal(let proposal, let from, let valid):
                guard admit(height: proposal.height, input: input) else { break }
                receiveProposal(proposal, from: from, valid: valid)
            case .vote(let type, let vote, let from, let signature):
                guard admit(height: vote.height, input: input) else { break }
                receiveVote(type, vote, from: from, signature: signature, &effects)
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

        /// Keeps current-height input, buffers next-height input, ignores the rest.
        private mutating func admit(height inputHeight: UInt64, input: Input) -> Bool {
            if inputHeight == height { return true }
            if inputHeight == height + 1 {
                if futureInputs.count < settings.futureInputsMax {
                    futureInputs.append(input)
                    metrics.futureHeightBuffered += 1
                } else {
                    metrics.futureHeightDropped += 1
                }
            } else if inputHeight < height {
                metrics.staleHeight += 1
            } else {
                metrics.futureHeightDropped += 1
            }
            return false
        }

        private mutating func receiveProposal(_ proposal: Proposal, from: Int, valid: Bool) {
            guard proposal.round <= round + settings.roundsAheadMax else {
                metrics.roundTooFarAhead += 1
                return
            }
            guard from == validators.proposer(height: height, round: proposal.round) else {
                metrics.wrongProposer += 1
                return
            }
            if let at = rounds.index(of: proposal.round), rounds.states[at].proposal != nil {
                metrics.duplicateProposal += 1
                return
            }
            rounds[proposal.round, default: RoundState()].proposal = proposal
            rounds[proposal.round, default: RoundState()].proposalValid = valid
        }

        private mutating func receiveVote(_ type: VoteType, _ vote: Vote, from: Int, signature: Bytes64,
                                          _ effects: inout [Effect]) {
            guard from >= 0, from < validators.count else {
                metrics.unknownValidator += 1
                return
            }
            guard vote.round <= round + settings.roundsAheadMax else {
                metrics.roundTooFarAhead += 1
                return
            }
            let stake = validators.stake(of: from)
            if settings.planted == .equivocationUncounted, let at = rounds.index(of: vote.round),
               let first = (type == .prevote ? rounds.states[at].prevotes : rounds.states[at].precommits).entries[from],
               first.blockId != vote.blockId {
                metrics.conflictingVote += 1
                return
            }
            // In place: a copy of the round's state would copy its vote maps on every vote.
            let voters = validators.count
            let result = type == .prevote
                ? rounds[vote.round, default: RoundState()].prevotes.add(
                    validator: from, stake: stake, blockId: vote.blockId, signature: signature, voters: voters)
                : rounds[vote.round, default: RoundState()].precommits.add(
                    validator: from, stake: stake, blockId: vote.blockId, signature: signature, voters: voters)
            switch result {
            case .added: break
            case .duplicate: metrics.duplicateVote += 1
            case .conflicting(let existing):
                metrics.conflictingVote += 1
                let earlier = Vote(height: vote.height, round: vote.round, blockId: existing.blockId)
                if let evidence = DuplicateVoteEvidence(kind: type.kind, validator: validators.members[from].publicKey,
                                                        earlier, existing.signature, vote, signature) {
                    effects.append(.equivocation(evidence))
                }
            }
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
            let replay = futureInputs
            futureInputs.removeAll()
            for input in replay {
                switch input {
                case .proposal(let proposal, let from, let valid):
                    if admit(height: proposal.height, input: input) { receiveProposal(proposal, from: from, valid: valid) }
                case .vote(let type, let vote, let from, let signature):
                    if admit(height: vote.height, input: input) {
                        receiveVote(type, vote, from: from, signature: signature, &effects)
                    }
                case .start, .timeout, .committedElsewhere:
                    break
                }
            }
        }
    }
}

extension Tendermint.Instance {
    /// The rounds of the current height where one value (a block or nil) already has +2/3 of the
    /// votes of a type and no validator has signed two values there. More such votes change nothing:
    /// not the step (L34/L44 have fired), not the valid value (L36 needs that same quorum), not a
    /// re-proposal's proof (L28 asks for +2/3 for one value, and a second value can reach +2/3 only if
    /// a third of the stake signs both). The shell uses it to skip verifying them.
    ///
    /// Once an equivocation shows in a slot, a second value *can* reach +2/3, and a late honest vote
    /// may be the one that completes it: with Twins, one side's locked nodes held round 0's
    /// proof-of-lock for their value while their unlocked peer had dropped the last vote it needed as
    /// "settled" (the other twins' value had +2/3 there), so it never prevoted the locked value and the
    /// side stalled for good.
    public var settledVoteRounds: [(type: Tendermint.VoteType, round: UInt32)] {
        var out: [(type: Tendermint.VoteType, round: UInt32)] = []
        // Not `isQuorum` as a value: a method reference captures a copy of the whole instance.
        let settings = self.settings, validators = self.validators
        func quorum(_ stake: UInt64) -> Bool { settings.isQuorum(stake, of: validators) }
        for at in rounds.states.indices {
            if rounds.states[at].prevotes.conflicts.isEmpty, rounds.states[at].prevotes.quorumValue(quorum) != nil {
                out.append((.prevote, rounds.numbers[at]))
            }
            if rounds.states[at].precommits.conflicts.isEmpty, rounds.states[at].precommits.quorumValue(quorum) != nil {
                out.append((.precommit, rounds.numbers[at]))
            }
        }
        return out
    }

    /// A block of the current height that +2/3 precommitted in some round, with the validators who
    /// did: the height is decided elsewhere, and this node (which has not decided) lacks that block or
    /// found it invalid. The shell fetches it from those validators rather than waiting for rounds.
    public var decidedElsewhere: (blockId: Bytes32, round: UInt32, signers: [Int])? {
        guard !decided else { return nil }
        for (number, state) in zip(rounds.numbers, rounds.states) {
            if case .some(.some(let blockId)) = state.precommits.quorumValue(isQuorum) {
                let signers = state.precommits.signers(of: blockId).map(\.validator)
                return (blockId, number, signers)
            }
        }
        return nil
    }

    /// A readable snapshot of the current height for operators (`GET /consensus`).
    public var snapshot: [String: String] {
        func tally(_ set: Tendermint.VoteSet) -> String {
            set.stakeByValue.sorted { ($0.key?.short ?? "") < ($1.key?.short ?? "") }
                .map { "\($0.key?.short ?? "nil")=\($0.value)" }.joined(separator: " ")
        }
        var out: [String: String] = [
            "height": "\(height)", "round": "\(round)", "step": step.description,
            "locked": lockedValue.map { "\($0.short)@\(lockedRound)" } ?? "none",
            "valid": validValue.map { "\($0.short)@\(validRound)" } ?? "none",
            "lastSigned": lastSigned.map { "\($0.height)/\($0.round)/\($0.step)" } ?? "none",
            "futureInputs": "\(futureInputs.count)",
        ]
        for (number, state) in zip(rounds.numbers, rounds.states).suffix(6) {
            out["round.\(number)"] = "proposal \(state.proposal.map { "\($0.blockId.short)\(state.proposalValid ? "" : " INVALID")" } ?? "-")"
                + " | prevotes \(tally(state.prevotes)) | precommits \(tally(state.precommits))"
        }
        return out
    }
}
