import Ledger
import Sodium
import Wire

/// The rule checks: one scripted round trip per rule of Algorithm 1 that matters for safety or liveness,
/// each driving one validator's consensus core by hand (proposals, others' votes, timeouts) and checking
/// what it signs or decides. The unit tests run them on the real rules (each must pass); `faultline
/// mutants` runs them with every planted bug (each bug should fail at least one), so the same script is the
/// unit test and the "unit" checker.
public enum RuleChecks {
    public struct Check: Sendable {
        public let name: String
        /// The line(s) of Algorithm 1 it checks.
        public let rule: String
        let script: @Sendable (Tendermint.PlantedBug?) -> String?

        init(name: String, rule: String, script: @escaping @Sendable (Tendermint.PlantedBug?) -> String?) {
            self.name = name
            self.rule = rule
            self.script = script
        }

        /// Why the check failed with `planted` (nil: it passed).
        public func failure(planted: Tendermint.PlantedBug? = nil) -> String? { script(planted) }
    }

    public static let all: [Check] = [
        Check(name: "locked validator refuses a new value", rule: "L22", script: lockedRefusesNewValue),
        Check(name: "locked validator prevotes its locked value proposed afresh", rule: "L22",
              script: lockedPrevotesItsValueProposedAfresh),
        Check(name: "locked validator refuses an older proof-of-lock", rule: "L28", script: lockedRefusesOlderProofOfLock),
        Check(name: "locked validator unlocks on a newer proof-of-lock", rule: "L28", script: unlocksOnNewerProofOfLock),
        Check(name: "locked validator prevotes its value under an older proof-of-lock", rule: "L28",
              script: prevotesLockedValueUnderOlderProofOfLock),
        Check(name: "a re-proposal's proof-of-lock needs +2/3 prevotes", rule: "L28", script: proofOfLockNeedsQuorum),
        Check(name: "+2/3 prevotes record the valid value and round", rule: "L36", script: recordsValidValue),
        Check(name: "proposer re-proposes its valid value", rule: "L14-L16", script: reproposesValidValue),
        Check(name: "+2/3 nil prevotes make a nil precommit", rule: "L44", script: nilQuorumPrecommitsNil),
        Check(name: "+2/3 split prevotes start the prevote timeout, then a nil precommit", rule: "L34, L61",
              script: splitPrevotesTimeOut),
        Check(name: "+2/3 split precommits start the precommit timeout, then the next round", rule: "L47, L65",
              script: splitPrecommitsTimeOut),
        Check(name: "a decision needs +2/3 of the stake", rule: "L49", script: decisionNeedsTwoThirds),
        Check(name: "f+1 in a later round make it skip there", rule: "L55", script: skipsToRoundOfOneThird),
        Check(name: "timeouts grow with the round", rule: "L21, L57-L65", script: timeoutsGrow),
        Check(name: "a conflicting vote counts and makes evidence", rule: "VoteSet", script: equivocationCounts),
    ]

    /// The checks `planted` fails, with why.
    public static func failures(planted: Tendermint.PlantedBug?) -> [(check: Check, why: String)] {
        all.compactMap { check in check.failure(planted: planted).map { (check, $0) } }
    }

    // MARK: the scripts

    /// A validator that proposes neither round 0 nor 1, locked on A in round 0 and now in round 1.
    static func lockedOnAInRoundZero(_ planted: Tendermint.PlantedBug?) -> Table {
        var t = Table(planted: planted, notProposing: [0, 1])
        _ = t.start()
        _ = t.propose(t.a, round: 0)
        _ = t.votes(.prevote, t.a, round: 0, from: [t.me] + t.others.prefix(2))
        _ = t.timeout(.precommit, round: 0)
        return t
    }

    static func lockedRefusesNewValue(_ planted: Tendermint.PlantedBug?) -> String? {
        var t = lockedOnAInRoundZero(planted)
        let cast = t.cast(t.propose(t.b, round: 1))
        return cast == [.init(.prevote, nil)] ? nil : "locked on A in round 0, a new B in round 1 got \(cast), not a nil prevote"
    }

    /// Found by `Tools/mutate.py` (L22's `|| lockedValue == v` dropped passed every test).
    static func lockedPrevotesItsValueProposedAfresh(_ planted: Tendermint.PlantedBug?) -> String? {
        var t = lockedOnAInRoundZero(planted)
        let cast = t.cast(t.propose(t.a, round: 1))
        return cast == [.init(.prevote, t.a)] ? nil
            : "locked on A in round 0, A proposed again in round 1 without a proof-of-lock got \(cast), not a prevote for A"
    }

