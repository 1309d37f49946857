import Sodium

/// The header that validators sign (through the block id). `stateRoot` is the ledger root after
/// executing the previous block, as CometBFT's app hash.
public struct BlockHeader: WireCodable, Equatable {
    public var protocolVersion: UInt16
    public var height: UInt64
    public var timeMs: UInt64
    public var proposer: PublicKey
    public var previousBlockId: Bytes32
    public var stateRoot: Bytes32
    public var txRoot: Bytes32
    public var txCount: UInt32

    public init(protocolVersion: UInt16, height: UInt64, timeMs: UInt64, proposer: PublicKey,
                previousBlockId: Bytes32, stateRoot: Bytes32, txRoot: Bytes32, txCount: UInt32) {
        self.protocolVersion = protocolVersion
        self.height = height
        self.timeMs = timeMs
        self.proposer = proposer
        self.previousBlockId = previousBlockId
        self.stateRoot = stateRoot
        self.txRoot = txRoot
        self.txCount = txCount
    }

    public func encode(to writer: inout WireWriter) {
        writer.u16(protocolVersion)
        writer.u64(height)
        writer.u64(timeMs)
        writer.publicKey(proposer)
        writer.bytes32(previousBlockId)
        writer.bytes32(stateRoot)
        writer.bytes32(txRoot)
        writer.u32(txCount)
    }

    public init(from reader: inout WireReader) throws(DecodeError) {
        protocolVersion = try reader.u16("header.protocolVersion")
        height = try reader.u64("header.height")
        timeMs = try reader.u64("header.timeMs")
        proposer = try reader.publicKey("header.proposer")
        previousBlockId = try reader.bytes32("header.previousBlockId")
        stateRoot = try reader.bytes32("header.stateRoot")
        txRoot = try reader.bytes32("header.txRoot")
        txCount = try reader.u32("header.txCount")
    }

    /// The block id: BLAKE2b-256 of the encoded header.
    public var id: Bytes32 { Blake2b.hash(encoded) }
}

/// A block: a header and signed transfers.
public struct Block: WireCodable, Equatable {
    public static let bytesMax = 3_000_000
    public static let txsMax = 20_000

    public var header: BlockHeader { didSet { id = header.id } }
    public var txs: [Envelope]
    /// The header's hash, kept with it (a block's id is asked for at every step from proposal to commit).
    public private(set) var id: Bytes32

    public init(header: BlockHeader, txs: [Envelope]) {
        self.header = header
        self.txs = txs
        self.id = header.id
    }

    /// The root over the transactions' ids, as committed in the header.
    public static func txRoot(_ txs: [Envelope]) -> Bytes32 {
        var writer = WireWriter(capacity: 8 + txs.count * 32)
        writer.u32(UInt32(txs.count))
        for tx in txs { writer.bytes32(tx.id) }
        return Blake2b.hash(writer.bytes)
    }

    public func encode(to writer: inout WireWriter) {
        header.encode(to: &writer)
        writer.u32(UInt32(txs.count))
        for tx in txs { writer.blob16(tx.bytes) }
    }

    public init(from reader: inout WireReader) throws(DecodeError) {
        header = try BlockHeader(from: &reader)
        txs = try reader.transactions("block", count: header.txCount, countMax: Block.txsMax, bytesMax: 2048,
                                      what: "a transaction", allowed: \.isL1Transaction)
        id = header.id
    }
}

extension WireReader {
    /// A block's transactions: a count that must equal the header's, then that many framed envelopes
    /// (signatures not checked here) of the kinds a block of this layer may carry.
    mutating func transactions(_ prefix: String, count headerCount: UInt32, countMax: Int, bytesMax: Int, what: String,
                               allowed: (MessageKind) -> Bool) throws(DecodeError) -> [Envelope] {
        let count = try count32("\(prefix).txCount", max: countMax)
        guard count == Int(headerCount) else {
            throw .invalidValue(field: "\(prefix).txCount", reason: "\(count) txs, header says \(headerCount)")
        }
        var txs: [Envelope] = []
        txs.reserveCapacity(count)
        for _ in 0..<count {
            let tx = try Envelope(decoding: Array(try blob16("\(prefix).tx", max: bytesMax)))
            guard allowed(tx.kind) else {
                throw .invalidValue(field: "\(prefix).tx", reason: "kind \(tx.kind) is not \(what)")
            }
            txs.append(tx)
        }
        return txs
    }
}

/// +2/3 of stake precommitted `blockId` at (height, round): the signatures, by validator index.
public struct CommitCertificate: WireCodable, Equatable {
    public static let signaturesMax = 1024

    /// One validator's precommit signature, by its index in the validator set.
    public struct Signature: WireCodable, Equatable {
        public var validator: UInt16
        public var signature: Bytes64

        public init(validator: UInt16, signature: Bytes64) {
            self.validator = validator
            self.signature = signature
        }

        public func encode(to writer: inout WireWriter) {
            writer.u16(validator)
            writer.bytes64(signature)
        }

        public init(from reader: inout WireReader) throws(DecodeError) {
            validator = try reader.u16("signature.validator")
            signature = try reader.bytes64("signature.bytes")
        }
    }

    public var height: UInt64
    public var round: UInt32
    public var blockId: Bytes32
    public var signatures: [Signature]

    public init(height: UInt64, round: UInt32, blockId: Bytes32, signatures: [Signature]) {
        self.height = height
        self.round = round
        self.blockId = blockId
        self.signatures = signatures
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(height)
        writer.u32(round)
        writer.bytes32(blockId)
        writer.u16(UInt16(signatures.count))
        for entry in signatures { entry.encode(to: &writer) }
    }

    public init(from reader: inout WireReader) throws(DecodeError) {
        height = try reader.u64("commit.height")
        round = try reader.u32("commit.round")
        blockId = try reader.bytes32("commit.blockId")
        let count = try reader.count16("commit.signatureCount", max: CommitCertificate.signaturesMax)
        var signatures: [Signature] = []
        signatures.reserveCapacity(count)
        for _ in 0..<count { signatures.append(try Signature(from: &reader)) }
        self.signatures = signatures
    }

    /// The envelope validator `key` signed for this commit's precommit, rebuilt for verification.
    public func precommitEnvelope(signedBy key: PublicKey, signature: Bytes64, domain: Domain) -> Envelope {
        let vote = Vote(height: height, round: round, blockId: blockId)
        return Envelope(kind: .precommit, payload: vote.encoded, domain: domain, sender: key, signature: signature)
    }
}

/// A block with the certificate that committed it: what the store keeps and block sync sends.
public struct CommittedBlock: WireCodable, Equatable {
    public var block: Block
    public var commit: CommitCertificate

    public init(block: Block, commit: CommitCertificate) {
        self.block = block
        self.commit = commit
    }

    public func encode(to writer: inout WireWriter) {
        block.encode(to: &writer)
        commit.encode(to: &writer)
    }

    public init(from reader: inout WireReader) throws(DecodeError) {
        block = try Block(from: &reader)
        commit = try CommitCertificate(from: &reader)
        guard commit.height == block.header.height, commit.blockId == block.id else {
            throw .invalidValue(field: "commit", reason: "certificate is for another block")
        }
    }
}
