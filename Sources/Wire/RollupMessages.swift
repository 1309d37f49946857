import Sodium

/// An L1 transaction from the sequencer's batch poster: one piece of an encoded L2 batch.
/// `sequence` counts every chunk the poster has ever had accepted on L1 (the inbox takes exactly the
/// next one, so chunks land in order and none twice); `chunkIndex` 0 starts a new batch.
public struct BatchChunk: WireCodable, Equatable {
    public static let chunksMax = 4_096

    public var sequence: UInt64
    public var batchIndex: UInt64
    public var chunkIndex: UInt16
    public var chunkCount: UInt16
    public var data: [UInt8]

    public init(sequence: UInt64, batchIndex: UInt64, chunkIndex: UInt16, chunkCount: UInt16, data: [UInt8]) {
        self.sequence = sequence
        self.batchIndex = batchIndex
        self.chunkIndex = chunkIndex
        self.chunkCount = chunkCount
        self.data = data
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(sequence)
        writer.u64(batchIndex)
        writer.u16(chunkIndex)
        writer.u16(chunkCount)
        writer.blob16(data)
    }

    public init(from reader: inout WireReader) throws(DecodeError) {
        sequence = try reader.u64("batchChunk.sequence")
        batchIndex = try reader.u64("batchChunk.batchIndex")
        chunkIndex = try reader.u16("batchChunk.chunkIndex")
        chunkCount = try reader.u16("batchChunk.chunkCount")
        guard chunkCount >= 1, Int(chunkCount) <= BatchChunk.chunksMax, chunkIndex < chunkCount else {
            throw .invalidValue(field: "batchChunk.chunkIndex", reason: "\(chunkIndex) of \(chunkCount)")
        }
        data = Array(try reader.blob16("batchChunk.data", max: Envelope.payloadBytesMax))
    }
}

/// An L1 transaction that puts a signed L2 transaction into the rollup inbox: the sequencer must
/// include it within a bound of L1 blocks, or derivation includes it without the sequencer. The L1
/// sender pays `fee` and uses `nonce` like a transfer.
public struct ForcedTx: WireCodable, Equatable {
    public static let l2TxBytesMax = 512

    public var fee: UInt64
    public var nonce: UInt64
    /// The framed, signed L2 envelope.
    public var l2Tx: [UInt8]

    public init(fee: UInt64, nonce: UInt64, l2Tx: [UInt8]) {
        self.fee = fee
        self.nonce = nonce
        self.l2Tx = l2Tx
    }

    /// What the L1 sender pays, as a transfer of nothing to itself: the fee, under its nonce.
    public func payment(from sender: PublicKey) -> Transfer {
        Transfer(to: sender, amount: 0, fee: fee, nonce: nonce)
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(fee)
        writer.u64(nonce)
        writer.blob16(l2Tx)
    }

    public init(from reader: inout WireReader) throws(DecodeError) {
        fee = try reader.u64("forcedTx.fee")
        nonce = try reader.u64("forcedTx.nonce")
        l2Tx = Array(try reader.blob16("forcedTx.l2Tx", max: ForcedTx.l2TxBytesMax))
    }
}

/// An L2 airdrop claim: a fresh account takes the airdrop amount from the pool, paying `fee` out of it.
public struct Claim: WireCodable, Equatable {
    public var fee: UInt64

    public init(fee: UInt64) { self.fee = fee }

    public func encode(to writer: inout WireWriter) { writer.u64(fee) }

    public init(from reader: inout WireReader) throws(DecodeError) {
        fee = try reader.u64("claim.fee")
    }
}

/// The sequencer's refusal of L2 transactions, sent back to the address they came from: one signed
/// message for up to `txIdsMax` transactions refused for one reason (a burst's refusals cost one signature
/// per 32, not one each, so answering them costs far less than checking them). 32 ids keep the message in
/// one default-size datagram (1,232 bytes).
public struct L2Reject: WireCodable, Equatable {
    public static let txIdsMax = 32
    /// The refused transactions' ids (BLAKE2b-256 of their envelope bytes), 1…`txIdsMax`.
    public var txIds: [Bytes32]
    /// `busy` (shed before its signature was checked: the sequencer's verification budget was spent),
    /// `queue_full`, `rate_limited`, `underpriced`, `backlog`, `expired`, `not_ready`, `stopped` or `invalid`.
    public var reason: String
    /// The fee the queue asked for when the transactions were refused.
    public var baseFee: UInt64

    public init(txIds: [Bytes32], reason: String, baseFee: UInt64) {
        precondition((1...Self.txIdsMax).contains(txIds.count), "an l2 reject names 1...\(Self.txIdsMax) ids, not \(txIds.count)")
        self.txIds = txIds
        self.reason = reason
        self.baseFee = baseFee
    }

    public func encode(to writer: inout WireWriter) {
        writer.string(reason)
        writer.u64(baseFee)
        writer.u16(UInt16(txIds.count))
        for id in txIds { writer.bytes32(id) }
    }

    public init(from reader: inout WireReader) throws(DecodeError) {
        reason = try reader.string("l2Reject.reason", max: 32)
        baseFee = try reader.u64("l2Reject.baseFee")
        let count = try reader.count16("l2Reject.txIds", max: Self.txIdsMax)
        guard count > 0 else { throw .invalidValue(field: "l2Reject.txIds", reason: "no transaction named") }
        txIds = []
        txIds.reserveCapacity(count)
        for _ in 0..<count { txIds.append(try reader.bytes32("l2Reject.txId")) }
    }
}

