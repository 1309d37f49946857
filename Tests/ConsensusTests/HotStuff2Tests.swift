import Ledger
import Sodium
import Testing
import Wire
@testable import Consensus

/// Four validators with equal stake (f = 1); validator `me` runs HotStuff-2 and the test plays the others.
struct HotStuffHarness {
    var instance: HotStuff2.Instance
    let valueA = Blake2b.hash(Array("A".utf8))
    let valueB = Blake2b.hash(Array("B".utf8))

    init(me: Int?) {
        let members = (0..<4).map {
            ValidatorSet.Member(name: "v\($0)", publicKey: Harness.keys[$0].publicKey, stake: 1)
        }
        instance = HotStuff2.Instance(validators: ValidatorSet(members: members), me: me, settings: .init(), height: 1)
    }

    /// A harness whose validator leads view `round` of height 1 (or, `leads` false, does not).
    static func validator(leading round: UInt32, _ leads: Bool = true) -> HotStuffHarness {
        let probe = HotStuffHarness(me: nil)
        let leader = probe.instance.leader(round: round)
        return HotStuffHarness(me: leads ? leader : (0..<4).first { $0 != leader }!)
    }

    var me: Int { instance.me! }
    func leader(_ round: UInt32) -> Int { instance.leader(round: round) }
    func others(_ round: UInt32, count: Int) -> [Int] { Array((0..<4).filter { $0 != me }.prefix(count)) }

    mutating func start() -> [BFT.Effect] { instance.process(.start) }

    mutating func propose(_ value: Bytes32, round: UInt32, polRound: Int32 = -1, valid: Bool = true) -> [BFT.Effect] {
        let proposal = Proposal(height: 1, round: round, polRound: polRound, blockId: value, partsRoot: value,
                                partCount: 1, blockBytes: 1)
        return instance.process(.proposal(proposal, from: leader(round), valid: valid))
    }

    mutating func votes(_ type: BFT.VoteType, _ value: Bytes32?, round: UInt32, from: [Int]) -> [BFT.Effect] {
        from.flatMap { instance.process(.vote(type, Vote(height: 1, round: round, blockId: value), from: $0, signature: .zero)) }
    }

    mutating func timeouts(round: UInt32, from: [Int]) -> [BFT.Effect] {
        from.flatMap { instance.process(.timeoutVote(Vote(height: 1, round: round, blockId: nil), from: $0, signature: .zero)) }
    }

    mutating func timer(_ kind: BFT.TimeoutKind, round: UInt32) -> [BFT.Effect] {
        instance.process(.timeout(kind, height: 1, round: round))
    }

    /// Feeds the validator's own signed messages back, as its shell does.
    mutating func feedBack(_ effects: [BFT.Effect]) -> [BFT.Effect] {
        var out: [BFT.Effect] = []
        for effect in effects {
            switch effect {
            case .sendVote(let type, let vote, _):
                out += instance.process(.vote(type, vote, from: me, signature: .zero))
            case .broadcastTimeout(let vote):
                out += instance.process(.timeoutVote(vote, from: me, signature: .zero))
            default: continue
            }
        }
        return out
    }
}

/// The votes an effect list signs, with where they go.
func hotStuffVotes(_ effects: [BFT.Effect]) -> [(BFT.VoteType, Bytes32?, to: Int)] {
    effects.compactMap { if case .sendVote(let type, let vote, let to) = $0 { (type, vote.blockId, to) } else { nil } }
}

func certificates(_ effects: [BFT.Effect]) -> [(BFT.VoteType, round: UInt32, signers: Int, to: Int?)] {
    effects.compactMap {
        if case .sendCertificate(let type, let vote, let signatures, let to) = $0 { (type, vote.round, signatures.count, to) }
        else { nil }
    }
}

@Suite struct HotStuff2Tests {
    @Test func theLeaderProposesAtOnceCollectsVotesForwardsBothCertificatesAndDecides() {
        var h = HotStuffHarness.validator(leading: 0)
        let started = h.start()
        #expect(started.contains(.propose(height: 1, round: 0, blockId: nil, polRound: -1)))
        #expect(persistPrecedesSigning(started))
        // Its own proposal comes back: vote1 to itself (the leader), nothing broadcast.
        let voted = h.propose(h.valueA, round: 0)
        #expect(hotStuffVotes(voted).map(\.0) == [.prevote] && hotStuffVotes(voted).map(\.to) == [h.me])
        #expect(!voted.contains { if case .broadcastVote = $0 { true } else { false } })
        _ = h.feedBack(voted)
        // Two more vote1: a certificate, forwarded to everyone; the leader locks and sends its vote2.
        let certified = h.votes(.prevote, h.valueA, round: 0, from: h.others(0, count: 2))
        #expect(certificates(certified).map(\.0) == [.prevote])
        #expect(certificates(certified).first?.signers == 3 && certificates(certified).first?.to == nil)
        #expect(hotStuffVotes(certified).map(\.0) == [.precommit])
        #expect(h.instance.lockedValue == h.valueA && h.instance.lockedRound == 0)
        _ = h.feedBack(certified)
        let decided = h.votes(.precommit, h.valueA, round: 0, from: h.others(0, count: 2))
        #expect(certificates(decided).map(\.0) == [.precommit])
        let decisions = decided.compactMap { if case .decide(_, _, let id, let signatures) = $0 { (id, signatures.count) } else { nil } }
        #expect(decisions.count == 1 && decisions.first?.0 == h.valueA && decisions.first?.1 == 3)
        #expect(h.instance.step == .commit)
    }

