import ArgumentParser
import FraudProof
import Foundation
import Ledger
import Rollup
import Sodium
import Wire

/// `faultline bench fraud-proof`: the cost of the dispute machinery on one thread: executing a batch
/// step by step into a trace, committing to it, building one-step proofs, and L1 checking them. The
/// limit it is measured against, in the same run: applying the same batch with the ledger directly.
struct FraudProofBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fraud-proof",
        abstract: "Trace generation and commitment for 2^k steps, one-step proof building and checking (one thread).")

    @Option(help: "log2 of the trace length (steps); 20 is 1,048,576 steps.")
    var log2Steps = 20

    @Option(help: "One-step proofs to build and check (spread over the trace).")
    var proofs = 200

    func validate() throws {
        guard (4...22).contains(log2Steps) else { throw ValidationError("--log2-steps must be in 4…22") }
        guard (1...10_000).contains(proofs) else { throw ValidationError("--proofs must be in 1…10000") }
    }

    func run() throws {
        let sequencer = SigningKey(label: "bench/sequencer")
        let pool = SigningKey(label: "bench/pool")
        let chainId = "bench-fraud-proof"
        let domain = Domain(chainId: chainId)
        let steps = 1 << log2Steps
        // Transactions of five steps each and one seal: exactly `steps` when steps ≡ 1 (mod 5), else the
        // trace pads with the halted state.
        let txCount = (steps - 1) / Machine.stepsPerTransaction
        let genesis = Genesis(chainId: chainId, protocolVersion: 1, genesisTimeMs: 0,
                              validators: [.init(name: "v1", publicKey: SigningKey(label: "bench/v1").publicKey, stake: 1)],
                              allocations: [],
                              rollup: RollupGenesis(sequencer: sequencer.publicKey, forcedInclusionBlocks: 1_000,
                                                    l2Allocations: [.init(publicKey: pool.publicKey, balance: UInt64(txCount) * 10)],
                                                    airdropPool: pool.publicKey, airdropAmount: 10))
        print("signing \(txCount) claims…")
        let payload = Claim(fee: 1).encoded
        let txs = (0..<txCount).map {
            Envelope(kind: .l2Claim, payload: payload, domain: domain, key: SigningKey(label: "bench/claimer/\($0)"))
        }
        let chain = try L2Chain(genesis: genesis)
        let header = L2BlockHeader(height: 1, timeMs: 0, parentId: chain.headId, stateRoot: .zero, txRoot: Block.txRoot(txs),
                                   txCount: UInt32(txs.count), forcedThrough: 0, l1Origin: 0, bySequencer: true)
        let block = L2Block(header: header, txs: txs)
        let clock = ContinuousClock()

        var direct = chain
        var directRoot = Bytes32.zero
        let directTime = clock.measure { directRoot = direct.apply(block) }.seconds
        let execution = Execution(items: Machine.items(of: [block]), start: chain.machineStore, context: chain.machineContext)
        var run: (trace: Trace, final: Machine.State, store: FullStore)?
        let traceTime = clock.measure { run = execution.run() }.seconds
        guard let run, run.final.root == directRoot else {
            throw ValidationError("the stepped execution's root differs from the ledger's: a bug")
        }
        let leaves = run.trace.tree.levels[0]
        let commitTime = clock.measure { _ = MerkleTree(leaves: leaves) }.seconds

        let stride = max(1, run.trace.length / proofs)
        let positions = Set((0..<proofs).map { min($0 * stride + $0 % Machine.stepsPerTransaction, run.trace.length - 1) })
        // The proofs come from one execution up to the last position (a party builds one per game).
        var built: [OneStepProof] = []
        let buildTime = clock.measure { built = Array(execution.proofs(steps: positions).values) }.seconds
        var accepted = 0
        let checkTime = clock.measure {
            for proof in built {
                if case .success = proof.execute(inputRoot: execution.inputRoot, itemCount: execution.itemCount,
                                                 context: execution.context) { accepted += 1 }
            }
        }.seconds
        guard accepted == built.count else { throw ValidationError("\(built.count - accepted) true proofs refused: a bug") }
        let bytes = built.map { $0.encoded.count }

        let format = { (value: Double) in String(format: "%.2f", value) }
        print("""
        trace of \(run.trace.steps) steps (\(txCount) claims + 1 seal), padded to \(run.trace.length) = 2^\(log2Steps)
          ledger applies the batch directly     \(format(directTime)) s   (the limit: \(format(directTime * 1e6 / Double(txCount))) µs/tx)
          stepped execution into state hashes   \(format(traceTime)) s   (\(format(traceTime * 1e6 / Double(run.trace.steps))) µs/step, \(format(traceTime / directTime))× the ledger)
          trace commitment (Merkle root)        \(format(commitTime)) s   (\(format(commitTime * 1e6 / Double(run.trace.length))) µs/leaf)
          one-step proofs, build                \(format(buildTime)) s for \(built.count) (one execution to the last)
          one-step proof, L1 check              \(format(checkTime * 1e6 / Double(built.count))) µs each (\(built.count) proofs, all accepted)
          one-step proof size                   \(bytes.max() ?? 0) bytes max, \(bytes.reduce(0, +) / max(bytes.count, 1)) mean
        """)
    }
}
