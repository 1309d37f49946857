import Ledger
import Sodium
import Testing
import Wire
@testable import Consensus

/// Equivocation: two signed votes of one type from one validator for one height and round, with
/// different values, are proof; the ledger records each offence once.
@Suite struct EvidenceTests {
    static let domain = Domain(chainId: "evidence-test")
    static let offender = Harness.keys[2]

    static func signed(_ type: MessageKind, _ vote: Vote, _ key: SigningKey = offender, domain: Domain = domain) -> Bytes64 {
        Envelope(kind: type, payload: vote.encoded, domain: domain, key: key).signature
    }

    static func evidence(height: UInt64 = 1, round: UInt32 = 0, _ a: Bytes32?, _ b: Bytes32?,
                         signer: SigningKey = offender) -> DuplicateVoteEvidence {
        let first = Vote(height: height, round: round, blockId: a), second = Vote(height: height, round: round, blockId: b)
        return DuplicateVoteEvidence(kind: .prevote, validator: offender.publicKey, first, signed(.prevote, first, signer),
                                     second, signed(.prevote, second, signer))!
    }

    @Test func theCoreTurnsAConflictingVoteIntoEvidence() {
        var harness = Harness(me: 0)
        _ = harness.start()
        let a = Vote(height: 1, round: 0, blockId: harness.valueA), b = Vote(height: 1, round: 0, blockId: harness.valueB)
        let sigA = Self.signed(.prevote, a), sigB = Self.signed(.prevote, b)
        #expect(harness.instance.process(.vote(.prevote, a, from: 2, signature: sigA)).isEmpty)
        // The same vote again is a duplicate, not an offence.
        #expect(harness.instance.process(.vote(.prevote, a, from: 2, signature: sigA)).isEmpty)
        let effects = harness.instance.process(.vote(.prevote, b, from: 2, signature: sigB))
        guard case .equivocation(let evidence)? = effects.first, effects.count == 1 else {
            Issue.record("expected one equivocation effect, got \(effects)")
            return
        }
        #expect(evidence.validator == Self.offender.publicKey && evidence.kind == .prevote)
        #expect(Set([evidence.first.blockId, evidence.second.blockId]) == [harness.valueA, harness.valueB])
        #expect(evidence.problem(domain: Self.domain) == nil)
        // Counted for its own value (Algorithm 1 counts signers per value), not twice in total.
        #expect(harness.instance.stake(.prevote, round: 0, blockId: harness.valueB) == 1)
        #expect(harness.instance.rounds[0]?.prevotes.totalStake == 1)
        #expect(harness.instance.metrics.conflictingVote == 1 && harness.instance.metrics.duplicateVote == 1)
    }

    @Test func evidenceIsCanonicalAndChecked() throws {
        let x = Blake2b.hash(Array("x".utf8)), y = Blake2b.hash(Array("y".utf8))
        let one = Self.evidence(x, y), other = Self.evidence(y, x)
        #expect(one == other && one.encoded == other.encoded)
        #expect(try DuplicateVoteEvidence(decoding: one.encoded) == one)
        #expect(Self.evidence(nil, x).first.blockId == nil)
        // Equal votes, or votes of different rounds, are no offence.
        let vote = Vote(height: 1, round: 0, blockId: x)
        #expect(DuplicateVoteEvidence(kind: .prevote, validator: Self.offender.publicKey, vote, .zero, vote, .zero) == nil)
        #expect(DuplicateVoteEvidence(kind: .prevote, validator: Self.offender.publicKey, vote, .zero,
                                      Vote(height: 1, round: 1, blockId: y), .zero) == nil)
        // Swapped on the wire (not canonical) does not decode.
        var swapped = one
        swap(&swapped.first, &swapped.second)
        swap(&swapped.firstSignature, &swapped.secondSignature)
        #expect(throws: DecodeError.self) { try DuplicateVoteEvidence(decoding: swapped.encoded) }
        // Signed by someone else, or for another chain: not proof against the offender.
        #expect(Self.evidence(x, y, signer: Harness.keys[1]).problem(domain: Self.domain) != nil)
        #expect(one.problem(domain: Domain(chainId: "another-chain")) != nil)
    }

    @Test func theLedgerRecordsEachOffenceOnce() throws {
        let genesis = Genesis(chainId: "evidence-test", protocolVersion: 1, genesisTimeMs: 0,
                              validators: Harness.keys.enumerated().map { .init(name: "v\($0.offset)", publicKey: $0.element.publicKey, stake: 1) },
                              allocations: [])
        var ledger = try Ledger(genesis: genesis)
        let x = Blake2b.hash(Array("x".utf8)), y = Blake2b.hash(Array("y".utf8))
        func tx(_ evidence: DuplicateVoteEvidence, reporter: SigningKey) -> Envelope {
            Envelope(kind: .evidence, payload: evidence.encoded, domain: Self.domain, key: reporter)
        }
        let first = tx(Self.evidence(x, y), reporter: Harness.keys[0])
        let again = tx(Self.evidence(y, x), reporter: Harness.keys[1])
        let future = tx(Self.evidence(height: 5, x, y), reporter: Harness.keys[0])
        var stranger = Self.evidence(x, y)
        stranger.validator = SigningKey(label: "not-a-validator").publicKey
        #expect(ledger.admissionCheck(first) == .applied)
        #expect(ledger.admissionCheck(future).label == "evidence_refused")
        #expect(ledger.admissionCheck(tx(stranger, reporter: Harness.keys[0])).label == "evidence_refused")
        let txs = [first, again]
        let block = Block(header: BlockHeader(protocolVersion: 1, height: 1, timeMs: 1, proposer: Harness.keys[0].publicKey,
                                              previousBlockId: ledger.lastBlockId, stateRoot: ledger.stateRoot,
                                              txRoot: Block.txRoot(txs), txCount: 2), txs: txs)
        let result = ledger.execute(block)
        #expect(result.applied == 1 && result.failedIndexes == [1])
        #expect(ledger.recordedEvidence.map(\.height) == [1])
        #expect(ledger.evidence(for: Self.evidence(x, y).key)?.evidence == Self.evidence(x, y))
        #expect(ledger.admissionCheck(again).label == "evidence_refused")
    }
}
