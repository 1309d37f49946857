import Basics
import Ledger
import Rollup
import Sodium
import Testing
import Wire
@testable import FraudProof

/// The step machine against the ledger, its one-step proofs against its traces, and the bisection game
/// played with it: the properties of Topologies/README.md, "Fraud proofs" with real transactions, roots and witnesses.
@Suite struct MachineTests {
    static let chainId = "machine-test"
    static let sequencer = SigningKey(label: "sequencer")
    static let pool = SigningKey(label: "pool")
    static let users = (0..<6).map { SigningKey(label: "user-\($0)") }
    static let domain = Domain(chainId: chainId)

    static func genesis() -> Genesis {
        Genesis(chainId: chainId, protocolVersion: 1, genesisTimeMs: 0,
                validators: [.init(name: "v1", publicKey: SigningKey(label: "v1").publicKey, stake: 1)], allocations: [],
                rollup: RollupGenesis(sequencer: sequencer.publicKey, forcedInclusionBlocks: 4,
                                      l2Allocations: [.init(publicKey: pool.publicKey, balance: 1_000)]
                                        + users.map { .init(publicKey: $0.publicKey, balance: 500) },
                                      airdropPool: pool.publicKey, airdropAmount: 100))
    }

    /// Random L2 transactions, valid and not: transfers with right and wrong nonces, overdrafts,
    /// transfers to oneself and to new accounts, claims (some repeated, so refused), and transactions
    /// signed for another chain.
    static func transactions(count: Int, rng: inout SplitMix64, domain: Domain = domain) -> [Envelope] {
        var nonces = Array(repeating: UInt64(0), count: users.count)
        return (0..<count).map { _ in
            let pick = rng.next() % 10
            if pick < 2 {
                return Envelope(kind: .l2Claim, payload: Claim(fee: rng.next() % 3).encoded, domain: domain,
                                key: SigningKey(label: "claimer-\(rng.next() % 6)"))
            }
            let from = Int(rng.next() % UInt64(users.count))
            let to = pick == 2 ? SigningKey(label: "fresh-\(rng.next() % 50)").publicKey
                : users[Int(rng.next() % UInt64(users.count))].publicKey
            var nonce = nonces[from]
            if pick == 3 { nonce = nonce > 0 ? nonce - 1 : 0 } else { nonces[from] += 1 }
            let transfer = Transfer(to: to, amount: pick == 4 ? 10_000 : rng.next() % 60, fee: rng.next() % 4, nonce: nonce)
            let signingDomain = pick == 5 ? Domain(chainId: "another-chain") : domain
            return Envelope(kind: .l2Transfer, payload: transfer.encoded, domain: signingDomain, key: users[from])
        }
    }

    /// `txs` split into `blocks` blocks on top of `chain`, with headers good enough for `apply`.
    static func blocks(_ txs: [Envelope], count: Int, on chain: L2Chain) -> [L2Block] {
        let size = max(1, (txs.count + count - 1) / max(count, 1))
        return (0..<count).map { index in
            let slice = Array(txs.dropFirst(index * size).prefix(size))
            let header = L2BlockHeader(height: chain.height + UInt64(index) + 1, timeMs: 0, parentId: .zero,
                                       stateRoot: .zero, txRoot: Block.txRoot(slice), txCount: UInt32(slice.count),
                                       forcedThrough: 0, l1Origin: 0, bySequencer: true)
            return L2Block(header: header, txs: slice)
        }
    }

    /// A chain with one block of history, and a batch of `txs` transactions in `blocks` blocks on it.
    static func batch(seed: UInt64, txs: Int, blocks blockCount: Int) throws -> (chain: L2Chain, blocks: [L2Block]) {
        var rng = SplitMix64(seed: seed)
        var chain = try L2Chain(genesis: genesis())
        _ = chain.apply(blocks(transactions(count: 5, rng: &rng), count: 1, on: chain)[0])
        return (chain, blocks(transactions(count: txs, rng: &rng), count: blockCount, on: chain))
    }

    static func execution(_ chain: L2Chain, _ blocks: [L2Block]) -> Execution {
        Execution(items: Machine.items(of: blocks), start: chain.machineStore, context: chain.machineContext)
    }

