import Basics
import Ledger
import Sodium
import Testing
import Wire
@testable import FraudProof

/// A dispute move that reaches a validator before the block that makes it valid (the party followed L1 a few
/// milliseconds ahead of it) waits in the mempool instead of being refused for good: its re-sends are dropped as
/// duplicates at the receiving edge, so a refusal there would let the honest party's clock run out.
@Suite struct HeldDisputeTests {
    typealias H = ContractHarness

    @Test func aMoveAheadOfTheLedgerWaitsForTheBlockThatOpensItsGame() throws {
        var h = try H()
        let (batch, execution) = h.postBatch(seed: 41, txs: 12, blocks: 2)
        let honest = Party(execution: execution, strategy: .honest)
        let liar = Party(execution: execution, strategy: .deviate(step: 5, account: DisputeContractTests.mint, amount: 3))
        let id = h.assert(batch: batch, honest)
        var validator = h.ledger // one block behind the party below
        #expect(h.challenge(id, by: H.challengers[0], liar) == .applied)
        let answer = try #require(h.move(id, game: 0, honest, as: .proposer, key: H.sequencer))
        let refusal = validator.admissionCheck(answer)
        #expect(refusal.label == "dispute_refused", "\(refusal)")

        var pool = Mempool(txsMax: 10)
        let first = pool.hold(answer, id: answer.id, height: validator.height)
        let second = pool.hold(answer, id: answer.id, height: validator.height)
        #expect(first && !second, "held once, not twice")
        #expect(pool.candidates(limit: 10).isEmpty)
        let challengeBlock = try #require(h.log.last)
        #expect(validator.execute(challengeBlock).applied == 1)
        pool.prune(committed: challengeBlock.txs.map(\.id), senders: [], ledger: validator)
        #expect(pool.candidates(limit: 10).map(\.id) == [answer.id])
        #expect(pool.heldCount == 0)
    }

    @Test func aMoveThatNeverBecomesValidExpiresAndTheWaitingRoomIsBounded() throws {
        var h = try H()
        let (batch, execution) = h.postBatch(seed: 42, txs: 12, blocks: 2)
        let honest = Party(execution: execution, strategy: .honest)
        let id = h.assert(batch: batch, honest)
        var pool = Mempool(txsMax: 10)
        // A stranger's moves in a game that does not exist: refused now and in every later block.
        let strangers = (0..<(Mempool.heldMax + 1)).map { index in
            h.sign(H.challengers[5], .move(assertion: id, game: UInt32(index), claim: honest.trace.claim(at: 1)))
        }
        var validator = h.ledger
        for tx in strangers.dropLast() {
            #expect(validator.admissionCheck(tx).label == "dispute_refused")
            let held = pool.hold(tx, id: tx.id, height: validator.height)
            #expect(held)
        }
        let overflow = pool.hold(strangers.last!, id: strangers.last!.id, height: validator.height)
        #expect(!overflow)
        #expect(pool.heldRejectedFull == 1)
        for _ in 0..<Mempool.heldBlocksMax {
            #expect(pool.heldCount == Mempool.heldMax)
            h.commit([])
            #expect(validator.execute(h.log.last!).applied == 0)
            pool.prune(committed: [], senders: [], ledger: validator)
        }
        #expect(pool.heldCount == 0)
        #expect(pool.heldExpired == Mempool.heldMax)
        #expect(pool.count == 0)
    }
}
