import Basics
import Sodium
import Testing
@testable import Wire

@Suite struct EnvelopeTests {
    let domain = Domain(chainId: "test-chain")
    let key = SigningKey(label: "alice")

    func transferEnvelope() -> Envelope {
        let transfer = Transfer(to: SigningKey(label: "bob").publicKey, amount: 5, fee: 1, nonce: 0)
        return Envelope(kind: .transfer, payload: transfer.encoded, domain: domain, key: key)
    }

    @Test func roundTripVerifies() throws {
        let envelope = transferEnvelope()
        let decoded = try Envelope(decoding: envelope.bytes)
        #expect(decoded == envelope)
        #expect(decoded.verify(domain: domain) == .valid)
        let message = try Message(kind: decoded.kind, payload: decoded.payload)
        guard case .transfer(let transfer) = message else {
            Issue.record("decoded \(message)")
            return
        }
        #expect(transfer.amount == 5)
    }

    @Test func signatureIsBoundToChainForkAndKind() throws {
        let envelope = transferEnvelope()
        #expect(envelope.verify(domain: Domain(chainId: "other-chain")) == .wrongChain)
        #expect(envelope.verify(domain: Domain(chainId: "test-chain", forkId: 1)) == .wrongFork)
        // Flip the kind byte: the framing still parses but the signature no longer matches.
        var bytes = envelope.bytes
        bytes[2] = MessageKind.prevote.rawValue
        let relabeled = try Envelope(decoding: bytes)
        #expect(relabeled.verify(domain: domain) == .badSignature)
        // Flip one payload bit.
        var flipped = envelope.bytes
        flipped[Envelope.headerBytes + 3] ^= 1
        #expect(try Envelope(decoding: flipped).verify(domain: domain) == .badSignature)
    }

    @Test(arguments: [0, 1, 2, 10, 48, 50, 100])
    func truncatedInputIsRejectedNotTrapped(length: Int) {
        let envelope = transferEnvelope()
        let cut = Array(envelope.bytes.prefix(length))
        #expect(throws: DecodeError.self) { try Envelope(decoding: cut) }
    }

    @Test func trailingGarbageUnknownKindAndMagicAreTyped() {
        let envelope = transferEnvelope()
        #expect(throws: DecodeError.trailingBytes(count: 3)) { try Envelope(decoding: envelope.bytes + [1, 2, 3]) }
        var unknown = envelope.bytes
        unknown[2] = 99
        #expect(throws: DecodeError.unknownKind(99)) { try Envelope(decoding: unknown) }
        var magic = envelope.bytes
        magic[0] = 0
        #expect(throws: DecodeError.badMagic(0)) { try Envelope(decoding: magic) }
    }

    @Test func oversizedPayloadIsRejectedBeforeReading() {
        let envelope = transferEnvelope()
        #expect(throws: DecodeError.oversized(field: "payload", length: 56, max: 40)) {
            try Envelope(decoding: envelope.bytes, payloadBytesMax: 40)
        }
    }

    /// Random and half-framed bytes: decoding returns an envelope that is exactly those bytes (what the peek
    /// functions read agrees with it), or a typed error; a decoded payload is a message of the envelope's kind or a
    /// typed error. Enough inputs get through the framing for the payload decoders to be exercised.
    @Test func randomBytesDecodeToThemselvesOrATypedError() {
        var generator = SplitMix64(seed: 7)
        var framed = 0, typed = 0
        for _ in 0..<5_000 {
            let length = Int(generator.next() % 300)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            if length > 3, generator.next() % 2 == 0 {
                bytes[0] = Envelope.magic
                bytes[1] = Envelope.version
                bytes[2] = UInt8(generator.next() % 9)
            }
            if length >= 47 + 2 + 64, generator.next() % 2 == 0 {
                // A consistent payload length, so the framing holds and the payload decoders see the rest.
                let payloadCount = length - 47 - 2 - 64
                bytes[47] = UInt8(payloadCount >> 8)
                bytes[48] = UInt8(payloadCount & 0xff)
            }
            let envelope: Envelope
            do {
                envelope = try Envelope(decoding: bytes)
            } catch {
                continue // typed: `DecodeError`, by the signature of `init(decoding:)`
            }
            framed += 1
            #expect(envelope.bytes == bytes)
            #expect(Envelope.peekKind(bytes) == envelope.kind)
            #expect(Envelope.peekSender(bytes) == envelope.sender)
            guard let message = try? Message(kind: envelope.kind, payload: envelope.payload) else { continue }
            typed += 1
            #expect(MessageKind(of: message) == envelope.kind)
        }
        #expect(framed >= 100, "only \(framed) of 5000 inputs framed: the payload decoders were hardly exercised")
        #expect(typed >= 1, "no payload decoded as its kind")
    }
}

