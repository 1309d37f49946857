import Basics
import Ledger
import Rollup
import Sodium
import Testing
import Wire
@testable import FraudProof

/// The dispute contract inside the L1 ledger (Topologies/README.md, "Fraud proofs"), driven by signed L1 transactions
/// from the agents' strategies: the honest side wins every game in exactly log2(L) bisections plus one one-step proof
/// or one timeout, bonds settle and are conserved, moves out of turn, late, by strangers or with forged proofs are
/// refused, and two validators' ledgers agree on every root.
@Suite struct DisputeContractTests {
    typealias H = ContractHarness

    static let mint = SigningKey(label: "minted").publicKey

    /// (seed, transactions, blocks): trace lengths 1 (one empty block), 2 (two), odd, and longer.
    static let shapes: [(UInt64, Int, Int)] = [(1, 0, 1), (2, 0, 2), (3, 1, 1), (4, 2, 1), (5, 20, 3), (6, 41, 2)]

    /// Lie positions for a trace of `steps`: 0, 1, the last, and a random one.
    static func positions(_ steps: Int, seed: UInt64) -> [Int] {
        var rng = SplitMix64(seed: seed)
        return Array(Set([0, min(1, steps - 1), steps - 1, Int(rng.next() % UInt64(steps))])).sorted()
    }

    @Test(arguments: shapes)
    func honestChallengerDefeatsALyingProposer(shape: (UInt64, Int, Int)) throws {
        var positionsSeen = 0
        for lie in Self.positions(try Self.steps(shape), seed: shape.0) {
            var h = try H()
            let funds = h.totalFunds
            let (batch, execution) = h.postBatch(seed: shape.0, txs: shape.1, blocks: shape.2)
            let liar = Party(execution: execution, strategy: .deviate(step: lie, account: Self.mint, amount: 777))
            let honest = Party(execution: execution, strategy: .honest)
            #expect(liar.claimedRoot != honest.claimedRoot)
            let id = h.assert(batch: batch, liar)
            let challenger = H.challengers[0]
            #expect(h.challenge(id, by: challenger, honest) == .applied)
            h.play(id, proposer: liar, challengers: [(challenger, honest)])
            let ended = h.ended(id)
            let length = h.events.compactMap { if case .asserted(id, _, _, _, let length, _) = $0 { length } else { nil } }[0]
            #expect(ended.count == 1 && ended[0].outcome.winner == .challenger, "lie at \(lie): \(ended)")
            #expect(ended[0].bisections == MerkleTree.depth(for: length), "lie at \(lie)")
            #expect(h.oneStepCount(id) == 1)
            let (rejected, confirmed) = (h.wasRejected(id), h.wasConfirmed(id))
            #expect(rejected && !confirmed)
            // The challenger gets its bond back plus half the proposer's; the other half is burned.
            #expect(h.ledger.account(challenger.publicKey).balance == H.l1Funds + H.settings.assertionBond / 2)
            #expect(h.disputes.burned == H.settings.assertionBond - H.settings.assertionBond / 2)
            #expect(h.disputes.held == 0)
            #expect(h.totalFunds == funds)
            positionsSeen += 1
        }
        #expect(positionsSeen >= 1)
    }

