import Sodium
import Testing
import Wire
@testable import Ledger

@Suite struct LedgerTests {
    let domain = Domain(chainId: "ledger-test")
    let alice = SigningKey(label: "alice")
    let bob = SigningKey(label: "bob")
    let proposer = SigningKey(label: "proposer")

    func genesis() -> Genesis {
        Genesis(chainId: "ledger-test", protocolVersion: 1, genesisTimeMs: 0,
                validators: [.init(name: "p", publicKey: proposer.publicKey, stake: 1)],
                allocations: [.init(publicKey: alice.publicKey, balance: 100)])
    }

    func transfer(_ key: SigningKey, to: PublicKey, amount: UInt64, fee: UInt64, nonce: UInt64) -> Envelope {
        Envelope(kind: .transfer, payload: Transfer(to: to, amount: amount, fee: fee, nonce: nonce).encoded,
                 domain: domain, key: key)
    }

    func block(_ ledger: Ledger, _ txs: [Envelope]) -> Block {
        Block(header: BlockHeader(protocolVersion: 1, height: ledger.height + 1, timeMs: 1,
                                  proposer: proposer.publicKey, previousBlockId: ledger.lastBlockId,
                                  stateRoot: ledger.stateRoot, txRoot: Block.txRoot(txs), txCount: UInt32(txs.count)),
              txs: txs)
    }

    @Test func transferMovesBalanceFeeAndNonce() throws {
        var ledger = try Ledger(genesis: genesis())
        let tx = transfer(alice, to: bob.publicKey, amount: 30, fee: 2, nonce: 0)
        let result = ledger.execute(block(ledger, [tx]))
        #expect(result.applied == 1)
        #expect(ledger.account(alice.publicKey) == Account(balance: 68, nonce: 1))
        #expect(ledger.account(bob.publicKey).balance == 30)
        #expect(ledger.account(proposer.publicKey).balance == 2)
    }

    @Test func usedNonceCannotBeReplayedButGapsAreAllowed() throws {
        var ledger = try Ledger(genesis: genesis())
        let first = transfer(alice, to: bob.publicKey, amount: 1, fee: 0, nonce: 3)
        let replay = transfer(alice, to: bob.publicKey, amount: 2, fee: 0, nonce: 3)
        let older = transfer(alice, to: bob.publicKey, amount: 3, fee: 0, nonce: 1)
        let result = ledger.execute(block(ledger, [first, replay, older]))
        #expect(result.applied == 1 && result.failed == 2)
        #expect(ledger.account(alice.publicKey) == Account(balance: 99, nonce: 4))
    }

    @Test(arguments: [
        (UInt64(100), UInt64(0), "insufficient funds with fee"),
        (UInt64(UInt64.max), UInt64(0), "overflow"),
    ])
    func invalidTransfersAreSkippedDeterministically(amount: UInt64, nonce: UInt64, label: String) throws {
        var ledger = try Ledger(genesis: genesis())
        let tx = transfer(alice, to: bob.publicKey, amount: amount, fee: 1, nonce: nonce)
        let before = ledger.accounts
        let result = ledger.execute(block(ledger, [tx]))
        #expect(result.failed == 1, "\(label)")
        #expect(ledger.accounts == before)
    }

    @Test func sameBlocksGiveSameRootAndDifferentBlocksDiffer() throws {
        var a = try Ledger(genesis: genesis())
        var b = try Ledger(genesis: genesis())
        #expect(a.stateRoot == b.stateRoot)
        let tx1 = transfer(alice, to: bob.publicKey, amount: 1, fee: 0, nonce: 0)
        let tx2 = transfer(alice, to: bob.publicKey, amount: 2, fee: 0, nonce: 0)
        a.execute(block(a, [tx1]))
        b.execute(block(b, [tx2]))
        #expect(a.stateRoot != b.stateRoot)
        var c = try Ledger(genesis: genesis())
        c.execute(block(c, [tx1]))
        #expect(c.stateRoot == a.stateRoot)
    }