@Suite struct MessageTests {
    @Test func messagesRoundTrip() throws {
        let id = Blake2b.hash([1, 2, 3])
        let vote = Vote(height: 9, round: 2, blockId: id)
        #expect(try Vote(decoding: vote.encoded) == vote)
        let nilVote = Vote(height: 9, round: 2, blockId: nil)
        #expect(try Vote(decoding: nilVote.encoded) == nilVote)
        let proposal = Proposal(height: 3, round: 1, polRound: 0, blockId: id, partsRoot: id, partCount: 3,
                                blockBytes: 2000)
        #expect(try Proposal(decoding: proposal.encoded) == proposal)
    }

    /// One signed refusal names up to 32 transactions and still fits a default 1,232-byte datagram; an
    /// empty list or more than the bound is a typed error, never a trap.
    @Test func aRefusalNamesUpTo32TransactionsInOneDatagram() throws {
        let ids = (0..<L2Reject.txIdsMax).map { Blake2b.hash([UInt8($0)]) }
        let reject = L2Reject(txIds: ids, reason: "queue_full", baseFee: 7)
        #expect(try L2Reject(decoding: reject.encoded) == reject)
        let envelope = Envelope(kind: .l2Reject, payload: reject.encoded, domain: Domain(chainId: "c"),
                                key: SigningKey(label: "sequencer"))
        #expect(envelope.bytes.count <= 1_232) // `datagram_payload_bytes_max`'s default (NodeConfig.Limits)
        var empty = WireWriter()
        empty.string("busy"); empty.u64(0); empty.u16(0)
        #expect(throws: DecodeError.self) { try L2Reject(decoding: empty.bytes) }
        var tooMany = WireWriter()
        tooMany.string("busy"); tooMany.u64(0); tooMany.u16(UInt16(L2Reject.txIdsMax + 1))
        for _ in 0...L2Reject.txIdsMax { tooMany.bytes32(ids[0]) }
        #expect(throws: DecodeError.oversized(field: "l2Reject.txIds", length: 33, max: 32)) {
            try L2Reject(decoding: tooMany.bytes)
        }
    }

    @Test func helloRoundTripsAndRejectsAnImpossibleVersionRange() throws {
        let hello = Hello(protocolVersion: 1, forkId: 3, version: 2, versionMin: 1, committedHeight: 42,
                          replyWanted: true, timeMs: 99, consensus: 1)
        #expect(try Hello(decoding: hello.encoded) == hello)
        // The consensus protocol is the last byte, and a hello without it is cut short.
        #expect(hello.encoded.last == 1)
        #expect(throws: DecodeError.self) { try Hello(decoding: Array(hello.encoded.dropLast())) }
        var bad = hello
        bad.versionMin = 3
        #expect(throws: DecodeError.self) { try Hello(decoding: bad.encoded) }
        var flag = hello.encoded
        flag[18] = 2 // replyWanted is a boolean byte
        #expect(throws: DecodeError.self) { try Hello(decoding: flag) }
    }

    @Test func proposalWithPolRoundNotBelowRoundIsRejected() {
        let id = Blake2b.hash([1])
        let bad = Proposal(height: 3, round: 1, polRound: 1, blockId: id, partsRoot: id, partCount: 1, blockBytes: 1)
        #expect(throws: DecodeError.self) { try Proposal(decoding: bad.encoded) }
    }

    @Test func blockAndCommitRoundTrip() throws {
        let domain = Domain(chainId: "c")
        let alice = SigningKey(label: "alice")
        let tx = Envelope(kind: .transfer,
                          payload: Transfer(to: alice.publicKey, amount: 1, fee: 0, nonce: 0).encoded,
                          domain: domain, key: alice)
        let header = BlockHeader(protocolVersion: 1, height: 1, timeMs: 5, proposer: alice.publicKey,
                                 previousBlockId: .zero, stateRoot: .zero, txRoot: Block.txRoot([tx]), txCount: 1)
        let block = Block(header: header, txs: [tx])
        let decoded = try Block(decoding: block.encoded)
        #expect(decoded == block)
        let vote = Vote(height: 1, round: 0, blockId: block.id)
        let precommit = Envelope(kind: .precommit, payload: vote.encoded, domain: domain, key: alice)
        let commit = CommitCertificate(height: 1, round: 0, blockId: block.id,
                                       signatures: [.init(validator: 0, signature: precommit.signature)])
        let committed = CommittedBlock(block: block, commit: commit)
        let back = try CommittedBlock(decoding: committed.encoded)
        let rebuilt = back.commit.precommitEnvelope(signedBy: alice.publicKey, signature: precommit.signature,
                                                    domain: domain)
        #expect(rebuilt.verify(domain: domain) == .valid)
        #expect(rebuilt.bytes == precommit.bytes)
    }

    @Test func blockWithMismatchedTxCountIsRejected() {
        let header = BlockHeader(protocolVersion: 1, height: 1, timeMs: 5, proposer: SigningKey(label: "a").publicKey,
                                 previousBlockId: .zero, stateRoot: .zero, txRoot: .zero, txCount: 2)
        let block = Block(header: header, txs: [])
        #expect(throws: DecodeError.self) { try Block(decoding: block.encoded) }
    }
}

