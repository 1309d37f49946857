import NIOCore
import NIOPosix
import Sodium
import Testing
import Wire
@testable import Transport

@Suite struct IngressTests {
    let domain = Domain(chainId: "ingress-test")
    let validator = SigningKey(label: "validator")
    let stranger = SigningKey(label: "stranger")

    func ingress() -> Ingress {
        Ingress(domain: domain, datagramBytesMax: 1_232, members: [validator.publicKey])
    }

    func vote(_ key: SigningKey, domain: Domain? = nil) -> Envelope {
        Envelope(kind: .prevote, payload: Vote(height: 1, round: 0, blockId: nil).encoded, domain: domain ?? self.domain,
                 key: key)
    }

    func reason(_ outcome: Ingress.Outcome) -> Ingress.Reject? {
        if case .rejected(let reason, _) = outcome { return reason }
        return nil
    }

    @Test func classifiesEveryKindOfBadDatagram() {
        var edge = ingress()
        let good = vote(validator)
        var flipped = good.bytes
        flipped[Envelope.headerBytes] ^= 1
        #expect(reason(edge.admit(Array(good.bytes.prefix(30)))) == .malformed)
        #expect(reason(edge.admit([UInt8](repeating: 0xFA, count: 2_000))) == .oversized)
        #expect(reason(edge.admit(flipped)) == .badSignature)
        #expect(reason(edge.admit(vote(validator, domain: Domain(chainId: "other")).bytes)) == .wrongChain)
        #expect(reason(edge.admit(vote(stranger).bytes)) == .unknownSender)
        #expect(reason(edge.admit(good.bytes)) == nil)
        #expect(reason(edge.admit(good.bytes)) == .duplicate)
        // Transactions may come from anyone (clients are not cluster members).
        let tx = Envelope(kind: .transfer, payload: Transfer(to: validator.publicKey, amount: 1, fee: 0, nonce: 0).encoded,
                          domain: domain, key: stranger)
        #expect(reason(edge.admit(tx.bytes)) == nil)
    }

    /// A block part has no signature to check: the edge checks its frame, sender and domain and passes it on
    /// at once (no `verify` stage), de-duplicated like everything else; the core proves it against the root.
    @Test func blockPartsPassWithoutASignatureCheck() {
        var edge = ingress()
        let (_, parts) = PartSet.split(Array(repeating: 1, count: 2_000), payloadBytesMax: 1_232,
                                       fixedOverhead: 12 + Envelope.framingBytes(.blockPart))
        func part(_ domain: Domain, sender: PublicKey? = nil) -> [UInt8] {
            Envelope(proved: .blockPart, payload: BlockPart(height: 2, round: 0, part: parts[1]).encoded, domain: domain,
                     sender: sender ?? validator.publicKey).bytes
        }
        guard case .done(.accepted(let envelope, .blockPart(let received))) = edge.begin(part(domain)) else {
            Issue.record("an unsigned part goes through without a verify stage")
            return
        }
        #expect(envelope.signature == .zero && received.part == parts[1])
        #expect(reason(edge.admit(part(domain))) == .duplicate)
        #expect(reason(edge.admit(part(Domain(chainId: "other")))) == .wrongChain)
        #expect(reason(edge.admit(part(domain.onFork(2)))) == .wrongFork)
        #expect(reason(edge.admit(part(domain, sender: stranger.publicKey))) == .unknownSender)
    }