    static func lockedRefusesOlderProofOfLock(_ planted: Tendermint.PlantedBug?) -> String? {
        var t = Table(planted: planted, notProposing: [0, 1, 2])
        _ = t.start()
        _ = t.votes(.prevote, t.b, round: 0, from: t.others) // B's proof-of-lock in round 0
        _ = t.timeout(.precommit, round: 0)
        _ = t.propose(t.a, round: 1)
        _ = t.votes(.prevote, t.a, round: 1, from: [t.me] + t.others.prefix(2)) // locks A in round 1
        _ = t.timeout(.precommit, round: 1)
        let cast = t.cast(t.propose(t.b, round: 2, polRound: 0))
        return cast == [.init(.prevote, nil)] ? nil
            : "locked on A in round 1, B re-proposed with round 0's proof-of-lock got \(cast), not a nil prevote"
    }

    static func unlocksOnNewerProofOfLock(_ planted: Tendermint.PlantedBug?) -> String? {
        var t = Table(planted: planted, notProposing: [0, 1, 2])
        _ = t.start()
        _ = t.propose(t.a, round: 0)
        _ = t.votes(.prevote, t.a, round: 0, from: [t.me] + t.others.prefix(2)) // locks A in round 0
        _ = t.timeout(.precommit, round: 0)
        _ = t.votes(.prevote, t.b, round: 1, from: t.others) // B's proof-of-lock in round 1
        _ = t.timeout(.precommit, round: 1)
        var invalid = t
        let refused = invalid.cast(invalid.propose(t.b, round: 2, polRound: 1, valid: false))
        if refused != [.init(.prevote, nil)] {
            return "B re-proposed with round 1's proof-of-lock but invalid here (its execution failed) got \(refused), not a nil prevote"
        }
        let cast = t.cast(t.propose(t.b, round: 2, polRound: 1))
        guard cast == [.init(.prevote, t.b)] else {
            return "locked on A in round 0, B re-proposed with round 1's proof-of-lock got \(cast), not a prevote for B"
        }
        // Then +2/3 prevotes for B in round 2 make the precommit (L36 after L28: found by Tools/mutate.py, a step
        // left wrong after L28's prevote passed every other test).
        let then = t.cast(t.votes(.prevote, t.b, round: 2, from: [t.me] + t.others.prefix(2)))
        return then == [.init(.precommit, t.b)] ? nil
            : "after prevoting B under round 1's proof-of-lock, +2/3 prevotes for B in round 2 got \(then), not a precommit"
    }

    /// Found by `Tools/mutate.py` (L28's `|| lockedValue == v` dropped passed every test): the value a validator is
    /// locked on, re-proposed with a proof-of-lock older than its lock, gets its prevote (refusing it can stall the
    /// rounds where the proposer holds that proof-of-lock).
    static func prevotesLockedValueUnderOlderProofOfLock(_ planted: Tendermint.PlantedBug?) -> String? {
        var t = Table(planted: planted, notProposing: [0, 1, 2])
        _ = t.start()
        _ = t.votes(.prevote, t.a, round: 0, from: t.others) // A's proof-of-lock in round 0 (no proposal seen here)
        _ = t.timeout(.precommit, round: 0)
        _ = t.propose(t.a, round: 1)
        _ = t.votes(.prevote, t.a, round: 1, from: [t.me] + t.others.prefix(2)) // locks A in round 1
        _ = t.timeout(.precommit, round: 1)
        let cast = t.cast(t.propose(t.a, round: 2, polRound: 0))
        return cast == [.init(.prevote, t.a)] ? nil
            : "locked on A in round 1, A re-proposed with round 0's proof-of-lock got \(cast), not a prevote for A"
    }

