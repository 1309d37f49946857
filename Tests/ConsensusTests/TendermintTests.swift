import Ledger
import Sodium
import Testing
import Wire
@testable import Consensus

typealias Effect = Tendermint.Effect

/// A validator set of four with equal stake unless given; validator `me` is driven by the test.
struct Harness {
    static let keys = (0..<4).map { SigningKey(label: "tm-\($0)") }
    var instance: Tendermint.Instance
    let valueA = Blake2b.hash(Array("A".utf8))
    let valueB = Blake2b.hash(Array("B".utf8))

    init(me: Int, stakes: [UInt64] = [1, 1, 1, 1], lastSigned: Tendermint.SignState? = nil, height: UInt64 = 1) {
        let members = stakes.indices.map {
            ValidatorSet.Member(name: "v\($0)", publicKey: Harness.keys[$0].publicKey, stake: stakes[$0])
        }
        instance = Tendermint.Instance(validators: ValidatorSet(members: members), me: me, settings: .init(),
                                       height: height, lastSigned: lastSigned)
    }

    var height: UInt64 { instance.height }

    func proposer(round: UInt32) -> Int { instance.validators.proposer(height: height, round: round) }

    /// The first validator that does not propose `round`.
    func nonProposer(round: UInt32) -> Int { (0..<4).first { $0 != proposer(round: round) }! }

    mutating func start() -> [Effect] { instance.process(.start) }

    mutating func propose(_ value: Bytes32, round: UInt32, polRound: Int32 = -1, valid: Bool = true) -> [Effect] {
        let proposal = Proposal(height: height, round: round, polRound: polRound, blockId: value, partsRoot: value,
                                partCount: 1, blockBytes: 1)
        return instance.process(.proposal(proposal, from: proposer(round: round), valid: valid))
    }

    mutating func votes(_ type: Tendermint.VoteType, _ value: Bytes32?, round: UInt32, from: [Int]) -> [Effect] {
        var effects: [Effect] = []
        for validator in from {
            let vote = Vote(height: height, round: round, blockId: value)
            effects += instance.process(.vote(type, vote, from: validator, signature: Bytes64.zero))
        }
        return effects
    }

    mutating func timeout(_ kind: Tendermint.TimeoutKind, round: UInt32) -> [Effect] {
        instance.process(.timeout(kind, height: height, round: round))
    }
}

func votesCast(_ effects: [Effect]) -> [(Tendermint.VoteType, Bytes32?)] {
    effects.compactMap {
        if case .broadcastVote(let type, let vote) = $0 { return (type, vote.blockId) }
        return nil
    }
}

/// Every signing effect must be preceded by its persist effect (write-ahead rule as data).
func persistPrecedesSigning(_ effects: [Effect]) -> Bool {
    for (index, effect) in effects.enumerated() {
        switch effect {
        case .broadcastVote, .propose:
            guard index > 0, case .persistSignState = effects[index - 1] else { return false }
        default: continue
        }
    }
    return true
}

@Suite struct TendermintTests {
    @Test func proposerHappyPathDecidesWithQuorumSignatures() {
        var h = Harness(me: 0)
        h = Harness(me: h.proposer(round: 0))
        let me = h.proposer(round: 0)
        let started = h.start()
        #expect(started.contains(.propose(height: 1, round: 0, blockId: nil, polRound: -1)))
        #expect(persistPrecedesSigning(started))
        // L22: a valid proposal with polRound -1 gets a prevote for it.
        let prevote = h.propose(h.valueA, round: 0)
        #expect(votesCast(prevote).map(\.1) == [h.valueA])
        // L36: +2/3 prevotes lock and precommit the value.
        let others = (0..<4).filter { $0 != me }
        let precommit = h.votes(.prevote, h.valueA, round: 0, from: [me] + others.prefix(2))
        #expect(votesCast(precommit).map(\.0) == [.precommit])
        #expect(h.instance.lockedValue == h.valueA && h.instance.lockedRound == 0)
        // L49: +2/3 precommits decide.
        let decided = h.votes(.precommit, h.valueA, round: 0, from: [me] + others.prefix(2))
        let decision = decided.first { if case .decide = $0 { return true } else { return false } }
        guard case .decide(let height, _, let blockId, let signatures) = decision else {
            Issue.record("no decision in \(decided)")
            return
        }
        #expect(height == 1 && blockId == h.valueA && signatures.count == 3)
        // Commit timeout moves to height 2, round 0.
        let next = h.timeout(.commit, round: 0)
        #expect(next.contains(.newHeight(2)))
        #expect(h.instance.height == 2 && h.instance.round == 0 && h.instance.lockedValue == nil)
    }

