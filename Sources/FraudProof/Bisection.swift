import Sodium
import Wire

/// The bisection game between a proposer (who asserted a state root with a trace commitment) and one
/// challenger (who disputes it with its own commitment), as every L1 validator executes it
/// (Topologies/README.md, "Fraud proofs"). Pure: the L1 height arrives with every input.
///
/// Both traces start from the same agreed state and have the same padded length L (a power of two).
/// The disputed range [low, high] starts as [0, L]: agreed at `low`, disagreed at `high`. Each
/// bisection takes two moves: the proposer states its hash at the midpoint, then the challenger
/// states its own, each proved against the mover's commitment; equal hashes move `low` up to the
/// midpoint, different ones move `high` down. After log2(L) bisections one step remains, and the
/// challenger must show it with a one-step proof: the full pre-state (whose hash must be the agreed
/// one) executed by L1; if its result differs from the proposer's hash the challenger wins,
/// otherwise the proposer does. Each side has a chess clock in L1 blocks that runs while it is that
/// side's turn; a side whose clock runs out loses.
public enum Bisection {
    public enum Side: String, Sendable, Equatable, Codable {
        case proposer, challenger

        public var other: Side { self == .proposer ? .challenger : .proposer }
    }

    /// A hash at a trace position, with its Merkle proof against the mover's commitment (leaf
    /// `index - 1`; position 0 is the agreed start and is never claimed).
    public struct Claim: Sendable, Equatable {
        public var index: Int
        public var hash: Bytes32
        public var proof: [Bytes32]

        public init(index: Int, hash: Bytes32, proof: [Bytes32]) {
            self.index = index
            self.hash = hash
            self.proof = proof
        }
    }

    public enum Refusal: Error, Sendable, Equatable {
        case over
        case notYourTurn(expected: Side)
        case late(deadline: UInt64)
        case wrongPosition(expected: Int, got: Int)
        case badProof
        case notAtOneStep
        /// The pre-state given does not hash to the agreed state at `low`.
        case wrongPreState
    }

    /// How a game ended.
    public struct Outcome: Sendable, Equatable {
        public var winner: Side
        public var reason: String
        public var l1Height: UInt64

        public init(winner: Side, reason: String, l1Height: UInt64) {
            self.winner = winner
            self.reason = reason
            self.l1Height = l1Height
        }
    }

    public struct Game: Sendable, Equatable {
        public let length: Int
        public let proposerCommitment: Bytes32
        public let challengerCommitment: Bytes32
        public private(set) var low = 0
        public private(set) var high: Int
        /// The agreed hash at `low`, and each side's hash at `high`.
        public private(set) var agreed: Bytes32
        public private(set) var proposerAtHigh: Bytes32
        public private(set) var challengerAtHigh: Bytes32
        /// The proposer's hash at the current midpoint, once stated.
        public private(set) var proposerAtMid: Bytes32?
        public private(set) var turn: Side = .proposer
        /// Blocks left on each clock, and the L1 height at which the current turn started.
        public private(set) var clockProposer: UInt64
        public private(set) var clockChallenger: UInt64
        public private(set) var turnStartedAt: UInt64
        public private(set) var bisections = 0
        public private(set) var outcome: Outcome?

        /// Opens a game at `l1Height`. `start` is the agreed start hash; `proposerEnd` and
        /// `challengerEnd` are each side's final hash (position `length`), proved against its commitment.
        public init(length: Int, start: Bytes32, proposerCommitment: Bytes32, proposerEnd: Claim,
                    challengerCommitment: Bytes32, challengerEnd: Claim, clockBlocks: UInt64,
                    l1Height: UInt64) throws(Refusal) {
            precondition(length >= 1 && length & (length - 1) == 0, "trace length \(length) is not a power of two")
            guard proposerEnd.index == length, challengerEnd.index == length else {
                throw .wrongPosition(expected: length, got: proposerEnd.index == length ? challengerEnd.index : proposerEnd.index)
            }
            guard Bisection.holds(proposerEnd, commitment: proposerCommitment, length: length),
                  Bisection.holds(challengerEnd, commitment: challengerCommitment, length: length) else { throw .badProof }
            self.length = length
            self.proposerCommitment = proposerCommitment
            self.challengerCommitment = challengerCommitment
            high = length
            agreed = start
            proposerAtHigh = proposerEnd.hash
            challengerAtHigh = challengerEnd.hash
            clockProposer = clockBlocks
            clockChallenger = clockBlocks
            turnStartedAt = l1Height
            if length == 1 { turn = .challenger }
            if proposerEnd.hash == challengerEnd.hash {
                outcome = Outcome(winner: .proposer, reason: "the challenger's trace ends where the proposer's does",
                                  l1Height: l1Height)
            }
        }

