import Basics
import Sodium
import Testing
import Wire
@testable import FraudProof

/// A toy deterministic machine for the game's properties: the state is a 64-bit word, step i mixes
/// in i, and after its last step the machine is halted (a fixed point).
struct ToyMachine {
    let steps: Int
    let seed: UInt64

    static func hash(_ state: UInt64) -> Bytes32 {
        withUnsafeBytes(of: state.littleEndian) { Blake2b.hash(Array($0)) }
    }

    /// The state after step `index` (1-based) from `state`; past the last step nothing changes.
    func step(_ state: UInt64, index: Int) -> UInt64 {
        index > steps ? state : state &* 6_364_136_223_846_793_005 &+ UInt64(index) ^ seed
    }

    /// Every state from the start (position 0) to the end of the padded trace; a liar's execution
    /// flips a bit after step `lieAt` and carries on from there (a consistent wrong trace).
    func states(length: Int, lieAt: Int? = nil) -> [UInt64] {
        var states = [seed]
        for index in 1...length {
            var next = step(states[index - 1], index: index)
            if index == lieAt { next ^= 1 }
            states.append(next)
        }
        return states
    }
}

/// One side's view: its states and its trace.
struct ToyParty {
    let states: [UInt64]
    let trace: Trace

    init(machine: ToyMachine, lieAt: Int? = nil) {
        let length = 1 << MerkleTree.depth(for: machine.steps)
        var states = machine.states(length: length, lieAt: lieAt)
        // Halted: the padding repeats the last real state (a liar's too).
        for index in stride(from: machine.steps + 1, through: length, by: 1) { states[index] = states[machine.steps] }
        self.states = states
        trace = Trace(start: ToyMachine.hash(states[0]), after: states[1...machine.steps].map(ToyMachine.hash))
    }
}

@Suite struct BisectionTests {
    /// A game between two parties' traces (same start, same length), each end proved.
    func open(proposer: ToyParty, challenger: ToyParty, clock: UInt64, l1Height: UInt64) throws -> Bisection.Game {
        let length = proposer.trace.length
        return try Bisection.Game(
            length: length, start: proposer.trace.start, proposerCommitment: proposer.trace.commitment,
            proposerEnd: proposer.trace.claim(at: length), challengerCommitment: challenger.trace.commitment,
            challengerEnd: challenger.trace.claim(at: length), clockBlocks: clock, l1Height: l1Height)
    }

    /// Plays a whole game with both sides following their own traces, one L1 block per move.
    func play(_ machine: ToyMachine, proposer: ToyParty, challenger: ToyParty, clock: UInt64 = 64)
        throws -> Bisection.Game {
        var game = try open(proposer: proposer, challenger: challenger, clock: clock, l1Height: 100)
        var height: UInt64 = 100
        while game.outcome == nil {
            height += 1
            game.onL1Block(height: height)
            guard game.outcome == nil else { break }
            if game.atOneStep {
                let pre = challenger.states[game.low], high = game.high
                try game.oneStep(.challenger, l1Height: height) {
                    (ToyMachine.hash(pre), ToyMachine.hash(machine.step(pre, index: high)))
                }
            } else {
                let party = game.turn == .proposer ? proposer : challenger
                try game.move(game.turn, party.trace.claim(at: game.midpoint), l1Height: height)
            }
        }
        return game
    }

    static let lengths = [1, 2, 3, 5, 16, 17, 1_000]

    @Test(arguments: lengths)
    func theHonestSideAlwaysWins(steps: Int) throws {
        for seed in UInt64(0)..<6 {
            let machine = ToyMachine(steps: steps, seed: seed)
            var rng = SplitMix64(seed: seed)
            let honest = ToyParty(machine: machine)
            for lieAt in Set([1, 2, steps, Int(rng.next() % UInt64(steps)) + 1].map { min($0, steps) }) {
                let liar = ToyParty(machine: machine, lieAt: lieAt)
                let depth = MerkleTree.depth(for: steps)
                let lyingProposer = try play(machine, proposer: liar, challenger: honest)
                #expect(lyingProposer.outcome?.winner == .challenger, "N \(steps) seed \(seed) lie at \(lieAt)")
                #expect(lyingProposer.bisections == depth, "exactly log2 of the padded length")
                #expect(lyingProposer.outcome?.reason.contains("executes") == true, "decided by the one-step proof")
                let lyingChallenger = try play(machine, proposer: honest, challenger: liar)
                #expect(lyingChallenger.outcome?.winner == .proposer, "N \(steps) seed \(seed) lie at \(lieAt)")
                #expect(lyingChallenger.bisections == depth)
                #expect(lyingChallenger.outcome?.reason.contains("executes") == true, "decided by the one-step proof")
            }
        }
    }