    /// The root rehashes only touched buckets, keeping each bucket's keys sorted as accounts appear:
    /// the same accounts created in another order give the same root, and every bucket hash equals
    /// one computed from the accounts from scratch.
    @Test func incrementalRootEqualsARootComputedFromScratch() throws {
        let recipients = (0..<300).map { SigningKey(label: "recipient-\($0)").publicKey }
        func funded(_ order: [PublicKey]) throws -> Ledger {
            var ledger = try Ledger(genesis: Genesis(
                chainId: "ledger-test", protocolVersion: 1, genesisTimeMs: 0,
                validators: [.init(name: "p", publicKey: proposer.publicKey, stake: 1)],
                allocations: [.init(publicKey: alice.publicKey, balance: 100_000)]))
            // Two blocks, so the second one adds keys to buckets the first already hashed.
            var nonce: UInt64 = 0
            for half in [order.prefix(150), order.suffix(150)] {
                let txs = half.map { recipient in
                    defer { nonce += 1 }
                    return transfer(alice, to: recipient, amount: 10, fee: 0, nonce: nonce)
                }
                #expect(ledger.execute(block(ledger, txs)).applied == 150)
            }
            return ledger
        }
        let forward = try funded(recipients)
        let backward = try funded(recipients.reversed())
        #expect(forward.stateRoot == backward.stateRoot)
        #expect(forward.accountTree.bucketHashesFromScratch() == forward.accountTree.bucketHashes)
        #expect(backward.accountTree.bucketHashesFromScratch() == backward.accountTree.bucketHashes)
    }

    @Test func validateNamesTheProblem() throws {
        let ledger = try Ledger(genesis: genesis())
        var proposed = block(ledger, [])
        #expect(ledger.validate(proposed, expectedProposer: proposer.publicKey, protocolVersion: 1) == nil)
        proposed.header.stateRoot = Blake2b.hash([9])
        let problem = ledger.validate(proposed, expectedProposer: proposer.publicKey, protocolVersion: 1)
        #expect(problem?.hasPrefix("wrong state root at height 1: expected") == true)
        #expect(ledger.validate(block(ledger, []), expectedProposer: alice.publicKey, protocolVersion: 1) != nil)
    }

    @Test func builderSkipsInvalidAndRespectsLimits() throws {
        let ledger = try Ledger(genesis: genesis())
        let txs = (0..<5).map { transfer(alice, to: bob.publicKey, amount: 1, fee: 0, nonce: UInt64($0)) }
        let broke = transfer(SigningKey(label: "carol"), to: alice.publicKey, amount: 1, fee: 0, nonce: 0)
        let chosen = BlockBuilder.select(candidates: [txs[0], broke, txs[0]] + txs[1...], ledger: ledger, txsMax: 3,
                                         bytesMax: 100_000)
        #expect(chosen == Array(txs[0..<3]))
    }

    @Test func proposerScheduleIsWeightedByStake() {
        let keys = (0..<3).map { SigningKey(label: "v\($0)").publicKey }
        let set = ValidatorSet(members: [
            .init(name: "a", publicKey: keys[0], stake: 1),
            .init(name: "b", publicKey: keys[1], stake: 2),
            .init(name: "c", publicKey: keys[2], stake: 1),
        ])
        var counts = [0, 0, 0]
        for height in 0..<400 { counts[set.proposer(height: UInt64(height), round: 0)] += 1 }
        #expect(counts == [100, 200, 100])
        #expect(set.isQuorum(3) && !set.isQuorum(2))
        #expect(set.isOneThirdPlus(2) && !set.isOneThirdPlus(1))
    }

    @Test func genesisProblemsAreNamed() {
        var bad = genesis()
        bad.validators[0].publicKey = "xyz"
        #expect(throws: Genesis.Problem.badKey(field: "validators.p.publicKey", value: "xyz")) {
            try bad.validatorSet()
        }
    }
}