    @Test(arguments: shapes)
    func honestProposerDefeatsALyingChallengerAndIsConfirmed(shape: (UInt64, Int, Int)) throws {
        for lie in Self.positions(try Self.steps(shape), seed: shape.0 + 100) {
            var h = try H()
            let funds = h.totalFunds
            let (batch, execution) = h.postBatch(seed: shape.0, txs: shape.1, blocks: shape.2)
            let honest = Party(execution: execution, strategy: .honest)
            let liar = Party(execution: execution, strategy: .deviate(step: lie, account: Self.mint, amount: 5))
            let id = h.assert(batch: batch, honest)
            let challenger = H.challengers[1]
            #expect(h.challenge(id, by: challenger, liar) == .applied)
            h.play(id, proposer: honest, challengers: [(challenger, liar)])
            let ended = h.ended(id)
            #expect(ended.count == 1 && ended[0].outcome.winner == .proposer, "lie at \(lie): \(ended)")
            // Bisected to one step; the liar's one-step proof executes to the proposer's state.
            #expect(ended[0].outcome.reason.contains("executes to the proposer's state"), "\(ended[0].outcome.reason)")
            h.idle { $0.wasConfirmed(id) }
            #expect(h.ledger.account(challenger.publicKey).balance == H.l1Funds - H.settings.challengeBond)
            #expect(h.ledger.account(H.sequencer.publicKey).balance == H.l1Funds + H.settings.challengeBond / 2)
            #expect(h.disputes.held == 0 && h.totalFunds == funds)
            #expect(h.disputes.confirmedRoot == honest.claimedRoot)
        }
    }

    @Test(arguments: [UInt64(11), 12, 13])
    func liarsAtEveryMoveLoseInBothDirections(seed: UInt64) throws {
        var h = try H()
        let (batch, execution) = h.postBatch(seed: seed, txs: 9, blocks: 2)
        let honest = Party(execution: execution, strategy: .honest)
        let liar = Party(execution: execution, strategy: .lieEveryMove(seed: seed))
        let lying = h.assert(batch: batch, liar)
        #expect(h.challenge(lying, by: H.challengers[0], honest) == .applied)
        h.play(lying, proposer: liar, challengers: [(H.challengers[0], honest)])
        #expect(h.ended(lying).map(\.outcome.winner) == [.challenger])
        let rejected = h.wasRejected(lying)
        #expect(rejected)
        // The sequencer re-asserts truly; a liar at every move challenges and loses.
        let id = h.assert(batch: batch, honest)
        #expect(h.challenge(id, by: H.challengers[1], liar) == .applied)
        h.play(id, proposer: honest, challengers: [(H.challengers[1], liar)])
        #expect(h.ended(id).map(\.outcome.winner) == [.proposer])
        h.idle { $0.wasConfirmed(id) }
    }

    @Test func aSilentPartyLosesExactlyWhenItsClockRunsOut() throws {
        // A silent proposer: it owes the first move; its clock runs from the challenge.
        var h = try H()
        let (batch, execution) = h.postBatch(seed: 21, txs: 6, blocks: 1)
        let honest = Party(execution: execution, strategy: .honest)
        let wrong = Party(execution: execution, strategy: .deviate(step: 3, account: Self.mint, amount: 1))
        let id = h.assert(batch: batch, wrong)
        #expect(h.challenge(id, by: H.challengers[0], honest) == .applied)
        let opened = h.height
        h.idle { $0.height == opened + H.settings.clockBlocks }
        #expect(h.ended(id).isEmpty, "not over while the clock has time left")
        h.commit([])
        let ended = h.ended(id)
        #expect(ended.count == 1 && ended[0].outcome.winner == .challenger && ended[0].outcome.l1Height == opened + H.settings.clockBlocks + 1)
        #expect(ended[0].outcome.reason.contains("proposer's clock ran out"))

        // A silent challenger against an honest proposer: it loses one block after its clock is spent.
        var g = try H()
        let (batch2, execution2) = g.postBatch(seed: 22, txs: 6, blocks: 1)
        let proposer = Party(execution: execution2, strategy: .honest)
        let id2 = g.assert(batch: batch2, proposer)
        #expect(g.challenge(id2, by: H.challengers[2], Party(execution: execution2, strategy: .deviate(step: 0, account: Self.mint, amount: 1))) == .applied)
        let first = g.move(id2, game: 0, proposer, as: .proposer, key: H.sequencer)!
        #expect(g.commit([first]) == [.applied])
        let moved = g.height
        g.idle { $0.height == moved + H.settings.clockBlocks }
        #expect(g.ended(id2).isEmpty)
        g.commit([])
        #expect(g.ended(id2).map(\.outcome.winner) == [.proposer])
        #expect(g.ended(id2)[0].outcome.l1Height == moved + H.settings.clockBlocks + 1)
    }