    @Test func aLongTraceNeedsSixteenBisections() throws {
        let machine = ToyMachine(steps: 1 << 16, seed: 42)
        let honest = ToyParty(machine: machine)
        let liar = ToyParty(machine: machine, lieAt: 40_000)
        let game = try play(machine, proposer: liar, challenger: honest, clock: 100)
        #expect(game.outcome?.winner == .challenger && game.bisections == 16)
        #expect(game.low == 39_999 && game.high == 40_000, "the first wrong step is found")
    }

    @Test func movesOutOfTurnOutOfPlaceOrWithABadProofAreRefused() throws {
        let machine = ToyMachine(steps: 8, seed: 7)
        let honest = ToyParty(machine: machine), liar = ToyParty(machine: machine, lieAt: 3)
        var game = try open(proposer: liar, challenger: honest, clock: 5, l1Height: 10)
        #expect(throws: Bisection.Refusal.notYourTurn(expected: .proposer)) {
            try game.move(.challenger, honest.trace.claim(at: 4), l1Height: 11)
        }
        #expect(throws: Bisection.Refusal.wrongPosition(expected: 4, got: 2)) {
            try game.move(.proposer, liar.trace.claim(at: 2), l1Height: 11)
        }
        var forged = liar.trace.claim(at: 4)
        forged.hash = honest.trace.hash(at: 4)
        #expect(throws: Bisection.Refusal.badProof) { try game.move(.proposer, forged, l1Height: 11) }
        #expect(throws: Bisection.Refusal.badProof) {
            try game.move(.proposer, honest.trace.claim(at: 4), l1Height: 11) // another commitment's proof
        }
        #expect(throws: Bisection.Refusal.notAtOneStep) {
            try game.oneStep(.proposer, l1Height: 11) { nil }
        }
        #expect(throws: Bisection.Refusal.late(deadline: 15)) {
            try game.move(.proposer, liar.trace.claim(at: 4), l1Height: 16)
        }
        try game.move(.proposer, liar.trace.claim(at: 4), l1Height: 12)
        #expect(game.clockProposer == 3 && game.turn == .challenger)
        // Play down to the one step, then a pre-state that is not the agreed one is refused.
        try game.move(.challenger, honest.trace.claim(at: 4), l1Height: 12)
        try game.move(.proposer, liar.trace.claim(at: 2), l1Height: 12)
        try game.move(.challenger, honest.trace.claim(at: 2), l1Height: 12)
        try game.move(.proposer, liar.trace.claim(at: 3), l1Height: 12)
        try game.move(.challenger, honest.trace.claim(at: 3), l1Height: 12)
        #expect(game.atOneStep && game.low == 2 && game.high == 3 && game.turn == .challenger)
        let wrongPre = honest.states[1]
        #expect(throws: Bisection.Refusal.wrongPreState) {
            try game.oneStep(.challenger, l1Height: 13) {
                (ToyMachine.hash(wrongPre), ToyMachine.hash(machine.step(wrongPre, index: 3)))
            }
        }
        let pre = honest.states[2]
        try game.oneStep(.challenger, l1Height: 13) { (ToyMachine.hash(pre), ToyMachine.hash(machine.step(pre, index: 3))) }
        #expect(game.outcome?.winner == .challenger && game.bisections == 3)
        #expect(throws: Bisection.Refusal.over) { try game.move(.proposer, liar.trace.claim(at: 4), l1Height: 13) }
    }

    /// Whoever must move and stays silent loses at the first L1 block past its clock, not before.
    @Test(arguments: [0, 1, 2, 3, 4, 5, 6])
    func aSilentPartyLosesExactlyAtClockExpiry(silentAfterMoves: Int) throws {
        let machine = ToyMachine(steps: 8, seed: 9)
        let honest = ToyParty(machine: machine), liar = ToyParty(machine: machine, lieAt: 6)
        var game = try open(proposer: honest, challenger: liar, clock: 6, l1Height: 0)
        var height: UInt64 = 0
        for _ in 0..<silentAfterMoves {
            height += 1
            let party = game.turn == .proposer ? honest : liar
            try game.move(game.turn, party.trace.claim(at: game.midpoint), l1Height: height)
        }
        let silent = game.turn
        let deadline = game.deadline
        game.onL1Block(height: deadline)
        #expect(game.outcome == nil, "still in time at the deadline itself")
        game.onL1Block(height: deadline + 1)
        #expect(game.outcome?.winner == silent.other && game.outcome?.l1Height == deadline + 1)
        let spent = silent == .proposer ? game.clockProposer : game.clockChallenger
        let other = silent == .proposer ? game.clockChallenger : game.clockProposer
        #expect(spent == 0 && other > 0, "the silent side's clock reads empty; the other side's keeps what it had")
    }

    @Test func bondsAreSettledWithoutCreatingAnything() {
        for (winner, loser) in [(UInt64(100), UInt64(100)), (50, 7), (0, 1), (1_000_000, 999_999)] {
            let (gets, burned) = Bisection.settle(winnerBond: winner, loserBond: loser)
            #expect(gets + burned == winner + loser)
            #expect(gets - winner == loser / 2 && burned == loser - loser / 2)
        }
    }
}

