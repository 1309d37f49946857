import Ledger
import Sodium
import Testing
import Wire
@testable import Node

@Suite struct MempoolTests {
    let domain = Domain(chainId: "mempool-test")
    let alice = SigningKey(label: "alice")
    let carol = SigningKey(label: "carol")
    let bob = SigningKey(label: "bob").publicKey
    let proposer = SigningKey(label: "proposer")

    func transfer(_ key: SigningKey, amount: UInt64, nonce: UInt64) -> Envelope {
        Envelope(kind: .transfer, payload: Transfer(to: bob, amount: amount, fee: 0, nonce: nonce).encoded,
                 domain: domain, key: key)
    }

    /// After a block, the pool loses what it committed and what can no longer apply (a second
    /// transfer with a nonce the block used), and keeps what is still valid, in arrival order.
    @Test func pruneDropsCommittedAndNowInvalidTransfersAndKeepsTheRest() throws {
        var ledger = try Ledger(genesis: Genesis(
            chainId: "mempool-test", protocolVersion: 1, genesisTimeMs: 0,
            validators: [.init(name: "p", publicKey: proposer.publicKey, stake: 1)],
            allocations: [.init(publicKey: alice.publicKey, balance: 100), .init(publicKey: carol.publicKey, balance: 100)]))
        let committed = transfer(alice, amount: 1, nonce: 0)
        let sameNonce = transfer(alice, amount: 2, nonce: 0)
        let aliceNext = transfer(alice, amount: 3, nonce: 1)
        let carols = transfer(carol, amount: 4, nonce: 0)
        var pool = Mempool(txsMax: 10)
        for tx in [committed, sameNonce, carols, aliceNext] {
            let added = pool.add(tx, id: tx.id)
            #expect(added)
        }
        let txs = [committed]
        let block = Block(header: BlockHeader(protocolVersion: 1, height: 1, timeMs: 1, proposer: proposer.publicKey,
                                              previousBlockId: ledger.lastBlockId, stateRoot: ledger.stateRoot,
                                              txRoot: Block.txRoot(txs), txCount: 1), txs: txs)
        #expect(ledger.execute(block).applied == 1)
        pool.prune(committed: [committed.id], senders: [alice.publicKey], ledger: ledger)
        #expect(pool.count == 2)
        #expect(pool.candidates(limit: 10).map(\.id) == [carols.id, aliceNext.id])
    }
}
