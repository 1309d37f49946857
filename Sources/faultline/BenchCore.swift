import ArgumentParser
import Foundation
import Ledger
import Rollup
import Sodium
import Wire

/// `faultline bench sequencer-core`: where a sequencer's time per transaction goes, stage by stage,
/// on one thread, with no network: the pure cores the node runs, fed the same signed claims.
struct SequencerCore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sequencer-core",
        abstract: "Microseconds per L2 transaction in each stage of the sequencer and of derivation (one thread).")

    @Option(help: "Claims from distinct accounts to push through.")
    var claims = 100_000

    @Option(help: "Transactions per L2 block.")
    var blockTxs = 2_000

    func validate() throws {
        guard (1_000...2_000_000).contains(claims) else { throw ValidationError("--claims must be in 1000…2000000") }
        guard (1...L2Block.txsMax).contains(blockTxs) else { throw ValidationError("--block-txs must be in 1…\(L2Block.txsMax)") }
    }

    func run() throws {
        let sequencerKey = SigningKey(label: "bench/sequencer")
        let pool = SigningKey(label: "bench/pool")
        let validator = SigningKey(label: "bench/validator")
        let chainId = "bench-core"
        let domain = Domain(chainId: chainId)
        let genesis = Genesis(chainId: chainId, protocolVersion: 1, genesisTimeMs: 0,
                              validators: [.init(name: "v1", publicKey: validator.publicKey, stake: 1)], allocations: [],
                              rollup: RollupGenesis(sequencer: sequencerKey.publicKey, forcedInclusionBlocks: 1_000_000,
                                                    l2Allocations: [.init(publicKey: pool.publicKey, balance: UInt64(claims) * 10)],
                                                    airdropPool: pool.publicKey, airdropAmount: 10))
        print("signing \(claims) claims…")
        let payload = Claim(fee: 0).encoded
        let datagrams = (0..<claims).map {
            Envelope(kind: .l2Claim, payload: payload, domain: domain, key: SigningKey(label: "bench/claimer/\($0)")).bytes
        }
        var stages: [(String, Double)] = []
        func time(_ name: String, _ body: () throws -> Void) rethrows {
            let clock = ContinuousClock()
            let elapsed = try clock.measure(body)
            stages.append((name, elapsed.seconds * 1e6 / Double(claims)))
        }
        var envelopes: [Envelope] = []
        try time("decode + id (edge, before the check)") {
            envelopes = try datagrams.map { try Envelope(decoding: $0) }
            for envelope in envelopes { _ = envelope.id }
        }
        time("signature check (edge)") {
            for envelope in envelopes where envelope.verify(domain: domain) != .valid { fatalError("bad claim") }
        }
        var sequencer = Sequencer.Instance(
            settings: .init(admission: .init(queueTxsMax: claims + 1), blockTxsMax: blockTxs, batchBytesMax: 400_000,
                            chunkDataBytesMax: 1_000),
            derived: try L2Chain(genesis: genesis), nextSequence: 0, nextBatchIndex: 0)
        time("admission (queue)") {
            for envelope in envelopes where sequencer.offer(envelope, nowMs: 1) != nil { fatalError("refused") }
        }
        var blocks: [L2Block] = []
        time("L2 blocks: execute, state root, ids") {
            while let produced = sequencer.produce(nowMs: 2, l1Height: 0, forced: ForcedQueue()), !produced.block.txs.isEmpty {
                blocks.append(produced.block)
            }
        }
        var chunks: [BatchChunk] = []
        time("batches: encode and chunk") {
            var now: UInt64 = 1_000
            while true {
                let out = sequencer.post(nowMs: now)
                if out.isEmpty { break }
                chunks += out
                // L1 takes every chunk at once here, so nothing is ever re-sent.
                _ = sequencer.onInbox(batchSequence: sequencer.nextSequence)
                now += 200
            }
        }
        var chunkTxs: [Envelope] = []
        time("sign chunks (L1 transactions)") {
            chunkTxs = chunks.map { Envelope(kind: .batchChunk, payload: $0.encoded, domain: domain, key: sequencerKey) }
        }
        var l1 = try Ledger(genesis: genesis)
        var inbox: [[InboxItem]] = []
        time("L1: check chunk signatures, execute into the inbox") {
            for slice in stride(from: 0, to: chunkTxs.count, by: 1_000) {
                let txs = Array(chunkTxs[slice..<min(slice + 1_000, chunkTxs.count)])
                for tx in txs where tx.verify(domain: domain) != .valid { fatalError("bad chunk") }
                let header = BlockHeader(protocolVersion: 1, height: l1.height + 1, timeMs: l1.height * 100,
                                         proposer: validator.publicKey, previousBlockId: l1.lastBlockId,
                                         stateRoot: l1.stateRoot, txRoot: Block.txRoot(txs), txCount: UInt32(txs.count))
                inbox.append(l1.execute(Block(header: header, txs: txs)).inbox)
            }
        }
        let trusted = Dictionary(uniqueKeysWithValues: blocks.map { ($0.header.height, $0.id) })
        for (name, trust) in [("derivation, own blocks (sequencer)", trusted), ("derivation with signature checks (replica)", [:])] {
            var derivation = Derivation.Instance(chain: try L2Chain(genesis: genesis), forcedInclusionBlocks: 1_000_000)
            var derived = 0
            time(name) {
                for (index, items) in inbox.enumerated() {
                    for event in derivation.onL1Block(height: UInt64(index + 1), timeMs: UInt64(index) * 100, inbox: items,
                                                      trusted: trust) {
                        if case .derived(let block, _, let root) = event {
                            guard root == block.header.stateRoot else { fatalError("root mismatch") }
                            derived += block.txs.count
                        }
                    }
                }
            }
            guard derived == claims else { throw ValidationError("derived \(derived) of \(claims) claims") }
        }
        print("stage (one thread, \(claims) claims, \(blocks.count) L2 blocks, \(chunks.count) chunks)   µs/tx   max tx/s")
        for (name, micros) in stages {
            print(name.padding(toLength: 58, withPad: " ", startingAt: 0)
                  + String(format: "%8.2f %10.0f", micros, 1e6 / micros))
        }
        let sequencerStages = stages.filter { !$0.0.contains("replica") }.reduce(0) { $0 + $1.1 }
        print(String(format: "a sequencer that follows L1 spends %.1f µs per transaction (%.0f/s on one core); the "
                     + "signature check is %.0f%% of it", sequencerStages, 1e6 / sequencerStages,
                     (stages.first { $0.0.hasPrefix("signature") }?.1 ?? 0) / sequencerStages * 100))
    }
}
