#if canImport(Glibc)
import Glibc
#endif
import Consensus
import Sodium
import Wire

/// Committed blocks on disk: an append-only file of records `[length u32][BLAKE2b-256 of body][body]`,
/// where the body is the execution rules version the node applied (u16) and an encoded
/// `CommittedBlock`. A record is fsynced before the node acts on the commit. On open, a torn or
/// corrupt tail (a crash mid-append) is detected, reported and cut off.
final class BlockStore {
    static let recordHeaderBytes = 36
    static let recordBytesMax = Block.bytesMax + 200_000

    private let file: PosixFile
    private var offsets: [Int] = []   // offsets[h - 1] is where block h's record starts
    private var end = 0
    private(set) var lastBlock: CommittedBlock?
    /// The rules version recorded with the last block.
    private(set) var lastRulesVersion: UInt16 = 1
    /// Bytes cut from the tail on open (0 when the file was clean).
    private(set) var discardedTailBytes = 0

    var height: UInt64 { UInt64(offsets.count) }

    /// Opens (or creates) the store and calls `replay` for every intact block in order, with the rules
    /// version it was executed under.
    init(path: String, replay: (CommittedBlock, UInt16) throws -> Void) throws {
        file = try PosixFile(path: path, flags: O_RDWR | O_CREAT)
        let size = try file.size()
        var offset = 0
        while offset + BlockStore.recordHeaderBytes <= size {
            let header = try file.read(count: BlockStore.recordHeaderBytes, at: offset)
            var reader = WireReader(header)
            let length = Int(try reader.u32("record.length"))
            let digest = try reader.bytes32("record.digest")
            guard length <= BlockStore.recordBytesMax, offset + BlockStore.recordHeaderBytes + length <= size else { break }
            let body = try file.read(count: length, at: offset + BlockStore.recordHeaderBytes)
            guard Blake2b.hash(body) == digest, body.count > 2,
                  let block = try? CommittedBlock(decoding: Array(body[2...])),
                  block.block.header.height == UInt64(offsets.count + 1) else { break }
            let rules = UInt16(body[0]) << 8 | UInt16(body[1])
            try replay(block, rules)
            offsets.append(offset)
            lastBlock = block
            lastRulesVersion = rules
            offset += BlockStore.recordHeaderBytes + length
        }
        end = offset
        if offset < size {
            discardedTailBytes = size - offset
            try file.truncate(to: offset)
            try file.sync()
        }
    }

    /// Appends and fsyncs block `height + 1`, executed under `rulesVersion`.
    func append(_ block: CommittedBlock, rulesVersion: UInt16) throws {
        precondition(block.block.header.height == height + 1,
                     "store at height \(height) asked to append block \(block.block.header.height)")
        let record = BlockStore.record(block, rulesVersion: rulesVersion)
        try file.pwrite(record, at: end)
        try file.sync()
        offsets.append(end)
        end += record.count
        lastBlock = block
        lastRulesVersion = rulesVersion
    }

    /// Records that the last block was executed again under other rules (a restart on another
    /// binary re-executes the tip, whose result no header has confirmed yet). The record keeps its
    /// length; a torn rewrite fails its digest and the tip is fetched from peers again.
    func rewriteLastRulesVersion(_ rulesVersion: UInt16) throws {
        guard let block = lastBlock, let offset = offsets.last, rulesVersion != lastRulesVersion else { return }
        try file.pwrite(BlockStore.record(block, rulesVersion: rulesVersion), at: offset)
        try file.sync()
        lastRulesVersion = rulesVersion
    }

    private static func record(_ block: CommittedBlock, rulesVersion: UInt16) -> [UInt8] {
        var body = WireWriter()
        body.u16(rulesVersion)
        block.encode(to: &body)
        var writer = WireWriter(capacity: body.bytes.count + BlockStore.recordHeaderBytes)
        writer.u32(UInt32(body.bytes.count))
        writer.bytes32(Blake2b.hash(body.bytes))
        writer.raw(body.bytes)
        return writer.bytes
    }

