import Benchmark
import Consensus
import Ledger
import Sodium
import Wire

// Micro-benchmarks of the protocol cores, without signature checks (those are the machine's limit,
// measured by `faultline bench`): the wire codec, block-part reassembly, one height of consensus with
// 100 validators, and ledger execution of a 2,000-transfer block.

let domain = Domain(chainId: "bench-cores")
let accounts = (0..<256).map { SigningKey(label: "bench-cores/account/\($0)") }
let proposerKey = SigningKey(label: "bench-cores/proposer")

/// 2,000 signed transfers, each account's nonces increasing.
let transfers: [Envelope] = (0..<2_000).map { index in
    let from = index % accounts.count
    return Envelope(kind: .transfer,
                    payload: Transfer(to: accounts[(from + 1) % accounts.count].publicKey, amount: 1, fee: 1,
                                      nonce: UInt64(index / accounts.count)).encoded,
                    domain: domain, key: accounts[from])
}

let genesis = Genesis(chainId: "bench-cores", protocolVersion: 1, genesisTimeMs: 0,
                      validators: [.init(name: "p", publicKey: proposerKey.publicKey, stake: 1)],
                      allocations: accounts.map { .init(publicKey: $0.publicKey, balance: 1_000_000) })

func block(on ledger: Ledger, _ txs: [Envelope]) -> Block {
    Block(header: BlockHeader(protocolVersion: 1, height: ledger.height + 1, timeMs: 1, proposer: proposerKey.publicKey,
                              previousBlockId: ledger.lastBlockId, stateRoot: ledger.stateRoot,
                              txRoot: Block.txRoot(txs), txCount: UInt32(txs.count)),
          txs: txs)
}

let validators100 = ValidatorSet(members: (0..<100).map {
    ValidatorSet.Member(name: "v\($0)", publicKey: SigningKey(label: "bench-cores/v\($0)").publicKey, stake: 10)
})

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput],
                                           maxDuration: .seconds(3), maxIterations: 100_000)

    let vote = Envelope(kind: .prevote, payload: Vote(height: 7, round: 0, blockId: Blake2b.hash([1])).encoded,
                        domain: domain, key: proposerKey)
    Benchmark("wire: decode a vote envelope and its message", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations {
            let envelope = try Envelope(decoding: vote.bytes)
            blackHole(try Message(kind: envelope.kind, payload: envelope.payload))
        }
    }
    Benchmark("wire: encode a transfer (no signature)", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let transfer = Transfer(to: proposerKey.publicKey, amount: 5, fee: 1, nonce: 42)
        for _ in benchmark.scaledIterations { blackHole(transfer.encoded) }
    }

    // A 2,000-transfer block split as the proposer does, then put back together as a peer does
    // (Merkle proof of every part checked).
    let ledger = try! Ledger(genesis: genesis)
    let fullBlock = block(on: ledger, transfers)
    let encoded = fullBlock.encoded
    let (root, parts) = PartSet.split(encoded, payloadBytesMax: 1_232, fixedOverhead: Envelope.framingBytes(.blockPart) + 12)
    Benchmark("parts: split a 2,000-transfer block (\(parts.count) parts)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(PartSet.split(encoded, payloadBytesMax: 1_232, fixedOverhead: Envelope.framingBytes(.blockPart) + 12))
        }
    }
    Benchmark("parts: reassemble and decode a 2,000-transfer block") { benchmark in
        for _ in benchmark.scaledIterations {
            var assembler = PartSet.Assembler(root: root, total: parts.count, bytesMax: Block.bytesMax)
            for part in parts {
                if case .complete(let bytes) = assembler.add(part) { blackHole(try Block(decoding: bytes)) }
            }
        }
    }

    // One height of Tendermint at one of 100 validators: the proposal, then every prevote and precommit.
    let value = Blake2b.hash(Array("block".utf8))
    Benchmark("consensus: one height, 100 validators (no signatures)") { benchmark in
        for _ in benchmark.scaledIterations {
            var instance = Tendermint.Instance(validators: validators100, me: 1, settings: .init(), height: 1)
            _ = instance.process(.start)
            let proposer = validators100.proposer(height: 1, round: 0)
            let proposal = Proposal(height: 1, round: 0, polRound: -1, blockId: value, partsRoot: value, partCount: 1,
                                    blockBytes: 1)
            _ = instance.process(.proposal(proposal, from: proposer, valid: true))
            var decided = false
            for type in [Tendermint.VoteType.prevote, .precommit] {
                for validator in 0..<100 where validator != 1 {
                    let effects = instance.process(.vote(type, Vote(height: 1, round: 0, blockId: value), from: validator,
                                                         signature: Bytes64.zero))
                    if effects.contains(where: { if case .decide = $0 { return true } else { return false } }) { decided = true }
                }
            }
            precondition(decided, "100 validators' votes for one block must decide the height")
        }
    }

    Benchmark("ledger: execute a 2,000-transfer block (no signatures)") { benchmark in
        for _ in benchmark.scaledIterations {
            var copy = ledger
            blackHole(copy.execute(fullBlock))
        }
    }
}
