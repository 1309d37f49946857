import Basics
import Sodium
import Wire

/// The prevotes of the height being decided that one receiving edge has verified and handed to
/// consensus, by round. Once one value holds +2/3 of the stake among them, consensus is sure to count
/// that quorum (it gets them in this order, the first vote of each validator first), so the round's other
/// prevotes are of no use to it: they are settled here, without a signature check, rather than after the
/// main loop has counted the quorum and published it (`VoteQuorums`). At 100 validators on one machine a
/// node reads a round's prevotes in one or two bursts and checks them all before the main loop counts any.
///
/// In a burst the checks are begun together, so a prevote that the ones already begun would settle
/// (if they are valid) waits for them (`decide` says `.wait`) and is checked only if they fall short.
/// A validator with two different prevotes in a round makes the round contested: nothing is settled in
/// it here. Precommits are never settled here: a commit certificate carries every precommit counted by
/// the commit, and the vote-inclusion figures read it.
///
/// Bounded: one height, `roundsMax` rounds (later rounds are not tracked: their prevotes are checked),
/// one entry per validator per round. Pure: the edge feeds it.
public struct PrevoteQuorum: Sendable {
    public enum Decision: Sendable, Equatable {
        /// Check the signature now.
        case check
        /// Checks begun already would settle the round: check this one only if they do not.
        case wait
        /// One value already has +2/3 among the prevotes handed on: drop it unchecked.
        case settled
    }

    struct Round: Sendable {
        var votedFor: [PublicKey: Bytes32?] = [:]
        var stake: [Bytes32?: UInt64] = [:]
        /// Stake of the checks begun and not finished, per value.
        var begun: [Bytes32?: UInt64] = [:]
        var contested = false
        var settled = false
    }

    let stakes: [PublicKey: UInt64]
    let totalStake: UInt64
    public private(set) var height: UInt64 = 0
    private var rounds: [UInt32: Round] = [:]
    static let roundsMax = 16

    public init(stakes: [PublicKey: UInt64]) {
        self.stakes = stakes
        totalStake = stakes.values.reduce(0, +)
    }

    /// Follows the height the main loop is deciding; what was counted for another height is forgotten.
    public mutating func follow(height: UInt64) {
        guard height != self.height else { return }
        self.height = height
        rounds.removeAll(keepingCapacity: true)
    }

    public func decide(sender: PublicKey, vote: Vote) -> Decision {
        guard vote.height == height, stakes[sender] != nil, let round = rounds[vote.round] else { return .check }
        if round.settled { return .settled }
        if round.contested { return .check }
        let value = vote.blockId
        return Quorum.holds(round.stake[value, default: 0] + round.begun[value, default: 0], of: totalStake) ? .wait : .check
    }

    /// A check of this prevote begun (its stake counts towards `.wait` until `checksFinished`).
    public mutating func begun(sender: PublicKey, vote: Vote) {
        guard vote.height == height, let stake = stakes[sender] else { return }
        update(vote.round) { $0.begun[vote.blockId, default: 0] += stake }
    }

    /// The burst's checks are done (each valid one handed on was reported to `handedOn`).
    public mutating func checksFinished() {
        for key in rounds.keys { rounds[key]!.begun.removeAll(keepingCapacity: true) }
    }

    /// A prevote whose signature checked out was queued for consensus.
    public mutating func handedOn(sender: PublicKey, vote: Vote) {
        guard vote.height == height, let stake = stakes[sender] else { return }
        let totalStake = totalStake
        update(vote.round) { round in
            if let earlier = round.votedFor[sender] {
                if earlier != vote.blockId { round.contested = true }
                return
            }
            round.votedFor[sender] = vote.blockId
            round.stake[vote.blockId, default: 0] += stake
            if !round.contested, Quorum.holds(round.stake[vote.blockId]!, of: totalStake) { round.settled = true }
        }
    }

    public func isSettled(round: UInt32) -> Bool { rounds[round]?.settled ?? false }

    private mutating func update(_ number: UInt32, _ change: (inout Round) -> Void) {
        if rounds[number] == nil {
            guard rounds.count < Self.roundsMax else { return }
            rounds[number] = Round()
        }
        change(&rounds[number]!)
    }
}