    /// Found by mutating `Rules.swift` by hand (L28's quorum made "more than a third"), which every other check
    /// and test passed: a third of the stake prevoting B is no proof-of-lock, so a validator locked on A must not
    /// prevote B for it (a byzantine third plus one honest vote would unlock every honest validator).
    static func proofOfLockNeedsQuorum(_ planted: Tendermint.PlantedBug?) -> String? {
        var t = Table(planted: planted, notProposing: [0, 1, 2])
        _ = t.start()
        _ = t.propose(t.a, round: 0)
        _ = t.votes(.prevote, t.a, round: 0, from: [t.me] + t.others.prefix(2)) // locks A in round 0
        _ = t.timeout(.precommit, round: 0)
        _ = t.votes(.prevote, t.b, round: 1, from: Array(t.others.prefix(2))) // half the stake: not +2/3
        _ = t.timeout(.precommit, round: 1)
        var cast = t.cast(t.propose(t.b, round: 2, polRound: 1))
        cast += t.cast(t.timeout(.propose, round: 2))
        return cast == [.init(.prevote, nil)] ? nil
            : "locked on A, B re-proposed with half the stake's prevotes as its proof-of-lock got \(cast), not a nil prevote"
    }

    static func recordsValidValue(_ planted: Tendermint.PlantedBug?) -> String? {
        var t = Table(planted: planted, notProposing: [0])
        _ = t.start()
        _ = t.propose(t.a, round: 0)
        _ = t.votes(.prevote, t.a, round: 0, from: [t.me] + t.others.prefix(2))
        let instance = t.instance
        return instance.validValue == t.a && instance.validRound == 0 ? nil
            : "after +2/3 prevotes for A in round 0 the valid value is \(instance.validValue?.short ?? "none")@\(instance.validRound)"
    }

    static func reproposesValidValue(_ planted: Tendermint.PlantedBug?) -> String? {
        var t = Table(planted: planted, notProposing: [0], proposing: 1)
        _ = t.start()
        _ = t.propose(t.a, round: 0)
        _ = t.votes(.prevote, t.a, round: 0, from: [t.me] + t.others.prefix(2))
        let effects = t.timeout(.precommit, round: 0)
        let proposed = effects.compactMap { effect -> String? in
            if case .propose(_, 1, let blockId, let polRound) = effect { return "\(blockId?.short ?? "a new block")@\(polRound)" }
            return nil
        }
        return proposed == ["\(t.a.short)@0"] ? nil
            : "proposer of round 1 with valid value A from round 0 proposed \(proposed), not A with proof-of-lock round 0"
    }

    static func nilQuorumPrecommitsNil(_ planted: Tendermint.PlantedBug?) -> String? {
        var t = Table(planted: planted, notProposing: [0])
        _ = t.start()
        _ = t.propose(t.a, round: 0)
        let early = t.cast(t.votes(.prevote, nil, round: 0, from: Array(t.others.prefix(2))))
        if !early.isEmpty { return "after nil prevotes of half the stake (not +2/3) it signed \(early)" }
        let cast = t.cast(t.votes(.prevote, nil, round: 0, from: [t.others[2]]))
        return cast == [.init(.precommit, nil)] ? nil : "after +2/3 nil prevotes it signed \(cast), not a nil precommit"
    }

    /// Found by `Tools/mutate.py`: L34 turned off passed every consensus test (only a Twins case noticed).
    static func splitPrevotesTimeOut(_ planted: Tendermint.PlantedBug?) -> String? {
        var t = Table(planted: planted, notProposing: [0])
        _ = t.start()
        _ = t.propose(t.a, round: 0)
        var effects = t.votes(.prevote, t.a, round: 0, from: [t.me, t.others[0]])
        let early = effects.contains { if case .scheduleTimeout(.prevote, _, _, _) = $0 { return true } else { return false } }
        if !t.cast(effects).isEmpty || early {
            return "on prevotes of half the stake for A it signed \(t.cast(effects))"
                + (early ? " and started the prevote timeout (that needs +2/3 prevotes)" : "")
        }
        effects += t.votes(.prevote, nil, round: 0, from: [t.others[1]])
        let scheduled = effects.contains {
            if case .scheduleTimeout(.prevote, 1, 0, t.instance.settings.timeouts.timeoutPrevoteMs) = $0 { return true }
            return false
        }
        guard scheduled, t.cast(effects).isEmpty else {
            return "prevotes for A, A and nil (+2/3, no value with +2/3) gave \(t.cast(effects)) and "
                + (scheduled ? "the prevote timeout" : "no prevote timeout")
        }
        let cast = t.cast(t.timeout(.prevote, round: 0))
        return cast == [.init(.precommit, nil)] ? nil : "the prevote timeout of round 0 signed \(cast), not a nil precommit"
    }