    @Test func aValidatorVotesToTheLeaderOnlyAndDecidesOnTheForwardedCertificates() {
        var h = HotStuffHarness.validator(leading: 0, false)
        let started = h.start()
        #expect(!started.contains { if case .propose = $0 { true } else { false } })
        let voted = h.propose(h.valueA, round: 0)
        #expect(hotStuffVotes(voted).map(\.to) == [h.leader(0)])
        _ = h.feedBack(voted)
        // The leader's certificate arrives as the other validators' votes (the shell checks each signature).
        let others = (0..<4).filter { $0 != h.me }
        let locked = h.votes(.prevote, h.valueA, round: 0, from: Array(others.prefix(2)))
        #expect(hotStuffVotes(locked).map(\.0) == [.precommit] && hotStuffVotes(locked).map(\.to) == [h.leader(0)])
        #expect(certificates(locked).isEmpty, "only the leader forwards certificates")
        _ = h.feedBack(locked)
        let decided = h.votes(.precommit, h.valueA, round: 0, from: Array(others.prefix(2)))
        #expect(decided.contains { if case .decide = $0 { true } else { false } })
        // An invalid proposal gets no vote at all (HotStuff has no nil vote: the view times out instead).
        var other = HotStuffHarness.validator(leading: 0, false)
        _ = other.start()
        #expect(hotStuffVotes(other.propose(other.valueB, round: 0, valid: false)).isEmpty)
    }

    @Test func theViewTimerSendsATimeoutPlusTheHighestCertificateAndATimeoutCertificateMovesOn() {
        var h = HotStuffHarness.validator(leading: 1, false)
        _ = h.start()
        // View 0: a certificate for A is seen (this validator locks), then no decision.
        _ = h.feedBack(h.propose(h.valueA, round: 0))
        _ = h.feedBack(h.votes(.prevote, h.valueA, round: 0, from: (0..<4).filter { $0 != h.me }))
        let expired = h.timer(.view, round: 0)
        #expect(expired.contains(.broadcastTimeout(Vote(height: 1, round: 0, blockId: nil))))
        #expect(certificates(expired).map(\.to) == [h.leader(1)], "its highest certificate goes to the next leader")
        #expect(expired.contains { if case .scheduleTimeout(.view, _, 0, _) = $0 { true } else { false } }, "re-armed")
        _ = h.feedBack(expired)
        #expect(h.instance.round == 0)
        // One more timeout is not +2/3; a second is: view 1 begins.
        let others = (0..<4).filter { $0 != h.me }
        _ = h.timeouts(round: 0, from: [others[0]])
        #expect(h.instance.round == 0)
        let moved = h.timeouts(round: 0, from: [others[1]])
        #expect(h.instance.round == 1)
        #expect(moved.contains(.roundStarted(height: 1, round: 1)))
    }

    @Test func moreThanAThirdTimingOutMakesALateValidatorTimeOutToo() {
        var h = HotStuffHarness.validator(leading: 0, false)
        _ = h.start()
        let others = (0..<4).filter { $0 != h.me }
        #expect(h.timeouts(round: 0, from: [others[0]]).isEmpty)
        let joined = h.timeouts(round: 0, from: [others[1]])
        #expect(joined.contains(.broadcastTimeout(Vote(height: 1, round: 0, blockId: nil))))
        // And timeouts of a later view from more than a third take it there.
        _ = h.feedBack(joined)
        _ = h.timeouts(round: 0, from: [others[2]])
        #expect(h.instance.round == 1)
        _ = h.timeouts(round: 3, from: [others[0], others[1]])
        #expect(h.instance.round == 3)
    }

