import Ledger
import Sodium
import Wire

/// HotStuff-2's rule checks, as `RuleChecks` are Tendermint's: one scripted exchange per rule that matters for
/// safety or liveness, driving one validator's core by hand and checking what it signs, sends or decides. The
/// unit tests run them on the real rules; `faultline mutants --protocol hotstuff2` with every planted bug.
public enum HotStuff2Checks {
    public static let all: [RuleChecks.Check] = [
        .init(name: "a locked validator refuses a new block", rule: "HS2 Vote", script: lockedRefusesNewBlock),
        .init(name: "a certificate of the view becomes the lock and the vote2", rule: "HS2 Lock", script: certificateLocks),
        .init(name: "a decision needs the second certificate", rule: "HS2 Commit", script: decisionNeedsSecondCertificate),
        .init(name: "a certificate needs +2/3 of the stake", rule: "HS2 Vote, Lock", script: certificateNeedsTwoThirds),
        .init(name: "a new leader re-proposes its certificate's value", rule: "HS2 Propose", script: leaderReproposes),
        .init(name: "the view timer sends the timeout again", rule: "HS2 pacemaker", script: timeoutRepeats),
        .init(name: "views last longer as they go", rule: "HS2 pacemaker", script: viewsGrow),
        .init(name: "a conflicting vote counts and makes evidence", rule: "VoteSet", script: equivocationCounts),
    ]

    public static func failures(planted: BFT.PlantedBug?) -> [(check: RuleChecks.Check, why: String)] {
        all.compactMap { check in check.failure(planted: planted).map { (check, $0) } }
    }

    /// Four validators (stakes as given); the one driven leads none of views 0 and 1 unless `leading` says which.
    struct Table {
        var core: HotStuff2.Instance
        let me: Int
        let others: [Int]
        let a = Blake2b.hash(Array("A".utf8))
        let b = Blake2b.hash(Array("B".utf8))

        init(_ planted: BFT.PlantedBug?, leading: UInt32? = nil, stakes: [UInt64] = [1, 1, 1, 1]) {
            let members = stakes.indices.map {
                ValidatorSet.Member(name: "v\($0)", publicKey: RuleChecks.Table.keys[$0].publicKey, stake: stakes[$0])
            }
            let validators = ValidatorSet(members: members)
            let leaders = [validators.proposer(height: 1, round: 0), validators.proposer(height: 1, round: 1)]
            let chosen = leading.map { validators.proposer(height: 1, round: $0) } ?? (0..<4).first { !leaders.contains($0) }!
            me = chosen
            others = (0..<4).filter { $0 != chosen }
            core = HotStuff2.Instance(validators: validators, me: chosen, settings: .init(planted: planted), height: 1)
            _ = core.process(.start)
        }

        /// Processes `input` and feeds back this validator's own vote and timeout, as its shell does.
        mutating func run(_ input: BFT.Input) -> [BFT.Effect] {
            var effects = core.process(input)
            var index = 0
            while index < effects.count {
                switch effects[index] {
                case .sendVote(let type, let vote, _):
                    effects += core.process(.vote(type, vote, from: me, signature: .zero))
                case .broadcastTimeout(let vote):
                    effects += core.process(.timeoutVote(vote, from: me, signature: .zero))
                default: break
                }
                index += 1
            }
            return effects
        }

        mutating func propose(_ value: Bytes32, round: UInt32, polRound: Int32 = -1) -> [BFT.Effect] {
            let proposal = Proposal(height: 1, round: round, polRound: polRound, blockId: value, partsRoot: value,
                                    partCount: 1, blockBytes: 1)
            return run(.proposal(proposal, from: core.leader(round: round), valid: true))
        }

        mutating func votes(_ type: BFT.VoteType, _ value: Bytes32, round: UInt32, from: [Int]) -> [BFT.Effect] {
            from.flatMap { run(.vote(type, Vote(height: 1, round: round, blockId: value), from: $0, signature: .zero)) }
        }

        mutating func timeouts(round: UInt32, from: [Int]) -> [BFT.Effect] {
            from.flatMap { run(.timeoutVote(Vote(height: 1, round: round, blockId: nil), from: $0, signature: .zero)) }
        }

        /// Locked on A in view 0 (a certificate for its proposal), then moved to view 1 by a timeout certificate.
        mutating func lockOnAThenViewOne() {
            _ = propose(a, round: 0)
            _ = votes(.prevote, a, round: 0, from: others)
            _ = timeouts(round: 0, from: others)
        }

        func votesSent(_ effects: [BFT.Effect]) -> [String] {
            effects.compactMap { if case .sendVote(let type, let vote, _) = $0 { "\(type) \(vote.blockId?.short ?? "nil")" } else { nil } }
        }
    }