    static func splitPrecommitsTimeOut(_ planted: Tendermint.PlantedBug?) -> String? {
        var t = Table(planted: planted, notProposing: [0, 1])
        _ = t.start()
        _ = t.propose(t.a, round: 0)
        _ = t.votes(.prevote, t.a, round: 0, from: [t.me] + t.others.prefix(2)) // precommits A
        // Past the prevote step now (found by `Tools/mutate.py`: a step left at prevote after L36 passed every test,
        // and then the prevote timeout signs a second, nil precommit that only the host's sign state refuses).
        let late = t.cast(t.timeout(.prevote, round: 0))
        if !late.isEmpty || t.instance.metrics.refusedToResign > 0 {
            return "after precommitting A, the prevote timeout " + (late.isEmpty ? "tried to sign a second precommit" : "signed \(late)")
        }
        func precommitTimeouts(_ effects: [Tendermint.Effect]) -> [UInt64] {
            effects.compactMap { if case .scheduleTimeout(.precommit, 1, 0, let ms) = $0 { return ms } else { return nil } }
        }
        let half = t.votes(.precommit, t.a, round: 0, from: [t.me, t.others[0]])
        if !precommitTimeouts(half).isEmpty { return "precommits of half the stake started the precommit timeout" }
        let effects = t.votes(.precommit, nil, round: 0, from: [t.others[1]])
        let expected = t.instance.settings.timeouts.timeoutPrecommitMs
        if t.decided(effects) || precommitTimeouts(effects) != [expected] {
            return "precommits for A, A and nil gave " + (t.decided(effects) ? "a decision"
                : "precommit timeouts \(precommitTimeouts(effects)) ms, not [\(expected)]")
        }
        _ = t.timeout(.precommit, round: 0)
        return t.instance.round == 1 ? nil : "the precommit timeout of round 0 left it in round \(t.instance.round)"
    }

    static func decisionNeedsTwoThirds(_ planted: Tendermint.PlantedBug?) -> String? {
        // Stakes 2,1,1,1: the first two hold 3 of 5, a majority and more than a third, not +2/3.
        var t = Table(planted: planted, notProposing: [0], stakes: [2, 1, 1, 1])
        _ = t.start()
        _ = t.propose(t.a, round: 0)
        let heavy = t.others.contains(0) ? 0 : t.me
        let light = t.others.first { $0 != heavy }!
        if t.decided(t.votes(.precommit, t.a, round: 0, from: [heavy, light])) {
            return "decided A on precommits of 3 of 5 stake (under +2/3)"
        }
        let rest = t.others.filter { $0 != heavy && $0 != light }
        return t.decided(t.votes(.precommit, t.a, round: 0, from: rest)) ? nil : "did not decide A with all precommits for it"
    }

    static func skipsToRoundOfOneThird(_ planted: Tendermint.PlantedBug?) -> String? {
        var t = Table(planted: planted, notProposing: [0])
        _ = t.start()
        _ = t.votes(.precommit, nil, round: 3, from: [t.others[0]])
        if t.instance.round != 0 { return "moved to round \(t.instance.round) on one validator's vote (a quarter of the stake)" }
        _ = t.votes(.precommit, nil, round: 3, from: [t.others[1]])
        return t.instance.round == 3 ? nil : "stayed in round \(t.instance.round) with half the stake's votes in round 3"
    }

    static func timeoutsGrow(_ planted: Tendermint.PlantedBug?) -> String? {
        var t = Table(planted: planted, notProposing: [])
        var proposeMs: [UInt64] = []
        var effects = t.start()
        for round in 0..<3 {
            for case .scheduleTimeout(.propose, _, _, let durationMs) in effects { proposeMs.append(durationMs) }
            effects = t.timeout(.precommit, round: UInt32(round))
        }
        return zip(proposeMs, proposeMs.dropFirst()).allSatisfy { $0 < $1 } && proposeMs.count == 3 ? nil
            : "propose timeouts of rounds 0, 1, 2: \(proposeMs) ms (must grow)"
    }