    /// The shell skips verifying votes of a slot where one value already has +2/3; a split (no value
    /// with +2/3, even with +2/3 of all votes in) is not settled, since more votes can still decide it.
    @Test func aSlotIsSettledOnlyByOneValueWithAQuorum() {
        var h = Harness(me: 0)
        _ = h.start()
        _ = h.propose(h.valueA, round: 0)
        _ = h.votes(.prevote, h.valueA, round: 0, from: [1, 2])
        _ = h.votes(.prevote, nil, round: 0, from: [3])
        #expect(h.instance.settledVoteRounds.isEmpty) // 2 for A and 1 nil: 3 of 4 votes in, but split
        var other = Harness(me: 0)
        _ = other.start()
        _ = other.propose(other.valueA, round: 0)
        _ = other.votes(.prevote, other.valueA, round: 0, from: [1, 2, 3])
        #expect(other.instance.settledVoteRounds.map(\.type) == [.prevote])
        #expect(other.instance.settledVoteRounds.map(\.round) == [0])
    }

    /// Once a validator has signed two values in a slot, another value can still reach +2/3 there, so
    /// the slot is not settled even though one value has +2/3: every later vote is counted.
    @Test func aSlotWithAnEquivocationIsNeverSettled() {
        var h = Harness(me: 0)
        _ = h.start()
        _ = h.propose(h.valueA, round: 0)
        _ = h.votes(.prevote, h.valueB, round: 0, from: [1, 2, 3])
        #expect(h.instance.settledVoteRounds.map(\.round) == [0]) // B has +2/3, nobody signed twice
        _ = h.votes(.prevote, h.valueA, round: 0, from: [1])
        #expect(h.instance.settledVoteRounds.isEmpty) // v1 signed A and B: A may still reach +2/3
        _ = h.votes(.prevote, h.valueA, round: 0, from: [2])
        #expect(h.instance.settledVoteRounds.isEmpty)
    }

    /// +2/3 precommits for a block this node never got (no proposal): it cannot decide, and the core
    /// names the block, its round and the signers so the shell can fetch it; nil precommits, or a
    /// decision made here, name nothing.
    @Test func aBlockPrecommittedByAQuorumButMissingHereIsNamedWithItsSigners() {
        var h = Harness(me: 0)
        h = Harness(me: h.nonProposer(round: 0))
        _ = h.start()
        let others = (0..<4).filter { $0 != h.instance.me }
        _ = h.votes(.precommit, h.valueA, round: 0, from: Array(others.prefix(2)))
        #expect(h.instance.decidedElsewhere == nil) // two of four: not yet a quorum
        _ = h.votes(.precommit, h.valueA, round: 0, from: [others[2]])
        let named = h.instance.decidedElsewhere
        #expect(named?.blockId == h.valueA && named?.round == 0 && named?.signers == others)
        var nilVotes = Harness(me: 0)
        _ = nilVotes.start()
        _ = nilVotes.votes(.precommit, nil, round: 0, from: [1, 2, 3])
        #expect(nilVotes.instance.decidedElsewhere == nil)
        // With the proposal in hand the same quorum decides here, and nothing is missing.
        var full = Harness(me: 0)
        full = Harness(me: full.nonProposer(round: 0))
        _ = full.start()
        _ = full.propose(full.valueA, round: 0)
        let fullOthers = (0..<4).filter { $0 != full.instance.me }
        _ = full.votes(.precommit, full.valueA, round: 0, from: fullOthers)
        #expect(full.instance.decidedElsewhere == nil)
    }

