import Basics
import Sodium
import Testing
import Wire
@testable import Transport

/// The receiving edge's admission rules, as steps: (what arrives, what the edge decides).
@Suite struct AdmissionTests {
    static let member = SigningKey(label: "admission/member").publicKey
    static let stranger = SigningKey(label: "admission/stranger").publicKey

    struct Step: CustomStringConvertible {
        var description: String
        var kind: MessageKind
        var sender: PublicKey? = nil
        var fromPeer = false
        var votesOnly = false
        var nowMs: UInt64 = 1_000
        var expected: Admission.Decision
    }

    func run(_ admission: Admission, _ steps: [Step]) {
        var admission = admission
        for step in steps {
            let decision = admission.decide(kind: step.kind, sender: step.sender, fromPeer: step.fromPeer,
                                            votesOnly: step.votesOnly, nowMs: step.nowMs)
            #expect(decision == step.expected, "\(step)")
        }
    }

    @Test func transactionsFromPeersAndFromClientsHaveTheirOwnBuckets() {
        let admission = Admission(staked: TokenBucket(ratePerSecond: 1_000, burst: 2),
                                  unstaked: TokenBucket(ratePerSecond: 1_000, burst: 1), senderBudget: nil,
                                  clientBudget: nil, members: [Self.member])
        run(admission, [
            Step(description: "client transfer: the one token", kind: .transfer, expected: .check),
            Step(description: "client transfer: none left", kind: .transfer, expected: .drop("unstaked_rate_limited")),
            Step(description: "a peer's transfer is not charged to clients", kind: .transfer, fromPeer: true, expected: .check),
            Step(description: "peer: second token", kind: .forcedTx, fromPeer: true, expected: .check),
            Step(description: "peer: none left", kind: .transfer, fromPeer: true, expected: .drop("staked_rate_limited")),
            Step(description: "votes never touch the transaction buckets", kind: .prevote, sender: Self.member,
                 expected: .check),
            Step(description: "1 ms later the client bucket has one again", kind: .transfer, nowMs: 1_001, expected: .check),
        ])
    }

    @Test func votesOnlyModeDropsEveryTransactionButNoVote() {
        let admission = Admission(staked: nil, unstaked: nil, senderBudget: nil, clientBudget: nil, members: [])
        run(admission, [
            Step(description: "transfer", kind: .transfer, votesOnly: true, expected: .drop("votes_only")),
            Step(description: "forced tx from a peer", kind: .forcedTx, fromPeer: true, votesOnly: true,
                 expected: .drop("votes_only")),
            Step(description: "precommit", kind: .precommit, votesOnly: true, expected: .check),
            Step(description: "mode off", kind: .transfer, expected: .check),
        ])
    }

    @Test func theVoteLaneBudgetsEachMemberAndIgnoresStrangers() {
        let admission = Admission(staked: nil, unstaked: nil, senderBudget: TokenBucket(ratePerSecond: 10, burst: 2),
                                  clientBudget: nil, members: [Self.member])
        #expect(admission.needsSender)
        run(admission, [
            Step(description: "member 1", kind: .prevote, sender: Self.member, expected: .check),
            Step(description: "member 2", kind: .precommit, sender: Self.member, expected: .check),
            Step(description: "member over budget", kind: .prevote, sender: Self.member,
                 expected: .drop("sender_rate_limited")),
            // A stranger gets no bucket (the map stays bounded by the members); the signature check refuses it.
            Step(description: "stranger", kind: .prevote, sender: Self.stranger, expected: .check),
            Step(description: "stranger again", kind: .prevote, sender: Self.stranger, expected: .check),
            Step(description: "100 ms later: one token back", kind: .prevote, sender: Self.member, nowMs: 1_100,
                 expected: .check),
        ])
    }

    @Test func clientL2TransactionsPastTheCheckBudgetAreBusy() {
        // 1 ms a check, half of each second: a burst of 50 ms holds 50 checks.
        let admission = Admission(staked: nil, unstaked: nil, senderBudget: nil,
                                  clientBudget: CheckTimeBudget(share: 0.5, checksPerSecond: 1_000), members: [])
        var copy = admission
        let decisions = (0..<60).map { _ in
            copy.decide(kind: .l2Transfer, sender: nil, fromPeer: false, votesOnly: false, nowMs: 5_000)
        }
        #expect(decisions.prefix(50).allSatisfy { $0 == .check })
        #expect(decisions.suffix(10).allSatisfy { $0 == .busy })
        // Consensus traffic is never charged to the client budget.
        #expect(copy.decide(kind: .prevote, sender: nil, fromPeer: true, votesOnly: false, nowMs: 5_000) == .check)
    }

    @Test(arguments: [
        ("", MessageKind.transfer, true), ("", .prevote, true),
        ("user", .transfer, true), ("user", .prevote, false), ("user", .l2Transfer, true),
        ("vote", .prevote, true), ("vote", .proposal, true), ("vote", .transfer, false),
    ])
    func eachLaneCarriesOneClass(lane: String, kind: MessageKind, carried: Bool) {
        #expect(Admission.lane(lane, carries: kind) == carried)
    }
}

/// The sequencer's client-check budget is a share of the reader's time, charged at the measured cost.
@Suite struct CheckTimeBudgetTests {
    @Test func slowerChecksBuyFewerOfThem() {
        var budget = CheckTimeBudget(share: 0.5, checksPerSecond: 20_000)
        #expect(abs(budget.checksPerSecond - 10_000) < 1)
        // A busy host: a burst of 100 checks took 10 ms of wall time (0.1 ms each, four times the guess).
        for _ in 0..<20 { budget.measured(checks: 100, elapsedMs: 10) }
        #expect(abs(budget.costMs - 0.1) < 0.001 && abs(budget.checksPerSecond - 5_000) < 50)
        // Tiny bursts do not move the estimate.
        budget.measured(checks: 2, elapsedMs: 40)
        #expect(abs(budget.costMs - 0.1) < 0.001)
    }

    @Test func theBucketAdmitsTheShareOfASecondAndNoMore() {
        var budget = CheckTimeBudget(share: 0.5, checksPerSecond: 1_000) // 1 ms per check
        // The burst holds a tenth of a second's share: 50 ms, so 50 checks at once, then none.
        let admitted = (0..<200).filter { _ in budget.takeCheck(nowMs: 10_000) }.count
        #expect(admitted == 50)
        // A second later, the share of that second: another 50 (capped at the burst).
        let later = (0..<200).filter { _ in budget.takeCheck(nowMs: 11_000) }.count
        #expect(later == 50)
    }
}