    @Test func movesByStrangersOutOfTurnLateOrWithForgedProofsAreRefused() throws {
        var h = try H()
        let (batch, execution) = h.postBatch(seed: 31, txs: 12, blocks: 2)
        let honest = Party(execution: execution, strategy: .honest)
        let liar = Party(execution: execution, strategy: .deviate(step: 17, account: Self.mint, amount: 9))
        let id = h.assert(batch: batch, liar)
        let challenger = H.challengers[0]
        #expect(h.challenge(id, by: challenger, honest) == .applied)
        let game = h.disputes.assertions[id]!.games[0].game
        let claim = honest.trace.claim(at: game.midpoint)
        // The challenger out of turn; a stranger; the proposer at the wrong position; a forged proof.
        let refusals = h.commit([
            h.sign(challenger, .move(assertion: id, game: 0, claim: claim)),
            h.sign(H.challengers[3], .move(assertion: id, game: 0, claim: claim)),
            h.sign(H.sequencer, .move(assertion: id, game: 0, claim: liar.trace.claim(at: game.midpoint + 1))),
            h.sign(H.sequencer, .move(assertion: id, game: 0, claim: Bisection.Claim(index: game.midpoint,
                                                                                      hash: Bytes32(storage: (1, 2, 3, 4)),
                                                                                      proof: liar.trace.claim(at: game.midpoint).proof))),
            h.sign(H.sequencer, .move(assertion: id, game: 7, claim: claim)),
        ])
        #expect(refusals.allSatisfy { if case .disputeRefused = $0 { true } else { false } }, "\(refusals)")
        #expect(refusals[0].description.contains("notYourTurn"))
        #expect(refusals[1].description.contains("not a party"))
        #expect(refusals[2].description.contains("wrongPosition"))
        #expect(refusals[3].description.contains("badProof"))
        #expect(refusals[4].description.contains("no game 7"))
        // A move after the deadline is late, and the game ends at that block.
        h.idle { $0.height == game.deadline }
        let late = h.commit([h.move(id, game: 0, liar, as: .proposer, key: H.sequencer)!])
        #expect(late[0].description.contains("late"), "\(late)")
        #expect(h.ended(id).map(\.outcome.winner) == [.challenger])
    }

    @Test func oneStepProofsWithForgedPartsAreRefusedAndTheTrueOneDecides() throws {
        var h = try H()
        let (batch, execution) = h.postBatch(seed: 41, txs: 10, blocks: 2)
        // Lie before a step that reads an account, so a forged witness matters.
        let proofs = execution.proofs(steps: Set(10..<execution.steps))
        let lie = proofs.keys.sorted().first { Machine.touches(proofs[$0]!.pre, context: execution.context) != nil }!
        let honest = Party(execution: execution, strategy: .honest)
        let liar = Party(execution: execution, strategy: .deviate(step: lie, account: Self.mint, amount: 3))
        let id = h.assert(batch: batch, liar)
        let challenger = H.challengers[0]
        #expect(h.challenge(id, by: challenger, honest) == .applied)
        // Bisect to one step.
        while !h.disputes.assertions[id]!.games[0].game.atOneStep {
            let txs = [h.move(id, game: 0, liar, as: .proposer, key: H.sequencer),
                       h.move(id, game: 0, honest, as: .challenger, key: challenger)].compactMap { $0 }
            h.commit(txs)
        }
        let game = h.disputes.assertions[id]!.games[0].game
        #expect(game.low == lie, "the first disagreement is after step \(lie)")
        guard case .oneStep(let proof)? = honest.nextMove(in: game, as: .challenger) else {
            Issue.record("no one-step proof owed")
            return
        }
        var forgedWitness = proof
        var witness = try #require(forgedWitness.witness)
        witness.entries[0].account.balance &+= 1
        forgedWitness.witness = witness
        var forgedPre = proof
        forgedPre.pre.amount &+= 1
        var wrongPath = proof
        wrongPath.itemProof = wrongPath.itemProof.map { _ in Bytes32(storage: (5, 5, 5, 5)) }
        var txs = [forgedWitness, forgedPre].map { h.sign(challenger, .oneStep(assertion: id, game: 0, proof: $0)) }
        if proof.item != nil { txs.append(h.sign(challenger, .oneStep(assertion: id, game: 0, proof: wrongPath))) }
        txs.append(h.sign(H.sequencer, .oneStep(assertion: id, game: 0, proof: proof)))
        let refused = h.commit(txs)
        #expect(refused.allSatisfy { if case .disputeRefused = $0 { true } else { false } }, "\(refused)")
        #expect(h.ended(id).isEmpty)
        #expect(h.commit([h.sign(challenger, .oneStep(assertion: id, game: 0, proof: proof))]) == [.applied])
        #expect(h.ended(id).map(\.outcome.winner) == [.challenger])
    }