/// An L2 block header. `stateRoot` is the L2 state after executing this block's transactions;
/// `forcedThrough` is how many inbox (forced) transactions the chain has consumed once this block is
/// applied: the block's first `forcedThrough - parent's` transactions are exactly the next ones.
public struct L2BlockHeader: WireCodable, Equatable {
    public var height: UInt64
    public var timeMs: UInt64
    public var parentId: Bytes32
    public var stateRoot: Bytes32
    public var txRoot: Bytes32
    public var txCount: UInt32
    public var forcedThrough: UInt64
    /// The L1 height the builder had seen; a block derived without the sequencer names the L1 block
    /// whose deadline made it.
    public var l1Origin: UInt64
    /// False for a block derivation built because the sequencer missed a forced-inclusion deadline.
    public var bySequencer: Bool

    public init(height: UInt64, timeMs: UInt64, parentId: Bytes32, stateRoot: Bytes32, txRoot: Bytes32,
                txCount: UInt32, forcedThrough: UInt64, l1Origin: UInt64, bySequencer: Bool) {
        self.height = height
        self.timeMs = timeMs
        self.parentId = parentId
        self.stateRoot = stateRoot
        self.txRoot = txRoot
        self.txCount = txCount
        self.forcedThrough = forcedThrough
        self.l1Origin = l1Origin
        self.bySequencer = bySequencer
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(height)
        writer.u64(timeMs)
        writer.bytes32(parentId)
        writer.bytes32(stateRoot)
        writer.bytes32(txRoot)
        writer.u32(txCount)
        writer.u64(forcedThrough)
        writer.u64(l1Origin)
        writer.bool(bySequencer)
    }

    public init(from reader: inout WireReader) throws(DecodeError) {
        height = try reader.u64("l2header.height")
        timeMs = try reader.u64("l2header.timeMs")
        parentId = try reader.bytes32("l2header.parentId")
        stateRoot = try reader.bytes32("l2header.stateRoot")
        txRoot = try reader.bytes32("l2header.txRoot")
        txCount = try reader.u32("l2header.txCount")
        forcedThrough = try reader.u64("l2header.forcedThrough")
        l1Origin = try reader.u64("l2header.l1Origin")
        bySequencer = try reader.bool("l2header.bySequencer")
    }

    public var id: Bytes32 { Blake2b.hash(encoded) }
}

/// An L2 block: a header and signed L2 transactions.
public struct L2Block: WireCodable, Equatable {
    public static let txsMax = 8_192
    public static let bytesMax = 2_000_000

    public var header: L2BlockHeader
    public var txs: [Envelope]

    public init(header: L2BlockHeader, txs: [Envelope]) {
        self.header = header
        self.txs = txs
    }

    public var id: Bytes32 { header.id }

    public func encode(to writer: inout WireWriter) {
        header.encode(to: &writer)
        writer.u32(UInt32(txs.count))
        for tx in txs { writer.blob16(tx.bytes) }
    }

    public init(from reader: inout WireReader) throws(DecodeError) {
        header = try L2BlockHeader(from: &reader)
        txs = try reader.transactions("l2block", count: header.txCount, countMax: L2Block.txsMax,
                                      bytesMax: ForcedTx.l2TxBytesMax, what: "an L2 transaction",
                                      allowed: \.isL2Transaction)
    }
}

/// A batch: consecutive L2 blocks as the poster put them on L1. Its claimed root is the last block's.
public struct Batch: WireCodable, Equatable {
    public static let blocksMax = 4_096

    public var index: UInt64
    public var blocks: [L2Block]

    public init(index: UInt64, blocks: [L2Block]) {
        self.index = index
        self.blocks = blocks
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(index)
        writer.u32(UInt32(blocks.count))
        for block in blocks { block.encode(to: &writer) }
    }

    public init(from reader: inout WireReader) throws(DecodeError) {
        index = try reader.u64("batch.index")
        let count = try reader.count32("batch.blockCount", max: Batch.blocksMax)
        var blocks: [L2Block] = []
        blocks.reserveCapacity(count)
        for _ in 0..<count { blocks.append(try L2Block(from: &reader)) }
        self.blocks = blocks
    }
}

/// One piece of an L2 block on the sequencer's feed, checked against the parts root before assembly.
public struct L2BlockPart: WireCodable, Equatable {
    public var height: UInt64
    public var blockId: Bytes32
    public var partsRoot: Bytes32
    public var part: PartSet.Part

    public init(height: UInt64, blockId: Bytes32, partsRoot: Bytes32, part: PartSet.Part) {
        self.height = height
        self.blockId = blockId
        self.partsRoot = partsRoot
        self.part = part
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(height)
        writer.bytes32(blockId)
        writer.bytes32(partsRoot)
        part.encode(to: &writer)
    }

    public init(from reader: inout WireReader) throws(DecodeError) {
        height = try reader.u64("l2part.height")
        blockId = try reader.bytes32("l2part.blockId")
        partsRoot = try reader.bytes32("l2part.partsRoot")
        part = try PartSet.Part(from: &reader)
    }
}
