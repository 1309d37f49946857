#if canImport(Glibc)
import Glibc
#endif
import Consensus
import Sodium
import Wire

/// Committed blocks on disk: an append-only file of records `[length u32][BLAKE2b-256 of body][body]`,
/// where the body is an encoded `CommittedBlock`. A record is fsynced before the node acts on the
/// commit. On open, a torn or corrupt tail (a crash mid-append) is detected, reported and cut off.
final class BlockStore {
    static let recordHeaderBytes = 36
    static let recordBytesMax = Block.bytesMax + 200_000

    private let file: PosixFile
    private var offsets: [Int] = []   // offsets[h - 1] is where block h's record starts
    private var end = 0
    private(set) var lastBlock: CommittedBlock?
    /// Bytes cut from the tail on open (0 when the file was clean).
    private(set) var discardedTailBytes = 0

    var height: UInt64 { UInt64(offsets.count) }

    /// Opens (or creates) the store and calls `replay` for every intact block in order.
    init(path: String, replay: (CommittedBlock) throws -> Void) throws {
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
            guard Blake2b.hash(body) == digest, let block = try? CommittedBlock(decoding: body),
                  block.block.header.height == UInt64(offsets.count + 1) else { break }
            try replay(block)
            offsets.append(offset)
            lastBlock = block
            offset += BlockStore.recordHeaderBytes + length
        }
        end = offset
        if offset < size {
            discardedTailBytes = size - offset
            try file.truncate(to: offset)
            try file.sync()
        }
    }

    /// Appends and fsyncs block `height + 1`.
    func append(_ block: CommittedBlock) throws {
        precondition(block.block.header.height == height + 1,
                     "store at height \(height) asked to append block \(block.block.header.height)")
        let body = block.encoded
        var writer = WireWriter(capacity: body.count + BlockStore.recordHeaderBytes)
        writer.u32(UInt32(body.count))
        writer.bytes32(Blake2b.hash(body))
        writer.raw(body)
        try file.pwrite(writer.bytes, at: end)
        try file.sync()
        offsets.append(end)
        end += writer.bytes.count
        lastBlock = block
    }

    /// The encoded committed block at `height`, read back from disk (for block sync).
    func encodedBlock(at height: UInt64) throws -> [UInt8]? {
        guard height >= 1, height <= self.height else { return nil }
        let offset = offsets[Int(height) - 1]
        let header = try file.read(count: BlockStore.recordHeaderBytes, at: offset)
        var reader = WireReader(header)
        let length = Int(try reader.u32("record.length"))
        return try file.read(count: length, at: offset + BlockStore.recordHeaderBytes)
    }
}

/// The last (height, round, step) this validator signed, written and fsynced before the signature
/// leaves the process. Two slots alternate so a torn write never loses the previous state.
final class SignStateStore {
    private let file: PosixFile
    private var nextSlot = 0
    private(set) var state: Tendermint.SignState?

    init(path: String) throws {
        file = try PosixFile(path: path, flags: O_RDWR | O_CREAT)
        let bytes = try file.read(count: 96, at: 0)
        var best: (Tendermint.SignState, Int)?
        for slot in 0..<2 where bytes.count >= (slot + 1) * 48 {
            let record = Array(bytes[slot * 48..<(slot + 1) * 48])
            var reader = WireReader(record)
            guard let height = try? reader.u64("h"), let round = try? reader.u32("r"), let step = try? reader.u8("s"),
                  let digest = try? reader.bytes32("d") else { continue }
            var body = WireWriter()
            body.u64(height)
            body.u32(round)
            body.u8(step)
            guard Blake2b.hash(body.bytes) == digest else { continue }
            let candidate = Tendermint.SignState(height: height, round: round, step: step)
            if best == nil || candidate > best!.0 { best = (candidate, slot) }
        }
        state = best?.0
        nextSlot = best.map { 1 - $0.1 } ?? 0
    }

    /// Records `newState`; the caller checks it is above `state` (a lower one is never written).
    func record(_ newState: Tendermint.SignState) throws {
        guard state.map({ newState > $0 }) ?? true else {
            throw FileError(path: "sign state", operation: "refused to go back from \(state!) to", code: 0)
        }
        var body = WireWriter()
        body.u64(newState.height)
        body.u32(newState.round)
        body.u8(newState.step)
        var record = body
        record.bytes32(Blake2b.hash(body.bytes))
        record.raw([UInt8](repeating: 0, count: 48 - record.bytes.count))
        try file.pwrite(record.bytes, at: nextSlot * 48)
        try file.sync()
        nextSlot = 1 - nextSlot
        state = newState
    }
}