    @Test(arguments: 0..<10)
    func steppedExecutionReachesTheLedgersRootAtEverySeal(seed: Int) throws {
        let (chain, blocks) = try Self.batch(seed: UInt64(seed), txs: 40, blocks: 3)
        let execution = Self.execution(chain, blocks)
        var replica = chain
        let roots = blocks.map { replica.apply($0) }
        let (trace, final, _) = execution.run()
        #expect(final.root == roots.last!, "seed \(seed)")
        #expect(final.item == execution.itemCount)
        #expect(trace.steps == 40 * Machine.stepsPerTransaction + 3)
        // After each seal the machine's root is that block's root.
        var position = 0
        for (block, root) in zip(blocks, roots) {
            position += block.txs.count * Machine.stepsPerTransaction + 1
            var store = execution.start
            var state = Machine.State(root: store.root())
            for _ in 0..<position {
                let item = state.phase == 0 ? execution.items[Int(state.item)] : nil
                state = try Machine.step(state, item: item, itemCount: execution.itemCount, store: &store,
                                         context: execution.context)
            }
            #expect(state.root == root && state.hash == trace.hash(at: position), "block \(block.header.height)")
        }
    }

    @Test func everyStepsProofExecutesToTheTraceAndFitsOneL1Transaction() throws {
        let (chain, blocks) = try Self.batch(seed: 7, txs: 30, blocks: 2)
        let execution = Self.execution(chain, blocks)
        let trace = execution.run().trace
        var largest = 0
        for step in 0..<trace.length {
            let proof = execution.proof(step: step)
            let result = try proof.execute(inputRoot: execution.inputRoot, itemCount: execution.itemCount,
                                           context: execution.context).get()
            #expect(result.pre == trace.hash(at: step) && result.post == trace.hash(at: step + 1), "step \(step)")
            #expect(try OneStepProof(decoding: proof.encoded) == proof)
            largest = max(largest, proof.encoded.count)
        }
        // An L1 transaction is one datagram of at most 1,232 bytes, about 130 of them envelope.
        #expect(largest <= 1_100, "largest one-step proof \(largest) bytes")
    }

    @Test func forgedProofsAreRefused() throws {
        let (chain, blocks) = try Self.batch(seed: 3, txs: 12, blocks: 2)
        let execution = Self.execution(chain, blocks)
        let trace = execution.run().trace
        func run(_ proof: OneStepProof) -> Result<(pre: Bytes32, post: Bytes32), OneStepProof.Refusal> {
            proof.execute(inputRoot: execution.inputRoot, itemCount: execution.itemCount, context: execution.context)
        }
        // A step that debits a sender (transaction 0, phase 1) and one that loads a transaction.
        let debit = execution.proof(step: 1)
        #expect(debit.witness != nil)
        var richer = debit
        richer.witness!.entries[0].account.balance += 1
        #expect(throws: OneStepProof.Refusal.missing(.rootPreimage)) { try run(richer).get() }
        var noWitness = debit
        noWitness.witness = nil
        #expect(throws: OneStepProof.Refusal.self) { try run(noWitness).get() }
        var otherBucket = debit
        otherBucket.witness = execution.proof(step: 2).witness
        if let other = otherBucket.witness, other.bucket != debit.witness!.bucket {
            #expect(throws: OneStepProof.Refusal.self) { try run(otherBucket).get() }
        }
        var wrongHeight = debit
        wrongHeight.height += 1
        #expect(throws: OneStepProof.Refusal.missing(.rootPreimage)) { try run(wrongHeight).get() }

        let load = execution.proof(step: 5)
        #expect(load.pre.phase == 0 && load.item != nil)
        var swapped = load
        swapped.item = execution.items[0]
        #expect(throws: OneStepProof.Refusal.wrongItem(1)) { try run(swapped).get() }
        var wrongPath = load
        wrongPath.itemProof = execution.inputTree.proof(0)
        #expect(throws: OneStepProof.Refusal.wrongItem(1)) { try run(wrongPath).get() }
        var noItem = load
        noItem.item = nil
        #expect(throws: OneStepProof.Refusal.missing(.item(1))) { try run(noItem).get() }

        // A forged pre-state executes, but not from the agreed hash: the game refuses it (wrongPreState).
        var forgedPre = load
        forgedPre.pre.amount = 999
        #expect(try run(forgedPre).get().pre != trace.hash(at: 5))
        // Past the end the machine is halted: a step changes nothing.
        let halted = execution.proof(step: trace.length - 1)
        let result = try run(halted).get()
        #expect(result.pre == result.post && result.post == trace.end)
    }

