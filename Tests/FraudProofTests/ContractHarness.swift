import Basics
import Ledger
import Rollup
import Sodium
import Testing
import Wire
@testable import FraudProof

/// An L1 chain with the dispute contract, executed by two validators' ledgers side by side (their
/// roots, which include the contract's digest, must agree after every block), and the parties'
/// agents playing from what L1 shows them.
struct ContractHarness {
    static let chainId = "dispute-test"
    static let l1Domain = Domain(chainId: chainId)
    static let sequencer = SigningKey(label: "sequencer")
    static let challengers = (0..<6).map { SigningKey(label: "challenger-\($0)") }
    static let validator = SigningKey(label: "v1")
    static let settings = DisputeSettings(windowBlocks: 10, clockBlocks: 20, assertionBond: 1_000, challengeBond: 400)
    static let l1Funds: UInt64 = 100_000

    static func genesis() -> Genesis {
        var genesis = MachineTests.genesis()
        genesis.chainId = chainId
        genesis.allocations = ([sequencer] + challengers).map { .init(publicKey: $0.publicKey, balance: l1Funds) }
        genesis.rollup!.disputes = settings
        return genesis
    }

    var ledgers: [Ledger]
    var log: [Block] = []
    var events: [DisputeEvent] = []
    var chunkSequence: UInt64 = 0
    /// The L2 chain the batches extend (headers chained, roots not checked by L1).
    var l2: L2Chain
    var nextBatch: UInt64 = 0

    init() throws {
        let genesis = Self.genesis()
        ledgers = [try Ledger(genesis: genesis), try Ledger(genesis: genesis)]
        l2 = try L2Chain(genesis: genesis)
    }

    var ledger: Ledger { ledgers[0] }
    var height: UInt64 { ledger.height }
    var disputes: Disputes { ledger.disputes! }
    var totalFunds: UInt64 {
        ([Self.sequencer] + Self.challengers).reduce(0) { $0 + ledger.account($1.publicKey).balance }
            + disputes.held + disputes.burned
    }

    /// Commits one L1 block with `txs` on every ledger; returns each transaction's outcome.
    @discardableResult
    mutating func commit(_ txs: [Envelope]) -> [Ledger.TxOutcome] {
        var outcomes: [Ledger.TxOutcome] = []
        var scratch = ledger
        for tx in txs { outcomes.append(scratch.apply(tx, feeRecipient: Self.validator.publicKey)) }
        let header = BlockHeader(protocolVersion: 1, height: height + 1, timeMs: height + 1,
                                 proposer: Self.validator.publicKey, previousBlockId: ledger.lastBlockId,
                                 stateRoot: ledger.stateRoot, txRoot: Block.txRoot(txs), txCount: UInt32(txs.count))
        let block = Block(header: header, txs: txs)
        let results = ledgers.indices.map { ledgers[$0].execute(block) }
        #expect(results[0] == results[1], "validators disagree at L1 height \(header.height)")
        #expect(ledgers[0].stateRoot == ledgers[1].stateRoot)
        log.append(block)
        events += results[0].disputes
        return outcomes
    }

    mutating func sign(_ key: SigningKey, _ dispute: DisputeTx) -> Envelope {
        Envelope(kind: .dispute, payload: dispute.encoded, domain: Self.l1Domain, key: key)
    }

    /// Posts `txs` L2 transactions (valid and not, from `MachineTests.transactions`) as one batch of
    /// `blocks` L2 blocks, in chunks; returns the batch's index, its blocks and the L2 state before it.
    mutating func postBatch(seed: UInt64, txs: Int, blocks blockCount: Int) -> (index: UInt64, execution: Execution) {
        var rng = SplitMix64(seed: seed)
        let txs = MachineTests.transactions(count: txs, rng: &rng, domain: Self.l1Domain)
        let start = l2
        var blocks: [L2Block] = []
        let size = max(1, (txs.count + blockCount - 1) / blockCount)
        for index in 0..<blockCount {
            let slice = Array(txs.dropFirst(index * size).prefix(size))
            let header = L2BlockHeader(height: l2.height + 1, timeMs: 0, parentId: l2.headId, stateRoot: .zero,
                                       txRoot: Block.txRoot(slice), txCount: UInt32(slice.count), forcedThrough: 0,
                                       l1Origin: 0, bySequencer: true)
            let block = L2Block(header: header, txs: slice)
            _ = l2.apply(block)
            blocks.append(block)
        }
        let index = nextBatch
        nextBatch += 1
        let bytes = Batch(index: index, blocks: blocks).encoded
        let chunkBytes = 60_000
        let count = (bytes.count + chunkBytes - 1) / chunkBytes
        let chunks = (0..<count).map { position in
            let chunk = BatchChunk(sequence: chunkSequence + UInt64(position), batchIndex: index, chunkIndex: UInt16(position),
                                   chunkCount: UInt16(count),
                                   data: Array(bytes[(position * chunkBytes)..<min(bytes.count, (position + 1) * chunkBytes)]))
            return Envelope(kind: .batchChunk, payload: chunk.encoded, domain: Self.l1Domain, key: Self.sequencer)
        }
        chunkSequence += UInt64(count)
        let outcomes = commit(chunks)
        #expect(outcomes.allSatisfy { $0 == .applied }, "\(outcomes)")
        let execution = Execution(items: Machine.items(of: blocks), start: start.machineStore, context: start.machineContext)
        return (index, execution)
    }