    @Test func sybilChallengersAllLoseInParallelAndTheHonestAssertionConfirmsInTime() throws {
        var h = try H()
        let funds = h.totalFunds
        let (batch, execution) = h.postBatch(seed: 51, txs: 30, blocks: 3)
        let honest = Party(execution: execution, strategy: .honest)
        let id = h.assert(batch: batch, honest)
        let created = h.height
        let sybils: [(SigningKey, Party)] = [
            (H.challengers[0], Party(execution: execution, strategy: .deviate(step: 0, account: Self.mint, amount: 1))),
            (H.challengers[1], Party(execution: execution, strategy: .deviate(step: 77, account: Self.mint, amount: 2))),
            (H.challengers[2], Party(execution: execution, strategy: .lieEveryMove(seed: 3))),
            (H.challengers[3], Party(execution: execution, strategy: .silent)),
        ]
        for (key, party) in sybils.prefix(3) { #expect(h.challenge(id, by: key, party) == .applied) }
        // The silent Sybil is the one posting in the last block of the window (a lie at step 5).
        let late = (H.challengers[3], Party(execution: execution, strategy: .deviate(step: 5, account: Self.mint, amount: 4)))
        while h.height + 1 < created + H.settings.windowBlocks {
            h.round(id, proposer: honest, challengers: Array(sybils.prefix(3)))
        }
        #expect(h.challenge(id, by: late.0, late.1) == .applied)
        let afterWindow = h.challenge(id, by: H.challengers[4], sybils[0].1).description
        #expect(afterWindow.contains("window"), "\(afterWindow)")
        h.play(id, proposer: honest, challengers: sybils)
        h.idle { $0.wasConfirmed(id) }
        let confirmedAt = h.height
        #expect(confirmedAt <= created + H.settings.windowBlocks + 2 * H.settings.clockBlocks + 1,
                "confirmed at \(confirmedAt), asserted at \(created)")
        #expect(h.ended(id).count == 4 && h.ended(id).allSatisfy { $0.outcome.winner == .proposer })
        for key in H.challengers.prefix(4) {
            #expect(h.ledger.account(key.publicKey).balance == H.l1Funds - H.settings.challengeBond)
        }
        #expect(h.ledger.account(H.sequencer.publicKey).balance == H.l1Funds + 4 * (H.settings.challengeBond / 2))
        #expect(h.disputes.held == 0 && h.totalFunds == funds)
    }

