import Sodium
import Testing
@testable import Consensus

/// `Tendermint.Rounds`: the rules iterate a height's rounds in ascending order (L49 decides on the first round
/// with a certificate, L55 skips to the first round with f+1), whatever order their messages arrived in.
struct RoundsTests {
    @Test func roundsStayAscendingAndAreChangedInPlace() {
        var rounds = Tendermint.Rounds()
        #expect(rounds.isEmpty)
        for number: UInt32 in [5, 0, 3, 9, 3, 1] {
            _ = rounds[number, default: Tendermint.RoundState()].prevotes.add(
                validator: Int(number), stake: 1, blockId: nil, signature: .zero, voters: 4)
        }
        #expect(rounds.numbers == [0, 1, 3, 5, 9])
        #expect(rounds.states.count == rounds.numbers.count)
        // Round 3 got its vote once (the second add was a duplicate of the same validator's vote).
        #expect(rounds[3]?.prevotes.totalStake == 1)
        #expect(rounds.index(of: 4) == nil)
        #expect(rounds.index(of: 9) == 4)
        rounds[4, default: Tendermint.RoundState()].proposalValid = true
        #expect(rounds.numbers == [0, 1, 3, 4, 5, 9])
        #expect(rounds[4]?.proposalValid == true)
        #expect(rounds[5]?.proposalValid == false)
        rounds.removeAll()
        #expect(rounds.isEmpty && rounds[0] == nil)
    }
}