    /// Votes consensus has no use for are dropped before their signature is checked: a vote for a
    /// height already committed, and one for a (height, round, type) where one value already has +2/3.
    /// A bad signature on such a vote is never looked at, which is the point: the check is the cost.
    @Test func staleAndSettledVotesAreDroppedBeforeVerification() {
        var edge = ingress()
        func prevote(height: UInt64, round: UInt32, kind: MessageKind = .prevote) -> [UInt8] {
            var bytes = Envelope(kind: kind, payload: Vote(height: height, round: round, blockId: nil).encoded,
                                 domain: domain, key: validator).bytes
            bytes[bytes.count - 1] ^= 1 // a broken signature: any verification would reject it
            return bytes
        }
        #expect(reason(edge.admit(prevote(height: 4, round: 0), localHeight: 5)) == .staleHeight)
        let quorums = VoteQuorums()
        quorums.publish(height: 5, settled: [(kind: .prevote, round: 1)])
        func begin(_ bytes: [UInt8]) -> Ingress.Reject? {
            if case .done(let outcome) = edge.begin(bytes, localHeight: 5, settled: quorums) { return reason(outcome) }
            return nil // went on to the signature check
        }
        #expect(begin(prevote(height: 5, round: 1)) == .settled)
        // Another round, the other vote type, or the next height still need checking.
        #expect(begin(prevote(height: 5, round: 0)) == nil)
        #expect(begin(prevote(height: 5, round: 1, kind: .precommit)) == nil)
        #expect(begin(prevote(height: 6, round: 1)) == nil)
    }

    /// A transaction this node already committed (it came in a block before its gossip copy) is dropped
    /// before its signature is checked; votes and transactions not committed go on; the set forgets the
    /// oldest ids past its capacity.
    @Test func lateCopiesOfCommittedTransactionsAreDroppedBeforeVerification() {
        var edge = ingress()
        func transfer(_ nonce: UInt64) -> Envelope {
            Envelope(kind: .transfer, payload: Transfer(to: validator.publicKey, amount: 1, fee: 0, nonce: nonce).encoded,
                     domain: domain, key: stranger)
        }
        let committed = TransactionIds(capacity: 2)
        let txs = (0..<3).map(transfer)
        committed.insert(txs.prefix(2).map(\.id))
        func begin(_ bytes: [UInt8]) -> Ingress.Reject? {
            if case .done(let outcome) = edge.begin(bytes, committed: committed) { return reason(outcome) }
            return nil
        }
        #expect(begin(txs[0].bytes) == .committed)
        #expect(begin(txs[2].bytes) == nil)
        committed.insert([txs[2].id]) // over capacity: txs[0] is forgotten
        #expect(committed.count == 2)
        #expect(!committed.contains(txs[0].id) && committed.contains(txs[1].id) && committed.contains(txs[2].id))
        // Consensus messages are never looked up (their ids are not transactions').
        let vote = vote(validator)
        committed.insert([vote.id])
        #expect(begin(vote.bytes) == nil)
    }

    /// A hello is authenticated under the fork id it names (so the shell can say why it refuses the
    /// peer); anything else from another fork is rejected before its signature is checked.
    @Test func helloFromAnotherForkIsReadableEverythingElseIsNot() {
        var edge = ingress()
        let otherFork = domain.onFork(7)
        let hello = Envelope(kind: .hello, payload: Hello(protocolVersion: 1, forkId: 7, version: 1, versionMin: 1,
                                                          committedHeight: 3, replyWanted: true, timeMs: 1).encoded,
                             domain: otherFork, key: validator)
        guard case .accepted(let envelope, .hello(let decoded)) = edge.admit(hello.bytes) else {
            Issue.record("hello from fork 7 was not admitted")
            return
        }
        #expect(envelope.forkId == 7 && decoded.forkId == 7)
        #expect(reason(edge.admit(vote(validator, domain: otherFork).bytes)) == .wrongFork)
        // A forged hello (signed for fork 0, relabelled as fork 7) fails its signature.
        var relabelled = Envelope(kind: .hello, payload: hello.payload, domain: domain, key: validator).bytes
        relabelled[11..<15] = [0, 0, 0, 7]
        #expect(reason(edge.admit(relabelled)) == .badSignature)
    }

