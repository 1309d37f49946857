import Basics
import Sodium
import Testing
import Wire
@testable import Consensus

/// The rules reach a fixed point on every input: after any proposal, vote or timeout, an input that changes nothing
/// (a timeout of another height) makes no effect. A rule that fired but told `evaluate` it had not stops the pass
/// early, and the rules it enabled wait for the next input (`Tools/mutate.py` found six such changes — a rule's
/// `return true` made `false` — that every scripted test passed). Random but seeded sequences: proposals (some
/// re-proposals under a proof-of-lock, some invalid), votes of the three others for A, B or nil in rounds 0–3,
/// timeouts of every kind, and this validator's own votes fed back as a shell does.
@Suite struct RulesSettleTests {
    static let values: [Bytes32?] = [Blake2b.hash(Array("A".utf8)), Blake2b.hash(Array("B".utf8)), nil]

    static func randomInput(_ harness: Harness, _ rng: inout SplitMix64) -> Tendermint.Input {
        let height = harness.height
        let round = UInt32(rng.next() % 4)
        switch rng.next() % 10 {
        case 0, 1:
            let value = values[Int(rng.next() % 2)]!
            let polRound: Int32 = round > 0 && rng.next() % 2 == 0 ? Int32(rng.next() % UInt64(round)) : -1
            let proposal = Proposal(height: height, round: round, polRound: polRound, blockId: value, partsRoot: value,
                                    partCount: 1, blockBytes: 1)
            return .proposal(proposal, from: harness.proposer(round: round), valid: rng.next() % 10 != 0)
        case 2, 3, 4, 5, 6, 7:
            let vote = Vote(height: height, round: round, blockId: values[Int(rng.next() % 3)])
            let from = 1 + Int(rng.next() % 3)
            return .vote(rng.next() % 2 == 0 ? .prevote : .precommit, vote, from: from, signature: Bytes64.zero)
        default:
            let kind: Tendermint.TimeoutKind = [.propose, .prevote, .precommit, .commit][Int(rng.next() % 4)]
            return .timeout(kind, height: height, round: round)
        }
    }

    @Test(arguments: UInt64(1)...40)
    func aNoOpInputAfterAnyInputMakesNoEffect(seed: UInt64) {
        var harness = Harness(me: 0)
        var rng = SplitMix64(seed: seed)
        var feedback: [Tendermint.Input] = []
        func feed(_ effects: [Tendermint.Effect]) {
            // This validator's own votes come back as inputs, as the shell feeds them.
            for case .broadcastVote(let type, let vote) in effects {
                feedback.append(.vote(type, vote, from: 0, signature: Bytes64.zero))
            }
        }
        feed(harness.start())
        for step in 0..<300 {
            let input = feedback.isEmpty ? Self.randomInput(harness, &rng) : feedback.removeFirst()
            feed(harness.instance.process(input))
            let probe = harness.instance.process(.timeout(.propose, height: 0, round: 0))
            if !probe.isEmpty {
                let why = "seed \(seed), step \(step): after \(input) the rules had not settled; a no-op input made \(probe)"
                Issue.record(Comment(rawValue: why))
                return
            }
        }
    }
}
