// libFuzzer target: the bytes a peer can send. Decoding must never trap, and anything that decodes
// must re-encode to exactly the bytes it came from: the codec is canonical, so two encodings of one
// message cannot exist (a signature over one could otherwise be replayed under another id).
import Foundation
import Sodium
import Wire

/// The payload of a decoded message, encoded again (nil for kinds whose payload is opaque here).
func reencoded(_ message: Message) -> [UInt8]? {
    switch message {
    case .transfer(let value), .l2Transfer(let value): return value.encoded
    case .proposal(let value): return value.encoded
    case .blockPart(let value): return value.encoded
    case .prevote(let value), .precommit(let value): return value.encoded
    case .status(let value): return value.encoded
    case .blockRequest(let value): return value.encoded
    case .syncPart(let value): return value.encoded
    case .syncCommit(let value): return value.encoded
    case .hello(let value): return value.encoded
    case .batchChunk(let value): return value.encoded
    case .forcedTx(let value): return value.encoded
    case .l2Claim(let value): return value.encoded
    case .l2Reject(let value): return value.encoded
    case .l2BlockPart(let value): return value.encoded
    case .evidence(let value): return value.encoded
    case .certificate(let value): return value.encoded
    case .timeout(let value): return value.encoded
    case .dispute: return nil
    }
}

func check(_ bytes: [UInt8]) {
    guard let envelope = try? Envelope(decoding: bytes) else { return }
    precondition(envelope.bytes == bytes)
    guard let message = try? Message(kind: envelope.kind, payload: envelope.payload) else { return }
    if let again = reencoded(message) {
        precondition(again == envelope.payload, "\(envelope.kind) payload is not canonical: \(Hex.encode(envelope.payload))")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let bytes = start.map { Array(UnsafeRawBufferPointer(start: $0, count: count)) } ?? []
    check(bytes)
    if let entries = try? Bundle.split(bytes) {
        precondition(Bundle.encode(entries) == bytes, "bundle is not canonical")
        entries.forEach(check)
    }
    if let block = try? Block(decoding: bytes) {
        precondition(block.encoded == bytes, "block is not canonical")
    }
    return 0
}

/// With FAULTLINE_FUZZ_SEEDS=DIR, writes a seed corpus of real signed messages of every kind the
/// nodes send (and a bundle and a block) into DIR before fuzzing starts.
@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
    guard let dir = ProcessInfo.processInfo.environment["FAULTLINE_FUZZ_SEEDS"] else { return 0 }
    let domain = Domain(chainId: "fuzz")
    let key = SigningKey(label: "fuzz/validator")
    let other = SigningKey(label: "fuzz/other").publicKey
    let blockId = Blake2b.hash(Array("block".utf8))
    let tx = Envelope(kind: .transfer, payload: Transfer(to: other, amount: 5, fee: 1, nonce: 7).encoded, domain: domain, key: key)
    let block = Block(header: BlockHeader(protocolVersion: 1, height: 3, timeMs: 1_000, proposer: key.publicKey,
                                          previousBlockId: blockId, stateRoot: blockId, txRoot: Block.txRoot([tx]),
                                          txCount: 1), txs: [tx])
    let (root, parts) = PartSet.split(block.encoded, payloadBytesMax: 300, fixedOverhead: Envelope.framingBytes(.blockPart) + 12)
    var seeds: [(String, [UInt8])] = [
        ("transfer", tx.bytes),
        ("prevote", Envelope(kind: .prevote, payload: Vote(height: 3, round: 0, blockId: blockId).encoded,
                             domain: domain, key: key).bytes),
        ("precommit-nil", Envelope(kind: .precommit, payload: Vote(height: 3, round: 1, blockId: nil).encoded,
                                   domain: domain, key: key).bytes),
        ("proposal", Envelope(kind: .proposal, payload: Proposal(height: 3, round: 0, polRound: -1, blockId: block.id,
                                                                 partsRoot: root, partCount: UInt16(parts.count),
                                                                 blockBytes: UInt32(block.encoded.count)).encoded,
                              domain: domain, key: key).bytes),
        ("status", Envelope(kind: .status, payload: StatusMessage(committedHeight: 2, round: 0, timeMs: 5).encoded,
                            domain: domain, key: key).bytes),
        ("block-request", Envelope(kind: .blockRequest, payload: BlockRequest(height: 2, timeMs: 5).encoded,
                                   domain: domain, key: key).bytes),
        ("hello", Envelope(kind: .hello, payload: Hello(protocolVersion: 1, forkId: 0, version: 1, versionMin: 1,
                                                        committedHeight: 2, replyWanted: true, timeMs: 5,
                                                        consensus: 1).encoded,
                           domain: domain, key: key).bytes),
        ("block", block.encoded),
        ("certificate", Envelope(kind: .certificate, payload: VoteBundle(
            kind: .prevote, vote: Vote(height: 3, round: 0, blockId: blockId),
            signatures: [CommitCertificate.Signature(validator: 0, signature: tx.signature)]).encoded,
                                 domain: domain, key: key).bytes),
        ("timeout", Envelope(kind: .timeout, payload: Vote(height: 3, round: 2, blockId: nil).encoded,
                             domain: domain, key: key).bytes),
    ]
    for (index, part) in parts.enumerated() {
        seeds.append(("block-part-\(index)", Envelope(proved: .blockPart, payload: BlockPart(height: 3, round: 0, part: part).encoded,
                                                     domain: domain, sender: key.publicKey).bytes))
    }
    seeds.append(("bundle", Bundle.encode([tx.bytes, seeds[1].1])))
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    for (name, bytes) in seeds {
        FileManager.default.createFile(atPath: dir + "/seed-" + name, contents: Data(bytes))
    }
    return 0
}