    @Test func silentProposerLeadsToNilVotesAndNextRound() {
        var h = Harness(me: 0)
        h = Harness(me: h.nonProposer(round: 0))
        _ = h.start()
        // L57: propose timeout -> prevote nil.
        #expect(votesCast(h.timeout(.propose, round: 0)).map(\.1) == [nil])
        // L44: +2/3 nil prevotes -> precommit nil.
        let afterPrevotes = h.votes(.prevote, nil, round: 0, from: [0, 1, 2, 3])
        #expect(votesCast(afterPrevotes).map(\.0) == [.precommit])
        #expect(votesCast(afterPrevotes).map(\.1) == [nil])
        // L47: +2/3 precommits of any kind schedule the precommit timeout; L65 moves to round 1.
        let afterPrecommits = h.votes(.precommit, nil, round: 0, from: [0, 1, 2])
        #expect(afterPrecommits.contains { if case .scheduleTimeout(.precommit, 1, 0, _) = $0 { true } else { false } })
        let next = h.timeout(.precommit, round: 0)
        #expect(next.contains(.roundStarted(height: 1, round: 1)))
        #expect(h.instance.round == 1)
    }

    @Test func timeoutsGrowWithTheRound() {
        var h = Harness(me: 0)
        h = Harness(me: h.nonProposer(round: 3))
        _ = h.start()
        let effects = h.votes(.prevote, nil, round: 3, from: [0, 1]) // f+1 in round 3: L55 skip
        let scheduled = effects.compactMap { effect -> UInt64? in
            if case .scheduleTimeout(.propose, _, 3, let ms) = effect { return ms }
            return nil
        }
        let settings = Tendermint.Settings()
        #expect(scheduled == [settings.timeouts.timeoutProposeMs + 3 * settings.timeouts.timeoutProposeDeltaMs])
    }

    @Test func invalidProposalGetsNilPrevote() {
        var h = Harness(me: 0)
        h = Harness(me: h.nonProposer(round: 0))
        _ = h.start()
        #expect(votesCast(h.propose(h.valueA, round: 0, valid: false)).map(\.1) == [nil])
    }

    @Test func proposalFromWrongProposerIsIgnored() {
        var h = Harness(me: 0)
        h = Harness(me: h.nonProposer(round: 0))
        _ = h.start()
        let proposal = Proposal(height: 1, round: 0, polRound: -1, blockId: h.valueA, partsRoot: h.valueA,
                                partCount: 1, blockBytes: 1)
        let effects = h.instance.process(.proposal(proposal, from: h.instance.me!, valid: true))
        #expect(votesCast(effects).isEmpty)
        #expect(h.instance.metrics.wrongProposer == 1)
    }