    @Test func aDefeatedAssertionTakesItsDescendantsAndTheRepostedChainConfirms() throws {
        var h = try H()
        let funds = h.totalFunds
        var parties: [Party] = []
        var ids: [Bytes32] = []
        for index in 0..<3 {
            let (batch, execution) = h.postBatch(seed: 60 + UInt64(index), txs: 8, blocks: 1)
            // The sequencer's state diverges in batch 1 (a deposit from an L1 block that was reorged away),
            // so batch 2 starts from a wrong root too.
            var start = execution.start
            if index == 2, let previous = parties.last { start = previous.store }
            let own = Execution(items: execution.items, start: start, context: execution.context)
            let party = Party(execution: own, strategy: index == 1 ? .deviate(step: 0, account: Self.mint, amount: 50) : .honest)
            parties.append(party)
            ids.append(h.assert(batch: batch, party))
        }
        let truth = Party(execution: parties[1].execution, strategy: .honest)
        #expect(h.challenge(ids[1], by: H.challengers[0], truth) == .applied)
        h.play(ids[1], proposer: parties[1], challengers: [(H.challengers[0], truth)])
        let rejected = ids.map { h.wasRejected($0) }
        #expect(rejected == [false, true, true])
        h.idle { $0.wasConfirmed(ids[0]) }
        // Re-derived from L1: batch 1 and 2 asserted again on the true state.
        let again1 = h.assert(batch: 1, truth)
        let honest2 = Party(execution: Execution(items: parties[2].execution.items, start: truth.store,
                                                 context: truth.execution.context), strategy: .honest)
        let again2 = h.assert(batch: 2, honest2)
        h.idle { $0.wasConfirmed(again2) }
        let confirmed = h.wasConfirmed(again1)
        #expect(confirmed)
        #expect(h.disputes.confirmedRoot == honest2.claimedRoot)
        #expect(h.disputes.held == 0 && h.totalFunds == funds)
        // A validator replaying L1 from genesis reaches the same dispute state.
        var replay = try Ledger(genesis: H.genesis())
        for block in h.log { replay.execute(block) }
        let (digest, root) = (h.disputes.digest, h.ledger.stateRoot)
        #expect(replay.disputes!.digest == digest && replay.stateRoot == root)
    }

    @Test func assertionsOutOfOrderOrWithBadProofsAreRefused() throws {
        var h = try H()
        let (batch, execution) = h.postBatch(seed: 71, txs: 4, blocks: 1)
        let honest = Party(execution: execution, strategy: .honest)
        let good = Assertion(batch: batch, parent: .zero, root: honest.claimedRoot, commitment: honest.trace.commitment,
                             endProof: honest.endClaim.proof)
        var wrongParent = good
        wrongParent.parent = Bytes32(storage: (1, 1, 1, 1))
        var wrongRoot = good
        wrongRoot.root = Bytes32(storage: (2, 2, 2, 2))
        var noBatch = good
        noBatch.batch = 5
        let outcomes = h.commit([
            h.sign(H.challengers[0], .assert(good)), h.sign(H.sequencer, .assert(wrongParent)),
            h.sign(H.sequencer, .assert(wrongRoot)), h.sign(H.sequencer, .assert(noBatch)),
        ])
        #expect(outcomes.map(\.description).enumerated().allSatisfy { $0.element.hasPrefix("dispute refused") }, "\(outcomes)")
        #expect(outcomes[0].description.contains("only the sequencer"))
        #expect(outcomes[1].description.contains("parent"))
        #expect(outcomes[2].description.contains("end proof"))
        #expect(outcomes[3].description.contains("batch 5"))
        #expect(h.commit([h.sign(H.sequencer, .assert(good)), h.sign(H.sequencer, .assert(good))])
                    .map(\.label) == ["applied", "dispute_refused"])
        #expect(h.disputes.held == H.settings.assertionBond)
    }

    static func steps(_ shape: (UInt64, Int, Int)) throws -> Int {
        var h = try H()
        return h.postBatch(seed: shape.0, txs: shape.1, blocks: shape.2).execution.steps
    }
}
