// libFuzzer target: block-part reassembly, the path a proposer's (or an attacker's) parts take into a
// node. The input is a script against a real block's parts: each step picks a part and either adds it
// as is, adds it with one byte of its data or proof flipped, or decodes a part from the input's own
// bytes. Reassembly must never trap, and if it completes, the bytes are the original block's exactly:
// the Merkle root in the signed proposal admits no forged part.
import Foundation
import Sodium
import Wire

let key = SigningKey(label: "fuzz/proposer")
let original: [UInt8] = {
    let domain = Domain(chainId: "fuzz")
    let txs = (0..<40).map { index in
        Envelope(kind: .transfer, payload: Transfer(to: SigningKey(label: "fuzz/to").publicKey, amount: UInt64(index),
                                                    fee: 1, nonce: UInt64(index)).encoded, domain: domain, key: key)
    }
    let id = Blake2b.hash(Array("previous".utf8))
    return Block(header: BlockHeader(protocolVersion: 1, height: 9, timeMs: 1, proposer: key.publicKey, previousBlockId: id,
                                     stateRoot: id, txRoot: Block.txRoot(txs), txCount: UInt32(txs.count)), txs: txs).encoded
}()
let split = PartSet.split(original, payloadBytesMax: 700, fixedOverhead: Envelope.overheadBytes + 40)

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
            // A part decoded from the next `at` bytes of the input.
            let end = min(input.count, offset + at)
            guard let decoded = try? PartSet.Part(decoding: Array(input[offset..<end])) else {
                offset = end
                continue
            }
            offset = end
            part = decoded
        }
        if case .complete(let bytes) = assembler.add(part) {
            precondition(bytes == original, "reassembly completed with bytes that are not the block")
            return 0
        }
    }
    return 0
}
