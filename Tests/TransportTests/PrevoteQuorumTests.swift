import Sodium
import Testing
import Wire
@testable import Transport

/// A round's prevotes are settled at the edge once the prevotes it handed on hold +2/3 for one value, and
/// only then; checks begun in the same burst put a prevote off rather than settle it.
@Suite struct PrevoteQuorumTests {
    let keys = (0..<4).map { SigningKey(label: "validator-\($0)").publicKey }
    let block = Bytes32([UInt8](repeating: 7, count: 32))!
    let other = Bytes32([UInt8](repeating: 9, count: 32))!

    func tally(stakes: [UInt64] = [10, 10, 10, 10], height: UInt64 = 5) -> PrevoteQuorum {
        var tally = PrevoteQuorum(stakes: Dictionary(uniqueKeysWithValues: zip(keys, stakes)))
        tally.follow(height: height)
        return tally
    }

    func vote(_ blockId: Bytes32?, height: UInt64 = 5, round: UInt32 = 0) -> Vote {
        Vote(height: height, round: round, blockId: blockId)
    }

    @Test func settlesOnlyOnceTwoThirdsOfTheStakeWereHandedOn() {
        var quorum = tally()
        quorum.handedOn(sender: keys[0], vote: vote(block))
        quorum.handedOn(sender: keys[1], vote: vote(block))
        // 20 of 40 is not +2/3: the third and fourth prevotes are still checked.
        #expect(quorum.decide(sender: keys[2], vote: vote(block)) == .check)
        #expect(!quorum.isSettled(round: 0))
        quorum.handedOn(sender: keys[2], vote: vote(block))
        #expect(quorum.isSettled(round: 0))
        // Any prevote of that round is of no use now, whatever it is for; other rounds are untouched.
        #expect(quorum.decide(sender: keys[3], vote: vote(block)) == .settled)
        #expect(quorum.decide(sender: keys[3], vote: vote(nil)) == .settled)
        #expect(quorum.decide(sender: keys[3], vote: vote(block, round: 1)) == .check)
    }

    @Test func aSecondPrevoteFromOneValidatorDoesNotCountTwice() {
        var quorum = tally()
        quorum.handedOn(sender: keys[0], vote: vote(block))
        quorum.handedOn(sender: keys[0], vote: vote(block))
        quorum.handedOn(sender: keys[1], vote: vote(block))
        #expect(!quorum.isSettled(round: 0))
    }

    @Test func stakeNotHeadsDecides() {
        var quorum = tally(stakes: [70, 10, 10, 10])
        quorum.handedOn(sender: keys[1], vote: vote(block))
        quorum.handedOn(sender: keys[2], vote: vote(block))
        quorum.handedOn(sender: keys[3], vote: vote(block))
        #expect(!quorum.isSettled(round: 0))
        quorum.handedOn(sender: keys[0], vote: vote(other))
        #expect(quorum.isSettled(round: 0))
    }

    /// A validator with two different prevotes in a round: consensus may have counted the other one first,
    /// so nothing in that round is settled here (consensus publishes it when it has the quorum).
    @Test func anEquivocatingValidatorLeavesTheRoundToConsensus() {
        var quorum = tally()
        quorum.handedOn(sender: keys[0], vote: vote(other))
        quorum.handedOn(sender: keys[0], vote: vote(block))
        quorum.handedOn(sender: keys[1], vote: vote(block))
        quorum.handedOn(sender: keys[2], vote: vote(block))
        quorum.handedOn(sender: keys[3], vote: vote(block))
        #expect(!quorum.isSettled(round: 0))
        #expect(quorum.decide(sender: keys[3], vote: vote(block)) == .check)
    }

    /// Checks begun and not finished count towards putting a prevote off, never towards settling it.
    @Test func begunChecksPutOffWhatTheyWouldSettle() {
        var quorum = tally()
        quorum.handedOn(sender: keys[0], vote: vote(block))
        quorum.begun(sender: keys[1], vote: vote(block))
        #expect(quorum.decide(sender: keys[3], vote: vote(block)) == .check)
        quorum.begun(sender: keys[2], vote: vote(block))
        #expect(quorum.decide(sender: keys[3], vote: vote(block)) == .wait)
        // A prevote for another value is not put off by them.
        #expect(quorum.decide(sender: keys[3], vote: vote(nil)) == .check)
        // The begun ones turned out bad (none handed on): the one put off is checked.
        quorum.checksFinished()
        #expect(quorum.decide(sender: keys[3], vote: vote(block)) == .check)
        #expect(!quorum.isSettled(round: 0))
    }

    @Test func anotherHeightStartsAfresh() {
        var quorum = tally()
        for key in keys.prefix(3) { quorum.handedOn(sender: key, vote: vote(block)) }
        #expect(quorum.isSettled(round: 0))
        quorum.follow(height: 6)
        #expect(!quorum.isSettled(round: 0))
        #expect(quorum.decide(sender: keys[3], vote: vote(block, height: 6)) == .check)
        // Prevotes of a height other than the one followed are never counted or settled here.
        for key in keys.prefix(3) { quorum.handedOn(sender: key, vote: vote(block, height: 7)) }
        #expect(quorum.decide(sender: keys[3], vote: vote(block, height: 7)) == .check)
        #expect(quorum.decide(sender: SigningKey(label: "stranger").publicKey, vote: vote(block, height: 6)) == .check)
    }

    @Test func roundsTrackedAreBounded() {
        var quorum = tally()
        let rounds = UInt32(PrevoteQuorum.roundsMax)
        for round in 0...rounds {
            for key in keys.prefix(3) { quorum.handedOn(sender: key, vote: vote(block, round: round)) }
        }
        #expect(quorum.isSettled(round: rounds - 1))
        // Past the bound a round is not tracked: its prevotes are checked, never settled unseen.
        #expect(!quorum.isSettled(round: rounds))
        #expect(quorum.decide(sender: keys[3], vote: vote(block, round: rounds)) == .check)
    }
}