    static func lockedRefusesNewBlock(_ planted: BFT.PlantedBug?) -> String? {
        var t = Table(planted)
        t.lockOnAThenViewOne()
        guard t.core.round == 1 else { return "not in view 1 after +2/3 timeouts (view \(t.core.round))" }
        let sent = t.votesSent(t.propose(t.b, round: 1))
        return sent.isEmpty ? nil : "locked on A, it voted \(sent) for a new block B"
    }

    static func certificateLocks(_ planted: BFT.PlantedBug?) -> String? {
        var t = Table(planted)
        _ = t.propose(t.a, round: 0)
        let sent = t.votesSent(t.votes(.prevote, t.a, round: 0, from: Array(t.others.prefix(2))))
        guard sent == ["precommit \(t.a.short)"] else { return "a certificate for A made it send \(sent)" }
        return t.core.lockedValue == t.a && t.core.lockedRound == 0 ? nil
            : "a certificate for A left the lock at \(t.core.lockedValue?.short ?? "none")@\(t.core.lockedRound)"
    }

    static func decisionNeedsSecondCertificate(_ planted: BFT.PlantedBug?) -> String? {
        var t = Table(planted)
        _ = t.propose(t.a, round: 0)
        let first = t.votes(.prevote, t.a, round: 0, from: t.others)
        if first.contains(where: { if case .decide = $0 { true } else { false } }) { return "decided on +2/3 vote1" }
        let second = t.votes(.precommit, t.a, round: 0, from: Array(t.others.prefix(2)))
        return second.contains(where: { if case .decide = $0 { true } else { false } }) ? nil
            : "+2/3 vote2 for A decided nothing"
    }

    static func certificateNeedsTwoThirds(_ planted: BFT.PlantedBug?) -> String? {
        // Stakes 1, 1, 1, 2 (total 5): three validators of stake 1 are a majority, not +2/3.
        var t = Table(planted, stakes: [1, 1, 1, 2])
        _ = t.propose(t.a, round: 0)
        let light = (0..<3).filter { $0 != t.me }.prefix(2)
        let sent = t.votesSent(t.votes(.prevote, t.a, round: 0, from: Array(light)))
        guard t.core.stake(.prevote, round: 0, blockId: t.a) * 3 <= 10 else { return nil } // `me` is the heavy one
        return sent.isEmpty && t.core.lockedValue == nil ? nil : "3 of 5 stake locked it and made it send \(sent)"
    }

    static func leaderReproposes(_ planted: BFT.PlantedBug?) -> String? {
        var t = Table(planted, leading: 1)
        _ = t.propose(t.a, round: 0)
        _ = t.votes(.prevote, t.a, round: 0, from: t.others)
        let effects = t.timeouts(round: 0, from: t.others)
        let proposals = effects.compactMap { if case .propose(_, 1, let id, let pol) = $0 { (id, pol) } else { nil } }
        guard let proposal = proposals.first else { return "no proposal in view 1 from its leader" }
        return proposal.0 == t.a && proposal.1 == 0 ? nil
            : "holding a certificate for A from view 0, it proposed \(proposal.0?.short ?? "a new block") with view \(proposal.1)"
    }

    static func timeoutRepeats(_ planted: BFT.PlantedBug?) -> String? {
        var t = Table(planted)
        let first = t.run(.timeout(.view, height: 1, round: 0))
        let second = t.run(.timeout(.view, height: 1, round: 0))
        func sent(_ effects: [BFT.Effect]) -> Bool { effects.contains { if case .broadcastTimeout = $0 { true } else { false } } }
        return sent(first) && sent(second) ? nil : "the view timer sent timeouts \(sent(first)), then \(sent(second))"
    }

    static func viewsGrow(_ planted: BFT.PlantedBug?) -> String? {
        var t = Table(planted)
        func viewTimer(_ effects: [BFT.Effect]) -> UInt64? {
            effects.compactMap { if case .scheduleTimeout(.view, _, _, let ms) = $0 { ms } else { nil } }.first
        }
        let first = viewTimer(t.run(.timeout(.view, height: 1, round: 0)))
        let next = viewTimer(t.timeouts(round: 0, from: t.others))
        guard let first, let next else { return "no view timer scheduled" }
        return next > first ? nil : "view 1 lasts \(next) ms, view 0 \(first) ms"
    }

    static func equivocationCounts(_ planted: BFT.PlantedBug?) -> String? {
        var t = Table(planted, leading: 0)
        _ = t.propose(t.a, round: 0)
        let liar = t.others[0]
        _ = t.votes(.prevote, t.a, round: 0, from: [liar])
        let second = t.votes(.prevote, t.b, round: 0, from: [liar])
        let evidence = second.contains { if case .equivocation = $0 { true } else { false } }
        return evidence ? nil : "a second, conflicting vote made no evidence"
    }
}
