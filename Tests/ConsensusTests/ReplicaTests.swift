import Basics
@testable import Consensus
import Ledger
import Sodium
import Testing
import Wire

/// The replica core both engines run: what a stalled node re-sends and when, which blocks it asks for and
/// of whom, whom it relays to, which offences it reports, and how a byzantine node's sends are planned.
/// Messages are strings and peers small integers: the core never looks inside either.
@Suite struct ReplicaTests {
    typealias Core = Replica.Instance<String, Int>

    static func core(peers: Int = 3, statusMs: UInt64 = 100, fanout: Int = 0, nowMs: UInt64 = 1_000) -> Core {
        Core(settings: Replica.Settings(statusIntervalMs: statusMs, peerCount: peers, relayFanout: fanout), nowMs: nowMs)
    }

    /// A sent message as text: "* m" to everyone, "-v m" to all but validator v's nodes, "p m" to peer p.
    static func describe(_ sends: [Replica.Send<String, Int>]) -> [String] {
        sends.map { send in
            switch send {
            case .everyone(let message): return "* \(message)"
            case .everyoneBut(let message, let validator): return "-\(validator) \(message)"
            case .peer(let message, let peer): return "\(peer) \(message)"
            }
        }
    }

    @Test func aStallIsNoProgressForTheStallTimeOutsideThePauseAfterACommit() {
        var core = Self.core()
        core.startedHeight(5, nowMs: 1_000)
        core.signedVote("pv r0", .prevote, round: 0, nowMs: 1_000)
        // 99 ms: not yet (stall time max(status, 100, peers·20) = 100 ms).
        var sends = core.stallResends(nowMs: 1_099, step: .prevote, round: 0, me: 0, proposal: nil, peers: [1, 2, 3])
        #expect(sends.isEmpty)
        // Waiting out timeout_commit is no stall, however long.
        sends = core.stallResends(nowMs: 5_000, step: .commit, round: 0, me: 0, proposal: nil, peers: [1, 2, 3])
        #expect(sends.isEmpty)
        sends = core.stallResends(nowMs: 5_000, step: .prevote, round: 0, me: 0, proposal: nil, peers: [1, 2, 3])
        #expect(Self.describe(sends) == ["* pv r0"])
        // Not again within the stall time; a commit restarts the count.
        sends = core.stallResends(nowMs: 5_050, step: .prevote, round: 0, me: 0, proposal: nil, peers: [1, 2, 3])
        #expect(sends.isEmpty)
        core.committed(nowMs: 5_100)
        sends = core.stallResends(nowMs: 5_150, step: .prevote, round: 0, me: 0, proposal: nil, peers: [1, 2, 3])
        #expect(sends.isEmpty)
        // Large clusters wait longer: 60 peers, 2 · 60 · 10 ms.
        #expect(Self.core(peers: 60).settings.stallMs == 1_200)
    }

