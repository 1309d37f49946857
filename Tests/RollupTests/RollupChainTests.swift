import Ledger
import Sodium
import Testing
import Wire
@testable import Rollup

/// The rollup end to end in memory: the sequencer builds and posts, L1's ledger takes the chunks into
/// its inbox, derivation rebuilds the same chain from L1 alone, and forced transactions get in with or
/// without the sequencer.
@Suite struct RollupChainTests {
    let sequencerKey = SigningKey(label: "sequencer")
    let pool = SigningKey(label: "airdrop-pool")
    let alice = SigningKey(label: "alice")
    let proposer = SigningKey(label: "validator")
    let chainId = "rollup-test"
    var domain: Domain { Domain(chainId: chainId) }

    func genesis(forcedInclusionBlocks: UInt64 = 4, poolBalance: UInt64 = 1_000) -> Genesis {
        Genesis(chainId: chainId, protocolVersion: 1, genesisTimeMs: 0,
                validators: [.init(name: "v1", publicKey: proposer.publicKey, stake: 10)],
                allocations: [.init(publicKey: alice.publicKey, balance: 1_000)],
                rollup: RollupGenesis(sequencer: sequencerKey.publicKey, forcedInclusionBlocks: forcedInclusionBlocks,
                                      l2Allocations: [.init(publicKey: pool.publicKey, balance: poolBalance),
                                                      .init(publicKey: alice.publicKey, balance: 500)],
                                      airdropPool: pool.publicKey, airdropAmount: 100))
    }

    func claim(_ label: String, fee: UInt64 = 1) -> Envelope {
        Envelope(kind: .l2Claim, payload: Claim(fee: fee).encoded, domain: domain, key: SigningKey(label: label))
    }

    /// An L1 that commits whatever it is given, one block per call, through the real ledger.
    struct L1 {
        var ledger: Ledger
        let proposer: PublicKey
        var timeMs: UInt64 = 0

        mutating func commit(_ txs: [Envelope]) -> Ledger.BlockResult {
            timeMs += 100
            let header = BlockHeader(protocolVersion: 1, height: ledger.height + 1, timeMs: timeMs, proposer: proposer,
                                     previousBlockId: ledger.lastBlockId, stateRoot: ledger.stateRoot,
                                     txRoot: Block.txRoot(txs), txCount: UInt32(txs.count))
            return ledger.execute(Block(header: header, txs: txs))
        }
    }

    func chunkTxs(_ chunks: [BatchChunk], key: SigningKey? = nil) -> [Envelope] {
        chunks.map { Envelope(kind: .batchChunk, payload: $0.encoded, domain: domain, key: key ?? sequencerKey) }
    }