    @Test func aLockedValidatorRefusesANewBlockButVotesForANewerCertificate() {
        var h = HotStuffHarness.validator(leading: 1, false)
        _ = h.start()
        let others = (0..<4).filter { $0 != h.me }
        _ = h.feedBack(h.propose(h.valueA, round: 0))
        _ = h.feedBack(h.votes(.prevote, h.valueA, round: 0, from: others)) // locked on A in view 0
        _ = h.feedBack(h.timeouts(round: 0, from: others))
        #expect(h.instance.round == 1 && h.instance.lockedValue == h.valueA)
        // View 1: a new block B without a certificate: no vote (the lock is on A).
        #expect(hotStuffVotes(h.propose(h.valueB, round: 1)).isEmpty)
        #expect(h.instance.metrics.lockRefused == 1)
        _ = h.timeouts(round: 1, from: others)
        #expect(h.instance.round == 2)
        // View 2: B re-proposed with a certificate from view 1, newer than the lock: the certificate first.
        #expect(hotStuffVotes(h.propose(h.valueB, round: 2, polRound: 1)).isEmpty, "waits for the certificate")
        let voted = h.votes(.prevote, h.valueB, round: 1, from: others)
        #expect(hotStuffVotes(voted).map(\.1) == [h.valueB])
    }

    @Test func aNewLeaderWaitsUnlessItHoldsACertificateOfTheViewBefore() {
        // Without one: it proposes only once its wait is over (or every validator's timeout reached it).
        var h = HotStuffHarness.validator(leading: 1)
        _ = h.start()
        let others = (0..<4).filter { $0 != h.me }
        _ = h.feedBack(h.timer(.view, round: 0))
        let entered = h.timeouts(round: 0, from: Array(others.prefix(2)))
        #expect(h.instance.round == 1)
        #expect(entered.contains { if case .scheduleTimeout(.leaderWait, _, 1, _) = $0 { true } else { false } })
        #expect(!entered.contains { if case .propose = $0 { true } else { false } })
        let waited = h.timer(.leaderWait, round: 1)
        #expect(waited.contains(.propose(height: 1, round: 1, blockId: nil, polRound: -1)))
        #expect(persistPrecedesSigning(waited))
        // All four timeouts: no need to wait.
        var all = HotStuffHarness.validator(leading: 1)
        _ = all.start()
        _ = all.feedBack(all.timer(.view, round: 0))
        let everyone = all.timeouts(round: 0, from: others)
        #expect(everyone.contains { if case .propose(_, 1, _, _) = $0 { true } else { false } })
        // With a certificate of view 0 for A: at once, re-proposing A with the certificate sent before it.
        var certified = HotStuffHarness.validator(leading: 1)
        _ = certified.start()
        _ = certified.feedBack(certified.propose(certified.valueA, round: 0))
        _ = certified.feedBack(certified.votes(.prevote, certified.valueA, round: 0, from: others))
        _ = certified.feedBack(certified.timer(.view, round: 0))
        let proposed = certified.timeouts(round: 0, from: Array(others.prefix(2)))
        let at = proposed.firstIndex(of: .propose(height: 1, round: 1, blockId: certified.valueA, polRound: 0))
        #expect(at != nil)
        let certificateAt = proposed.firstIndex { if case .sendCertificate(.prevote, _, _, nil) = $0 { true } else { false } }
        #expect(certificateAt != nil && certificateAt! < at!)
    }

    @Test func theCoreWrapperRunsTheChosenProtocol() {
        let members = (0..<4).map { ValidatorSet.Member(name: "v\($0)", publicKey: Harness.keys[$0].publicKey, stake: 1) }
        for name in BFT.ProtocolName.allCases {
            var core = BFT.Core(name, validators: ValidatorSet(members: members), me: 0, settings: .init(), height: 1)
            #expect(core.name == name)
            let effects = core.process(.start)
            let scheduled = effects.compactMap { if case .scheduleTimeout(let kind, _, _, _) = $0 { kind } else { nil } }
            #expect(scheduled == [name == .tendermint ? .propose : .view])
        }
    }

    /// HotStuff-2's rule checks hold on the real rules, and every planted bug of its catalog fails one, except the
    /// write-ahead bug (in the shared replica host: the Twins-style schedules catch it).
    @Test(arguments: HotStuff2Checks.all.indices) func ruleCheckHolds(index: Int) {
        let check = HotStuff2Checks.all[index]
        #expect(check.failure() == nil, "\(check.rule) \(check.name)")
    }

    @Test(arguments: BFT.PlantedBug.catalog(.hotstuff2)) func plantedBugFailsARuleCheck(bug: BFT.PlantedBug) {
        let failures = HotStuff2Checks.failures(planted: bug)
        if bug == .signStateUnpersisted {
            #expect(failures.isEmpty, "the core's write-ahead effects are unchanged by this bug")
        } else {
            #expect(!failures.isEmpty, "planted \(bug.rawValue) passes every HotStuff-2 rule check")
        }
    }
}