    /// One party in a game over a real batch: its trace (a liar's deviates from `lieAt` on, crediting the
    /// sequencer what it never received, as a sequencer that missed an L1 reorg would).
    struct Side {
        let execution: Execution
        let lie: Execution.Deviation?
        let trace: Trace

        init(_ execution: Execution, lieAt: Int?) {
            self.execution = execution
            let sequencer = MachineTests.sequencer.publicKey
            if let at = lieAt {
                lie = { @Sendable (step: Int, store: inout FullStore) in
                    guard step == at else { return }
                    var account = store.account(sequencer)
                    account.balance += 1_000
                    store.set(sequencer, account)
                }
            } else {
                lie = nil
            }
            trace = execution.run(deviation: lie).trace
        }
    }

    /// Plays a game to the end, one L1 block per move; the one-step proof is the challenger's true
    /// execution (a lying challenger has no other proof L1 would accept).
    static func play(proposer: Side, challenger: Side, clock: UInt64 = 64) throws -> Bisection.Game {
        let length = proposer.trace.length
        var game = try Bisection.Game(
            length: length, start: proposer.trace.start, proposerCommitment: proposer.trace.commitment,
            proposerEnd: proposer.trace.claim(at: length), challengerCommitment: challenger.trace.commitment,
            challengerEnd: challenger.trace.claim(at: length), clockBlocks: clock, l1Height: 10)
        var height: UInt64 = 10
        let execution = challenger.execution
        while game.outcome == nil {
            height += 1
            if game.atOneStep {
                let proof = execution.proof(step: game.low)
                let executed = try? proof.execute(inputRoot: execution.inputRoot, itemCount: execution.itemCount,
                                                  context: execution.context).get()
                try game.oneStep(.challenger, l1Height: height) { executed }
            } else {
                let side = game.turn == .proposer ? proposer : challenger
                try game.move(game.turn, side.trace.claim(at: game.midpoint), l1Height: height)
            }
        }
        return game
    }

    /// Batch shapes by step count: 1 (an empty block), 2 (two empty blocks), 7 (odd: one transaction
    /// and two seals), 103.
    static let shapes: [(txs: Int, blocks: Int)] = [(0, 1), (0, 2), (1, 2), (20, 3)]

    @Test(arguments: 0..<shapes.count)
    func theHonestSideWinsWithTheRealMachine(shape: Int) throws {
        let (txs, blockCount) = Self.shapes[shape]
        for seed in UInt64(0)..<3 {
            let (chain, blocks) = try Self.batch(seed: seed, txs: txs, blocks: blockCount)
            let execution = Self.execution(chain, blocks)
            let steps = execution.steps
            var rng = SplitMix64(seed: seed)
            let honest = Side(execution, lieAt: nil)
            for lieAt in Set([0, min(1, steps - 1), steps - 1, Int(rng.next() % UInt64(steps))]) {
                let liar = Side(execution, lieAt: lieAt)
                let depth = MerkleTree.depth(for: steps)
                let lyingProposer = try Self.play(proposer: liar, challenger: honest)
                #expect(lyingProposer.outcome?.winner == .challenger, "N \(steps) lie at \(lieAt)")
                #expect(lyingProposer.bisections == depth && lyingProposer.outcome?.reason.contains("executes") == true)
                let lyingChallenger = try Self.play(proposer: honest, challenger: liar)
                #expect(lyingChallenger.outcome?.winner == .proposer, "N \(steps) lie at \(lieAt)")
                #expect(lyingChallenger.bisections == depth && lyingChallenger.outcome?.reason.contains("executes") == true)
            }
        }
    }

    @Test func aBatchOfTwoToTheSixteenStepsIsSettledInSixteenBisections() throws {
        // 13,107 transactions of 5 steps and one seal: exactly 65,536 steps.
        var rng = SplitMix64(seed: 16)
        let chain = try L2Chain(genesis: Self.genesis())
        let blocks = Self.blocks(Self.transactions(count: 13_107, rng: &rng), count: 1, on: chain)
        let execution = Self.execution(chain, blocks)
        #expect(execution.steps == 1 << 16)
        let honest = Side(execution, lieAt: nil)
        let liar = Side(execution, lieAt: 40_000)
        let game = try Self.play(proposer: liar, challenger: honest, clock: 100)
        #expect(game.outcome?.winner == .challenger && game.bisections == 16)
        #expect(game.low == 40_000 && game.high == 40_001, "the first wrong step is found")
    }
}