    @Test func aStalledNodeResendsItsOwnMessagesTheLockRoundsPrevoteTheRoundsBlockAndPeersVotesInTurn() {
        var core = Self.core()
        core.startedHeight(1, nowMs: 0)
        core.signedVote("own pv r0", .prevote, round: 0, nowMs: 0)
        for round in UInt32(1)...6 { core.signedVote("own pc r\(round)", .precommit, round: round, nowMs: 0) }
        core.heardVote("v2 pv r6", .prevote, Vote(height: 1, round: 6, blockId: nil), validator: 2, at: (1, 6))
        // The round-6 proposal re-proposes round 0's value; our round-0 prevote has left the six recent votes.
        let proposal = Core.HeldProposal(polRound: 0, messages: ["proposal r6", "block r6"], author: 3)
        let first = core.stallResends(nowMs: 1_000, step: .prevote, round: 6, me: 0, proposal: proposal, peers: [3, 1, 2])
        #expect(Self.describe(first) == (1...6).map { "* own pc r\($0)" } + [
            "* own pv r0", "-3 proposal r6", "-3 block r6", "1 v2 pv r6",
        ])
        // Peers' votes go to the next peer at the next stall; a block not yet complete is not passed on.
        let incomplete = Core.HeldProposal(polRound: -1, messages: nil, author: 3)
        let second = core.stallResends(nowMs: 2_000, step: .prevote, round: 6, me: 0, proposal: incomplete, peers: [1, 2, 3])
        #expect(Self.describe(second).last == "2 v2 pv r6")
        #expect(!Self.describe(second).contains { $0.contains("proposal") || $0.contains("own pv r0") })
        // Our own proposal is sent as ours (to everyone), never as a relayed one.
        core.proposed(["my proposal"])
        let mine = Core.HeldProposal(polRound: -1, messages: ["my proposal"], author: 0)
        let third = core.stallResends(nowMs: 3_000, step: .propose, round: 6, me: 0, proposal: mine, peers: [1, 2, 3])
        #expect(Self.describe(third).filter { $0.contains("my proposal") } == ["* my proposal"])
    }

    @Test func theLockRoundsPrevoteIsNotSentTwice() {
        var core = Self.core()
        core.startedHeight(1, nowMs: 0)
        core.signedVote("own pv r0", .prevote, round: 0, nowMs: 0)
        let proposal = Core.HeldProposal(polRound: 0, messages: nil, author: 3)
        let sends = core.stallResends(nowMs: 1_000, step: .prevote, round: 1, me: 0, proposal: proposal, peers: [1])
        #expect(Self.describe(sends) == ["* own pv r0"])
    }

    @Test func aNewHeightOrAStopForgetsOurMessages() {
        var core = Self.core()
        core.startedHeight(1, nowMs: 0)
        core.signedVote("pv", .prevote, round: 0, nowMs: 0)
        core.proposed(["proposal"])
        core.startedHeight(2, nowMs: 0)
        #expect(core.ownVotes.isEmpty && core.ownPrevotes.isEmpty && core.ownProposal.isEmpty)
        core.signedVote("pv 2", .prevote, round: 0, nowMs: 0)
        core.forgetOwnMessages()
        let sends = core.stallResends(nowMs: 10_000, step: .prevote, round: 0, me: 0, proposal: nil, peers: [])
        #expect(sends.isEmpty)
    }

    @Test func statusIsSkippedWhileOurVotesSayOurHeight() {
        var core = Self.core(peers: 20) // gossip interval max(100, 20 · 10) = 200 ms
        var due: [Bool] = []
        for nowMs: UInt64 in [1_000, 1_150] { due.append(core.statusDue(nowMs: nowMs)) }
        core.signedVote("pv", .prevote, round: 0, nowMs: 1_150)
        for nowMs: UInt64 in [1_250, 1_350] { due.append(core.statusDue(nowMs: nowMs)) }
        #expect(due == [true, false, false, true])
    }

    @Test func syncAsksEachMissingHeightInTheWindowOnceOfARecentHolderDrawnBySeed() {
        var core = Self.core()
        core.heardStatus(1, committed: 10, nowMs: 0)
        core.heardStatus(2, committed: 3, nowMs: 0)
        core.heard(3, committedAtLeast: 12, nowMs: 0)
        var rng = SplitMix64(seed: 7)
        let first = core.syncRequests(storeHeight: 2, nowMs: 100, rng: &rng)
        #expect(first.map(\.height) == [3, 4, 5, 6])
        #expect(first.allSatisfy { $0.height == 3 ? [1, 2, 3].contains($0.peer) : [1, 3].contains($0.peer) })
        // In flight: nothing new until the retry time has passed.
        let inFlight = core.syncRequests(storeHeight: 2, nowMs: 200, rng: &rng)
        #expect(inFlight.isEmpty)
        let later = core.syncRequests(storeHeight: 4, nowMs: 450, rng: &rng)
        #expect(later.map(\.height) == [5, 6, 7, 8])
        // The same seed draws the same peers.
        var again = Self.core()
        again.heardStatus(1, committed: 10, nowMs: 0)
        again.heardStatus(2, committed: 3, nowMs: 0)
        again.heard(3, committedAtLeast: 12, nowMs: 0)
        var same = SplitMix64(seed: 7)
        let drawnAgain = again.syncRequests(storeHeight: 2, nowMs: 100, rng: &same)
        #expect(drawnAgain.map(\.peer) == first.map(\.peer))
        // A peer silent for longer than the holder window is not asked.
        var stale = Self.core()
        stale.heardStatus(1, committed: 10, nowMs: 0)
        let fromSilent = stale.syncRequests(storeHeight: 2, nowMs: 6_000, rng: &rng)
        #expect(fromSilent.isEmpty)
        // Signers of a block decided elsewhere count as holding it.
        stale.decidedElsewhere(height: 3, signers: [2], nowMs: 6_000)
        let fromSigner = stale.syncRequests(storeHeight: 2, nowMs: 6_000, rng: &rng)
        #expect(fromSigner.map(\.peer) == [2])
    }

    @Test func aStatusSaysAPeersHeightAsItIsNowAndVotesOnlyRaiseIt() {
        var core = Self.core()
        let firstWord = core.heardStatus(1, committed: 9, nowMs: 0)
        let secondWord = core.heardStatus(1, committed: 4, nowMs: 10)
        #expect(firstWord && !secondWord)
        #expect(core.peerHeights[1]?.height == 4)
        core.heard(1, committedAtLeast: 2, nowMs: 20)
        #expect(core.peerHeights[1] == Replica.PeerHeight(height: 4, seenMs: 20))
        #expect(core.peersUp(nowMs: 2_019) == 1)
        #expect(core.peersUp(nowMs: 2_020) == 0)
    }

    @Test func relayDrawsFanoutDistinctPeersBySeed() {
        let core = Self.core(fanout: 2)
        var rng = SplitMix64(seed: 1)
        let targets = core.relayTargets([4, 5, 6, 7], rng: &rng)
        #expect(targets.count == 2 && Set(targets).count == 2 && Set(targets).isSubset(of: [4, 5, 6, 7]))
        #expect(core.relayTargets([4], rng: &rng) == [4])
        #expect(Self.core(fanout: 0).relayTargets([4, 5], rng: &rng).isEmpty)
    }

    @Test func eachOffenceIsReportedOnceAndNeverWhenTheChainHasIt() throws {
        var core = Self.core()
        let offence = DuplicateVoteEvidence(kind: .prevote, validator: SigningKey(label: "v1").publicKey,
                                            Vote(height: 3, round: 0, blockId: nil), .zero,
                                            Vote(height: 3, round: 0, blockId: Blake2b.hash([1])), .zero)
        let key = try #require(offence).key
        let answers = [core.shouldReport(key, onChain: true), core.shouldReport(key, onChain: false),
                       core.shouldReport(key, onChain: false)]
        #expect(answers == [false, true, false])
    }

    @Test func byzantinePlansTransformTheHonestSends() {
        var core = Self.core()
        let vote = Vote(height: 4, round: 1, blockId: nil)
        let honest = core.planOwnVote(vote)
        #expect(honest == .honest)
        core.setByzantine([.equivocate])
        guard case .equivocate(let other) = core.planOwnVote(vote) else {
            Issue.record("an equivocator plans a second vote")
            return
        }
        #expect(other != nil) // a nil vote's twin names a block
        let forABlock = core.planOwnVote(Vote(height: 4, round: 1, blockId: Blake2b.hash([2])))
        #expect(forABlock == .equivocate(otherValue: nil))
        // A withholding node signs but neither sends nor re-sends its votes.
        core.setByzantine([.withholdVotes])
        let withheld = core.planOwnVote(vote)
        #expect(withheld == .withhold)
        core.signedVote("withheld", .prevote, round: 0, nowMs: 0)
        let resent = core.stallResends(nowMs: 10_000, step: .prevote, round: 0, me: 0, proposal: nil, peers: [1])
        #expect(resent.isEmpty)
        core.setByzantine([.invalidProposal])
        let lie = core.claimedStateRoot(height: 9, ours: .zero)
        core.setByzantine([])
        let truth = core.claimedStateRoot(height: 9, ours: .zero)
        #expect(lie != .zero && truth == .zero)
        #expect(Replica.halves(["a", "b", "c"]) == (first: ["a", "c"], second: ["b"]))
        #expect(core.byzantine.sent == ["equivocating_vote": 2, "withheld_vote": 1, "invalid_proposal": 1])
    }

    @Test func aReplayingNodeSendsOnlyEarlierHeightsAndFloodsAreBounded() {
        var core = Self.core()
        core.setByzantine([.replay, .staleFlood, .otherChain])
        core.heardVote("h3", .prevote, Vote(height: 3, round: 0, blockId: nil), validator: 1, at: (3, 0))
        core.heardVote("h5", .prevote, Vote(height: 5, round: 0, blockId: nil), validator: 1, at: (5, 0))
        let plan = core.misbehaviour(height: 60)
        #expect(plan.replays == ["h3", "h5"])
        let early = core.misbehaviour(height: 4)
        #expect(early.replays == ["h3"])
        #expect(plan.floods.count == Core.Byzantine.messagesPerTick && plan.floods.allSatisfy { $0.height == 10 })
        #expect(plan.otherChain.count == Core.Byzantine.messagesPerTick)
        // Each tick's flood votes are new rounds (no receiver drops them as copies).
        let next = core.misbehaviour(height: 60)
        #expect(Set(next.floods.map(\.round)).isDisjoint(with: plan.floods.map(\.round)))
        var honest = Self.core()
        #expect(honest.misbehaviour(height: 60).floods.isEmpty)
    }
}