    /// Locked on A in round 0; a new value B in round 1 gets nil; A re-proposed with polRound 0 in
    /// round 2 gets a prevote (L28); B with a newer POL (round 3, polRound 1) unlocks (L28 lockedRound <= vr).
    @Test func lockingAcrossRounds() {
        var h = Harness(me: 0)
        let me = (0..<4).first { v in
            let probe = Harness(me: v)
            return (0..<3).allSatisfy { probe.proposer(round: $0) != v }
        } ?? 0
        h = Harness(me: me)
        let others = (0..<4).filter { $0 != me }
        _ = h.start()
        _ = h.propose(h.valueA, round: 0)
        let lock = h.votes(.prevote, h.valueA, round: 0, from: [me] + others.prefix(2))
        #expect(votesCast(lock).map(\.1) == [h.valueA])
        // Round 0 fails: the others precommit nil.
        _ = h.votes(.precommit, nil, round: 0, from: others)
        _ = h.timeout(.precommit, round: 0)
        #expect(h.instance.round == 1)
        // Round 1: B is proposed fresh; locked on A -> nil.
        #expect(votesCast(h.propose(h.valueB, round: 1)).map(\.1) == [nil])
        // Round 1: two others prevote B; with our nil that is +2/3 of any prevotes (L34), and the prevote
        // timeout makes us precommit nil (L61). The third B prevote then forms a POL for B at round 1, which
        // only updates the valid value (L36 with step = precommit), not the lock.
        _ = h.votes(.prevote, h.valueB, round: 1, from: Array(others.prefix(2)))
        #expect(votesCast(h.timeout(.prevote, round: 1)).map(\.1) == [nil])
        _ = h.votes(.prevote, h.valueB, round: 1, from: [others[2]])
        #expect(h.instance.lockedValue == h.valueA && h.instance.validValue == h.valueB)
        _ = h.votes(.precommit, nil, round: 1, from: others)
        _ = h.timeout(.precommit, round: 1)
        #expect(h.instance.round == 2)
        // Round 2: A re-proposed with polRound 0 (its POL): prevote A.
        #expect(votesCast(h.propose(h.valueA, round: 2, polRound: 0)).map(\.1) == [h.valueA])
        _ = h.votes(.precommit, nil, round: 2, from: others)
        _ = h.timeout(.precommit, round: 2)
        // Round 3 is ours to propose (`me` proposes none of rounds 0-2, so with four equal stakes it proposes 3):
        // it goes by. Round 4: B with polRound 1 > lockedRound 0: unlocks and prevotes B (L28).
        #expect(h.proposer(round: 3) == me && h.proposer(round: 4) != me)
        _ = h.timeout(.precommit, round: 3)
        #expect(h.instance.round == 4)
        #expect(votesCast(h.propose(h.valueB, round: 4, polRound: 1)).map(\.1) == [h.valueB])
    }

    /// The rule checks (one script per rule of Algorithm 1 that matters) hold on the real rules, and every
    /// planted bug of the catalog fails at least one of them, except the write-ahead bug, which lives in the
    /// shared replica host (the Twins-style schedules catch it with a crash: see `TwinsTests`).
    @Test(arguments: RuleChecks.all.indices) func ruleCheckHolds(index: Int) {
        let check = RuleChecks.all[index]
        #expect(check.failure() == nil, "\(check.rule) \(check.name)")
    }

    @Test(arguments: Tendermint.PlantedBug.catalog(.tendermint)) func plantedBugFailsARuleCheck(bug: Tendermint.PlantedBug) {
        let failures = RuleChecks.failures(planted: bug)
        if bug == .signStateUnpersisted {
            #expect(failures.isEmpty, "the core's write-ahead effects are unchanged by this bug")
        } else {
            #expect(!failures.isEmpty, "planted \(bug.rawValue) passes every rule check")
        }
    }

    @Test func decisionInAnEarlierRoundStillCommits() {
        var h = Harness(me: 0)
        h = Harness(me: h.nonProposer(round: 0))
        _ = h.start()
        _ = h.propose(h.valueA, round: 0)
        _ = h.votes(.prevote, nil, round: 1, from: [0, 1]) // skip to round 1 (L55)
        #expect(h.instance.round == 1)
        let effects = h.votes(.precommit, h.valueA, round: 0, from: [0, 1, 2])
        #expect(effects.contains { if case .decide(1, 0, _, _) = $0 { true } else { false } })
    }

    @Test func restartedValidatorNeverSignsAtOrBelowItsLastSignState() {
        var h = Harness(me: 0)
        let me = h.nonProposer(round: 0)
        h = Harness(me: me, lastSigned: .init(height: 1, round: 0, step: 1))
        _ = h.start()
        let effects = h.timeout(.propose, round: 0)
        #expect(votesCast(effects).isEmpty)
        #expect(h.instance.metrics.refusedToResign == 1)
        // It may still precommit in that round: step 2 is above the last signed state.
        let precommit = h.votes(.prevote, nil, round: 0, from: [0, 1, 2, 3])
        #expect(votesCast(precommit).map(\.0) == [.precommit])
    }

    @Test func nextHeightMessagesAreBufferedAndReplayed() {
        var h = Harness(me: 0)
        h = Harness(me: h.nonProposer(round: 0))
        _ = h.start()
        // Height 2 prevotes arrive early.
        for validator in 0..<3 {
            _ = h.instance.process(.vote(.prevote, Vote(height: 2, round: 0, blockId: nil), from: validator,
                                         signature: .zero))
        }
        #expect(h.instance.metrics.futureHeightBuffered == 3)
        _ = h.instance.process(.committedElsewhere(height: 1))
        #expect(h.instance.height == 2)
        #expect(h.instance.stake(.prevote, round: 0, blockId: nil) == 3)
    }