    /// Asserts batch `batch` as `party` has it, on the live parent; returns the assertion's id.
    mutating func assert(batch: UInt64, _ party: Party) -> Bytes32 {
        let record = disputes.batches[batch]!
        let parent = disputes.expectedParent(of: record)!
        let assertion = Assertion(batch: batch, parent: parent, root: party.claimedRoot, commitment: party.trace.commitment,
                                  endProof: party.endClaim.proof)
        let outcome = commit([sign(Self.sequencer, .assert(assertion))])
        #expect(outcome == [.applied])
        return assertion.id
    }

    mutating func challenge(_ id: Bytes32, by key: SigningKey, _ party: Party) -> Ledger.TxOutcome {
        commit([sign(key, .challenge(assertion: id, commitment: party.trace.commitment, end: party.endClaim))])[0]
    }

    /// The transaction `party` (as `side`, signing with `key`) sends now in game `game`, if any.
    func move(_ id: Bytes32, game: Int, _ party: Party, as side: Bisection.Side, key: SigningKey) -> Envelope? {
        guard let record = disputes.assertions[id], game < record.games.count else { return nil }
        switch party.nextMove(in: record.games[game].game, as: side) {
        case .claim(let claim)?:
            return Envelope(kind: .dispute, payload: DisputeTx.move(assertion: id, game: UInt32(game), claim: claim).encoded,
                            domain: Self.l1Domain, key: key)
        case .oneStep(let proof)?:
            return Envelope(kind: .dispute, payload: DisputeTx.oneStep(assertion: id, game: UInt32(game), proof: proof).encoded,
                            domain: Self.l1Domain, key: key)
        case nil:
            return nil
        }
    }

    /// One L1 block carrying every move owed in the games of assertion `id`, the proposer answering in
    /// every game.
    mutating func round(_ id: Bytes32, proposer: Party, challengers: [(SigningKey, Party)]) {
        var txs: [Envelope] = []
        for (index, entry) in (disputes.assertions[id]?.games ?? []).enumerated() where !entry.settled {
            if let tx = move(id, game: index, proposer, as: .proposer, key: Self.sequencer) { txs.append(tx) }
            if let (key, party) = challengers.first(where: { $0.0.publicKey == entry.challenger }),
               let tx = move(id, game: index, party, as: .challenger, key: key) {
                txs.append(tx)
            }
        }
        let outcomes = commit(txs)
        #expect(outcomes.allSatisfy { $0 == .applied }, "\(outcomes.map(\.description))")
    }

    /// Plays rounds until every game of assertion `id` has ended (bounded); returns the L1 blocks it took.
    @discardableResult
    mutating func play(_ id: Bytes32, proposer: Party, challengers: [(SigningKey, Party)], blocksMax: Int = 400) -> Int {
        for blocks in 0..<blocksMax {
            guard let record = disputes.assertions[id], record.games.contains(where: { !$0.settled }) else { return blocks }
            round(id, proposer: proposer, challengers: challengers)
        }
        Issue.record("games of \(id.short) still running after \(blocksMax) L1 blocks")
        return blocksMax
    }

    /// Commits empty blocks until `condition` holds (bounded); returns how many.
    @discardableResult
    mutating func idle(until condition: (ContractHarness) -> Bool, blocksMax: Int = 200) -> Int {
        for blocks in 0..<blocksMax {
            if condition(self) { return blocks }
            commit([])
        }
        Issue.record("condition not met after \(blocksMax) L1 blocks")
        return blocksMax
    }

    func ended(_ id: Bytes32) -> [(game: Int, outcome: Bisection.Outcome, bisections: Int, settlement: Settlement)] {
        events.compactMap {
            guard case .gameEnded(id, let game, _, _, let outcome, let bisections, _, _, let settlement) = $0 else { return nil }
            return (game, outcome, bisections, settlement)
        }
    }

    func wasConfirmed(_ id: Bytes32) -> Bool { events.contains { if case .confirmed(id, _, _, _) = $0 { true } else { false } } }
    func wasRejected(_ id: Bytes32) -> Bool { events.contains { if case .rejected(id, _, _, _) = $0 { true } else { false } } }
    func oneStepCount(_ id: Bytes32) -> Int { events.filter { if case .oneStep(id, _, _) = $0 { true } else { false } }.count }
}