@Suite struct PartSetTests {
    @Test(arguments: [1, 500, 1_100, 5_000, 100_000])
    func splitAndReassemble(size: Int) throws {
        let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let (root, parts) = PartSet.split(bytes, payloadBytesMax: 1_232, fixedOverhead: 12 + Envelope.framingBytes(.blockPart))
        var assembler = PartSet.Assembler(root: root, total: parts.count, bytesMax: size + 10)
        var result: [UInt8]? = nil
        let domain = Domain(chainId: "parts")
        for part in parts.reversed() {
            // Every part fits a datagram once framed, and fills it when the block is large.
            let framed = Envelope(proved: .blockPart, payload: BlockPart(height: 1, round: 0, part: part).encoded,
                                  domain: domain, sender: SigningKey(label: "p").publicKey).bytes.count
            #expect(framed <= 1_232)
            if size >= 5_000, Int(part.index) < parts.count - 1 { #expect(framed == 1_232) }
            #expect(try PartSet.Part(decoding: part.encoded) == part)
            if case .complete(let whole) = assembler.add(part) { result = whole }
        }
        #expect(result == bytes)
    }

    /// A block part travels unsigned: 64 bytes shorter than a signed envelope, never passing as signed, and
    /// a signature appended to it is trailing junk, not an alternative form.
    @Test func blockPartsAreUnsignedEnvelopes() throws {
        let domain = Domain(chainId: "parts")
        let key = SigningKey(label: "proposer")
        let (_, parts) = PartSet.split(Array(repeating: 7, count: 3_000), payloadBytesMax: 1_232,
                                       fixedOverhead: 12 + Envelope.framingBytes(.blockPart))
        let payload = BlockPart(height: 4, round: 1, part: parts[0]).encoded
        let part = Envelope(proved: .blockPart, payload: payload, domain: domain, sender: key.publicKey)
        #expect(part.bytes.count == Envelope.headerBytes + payload.count)
        #expect(part.signature == .zero)
        let decoded = try Envelope(decoding: part.bytes)
        #expect(decoded == part && decoded.kind == .blockPart && decoded.sender == key.publicKey)
        #expect(decoded.checkDomain(domain) == .valid)
        #expect(decoded.checkDomain(Domain(chainId: "other")) == .wrongChain)
        #expect(decoded.checkDomain(domain.onFork(3)) == .wrongFork)
        #expect(decoded.verify(domain: domain) == .badSignature)
        #expect(throws: DecodeError.trailingBytes(count: 64)) {
            try Envelope(decoding: part.bytes + Array(repeating: 1, count: 64))
        }
        // Every other kind still needs its signature.
        let vote = Envelope(kind: .prevote, payload: Vote(height: 4, round: 1, blockId: nil).encoded, domain: domain, key: key)
        #expect(throws: DecodeError.self) { try Envelope(decoding: Array(vote.bytes.dropLast(64))) }
        #expect(MessageKind.allCases.filter(\.isProvedByRoot) == [.blockPart])
    }

    @Test func tamperedPartIsRejectedAndDuplicateIgnored() {
        let bytes = (0..<5_000).map { UInt8(truncatingIfNeeded: $0) }
        let (root, parts) = PartSet.split(bytes, payloadBytesMax: 1_232, fixedOverhead: 100)
        var assembler = PartSet.Assembler(root: root, total: parts.count, bytesMax: 10_000)
        var bad = parts[1]
        bad.data[0] ^= 0xff
        #expect(assembler.add(bad) == .rejected("bad Merkle proof for part 1"))
        #expect(assembler.add(parts[1]) == .added)
        #expect(assembler.add(parts[1]) == .duplicate)
        var wrongIndex = parts[2]
        wrongIndex.index = 3
        #expect(assembler.add(wrongIndex) != .added)
    }
}