    static func equivocationCounts(_ planted: Tendermint.PlantedBug?) -> String? {
        var t = Table(planted: planted, notProposing: [0])
        _ = t.start()
        let liar = t.others[0]
        var effects = t.votes(.prevote, t.a, round: 0, from: [liar])
        effects += t.votes(.prevote, t.b, round: 0, from: [liar])
        let evidence = effects.contains { if case .equivocation = $0 { return true } else { return false } }
        let counted = t.instance.stake(.prevote, round: 0, blockId: t.b)
        return evidence && counted == 1 ? nil
            : "a validator's prevotes for A then B: evidence \(evidence ? "made" : "not made"), B counted \(counted) of stake 1"
    }
}

extension RuleChecks {
    /// One signed vote as the checks compare them.
    struct Cast: Equatable, CustomStringConvertible {
        var type: Tendermint.VoteType
        var value: Bytes32?

        init(_ type: Tendermint.VoteType, _ value: Bytes32?) {
            self.type = type
            self.value = value
        }

        var description: String { "\(type) \(value?.short ?? "nil")" }
    }

    /// Four validators (equal stakes unless given) and the one driven, `me`, chosen so that it proposes none of
    /// `notProposing` (and `proposing`, if given).
    struct Table {
        static let keys = (0..<4).map { SigningKey(label: "rule-check-\($0)") }
        var instance: Tendermint.Instance
        let me: Int
        let others: [Int]
        let a = Blake2b.hash(Array("A".utf8))
        let b = Blake2b.hash(Array("B".utf8))

        init(planted: Tendermint.PlantedBug?, notProposing: [UInt32], proposing: UInt32? = nil,
             stakes: [UInt64] = [1, 1, 1, 1]) {
            let members = stakes.indices.map {
                ValidatorSet.Member(name: "v\($0)", publicKey: Table.keys[$0].publicKey, stake: stakes[$0])
            }
            let validators = ValidatorSet(members: members)
            let chosen = (0..<4).first { v in
                notProposing.allSatisfy { validators.proposer(height: 1, round: $0) != v }
                    && proposing.map { validators.proposer(height: 1, round: $0) == v } ?? true
            }
            precondition(chosen != nil, "no validator proposes none of rounds \(notProposing)")
            me = chosen!
            others = (0..<4).filter { $0 != chosen! }
            // Every timeout a different length, so a rule that schedules the wrong one is seen.
            let timeouts = ConsensusTimeouts(timeoutProposeMs: 300, timeoutProposeDeltaMs: 100, timeoutPrevoteMs: 120,
                                             timeoutPrevoteDeltaMs: 60, timeoutPrecommitMs: 80, timeoutPrecommitDeltaMs: 40,
                                             timeoutCommitMs: 20)
            instance = Tendermint.Instance(validators: validators, me: me,
                                           settings: .init(timeouts: timeouts, planted: planted), height: 1)
        }

        mutating func start() -> [Tendermint.Effect] { instance.process(.start) }

        mutating func propose(_ value: Bytes32, round: UInt32, polRound: Int32 = -1, valid: Bool = true) -> [Tendermint.Effect] {
            let proposal = Proposal(height: 1, round: round, polRound: polRound, blockId: value, partsRoot: value,
                                    partCount: 1, blockBytes: 1)
            return instance.process(.proposal(proposal, from: instance.validators.proposer(height: 1, round: round),
                                              valid: valid))
        }

        /// Votes from `from`; this validator's own vote among them only if it has not signed one (as a shell
        /// feeds back only what it signed).
        mutating func votes(_ type: Tendermint.VoteType, _ value: Bytes32?, round: UInt32, from: [Int]) -> [Tendermint.Effect] {
            var effects: [Tendermint.Effect] = []
            for validator in from where validator != me {
                effects += instance.process(.vote(type, Vote(height: 1, round: round, blockId: value), from: validator,
                                                  signature: Bytes64.zero))
            }
            if from.contains(me) { effects += instance.process(.vote(type, Vote(height: 1, round: round, blockId: value),
                                                                     from: me, signature: Bytes64.zero)) }
            return effects
        }

        mutating func timeout(_ kind: Tendermint.TimeoutKind, round: UInt32) -> [Tendermint.Effect] {
            instance.process(.timeout(kind, height: 1, round: round))
        }

        func cast(_ effects: [Tendermint.Effect]) -> [Cast] {
            effects.compactMap { if case .broadcastVote(let type, let vote) = $0 { return Cast(type, vote.blockId) } else { return nil } }
        }

        func decided(_ effects: [Tendermint.Effect]) -> Bool {
            effects.contains { if case .decide = $0 { return true } else { return false } }
        }
    }
}