    @Test func seenSetIsBounded() {
        var edge = Ingress(domain: domain, datagramBytesMax: 1_232, members: [validator.publicKey], seenMax: 10)
        for round in 0..<50 {
            let envelope = Envelope(kind: .prevote, payload: Vote(height: 1, round: UInt32(round), blockId: nil).encoded,
                                    domain: domain, key: validator)
            _ = edge.admit(envelope.bytes)
        }
        #expect(edge.seenCount == 10)
    }

    /// Real datagrams over 127.0.0.1: what arrives is what was sent, classified the same way.
    @Test func realUDPRoundTrip() async throws {
        let receiver = try await UDPEndpoint.bind(host: "127.0.0.1", port: 0)
        let sender = try await UDPEndpoint.bind(host: "127.0.0.1", port: 0)
        let target = receiver.channel.localAddress!
        let good = vote(validator)
        let payloads: [[UInt8]] = [[1, 2, 3], vote(stranger).bytes, good.bytes]
        try await sender.executeThenClose { _, outbound in
            for payload in payloads { try await outbound.write(UDPEndpoint.datagram(payload, to: target)) }
        }
        var edge = ingress()
        var reasons: [Ingress.Reject?] = []
        try await receiver.executeThenClose { inbound, _ in
            receive: for try await batch in inbound {
                for datagram in batch {
                    var buffer = datagram.data
                    reasons.append(reason(edge.admit(buffer.readBytes(length: buffer.readableBytes)!)))
                }
                if reasons.count >= payloads.count { break receive }
            }
        }
        #expect(reasons == [.malformed, .unknownSender, nil])
    }
}

@Suite struct IngressExpiryTests {
    /// A copy within the window is a duplicate; the same bytes after it are delivered again, so a
    /// message a node once set aside is not lost forever to de-duplication.
    @Test func duplicatesExpireAfterTheWindow() {
        let domain = Domain(chainId: "expiry")
        let key = SigningKey(label: "validator")
        var edge = Ingress(domain: domain, datagramBytesMax: 1_232, members: [key.publicKey], seenTtlMs: 2_000)
        let vote = Envelope(kind: .prevote, payload: Vote(height: 1, round: 0, blockId: nil).encoded, domain: domain,
                            key: key)
        func accepted(_ now: UInt64) -> Bool {
            if case .accepted = edge.admit(vote.bytes, nowMs: now) { return true }
            return false
        }
        #expect(accepted(10_000))
        #expect(!accepted(11_000))
        #expect(!accepted(11_999))
        #expect(accepted(12_001))
        #expect(edge.seenCount == 1)
    }
}

@Suite struct VoteBudgetTests {
    let domain = Domain(chainId: "budget-test")
    let honest = SigningKey(label: "honest")
    let flooder = SigningKey(label: "flooder")

    func vote(_ key: SigningKey, height: UInt64, round: UInt32) -> [UInt8] {
        Envelope(kind: .precommit, payload: Vote(height: height, round: round, blockId: nil).encoded, domain: domain,
                 key: key).bytes
    }

    func reason(_ outcome: Ingress.Outcome) -> Ingress.Reject? {
        if case .rejected(let reason, _) = outcome { return reason }
        return nil
    }

    /// A validator flooding distinct valid votes for one height costs at most the budget in signature
    /// checks; another validator is unaffected, and the flooder gets a fresh budget at the next height.
    @Test func floodOfDistinctVotesIsCappedPerHeight() {
        var edge = Ingress(domain: domain, datagramBytesMax: 1_232, members: [honest.publicKey, flooder.publicKey],
                           voteBudget: VoteCheckBudget(perHeightMax: 8))
        let outcomes = (0..<50).map { reason(edge.admit(vote(flooder, height: 5, round: UInt32($0)), localHeight: 5)) }
        #expect(outcomes.filter { $0 == nil }.count == 8)
        #expect(outcomes.filter { $0 == .voteBudget }.count == 42)
        #expect(reason(edge.admit(vote(honest, height: 5, round: 0), localHeight: 5)) == nil)
        // Far-future heights do not reset the budget; the next height does.
        #expect(reason(edge.admit(vote(flooder, height: 500, round: 0), localHeight: 5)) == .voteBudget)
        #expect(reason(edge.admit(vote(flooder, height: 6, round: 0), localHeight: 5)) == nil)
        #expect(edge.voteBudget?.checks(of: flooder.publicKey) == 1)
    }