@Suite struct SyncCommitTests {
    @Test func roundTripsAndBoundsItsSignatureCount() throws {
        let id = Blake2b.hash([7])
        let signatures = (0..<3).map { CommitCertificate.Signature(validator: UInt16($0), signature: Bytes64(low: id, high: id)) }
        let message = SyncCommit(height: 9, round: 1, blockId: id, signatures: signatures)
        #expect(try SyncCommit(decoding: message.encoded) == message)
        let tooMany = SyncCommit(height: 9, round: 1, blockId: id, signatures: Array(repeating: signatures[0], count: 13))
        #expect(throws: DecodeError.oversized(field: "syncCommit.count", length: 13, max: 12)) {
            try SyncCommit(decoding: tooMany.encoded)
        }
    }
}

@Suite struct VoteBundleTests {
    /// A leader's certificate message: round trip; at most 12 signatures, at least one; only vote kinds; a
    /// signature in it verifies as the vote its signer sent.
    @Test func roundTripsBoundsItsSignaturesAndRebuildsEachVote() throws {
        let domain = Domain(chainId: "bundle-test")
        let keys = (0..<3).map { SigningKey(label: "v\($0)") }
        let vote = Vote(height: 4, round: 2, blockId: Blake2b.hash([4]))
        let signed = keys.map { Envelope(kind: .precommit, payload: vote.encoded, domain: domain, key: $0) }
        let signatures = signed.indices.map { CommitCertificate.Signature(validator: UInt16($0), signature: signed[$0].signature) }
        let bundle = VoteBundle(kind: .precommit, vote: vote, signatures: signatures)
        #expect(try VoteBundle(decoding: bundle.encoded) == bundle)
        for (index, key) in keys.enumerated() {
            let rebuilt = bundle.voteEnvelope(signedBy: key.publicKey, signature: signatures[index].signature, domain: domain)
            #expect(rebuilt.verify(domain: domain) == .valid)
            let asPrevote = VoteBundle(kind: .prevote, vote: vote, signatures: signatures)
                .voteEnvelope(signedBy: key.publicKey, signature: signatures[index].signature, domain: domain)
            #expect(asPrevote.verify(domain: domain) != .valid, "a precommit signature must not pass as a prevote")
        }
        let tooMany = VoteBundle(kind: .prevote, vote: vote, signatures: Array(repeating: signatures[0], count: 13))
        #expect(throws: DecodeError.self) { try VoteBundle(decoding: tooMany.encoded) }
        let none = VoteBundle(kind: .prevote, vote: vote, signatures: [])
        #expect(throws: DecodeError.self) { try VoteBundle(decoding: none.encoded) }
        var notAVote = bundle.encoded
        notAVote[0] = MessageKind.proposal.rawValue
        #expect(throws: DecodeError.invalidValue(field: "bundle.kind", reason: "2 is not a vote kind")) {
            try VoteBundle(decoding: notAVote)
        }
    }
}

@Suite struct PeekTests {
    /// Load shedding reads kind and sender before verifying; they must match what decoding gives.
    @Test func peekAgreesWithDecodingAndRejectsShortOrForeignBytes() throws {
        let key = SigningKey(label: "peek")
        let envelope = Envelope(kind: .precommit, payload: Vote(height: 1, round: 0, blockId: nil).encoded,
                                domain: Domain(chainId: "c"), key: key)
        let decoded = try Envelope(decoding: envelope.bytes)
        #expect(Envelope.peekKind(envelope.bytes) == decoded.kind)
        #expect(Envelope.peekSender(envelope.bytes) == decoded.sender)
        #expect(Envelope.peekKind([Envelope.magic, 1]) == nil)
        #expect(Envelope.peekSender(Array(envelope.bytes.prefix(40))) == nil)
        var foreign = envelope.bytes
        foreign[0] = 0
        #expect(Envelope.peekKind(foreign) == nil)
    }
}