/// Votes-only mode, the rule both engines now take from the core.
@Suite struct VotesOnlyRuleTests {
    static func core(afterMs: UInt64) -> Replica.Instance<String, Int> {
        Replica.Instance(settings: Replica.Settings(statusIntervalMs: 100, peerCount: 3, relayFanout: 0,
                                                    votesOnlyAfterMs: afterMs), nowMs: 1_000)
    }

    @Test func onAfterTheThresholdWithoutProgressOffOnceBlocksFlowAndTwiceTheThresholdPassed() {
        var core = Self.core(afterMs: 600)
        // Step table: (ms, a commit at that time first?, the change expected).
        let steps: [(nowMs: UInt64, commit: Bool, change: Bool?)] = [
            (1_500, false, nil),     // 500 ms without progress: not yet
            (1_600, false, true),    // 600 ms: on
            (1_700, false, nil),     // stays on
            (1_800, true, nil),      // blocks flow again, but it has been on 200 ms < 2 × 600
            (2_810, true, false),    // progress 0 ms ago (< 300) and on for 1,210 ms ≥ 1,200: off
            (3_200, false, nil),     // 390 ms since the commit
            (3_410, false, true),    // 600 ms: on again
        ]
        for step in steps {
            if step.commit { core.committed(nowMs: step.nowMs) }
            let change = core.updateVotesOnly(nowMs: step.nowMs)
            #expect(change == step.change, "at \(step.nowMs) ms")
        }
        #expect(core.votesOnly)
    }

    @Test func neverWithoutAThreshold() {
        var core = Self.core(afterMs: 0)
        #expect(core.updateVotesOnly(nowMs: 1_000_000) == nil && !core.votesOnly)
    }
}
