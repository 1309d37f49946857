import Ledger
import Sodium
import Wire

/// The protocol interface the replica core drives (`BFT` holds its inputs, effects and settings). A protocol
/// decides one block per height in numbered rounds (views) with two kinds of votes; the replica logic
/// (`ReplicaHost`) feeds it verified input and performs its effects, the same way in the node and the
/// simulator, whichever protocol it is. To add a protocol: a pure `Sendable` instance conforming to this,
/// a case in `BFT.ProtocolName`, and one line in `BFT.Core`.
public protocol ConsensusCore: Sendable {
    var height: UInt64 { get }
    var round: UInt32 { get }
    var step: BFT.Step { get }
    var settings: BFT.Settings { get }
    var metrics: BFT.Metrics { get }
    /// The last (height, round, step) this validator signed (the write-ahead sign state).
    var lastSigned: BFT.SignState? { get }
    /// Vote rounds whose outcome no further vote can change: the shell may skip verifying their votes.
    var settledVoteRounds: [(type: BFT.VoteType, round: UInt32)] { get }
    /// A block of this height +2/3 precommitted that this node has not decided, with who precommitted it.
    var decidedElsewhere: (blockId: Bytes32, round: UInt32, signers: [Int])? { get }
    /// A readable snapshot for operators (`GET /consensus`).
    var snapshot: [String: String] { get }
    /// Whether validator `validator`'s vote of `type` in `round` of this height is counted already.
    func hasVote(_ type: BFT.VoteType, round: UInt32, validator: Int) -> Bool
    /// Stake that has voted for `blockId` (or nil) in `round` (for status and tests).
    func stake(_ type: BFT.VoteType, round: UInt32, blockId: Bytes32?) -> UInt64
    mutating func process(_ input: BFT.Input) -> [BFT.Effect]
}

extension BFT {
    /// The protocol a node runs, chosen at its start. A struct of optionals rather than an existential: the
    /// running instance is changed in place (`tendermint!.process`), with no box to copy.
    public struct Core: Sendable {
        public private(set) var tendermint: Tendermint.Instance?
        public private(set) var hotStuff2: HotStuff2.Instance?

        public init(_ name: ProtocolName, validators: ValidatorSet, me: Int?, settings: Settings, height: UInt64,
                    round: UInt32 = 0, lastSigned: SignState? = nil) {
            switch name {
            case .tendermint:
                tendermint = Tendermint.Instance(validators: validators, me: me, settings: settings, height: height,
                                                 round: round, lastSigned: lastSigned)
            case .hotstuff2:
                hotStuff2 = HotStuff2.Instance(validators: validators, me: me, settings: settings, height: height,
                                               round: round, lastSigned: lastSigned)
            }
        }

        public var name: ProtocolName { tendermint != nil ? .tendermint : .hotstuff2 }
        /// The running instance, for reading.
        public var running: any ConsensusCore { tendermint ?? hotStuff2! }

        public mutating func process(_ input: Input) -> [Effect] {
            if tendermint != nil { return tendermint!.process(input) }
            return hotStuff2!.process(input)
        }

        public var height: UInt64 { tendermint?.height ?? hotStuff2!.height }
        public var round: UInt32 { tendermint?.round ?? hotStuff2!.round }
        public var step: Step { tendermint?.step ?? hotStuff2!.step }
        public var settings: Settings { tendermint?.settings ?? hotStuff2!.settings }
        public var metrics: Metrics { tendermint?.metrics ?? hotStuff2!.metrics }
        public var settledVoteRounds: [(type: VoteType, round: UInt32)] {
            tendermint?.settledVoteRounds ?? hotStuff2!.settledVoteRounds
        }
        public var decidedElsewhere: (blockId: Bytes32, round: UInt32, signers: [Int])? {
            tendermint != nil ? tendermint!.decidedElsewhere : hotStuff2!.decidedElsewhere
        }
        public var snapshot: [String: String] { running.snapshot }
        public func stake(_ type: VoteType, round: UInt32, blockId: Bytes32?) -> UInt64 {
            tendermint?.stake(type, round: round, blockId: blockId) ?? hotStuff2!.stake(type, round: round, blockId: blockId)
        }
        public func hasVote(_ type: VoteType, round: UInt32, validator: Int) -> Bool {
            tendermint?.hasVote(type, round: round, validator: validator)
                ?? hotStuff2!.hasVote(type, round: round, validator: validator)
        }
    }
}

/// What both protocols keep per height and take in the same way: proposals from the round's proposer, votes
/// counted per round (an equivocator's second vote kept as evidence), input for the next height buffered.
protocol RoundKeeping {
    var validators: ValidatorSet { get }
    var settings: BFT.Settings { get }
    var height: UInt64 { get }
    var round: UInt32 { get }
    var decided: Bool { get }
    var metrics: BFT.Metrics { get set }
    var rounds: BFT.Rounds { get set }
    var futureInputs: [BFT.Input] { get set }
}