        /// The position the next move must claim: the midpoint while bisecting.
        public var midpoint: Int { (low + high) / 2 }
        public var atOneStep: Bool { high - low == 1 }
        /// The last L1 height at which the side to move may still move.
        public var deadline: UInt64 {
            let (sum, overflow) = turnStartedAt.addingReportingOverflow(turn == .proposer ? clockProposer : clockChallenger)
            return overflow ? .max : sum
        }

        /// A bisection move by `side` at `l1Height`.
        public mutating func move(_ side: Side, _ claim: Claim, l1Height: UInt64) throws(Refusal) {
            try checkTurn(side, l1Height: l1Height)
            guard !atOneStep else { throw .wrongPosition(expected: high, got: claim.index) }
            guard claim.index == midpoint else { throw .wrongPosition(expected: midpoint, got: claim.index) }
            let commitment = side == .proposer ? proposerCommitment : challengerCommitment
            guard Bisection.holds(claim, commitment: commitment, length: length) else { throw .badProof }
            spendClock(l1Height: l1Height)
            switch side {
            case .proposer:
                proposerAtMid = claim.hash
            case .challenger:
                let proposerHash = proposerAtMid!
                if proposerHash == claim.hash {
                    low = midpoint
                    agreed = claim.hash
                } else {
                    high = midpoint
                    proposerAtHigh = proposerHash
                    challengerAtHigh = claim.hash
                }
                proposerAtMid = nil
                bisections += 1
            }
            // After a bisection that leaves one step, the challenger owes the one-step proof.
            turn = side == .proposer || atOneStep ? .challenger : .proposer
        }

        /// The one-step proof at `l1Height`: `execute` is L1 running the machine's single step from the
        /// pre-state the challenger supplied, returning the pre-state's hash and the hash after step `low + 1`.
        public mutating func oneStep(_ side: Side, l1Height: UInt64,
                                     execute: () -> (pre: Bytes32, post: Bytes32)?) throws(Refusal) {
            try checkTurn(side, l1Height: l1Height)
            guard atOneStep else { throw .notAtOneStep }
            guard let (pre, post) = execute(), pre == agreed else { throw .wrongPreState }
            spendClock(l1Height: l1Height)
            outcome = post == proposerAtHigh
                ? Outcome(winner: .proposer, reason: "step \(high) executes to the proposer's state", l1Height: l1Height)
                : Outcome(winner: .challenger, reason: "step \(high) executes to another state than the proposer's",
                          l1Height: l1Height)
        }

        /// A new L1 block: the side to move loses once its clock has run out.
        public mutating func onL1Block(height: UInt64) {
            guard outcome == nil, height > deadline else { return }
            if turn == .proposer { clockProposer = 0 } else { clockChallenger = 0 }
            outcome = Outcome(winner: turn.other, reason: "the \(turn.rawValue)'s clock ran out", l1Height: height)
        }

        private func checkTurn(_ side: Side, l1Height: UInt64) throws(Refusal) {
            guard outcome == nil else { throw .over }
            guard side == turn else { throw .notYourTurn(expected: turn) }
            guard l1Height <= deadline else { throw .late(deadline: deadline) }
        }

        private mutating func spendClock(l1Height: UInt64) {
            // `checkTurn` bounds the time used by the clock; an L1 height below the turn's start uses none.
            let used = l1Height > turnStartedAt ? l1Height - turnStartedAt : 0
            if turn == .proposer { clockProposer -= used } else { clockChallenger -= used }
            turnStartedAt = max(turnStartedAt, l1Height)
        }
    }

    /// Whether `claim` is leaf `index - 1` of a trace of `length` committed to by `commitment`.
    public static func holds(_ claim: Claim, commitment: Bytes32, length: Int) -> Bool {
        claim.index >= 1 && claim.index <= length
            && claim.proof.count == MerkleTree.depth(for: length)
            && MerkleTree.verify(leaf: claim.hash, index: claim.index - 1, proof: claim.proof, root: commitment)
    }

    /// Bond settlement: the loser's bond goes half to the winner (rounded down), the rest is burned;
    /// the winner keeps its own. Nothing is created.
    public static func settle(winnerBond: UInt64, loserBond: UInt64) -> (winnerGets: UInt64, burned: UInt64) {
        let reward = loserBond / 2
        return (winnerBond + reward, loserBond - reward)
    }
}