@Suite struct MerkleTreeTests {
    /// Every leaf's proof verifies against the root; the same proof at another index, for another
    /// leaf or against another root does not.
    @Test(arguments: [1, 2, 3, 7, 8, 33])
    func proofsVerifyOnlyForTheirLeaf(count: Int) {
        let leaves = (0..<count).map { Blake2b.hash(Array("leaf \($0)".utf8)) }
        let tree = MerkleTree(leaves: leaves)
        #expect(tree.depth == MerkleTree.depth(for: count) && tree.levels[0].count == 1 << tree.depth)
        for (index, leaf) in leaves.enumerated() {
            let proof = tree.proof(index)
            #expect(MerkleTree.verify(leaf: leaf, index: index, proof: proof, root: tree.root))
            if count > 1 {
                #expect(!MerkleTree.verify(leaf: leaf, index: index ^ 1, proof: proof, root: tree.root))
                #expect(!MerkleTree.verify(leaf: leaves[(index + 1) % count], index: index, proof: proof, root: tree.root))
            }
            #expect(!MerkleTree.verify(leaf: leaf, index: index, proof: proof, root: Blake2b.hash([1])))
            #expect(!MerkleTree.verify(leaf: leaf, index: 1 << proof.count, proof: proof, root: tree.root), "out of range")
        }
    }
}

@Suite struct BundleTests {
    let domain = Domain(chainId: "test-chain")

    func transfers(_ count: Int) -> [[UInt8]] {
        let key = SigningKey(label: "alice")
        return (0..<count).map { nonce in
            let transfer = Transfer(to: SigningKey(label: "bob").publicKey, amount: 5, fee: 1, nonce: UInt64(nonce))
            return Envelope(kind: .transfer, payload: transfer.encoded, domain: domain, key: key).bytes
        }
    }

    @Test func packFillsDatagramsInOrderAndSplitGivesTheEnvelopesBack() throws {
        let envelopes = transfers(25)
        let packed = Bundle.pack(envelopes, datagramBytesMax: 1_232)
        #expect(packed.allSatisfy { $0.count <= 1_232 })
        // 25 envelopes of ~190 bytes: six per 1,232-byte datagram, so five datagrams, not 25.
        #expect(packed.count == Int((Double(envelopes.count) / Double(1_232 / (envelopes[0].count + 2))).rounded(.up)))
        var back: [[UInt8]] = []
        for datagram in packed {
            back += Bundle.isBundle(datagram) ? try Bundle.split(datagram) : [datagram]
        }
        #expect(back == envelopes)
        for bytes in back { #expect(try Envelope(decoding: bytes).verify(domain: domain) == .valid) }
    }

    @Test func aLoneEnvelopeOrOneTooLargeToShareGoesUnbundled() {
        let one = transfers(1)
        #expect(Bundle.pack(one, datagramBytesMax: 1_232) == one)
        let two = transfers(2)
        // Room for one envelope per datagram: each goes alone, as is.
        #expect(Bundle.pack(two, datagramBytesMax: two[0].count + 10) == two)
        #expect(Bundle.pack([], datagramBytesMax: 1_232).isEmpty)
    }

    @Test func badFramesAreTypedErrors() {
        let good = Bundle.encode(transfers(2))
        #expect(throws: DecodeError.self) { try Bundle.split(Array(good.dropLast())) }          // entry runs past the end
        #expect(throws: DecodeError.trailingBytes(count: 1)) { try Bundle.split(good + [0]) }
        var one = good
        one[1] = 1
        #expect(throws: DecodeError.self) { try Bundle.split(one) }                              // count below 2
        #expect(throws: DecodeError.badMagic(Envelope.magic)) { try Bundle.split(transfers(1)[0]) }
        #expect(throws: DecodeError.self) { try Bundle.split([Bundle.magic, 3, 0, 0, 0, 0, 0, 0]) } // empty entries
        var random = SplitMix64(seed: 7)
        for _ in 0..<2_000 {
            let length = Int(random.next() % 300)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            if !bytes.isEmpty { bytes[0] = Bundle.magic }
            _ = try? Bundle.split(bytes) // never traps
        }
    }
}

extension MessageKind {
    /// The kind a decoded message has (for the decoding property above).
    init(of message: Message) {
        switch message {
        case .transfer: self = .transfer
        case .proposal: self = .proposal
        case .blockPart: self = .blockPart
        case .prevote: self = .prevote
        case .precommit: self = .precommit
        case .status: self = .status
        case .blockRequest: self = .blockRequest
        case .syncPart: self = .syncPart
        case .syncCommit: self = .syncCommit
        case .hello: self = .hello
        case .batchChunk: self = .batchChunk
        case .forcedTx: self = .forcedTx
        case .l2Transfer: self = .l2Transfer
        case .l2Claim: self = .l2Claim
        case .l2Reject: self = .l2Reject
        case .l2BlockPart: self = .l2BlockPart
        case .dispute: self = .dispute
        case .evidence: self = .evidence
        case .certificate: self = .certificate
        case .timeout: self = .timeout
        }
    }
}