extension RoundKeeping {
    /// +2/3 of the stake, or what a planted bug says instead (`Settings.planted`).
    func isQuorum(_ stake: UInt64) -> Bool { settings.isQuorum(stake, of: validators) }

    /// Keeps current-height input, buffers next-height input, ignores the rest.
    mutating func admit(height inputHeight: UInt64, input: BFT.Input) -> Bool {
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

    mutating func receiveProposal(_ proposal: Proposal, from: Int, valid: Bool) {
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
        rounds[proposal.round, default: BFT.RoundState()].proposal = proposal
        rounds[proposal.round, default: BFT.RoundState()].proposalValid = valid
    }

    /// Counts a vote; an equivocation becomes an evidence effect.
    mutating func receiveVote(_ type: BFT.VoteType, _ vote: Vote, from: Int, signature: Bytes64,
                              _ effects: inout [BFT.Effect]) {
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
            ? rounds[vote.round, default: BFT.RoundState()].prevotes.add(
                validator: from, stake: stake, blockId: vote.blockId, signature: signature, voters: voters)
            : rounds[vote.round, default: BFT.RoundState()].precommits.add(
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

    /// A proposal or a vote, taken the same way by every protocol (current height; next height buffered).
    mutating func intake(_ input: BFT.Input, _ effects: inout [BFT.Effect]) {
        switch input {
        case .proposal(let proposal, let from, let valid):
            if admit(height: proposal.height, input: input) { receiveProposal(proposal, from: from, valid: valid) }
        case .vote(let type, let vote, let from, let signature):
            if admit(height: vote.height, input: input) { receiveVote(type, vote, from: from, signature: signature, &effects) }
        case .start, .timeoutVote, .timeout, .committedElsewhere:
            preconditionFailure("intake takes proposals and votes, not \(input)")
        }
    }

    /// Replays the input buffered for the height just entered.
    mutating func replayFutureInputs(_ effects: inout [BFT.Effect], timeout: (inout Self, Vote, Int, Bytes64) -> Void) {
        let replay = futureInputs
        futureInputs.removeAll()
        for input in replay {
            switch input {
            case .proposal, .vote:
                intake(input, &effects)
            case .timeoutVote(let vote, let from, let signature):
                if admit(height: vote.height, input: input) { timeout(&self, vote, from, signature) }
            case .start, .timeout, .committedElsewhere:
                break
            }
        }
    }

    public func stake(_ type: BFT.VoteType, round: UInt32, blockId: Bytes32?) -> UInt64 {
        let state = rounds[round]
        return (type == .prevote ? state?.prevotes : state?.precommits)?.stake(for: blockId) ?? 0
    }

    public func hasVote(_ type: BFT.VoteType, round number: UInt32, validator: Int) -> Bool {
        guard let at = rounds.index(of: number) else { return false }
        return (type == .prevote ? rounds.states[at].prevotes : rounds.states[at].precommits).entries[validator] != nil
    }

    /// The rounds of the current height where one value (a block or nil) already has +2/3 of the
    /// votes of a type and no validator has signed two values there. More such votes change nothing:
    /// not the step, not the valid value or lock (they need that same quorum), not a re-proposal's proof
    /// (+2/3 for one value; a second value can reach +2/3 only if a third of the stake signs both). The
    /// shell uses it to skip verifying them.
    ///
    /// Once an equivocation shows in a slot, a second value *can* reach +2/3, and a late honest vote
    /// may be the one that completes it: with Twins, one side's locked nodes held round 0's
    /// proof-of-lock for their value while their unlocked peer had dropped the last vote it needed as
    /// "settled" (the other twins' value had +2/3 there), so it never prevoted the locked value and the
    /// side stalled for good.
    public var settledVoteRounds: [(type: BFT.VoteType, round: UInt32)] {
        var out: [(type: BFT.VoteType, round: UInt32)] = []
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

    /// The rounds' proposals and tallies, for `snapshot`.
    func roundLines(_ out: inout [String: String]) {
        func tally(_ set: BFT.VoteSet) -> String {
            set.stakeByValue.sorted { ($0.key?.short ?? "") < ($1.key?.short ?? "") }
                .map { "\($0.key?.short ?? "nil")=\($0.value)" }.joined(separator: " ")
        }
        for (number, state) in zip(rounds.numbers, rounds.states).suffix(6) {
            out["round.\(number)"] = "proposal \(state.proposal.map { "\($0.blockId.short)\(state.proposalValid ? "" : " INVALID")" } ?? "-")"
                + " | prevotes \(tally(state.prevotes)) | precommits \(tally(state.precommits))"
                + (state.timeouts.totalStake > 0 ? " | timeouts \(state.timeouts.totalStake)" : "")
        }
    }
}
