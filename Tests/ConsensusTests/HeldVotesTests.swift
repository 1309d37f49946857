@testable import Consensus
import Sodium
import Testing

/// What a stalled node passes on of its peers' votes: this height only, the first vote per slot and value
/// (two values at most: an equivocator's), the current and previous round plus the proof-of-lock round's
/// prevotes, within a round bound a liar cannot flood.
@Suite struct HeldVotesTests {
    typealias Held = Tendermint.HeldVotes<String>

    @Test func keepsTheCurrentHeightsFirstVotePerSlot() {
        var held = Held()
        held.keep("h5 r0 pv v1", .prevote, value: nil, height: 5, round: 0, validator: 1, currentHeight: 5, currentRound: 0)
        held.keep("h5 r0 pv v1 again", .prevote, value: nil, height: 5, round: 0, validator: 1, currentHeight: 5, currentRound: 0)
        held.keep("h4 r0 pv v2", .prevote, value: nil, height: 4, round: 0, validator: 2, currentHeight: 5, currentRound: 0)
        held.keep("h6 r0 pv v2", .prevote, value: nil, height: 6, round: 0, validator: 2, currentHeight: 5, currentRound: 0)
        held.keep("h5 r0 pc v2", .precommit, value: nil, height: 5, round: 0, validator: 2, currentHeight: 5, currentRound: 0)
        #expect(held.toResend(round: 0, polRound: nil) == ["h5 r0 pv v1", "h5 r0 pc v2"])
        // A new height forgets the old one's votes.
        held.keep("h6 r0 pv v3", .prevote, value: nil, height: 6, round: 0, validator: 3, currentHeight: 6, currentRound: 0)
        #expect(held.toResend(round: 0, polRound: nil) == ["h6 r0 pv v3"])
        held.clear(for: 7)
        #expect(held.count == 0)
    }

    @Test func resendsThisRoundThePreviousAndTheLockRoundsPrevotes() {
        var held = Held()
        for round in UInt32(0)...4 {
            held.keep("r\(round) pv", .prevote, value: nil, height: 1, round: round, validator: 1, currentHeight: 1, currentRound: round)
            held.keep("r\(round) pc", .precommit, value: nil, height: 1, round: round, validator: 1, currentHeight: 1, currentRound: round)
        }
        #expect(held.toResend(round: 4, polRound: nil) == ["r3 pv", "r3 pc", "r4 pv", "r4 pc"])
        #expect(held.toResend(round: 4, polRound: 1) == ["r1 pv", "r3 pv", "r3 pc", "r4 pv", "r4 pc"])
    }

    @Test func aLiarsFarRoundsCannotPushRealVotesOut() {
        var held = Held()
        held.keep("real", .prevote, value: nil, height: 1, round: 0, validator: 1, currentHeight: 1, currentRound: 0)
        for round in UInt32(2)...1_000 {
            held.keep("liar r\(round)", .prevote, value: nil, height: 1, round: round, validator: 3, currentHeight: 1, currentRound: 0)
        }
        held.keep("next round", .prevote, value: nil, height: 1, round: 1, validator: 2, currentHeight: 1, currentRound: 0)
        #expect(held.toResend(round: 0, polRound: nil) == ["real", "next round"])
        // Rounds are bounded: after many real rounds only the newest `roundsMax` are kept.
        for round in UInt32(2)...40 {
            held.keep("r\(round)", .prevote, value: nil, height: 1, round: round, validator: 1, currentHeight: 1, currentRound: round)
        }
        #expect(held.count == Held.roundsMax)
        #expect(held.toResend(round: 40, polRound: 0).isEmpty == false)
        #expect(!held.toResend(round: 40, polRound: 0).contains("real"))
    }

    /// Twins (one key in two processes, the two sides of a partition): a node's proof-of-lock may rest on
    /// the vote one twin signed, which the other twin never saw. The held votes keep both of an
    /// equivocator's values and pass on the one the receiving twin lacks (byzantine-twins halted one side
    /// when only the first value was kept and votes under the receiver's own key were held back).
    @Test func keepsAnEquivocatorsTwoValuesAndNoMore() {
        var held = Held()
        let a = Bytes32(storage: (1, 0, 0, 0)), b = Bytes32(storage: (2, 0, 0, 0)), c = Bytes32(storage: (3, 0, 0, 0))
        held.keep("v1 for A", .prevote, value: a, height: 3, round: 0, validator: 1, currentHeight: 3, currentRound: 0)
        held.keep("v1 for A again", .prevote, value: a, height: 3, round: 0, validator: 1, currentHeight: 3, currentRound: 0)
        held.keep("v1 for B", .prevote, value: b, height: 3, round: 0, validator: 1, currentHeight: 3, currentRound: 0)
        held.keep("v1 for C", .prevote, value: c, height: 3, round: 0, validator: 1, currentHeight: 3, currentRound: 0)
        held.keep("v1 for nil", .prevote, value: nil, height: 3, round: 0, validator: 1, currentHeight: 3, currentRound: 0)
        held.keep("v2 for B", .prevote, value: b, height: 3, round: 0, validator: 2, currentHeight: 3, currentRound: 0)
        #expect(held.toResend(round: 0, polRound: nil) == ["v1 for A", "v1 for B", "v2 for B"])
        #expect(held.count == 3)
    }
}