    @Test func aReplicaDerivesTheSequencersRootForEveryBatch() throws {
        let genesis = genesis()
        var l1 = L1(ledger: try Ledger(genesis: genesis), proposer: proposer.publicKey)
        var sequencer = Sequencer.Instance(settings: .init(admission: .init(queueTxsMax: 1_000), blockTxsMax: 3,
                                                           batchBytesMax: 2_000, chunkDataBytesMax: 300),
                                           derived: try L2Chain(genesis: genesis), nextSequence: 0, nextBatchIndex: 0)
        var replica = Derivation.Instance(chain: try L2Chain(genesis: genesis), forcedInclusionBlocks: 4)
        for index in 0..<8 { #expect(sequencer.offer(claim("claimer-\(index)"), nowMs: 0) == nil) }
        #expect(sequencer.offer(claim("claimer-0"), nowMs: 0) == nil) // queued; refused at execution
        var sequencerRoots: [UInt64: Bytes32] = [:]
        var refused: [Ledger.TxOutcome] = []
        for step in 1...3 {
            if let produced = sequencer.produce(nowMs: UInt64(step) * 100, l1Height: l1.ledger.height, forced: replica.forced) {
                sequencerRoots[produced.block.header.height] = produced.block.header.stateRoot
                refused += produced.refused.map(\.1)
            }
        }
        #expect(refused == [.notEligible])
        #expect(sequencer.backlogBytes > 0)
        let chunks = sequencer.post(nowMs: 1_000)
        #expect(chunks.count > 1, "the batch is split into several chunks")
        // Delivered out of order: L1 takes only the next sequence number, the rest wait (a mempool).
        var waiting = chunkTxs(chunks.reversed())
        var derivedRoots: [UInt64: Bytes32] = [:]
        var applied: [Derivation.Event] = []
        while !waiting.isEmpty {
            let result = l1.commit(waiting)
            waiting.removeAll { tx in (try? BatchChunk(decoding: tx.payload)).map { $0.sequence < l1.ledger.inbox.batchSequence } ?? true }
            for event in replica.onL1Block(height: l1.ledger.height, timeMs: l1.timeMs, inbox: result.inbox) {
                if case .derived(let block, _, let computed) = event { derivedRoots[block.header.height] = computed }
                if case .batchApplied = event { applied.append(event) }
            }
        }
        #expect(applied == [.batchApplied(index: 0, firstHeight: 1, lastHeight: 3, blocks: 3, stateRoot: sequencerRoots[3]!)])
        #expect(derivedRoots == sequencerRoots && derivedRoots.count == 3)
        #expect(replica.chain.ledger.account(SigningKey(label: "claimer-7").publicKey).balance == 99)
        #expect(replica.chain.headId == sequencer.chain.headId)
        #expect(sequencer.onInbox(batchSequence: l1.ledger.inbox.batchSequence) == [.init(batchIndex: 0, lastHeight: 3)])
        #expect(sequencer.postedHeight == 3 && sequencer.backlogBlocks == 0 && sequencer.backlogBytes == 0)
    }

    @Test func onlyTheSequencerPostsAndOnlyInSequence() throws {
        var l1 = L1(ledger: try Ledger(genesis: genesis()), proposer: proposer.publicKey)
        let chunk = BatchChunk(sequence: 0, batchIndex: 0, chunkIndex: 0, chunkCount: 1, data: [1, 2, 3])
        let rootBefore = l1.ledger.stateRoot
        let forged = l1.commit(chunkTxs([chunk], key: alice))
        #expect(forged.applied == 0 && l1.ledger.inbox.batchSequence == 0)
        #expect(l1.ledger.admissionCheck(chunkTxs([chunk], key: alice)[0]) == .notSequencer)
        let skipped = BatchChunk(sequence: 1, batchIndex: 0, chunkIndex: 0, chunkCount: 1, data: [])
        #expect(l1.commit(chunkTxs([skipped])).applied == 0)
        let result = l1.commit(chunkTxs([chunk]))
        #expect(result.inbox == [.chunk(chunk)] && l1.ledger.inbox.batchSequence == 1)
        #expect(l1.ledger.stateRoot != rootBefore)
        #expect(l1.ledger.admissionCheck(chunkTxs([chunk])[0]) == .badNonce(expected: 1, got: 0))
    }

    func forcedTx(nonce: UInt64, claimer: String) -> Envelope {
        let inner = claim(claimer)
        return Envelope(kind: .forcedTx, payload: ForcedTx(fee: 5, nonce: nonce, l2Tx: inner.bytes).encoded,
                        domain: domain, key: alice)
    }

    @Test func aForcedTransactionIsIncludedByDerivationWhenTheSequencerIsDown() throws {
        let genesis = genesis(forcedInclusionBlocks: 4)
        var l1 = L1(ledger: try Ledger(genesis: genesis), proposer: proposer.publicKey)
        var replica = Derivation.Instance(chain: try L2Chain(genesis: genesis), forcedInclusionBlocks: 4)
        let result = l1.commit([forcedTx(nonce: 0, claimer: "forced-claimer")])
        #expect(result.applied == 1 && l1.ledger.account(alice.publicKey).balance == 995)
        var events = replica.onL1Block(height: 1, timeMs: l1.timeMs, inbox: result.inbox)
        #expect(events == [.forcedRecorded(index: 0)])
        for _ in 2...4 {
            let empty = l1.commit([])
            events = replica.onL1Block(height: l1.ledger.height, timeMs: l1.timeMs, inbox: empty.inbox)
            #expect(events.isEmpty, "not due before 4 L1 blocks")
        }
        let deadline = l1.commit([])
        events = replica.onL1Block(height: 5, timeMs: l1.timeMs, inbox: deadline.inbox)
        guard case .forcedBlock(let block) = events.first else {
            Issue.record("expected a forced block, got \(events)")
            return
        }
        #expect(block.header.height == 1 && !block.header.bySequencer && block.header.forcedThrough == 1)
        #expect(events.dropFirst().first == .forcedIncluded(index: 0, l2Height: 1, l1Blocks: 4, l1WaitMs: 400, bySequencer: false))
        #expect(replica.chain.ledger.account(SigningKey(label: "forced-claimer").publicKey).balance == 99)
        // A second replica gets the same chain from the same L1 blocks.
        var other = Derivation.Instance(chain: try L2Chain(genesis: genesis), forcedInclusionBlocks: 4)
        var check = L1(ledger: try Ledger(genesis: genesis), proposer: proposer.publicKey)
        for height in 1...5 {
            let txs = height == 1 ? [forcedTx(nonce: 0, claimer: "forced-claimer")] : []
            let result = check.commit(txs)
            _ = other.onL1Block(height: UInt64(height), timeMs: check.timeMs, inbox: result.inbox)
        }
        #expect(other.chain.headId == replica.chain.headId && other.chain.stateRoot == replica.chain.stateRoot)
    }

    @Test func theSequencerIncludesAForcedTransactionInItsNextBlock() throws {
        let genesis = genesis(forcedInclusionBlocks: 4)
        var l1 = L1(ledger: try Ledger(genesis: genesis), proposer: proposer.publicKey)
        var sequencer = Sequencer.Instance(settings: .init(admission: .init(queueTxsMax: 100), postIntervalMs: 0),
                                           derived: try L2Chain(genesis: genesis), nextSequence: 0, nextBatchIndex: 0)
        var replica = Derivation.Instance(chain: try L2Chain(genesis: genesis), forcedInclusionBlocks: 4)
        _ = replica.onL1Block(height: 1, timeMs: 100, inbox: l1.commit([forcedTx(nonce: 0, claimer: "f")]).inbox)
        #expect(sequencer.offer(claim("ordinary"), nowMs: 100) == nil)
        let made = sequencer.produce(nowMs: 150, l1Height: 1, forced: replica.forced)
        let produced = try #require(made)
        #expect(produced.block.txs.count == 2 && produced.block.header.forcedThrough == 1)
        let inner = try Envelope(decoding: ForcedTx(decoding: forcedTx(nonce: 0, claimer: "f").payload).l2Tx)
        #expect(produced.block.txs[0] == inner)
        let events = replica.onL1Block(height: 2, timeMs: 200, inbox: l1.commit(chunkTxs(sequencer.post(nowMs: 200))).inbox)
        #expect(events.contains(.forcedIncluded(index: 0, l2Height: 1, l1Blocks: 1, l1WaitMs: 100, bySequencer: true)))
        #expect(replica.chain.headId == sequencer.chain.headId)
    }

    @Test func aWrongRootHaltsDerivationAndABlockSkippingAForcedTransactionIsRejected() throws {
        let genesis = genesis(forcedInclusionBlocks: 10)
        var l1 = L1(ledger: try Ledger(genesis: genesis), proposer: proposer.publicKey)
        var honest = try L2Chain(genesis: genesis)
        var replica = Derivation.Instance(chain: try L2Chain(genesis: genesis), forcedInclusionBlocks: 10)
        _ = replica.onL1Block(height: 1, timeMs: 100, inbox: l1.commit([forcedTx(nonce: 0, claimer: "f")]).inbox)
        // Leaving a forced transaction for a later block is allowed (until its deadline); claiming to
        // consume more than the inbox holds, or consuming something else, is not.
        var skipping = honest
        let skipped = skipping.build(forced: [], txs: [claim("x")], timeMs: 1, l1Origin: 1, bySequencer: true).block
        #expect(replica.chain.problem(with: skipped, forcedQueue: replica.forced) == nil)
        var overreaching = skipped
        overreaching.header.forcedThrough = 2
        #expect(replica.chain.problem(with: overreaching, forcedQueue: replica.forced)
                == "L2 block 1 consumes forced transactions through 2; the inbox has 1")
        var substituted = skipped
        substituted.header.forcedThrough = 1
        #expect(replica.chain.problem(with: substituted, forcedQueue: replica.forced)
                == "L2 block 1: transaction 0 is not forced transaction 0")
        var lying = honest.build(forced: replica.forced.entries, txs: [claim("y")], timeMs: 1, l1Origin: 1, bySequencer: true).block
        lying.header.stateRoot = Bytes32.zero
        let batch = Batch(index: 0, blocks: [lying]).encoded
        let chunk = BatchChunk(sequence: 0, batchIndex: 0, chunkIndex: 0, chunkCount: 1, data: batch)
        let events = replica.onL1Block(height: 2, timeMs: 200, inbox: l1.commit(chunkTxs([chunk])).inbox)
        #expect(events.contains { if case .halted(let reason) = $0 { return reason.contains("claims root") } else { return false } })
        #expect(replica.halted != nil)
    }

    /// The missed L1 reorg: the sequencer credits a deposit L1 never finalized before the first block of
    /// batch 1. With a dispute contract, derivation reports every root that differs and derives on from
    /// L1's transactions; after a defeat the sequencer rebases onto the derived chain, keeping its blocks'
    /// ids and re-executing the one not yet posted.
    @Test func aPhantomDepositDivergesTheSequencerUntilItRebasesOntoTheDerivedChain() throws {
        let genesis = genesis()
        var l1 = L1(ledger: try Ledger(genesis: genesis), proposer: proposer.publicKey)
        let phantom = SigningKey(label: "reorged-deposit").publicKey
        var sequencer = Sequencer.Instance(
            settings: .init(admission: .init(queueTxsMax: 1_000), blockTxsMax: 2, batchBytesMax: 20_000,
                            phantomDeposit: .init(fromBatch: 1, account: phantom, amount: 50)),
            derived: try L2Chain(genesis: genesis), nextSequence: 0, nextBatchIndex: 0)
        var replica = Derivation.Instance(chain: try L2Chain(genesis: genesis), forcedInclusionBlocks: 4,
                                          challengeWindowBlocks: nil)
        var claimer = 0
        func produceAndPost(blocks: Int, post: Bool, at nowMs: UInt64) -> [Derivation.Event] {
            for _ in 0..<blocks {
                for _ in 0..<2 { _ = sequencer.offer(claim("claimer-\(claimer)"), nowMs: nowMs); claimer += 1 }
                _ = sequencer.produce(nowMs: nowMs, l1Height: l1.ledger.height, forced: replica.forced)
            }
            guard post else { return [] }
            let result = l1.commit(chunkTxs(sequencer.post(nowMs: nowMs)))
            _ = sequencer.onInbox(batchSequence: l1.ledger.inbox.batchSequence)
            return replica.onL1Block(height: l1.ledger.height, timeMs: l1.timeMs, inbox: result.inbox)
        }
        let first = produceAndPost(blocks: 2, post: true, at: 1_000)
        #expect(!first.contains { if case .rootMismatch = $0 { true } else { false } })
        #expect(sequencer.phantomDepositBatch == nil && sequencer.chain.stateRoot == replica.chain.stateRoot)
        let second = produceAndPost(blocks: 2, post: true, at: 2_000)
        #expect(sequencer.phantomDepositBatch == 1)
        let mismatched = second.compactMap { event -> UInt64? in
            if case .rootMismatch(let height, let batch, _, _) = event, batch == 1 { return height } else { return nil }
        }
        #expect(mismatched == [3, 4], "both blocks of batch 1 carry the deposit in their roots")
        #expect(replica.halted == nil && replica.chain.height == 4)
        #expect(replica.chain.ledger.account(phantom).balance == 0)
        #expect(sequencer.chain.ledger.account(phantom).balance == 50)
        // One more block, not posted yet: the rebase re-executes it on the derived state.
        _ = produceAndPost(blocks: 1, post: false, at: 3_000)
        let headId = sequencer.chain.headId
        let diverged = sequencer.chain.stateRoot
        #expect(sequencer.rebase(onto: try L2Chain(genesis: genesis)) == nil, "the genesis chain is behind the blocks kept")
        #expect(sequencer.chain.stateRoot == diverged)
        #expect(sequencer.rebase(onto: replica.chain) == 1)
        #expect(sequencer.chain.headId == headId && sequencer.chain.height == 5)
        #expect(sequencer.chain.ledger.account(phantom).balance == 0)
        let third = produceAndPost(blocks: 1, post: true, at: 4_000)
        let stillWrong = third.compactMap { event -> UInt64? in
            if case .rootMismatch(let height, _, _, _) = event { return height } else { return nil }
        }
        #expect(stillWrong == [5], "block 5 was made (and its root claimed) before the rebase; block 6 is right again")
        #expect(replica.chain.stateRoot == sequencer.chain.stateRoot && replica.chain.height == 6)
    }

    @Test func chunksOutOfOrderDropTheBatchAndChunkZeroStartsAgain() throws {
        var replica = Derivation.Instance(chain: try L2Chain(genesis: genesis()), forcedInclusionBlocks: 4)
        let first = BatchChunk(sequence: 0, batchIndex: 7, chunkIndex: 0, chunkCount: 3, data: [1])
        let gap = BatchChunk(sequence: 1, batchIndex: 7, chunkIndex: 2, chunkCount: 3, data: [2])
        let events = replica.onL1Block(height: 1, timeMs: 0, inbox: [.chunk(first), .chunk(gap)])
        #expect(events == [.batchRejected(index: 7, reason: "chunk 2 of 3 out of order")])
        let again = replica.onL1Block(height: 2, timeMs: 0, inbox: [.chunk(first), .chunk(BatchChunk(sequence: 2, batchIndex: 8, chunkIndex: 0, chunkCount: 1, data: [9]))])
        #expect(again == [.batchRejected(index: 7, reason: "replaced by batch 8 after 1 of 3 chunks"),
                          .batchRejected(index: 8, reason: "batch bytes do not decode")])
    }

    @Test func anAirdropClaimWorksOnceAndStopsWhenThePoolIsEmpty() throws {
        var chain = try L2Chain(genesis: genesis(poolBalance: 250))
        let built = chain.build(forced: [], txs: [claim("a"), claim("a"), claim("b"), claim("c", fee: 2)],
                                timeMs: 1, l1Origin: 0, bySequencer: true)
        #expect(built.block.txs.count == 2)
        #expect(built.refused.map(\.1) == [.notEligible, .poolEmpty])
        #expect(chain.ledger.account(SigningKey(label: "a").publicKey) == Account(balance: 99, nonce: 1))
        #expect(chain.ledger.account(sequencerKey.publicKey).balance == 2)
        #expect(chain.ledger.account(pool.publicKey).balance == 50)
    }

    /// Safe blocks become final only once the L1 block that made them safe is `challengeWindowBlocks`
    /// deep (the sequencer's own block, passed as trusted, derives to the same root).
    @Test func safeBlocksBecomeFinalAfterTheChallengeWindow() throws {
        let genesis = genesis()
        var l1 = L1(ledger: try Ledger(genesis: genesis), proposer: proposer.publicKey)
        var sequencer = Sequencer.Instance(settings: .init(admission: .init(queueTxsMax: 100), blockTxsMax: 10),
                                           derived: try L2Chain(genesis: genesis), nextSequence: 0, nextBatchIndex: 0)
        var replica = Derivation.Instance(chain: try L2Chain(genesis: genesis), forcedInclusionBlocks: 50,
                                          challengeWindowBlocks: 3)
        #expect(sequencer.offer(claim("claimer-a"), nowMs: 0) == nil)
        let made = sequencer.produce(nowMs: 100, l1Height: 0, forced: replica.forced)
        let produced = try #require(made)
        let landed = l1.commit(chunkTxs(sequencer.post(nowMs: 200)))
        let events = replica.onL1Block(height: l1.ledger.height, timeMs: l1.timeMs, inbox: landed.inbox,
                                       trusted: [1: produced.block.id])
        #expect(events.contains(.batchApplied(index: 0, firstHeight: 1, lastHeight: 1, blocks: 1,
                                              stateRoot: produced.block.header.stateRoot)))
        #expect(replica.finalHeight == 0 && !events.contains { if case .finalized = $0 { true } else { false } })
        var finalizedAt: UInt64?
        for _ in 0..<4 where finalizedAt == nil {
            let result = l1.commit([])
            for event in replica.onL1Block(height: l1.ledger.height, timeMs: l1.timeMs, inbox: result.inbox) {
                if case .finalized(let height, let safeL1) = event {
                    #expect(height == 1 && safeL1 == 1)
                    finalizedAt = l1.ledger.height
                }
            }
        }
        #expect(finalizedAt == 4 && replica.finalHeight == 1, "safe at L1 height 1, final 3 blocks later")
    }
}