    /// The encoded committed block at `height`, read back from disk (for block sync).
    func encodedBlock(at height: UInt64) throws -> [UInt8]? {
        guard height >= 1, height <= self.height else { return nil }
        let offset = offsets[Int(height) - 1]
        let header = try file.read(count: BlockStore.recordHeaderBytes, at: offset)
        var reader = WireReader(header)
        let length = Int(try reader.u32("record.length"))
        return Array(try file.read(count: length, at: offset + BlockStore.recordHeaderBytes).dropFirst(2))
    }
}

/// The last (height, round, step) this validator signed, and the vote it signed there, written and
/// fsynced before the signature exists (CometBFT's privval rule). After a crash the same vote can be
/// signed again — Ed25519 is deterministic, so it is the identical message — and re-sent, while any
/// other message at or below that step is refused. Two slots alternate so a torn write never loses
/// the previous record.
final class SignStateStore {
    static let slotBytes = 128
    static let payloadBytesMax = 64

    private let file: PosixFile
    private var nextSlot = 0
    private(set) var state: Tendermint.SignState?
    /// The message kind and payload signed at `state` (empty for a proposal, whose block is not kept).
    private(set) var signed: (kind: UInt8, payload: [UInt8])?

    init(path: String) throws {
        file = try PosixFile(path: path, flags: O_RDWR | O_CREAT)
        let bytes = try file.read(count: 2 * SignStateStore.slotBytes, at: 0)
        var best: (Tendermint.SignState, UInt8, [UInt8], Int)?
        for slot in 0..<2 where bytes.count >= (slot + 1) * SignStateStore.slotBytes {
            let record = Array(bytes[slot * SignStateStore.slotBytes..<(slot + 1) * SignStateStore.slotBytes])
            var reader = WireReader(record)
            guard let height = try? reader.u64("h"), let round = try? reader.u32("r"), let step = try? reader.u8("s"),
                  let kind = try? reader.u8("k"),
                  let payload = try? reader.blob16("p", max: SignStateStore.payloadBytesMax),
                  let digest = try? reader.bytes32("d") else { continue }
            let candidate = Tendermint.SignState(height: height, round: round, step: step)
            guard Blake2b.hash(SignStateStore.body(candidate, kind, Array(payload))) == digest else { continue }
            if best == nil || candidate > best!.0 { best = (candidate, kind, Array(payload), slot) }
        }
        state = best?.0
        signed = best.map { ($0.1, $0.2) }
        nextSlot = best.map { 1 - $0.3 } ?? 0
    }

    private static func body(_ state: Tendermint.SignState, _ kind: UInt8, _ payload: [UInt8]) -> [UInt8] {
        var writer = WireWriter()
        writer.u64(state.height)
        writer.u32(state.round)
        writer.u8(state.step)
        writer.u8(kind)
        writer.blob16(payload)
        return writer.bytes
    }

    /// Records `newState` with what is about to be signed there; refuses to go back.
    func record(_ newState: Tendermint.SignState, kind: MessageKind, payload: [UInt8]) throws {
        guard state.map({ newState > $0 }) ?? true else {
            throw FileError(path: "sign state", operation: "refused to go back from \(state!) to", code: 0)
        }
        precondition(payload.count <= SignStateStore.payloadBytesMax, "sign-state payload of \(payload.count) bytes")
        let body = SignStateStore.body(newState, kind.rawValue, payload)
        var record = WireWriter(capacity: SignStateStore.slotBytes)
        record.raw(body)
        record.bytes32(Blake2b.hash(body))
        record.raw([UInt8](repeating: 0, count: SignStateStore.slotBytes - record.bytes.count))
        try file.pwrite(record.bytes, at: nextSlot * SignStateStore.slotBytes)
        try file.sync()
        nextSlot = 1 - nextSlot
        state = newState
        signed = (kind.rawValue, payload)
    }
}
