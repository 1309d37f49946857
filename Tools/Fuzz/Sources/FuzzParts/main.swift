// libFuzzer target: block-part reassembly, the path a proposer's (or an attacker's) parts take into a
// node. Parts are unsigned: the Merkle root in the signed proposal is all that authenticates them. The
// input is a script against a real block's parts: each step picks a part and either sends it as is,
// with one byte of its data or proof flipped, or decodes a part — or a whole datagram — from the input's
// own bytes. Every datagram goes through what the node's ingress does to an unsigned kind (framing,
// message decoding, the domain check) before the assembler. Nothing may trap, and if reassembly completes, the bytes are the original block's exactly:
// the root admits no forged part.
import Foundation
import Sodium
import Wire

let key = SigningKey(label: "fuzz/proposer")
let domain = Domain(chainId: "fuzz")
let original: [UInt8] = {
    let txs = (0..<40).map { index in
        Envelope(kind: .transfer, payload: Transfer(to: SigningKey(label: "fuzz/to").publicKey, amount: UInt64(index),
                                                    fee: 1, nonce: UInt64(index)).encoded, domain: domain, key: key)
    }
    let id = Blake2b.hash(Array("previous".utf8))
    return Block(header: BlockHeader(protocolVersion: 1, height: 9, timeMs: 1, proposer: key.publicKey, previousBlockId: id,
                                     stateRoot: id, txRoot: Block.txRoot(txs), txCount: UInt32(txs.count)), txs: txs).encoded
}()
let split = PartSet.split(original, payloadBytesMax: 700, fixedOverhead: Envelope.framingBytes(.blockPart) + 12)

/// The ingress's steps for an unsigned kind: frame, message, domain (`Ingress.begin`).
func admitted(_ bytes: [UInt8]) -> PartSet.Part? {
    guard let envelope = try? Envelope(decoding: bytes, payloadBytesMax: 1_232),
          case .blockPart(let part) = try? Message(kind: envelope.kind, payload: envelope.payload),
          envelope.checkDomain(domain) == .valid else { return nil }
    precondition(envelope.signature == .zero && envelope.verify(domain: domain) == .badSignature, "a part verified as signed")
    return part.part
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let input = start.map { Array(UnsafeRawBufferPointer(start: $0, count: count)) } ?? []
    var assembler = PartSet.Assembler(root: split.root, total: split.parts.count, bytesMax: original.count + 64)
    var offset = 0
    while offset + 3 <= input.count {
        let op = input[offset], which = Int(input[offset + 1]) % split.parts.count, at = Int(input[offset + 2])
        offset += 3
        var part = split.parts[which]
        switch op % 4 {
        case 0:
            break
        case 1:
            if !part.data.isEmpty { part.data[at % part.data.count] ^= 1 | op }
        case 2:
            if !part.proof.isEmpty {
                var bytes = part.proof[at % part.proof.count].bytes
                bytes[at % 32] ^= 1 | op
                part.proof[at % part.proof.count] = Bytes32(bytes)!
            }
        default:
            // A part (bit 2 of op clear) or a whole datagram (set) from the next `at` bytes of the input.
            let end = min(input.count, offset + at)
            let bytes = Array(input[offset..<end])
            offset = end
            if op & 4 == 0 {
                guard let decoded = try? PartSet.Part(decoding: bytes) else { continue }
                part = decoded
            } else {
                guard let received = admitted(bytes) else { continue }
                part = received
            }
        }
        // Whatever was picked travels as the proposer's unsigned datagram through the ingress.
        let datagram = Envelope(proved: .blockPart, payload: BlockPart(height: 9, round: 0, part: part).encoded,
                                domain: domain, sender: key.publicKey)
        guard let admittedPart = admitted(datagram.bytes) else { preconditionFailure("the proposer's own part was refused") }
        if case .complete(let bytes) = assembler.add(admittedPart) {
            precondition(bytes == original, "reassembly completed with bytes that are not the block")
            return 0
        }
    }
    return 0
}