    /// A re-sent copy of a vote that already checked out (after the de-duplication window) is
    /// accepted without spending budget: an honest validator stalled for a long time keeps its votes.
    @Test func identicalResendsDoNotSpendBudget() {
        var edge = Ingress(domain: domain, datagramBytesMax: 1_232, members: [honest.publicKey], seenTtlMs: 100,
                           voteBudget: VoteCheckBudget(perHeightMax: 2))
        let bytes = vote(honest, height: 3, round: 0)
        for second in 0..<100 {
            #expect(reason(edge.admit(bytes, nowMs: UInt64(second) * 1_000, localHeight: 3)) == nil)
        }
        #expect(edge.voteBudget?.checks(of: honest.publicKey) == 1)
        // A tampered copy with the same content is still checked (and refused).
        var forged = bytes
        forged[forged.count - 1] ^= 1
        #expect(reason(edge.admit(forged, nowMs: 200_000, localHeight: 3)) == .badSignature)
    }
}

/// A read burst checked in two phases, the signatures on several threads: the same verdicts as one
/// by one, in the datagrams' order; a copy inside the burst waits for the first one's verdict.
@Suite struct BurstCheckTests {
    @Test func parallelChecksGiveEachDatagramItsOwnVerdict() {
        let domain = Domain(chainId: "burst")
        var edge = Ingress(domain: domain, datagramBytesMax: 1_232, members: [])
        let receiver = SigningKey(label: "receiver").publicKey
        var datagrams = (0..<40).map { index in
            Envelope(kind: .l2Transfer, payload: Transfer(to: receiver, amount: 1, fee: 1, nonce: UInt64(index)).encoded,
                     domain: domain, key: SigningKey(label: "client-\(index % 7)")).bytes
        }
        datagrams[13][datagrams[13].count - 1] ^= 0x01 // a broken signature (the last payload byte changed)
        datagrams.append(datagrams[5]) // a copy in the same burst
        datagrams.append(datagrams[13]) // and a copy of the broken one
        var pending: [Ingress.Pending] = []
        var copies: [Int] = []
        for (index, bytes) in datagrams.enumerated() {
            switch edge.begin(bytes, nowMs: 1) {
            case .verify(let check): pending.append(check)
            case .copyInFlight: copies.append(index)
            case .done(let outcome): Issue.record("datagram \(index) decided before its check: \(outcome)")
            }
        }
        #expect(copies == [40, 41])
        let parallel = SignatureChecks.run(pending, workers: 3)
        #expect(parallel == pending.map { $0.check() })
        #expect(parallel.enumerated().filter { $0.element != .valid }.map(\.offset) == [13])
        var accepted = 0
        for (check, result) in zip(pending, parallel) {
            if case .accepted = edge.finish(check, result, nowMs: 1) { accepted += 1 }
        }
        #expect(accepted == 39 && edge.seenCount == 39)
        // After the burst's checks, a copy of a valid datagram is a duplicate, a copy of the broken one
        // is checked and refused again (it was not remembered as seen).
        if case .rejected(let reason, _) = edge.admit(datagrams[40], nowMs: 1) {
            #expect(reason == .duplicate)
        } else {
            Issue.record("copy of a valid datagram accepted twice")
        }
        if case .rejected(let reason, _) = edge.admit(datagrams[41], nowMs: 1) {
            #expect(reason == .badSignature)
        } else {
            Issue.record("broken signature accepted")
        }
    }
}