    /// Algorithm 1 counts distinct signers per value: an equivocator counts once for each value it
    /// signed, and once toward "+2/3 of any".
    @Test func conflictingVotesCountOncePerValueAndOnceInTotal() {
        var h = Harness(me: 0)
        _ = h.start()
        _ = h.votes(.prevote, h.valueA, round: 0, from: [1])
        _ = h.votes(.prevote, h.valueB, round: 0, from: [1])
        _ = h.votes(.prevote, h.valueA, round: 0, from: [1])
        _ = h.votes(.prevote, h.valueB, round: 0, from: [1])
        #expect(h.instance.metrics.conflictingVote == 1 && h.instance.metrics.duplicateVote == 2)
        #expect(h.instance.stake(.prevote, round: 0, blockId: h.valueA) == 1)
        #expect(h.instance.stake(.prevote, round: 0, blockId: h.valueB) == 1)
        #expect(h.instance.rounds[0]?.prevotes.totalStake == 1)
    }

    /// The halt byzantine-equivocation.toml found: validator 3 sent B to this node first and A to the
    /// others, who prevoted A with it. If its A vote were dropped here, this node would never see
    /// A's proof-of-lock and would refuse the re-proposal that the locked nodes insist on.
    @Test func anEquivocatorsSecondVoteCompletesAProofOfLock() {
        var h = Harness(me: 0)
        _ = h.start()
        _ = h.votes(.prevote, h.valueB, round: 0, from: [3])
        _ = h.votes(.prevote, h.valueA, round: 0, from: [1, 2, 3])
        #expect(h.instance.stake(.prevote, round: 0, blockId: h.valueA) == 3)
        #expect(h.instance.validValue == nil) // no proposal for A seen yet, so nothing to lock
        let effects = h.propose(h.valueA, round: 0)
        #expect(h.instance.validValue == h.valueA && h.instance.validRound == 0, "\(effects)")
        // A liar's further values are bounded.
        for index in 0..<10 {
            _ = h.votes(.prevote, Blake2b.hash(Array("c\(index)".utf8)), round: 0, from: [3])
        }
        #expect(h.instance.rounds[0]?.prevotes.conflicts[3]?.count == Tendermint.VoteSet.conflictsPerValidatorMax)
    }

    @Test(arguments: [
        ([UInt64(1), 1, 1, 3], [3], false),
        ([UInt64(1), 1, 1, 3], [3, 0], false),
        ([UInt64(1), 1, 1, 3], [3, 0, 1], true),
        ([UInt64(1), 1, 1, 1], [0, 1, 2], true),
        ([UInt64(1), 1, 1, 1], [0, 1], false),
    ])
    func quorumIsByStake(stakes: [UInt64], voters: [Int], expectDecide: Bool) {
        var h = Harness(me: 0, stakes: stakes)
        _ = h.start()
        _ = h.propose(h.valueA, round: 0)
        let effects = h.votes(.precommit, h.valueA, round: 0, from: voters)
        #expect(effects.contains { if case .decide = $0 { true } else { false } } == expectDecide)
    }

    @Test func staleAndFarFutureInputIsIgnored() {
        var h = Harness(me: 0, height: 5)
        _ = h.start()
        _ = h.instance.process(.vote(.prevote, Vote(height: 3, round: 0, blockId: nil), from: 1, signature: .zero))
        _ = h.instance.process(.vote(.prevote, Vote(height: 9, round: 0, blockId: nil), from: 1, signature: .zero))
        _ = h.instance.process(.vote(.prevote, Vote(height: 5, round: 500, blockId: nil), from: 1, signature: .zero))
        #expect(h.instance.metrics.staleHeight == 1)
        #expect(h.instance.metrics.futureHeightDropped == 1)
        #expect(h.instance.metrics.roundTooFarAhead == 1)
    }
}
