import Sodium

/// A signed transfer: the envelope's sender is the paying account.
public struct Transfer: WireCodable, Equatable {
    public var to: PublicKey
    public var amount: UInt64
    public var fee: UInt64
    public var nonce: UInt64

    public init(to: PublicKey, amount: UInt64, fee: UInt64, nonce: UInt64) {
        self.to = to
        self.amount = amount
        self.fee = fee
        self.nonce = nonce
    }

    public func encode(to writer: inout WireWriter) {
        writer.publicKey(to)
        writer.u64(amount)
        writer.u64(fee)
        writer.u64(nonce)
    }

    public init(from reader: inout WireReader) throws(DecodeError) {
        to = try reader.publicKey("transfer.to")
        amount = try reader.u64("transfer.amount")
        fee = try reader.u64("transfer.fee")
        nonce = try reader.u64("transfer.nonce")
    }
}

/// A proposer's signed claim: at (height, round) it proposes the block `blockId`, whose encoding is
/// split into `partCount` parts with Merkle root `partsRoot`.
public struct Proposal: WireCodable, Equatable {
    public var height: UInt64
    public var round: UInt32
    /// The round in which the value was last seen with +2/3 prevotes, or -1.
    public var polRound: Int32
    public var blockId: Bytes32
    public var partsRoot: Bytes32
    public var partCount: UInt16
    public var blockBytes: UInt32

    public init(height: UInt64, round: UInt32, polRound: Int32, blockId: Bytes32, partsRoot: Bytes32,
                partCount: UInt16, blockBytes: UInt32) {
        self.height = height
        self.round = round
        self.polRound = polRound
        self.blockId = blockId
        self.partsRoot = partsRoot
        self.partCount = partCount
        self.blockBytes = blockBytes
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(height)
        writer.u32(round)
        writer.i32(polRound)
        writer.bytes32(blockId)
        writer.bytes32(partsRoot)
        writer.u16(partCount)
        writer.u32(blockBytes)
    }

    public init(from reader: inout WireReader) throws(DecodeError) {
        height = try reader.u64("proposal.height")
        round = try reader.u32("proposal.round")
        polRound = try reader.i32("proposal.polRound")
        guard polRound >= -1, polRound < Int32(truncatingIfNeeded: round) || polRound == -1 else {
            throw .invalidValue(field: "proposal.polRound", reason: "\(polRound) not in -1..<round")
        }
        blockId = try reader.bytes32("proposal.blockId")
        partsRoot = try reader.bytes32("proposal.partsRoot")
        partCount = try reader.u16("proposal.partCount")
        guard partCount >= 1, partCount <= PartSet.partsMax else {
            throw .oversized(field: "proposal.partCount", length: Int(partCount), max: PartSet.partsMax)
        }
        blockBytes = try reader.u32("proposal.blockBytes")
        guard blockBytes <= UInt32(Block.bytesMax) else {
            throw .oversized(field: "proposal.blockBytes", length: Int(blockBytes), max: Block.bytesMax)
        }
    }
}

/// One piece of a proposed block with its Merkle proof against the proposal's `partsRoot`.
public struct BlockPart: WireCodable, Equatable {
    public var height: UInt64
    public var round: UInt32
    public var part: PartSet.Part

    public init(height: UInt64, round: UInt32, part: PartSet.Part) {
        self.height = height
        self.round = round
        self.part = part
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(height)
        writer.u32(round)
        part.encode(to: &writer)
    }

    public init(from reader: inout WireReader) throws(DecodeError) {
        height = try reader.u64("part.height")
        round = try reader.u32("part.round")
        part = try PartSet.Part(from: &reader)
    }
}

/// A prevote or precommit (the envelope kind says which); `blockId == nil` is a vote for nil.
public struct Vote: WireCodable, Equatable, Hashable {
    public var height: UInt64
    public var round: UInt32
    public var blockId: Bytes32?

    public init(height: UInt64, round: UInt32, blockId: Bytes32?) {
        self.height = height
        self.round = round
        self.blockId = blockId
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(height)
        writer.u32(round)
        if let blockId {
            writer.u8(1)
            writer.bytes32(blockId)
        } else {
            writer.u8(0)
        }
    }

    public init(from reader: inout WireReader) throws(DecodeError) {
        height = try reader.u64("vote.height")
        round = try reader.u32("vote.round")
        blockId = try reader.bool("vote.hasBlock") ? try reader.bytes32("vote.blockId") : nil
    }
}

/// Periodic announcement of where a node is, so lagging peers know to sync.
public struct StatusMessage: WireCodable, Equatable {
    public var committedHeight: UInt64
    public var round: UInt32
    /// The sender's clock: makes every announcement distinct, so de-duplication never hides a live peer.
    public var timeMs: UInt64

    public init(committedHeight: UInt64, round: UInt32, timeMs: UInt64) {
        self.committedHeight = committedHeight
        self.round = round
        self.timeMs = timeMs
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(committedHeight)
        writer.u32(round)
        writer.u64(timeMs)
    }

    public init(from reader: inout WireReader) throws(DecodeError) {
        committedHeight = try reader.u64("status.committedHeight")
        round = try reader.u32("status.round")
        timeMs = try reader.u64("status.timeMs")
    }
}

/// The first message between two peers (and repeated while they have not agreed): who the sender
/// is on the wire, in consensus and in execution rules. A peer on another fork id, wire protocol
/// version or consensus protocol, or (when the node checks rules) on another rules version, is refused
/// before any block or vote is exchanged.
/// Signed under the sender's own fork id, so a node can read and authenticate a hello from another
/// fork and say why it refuses it.
public struct Hello: WireCodable, Equatable {
    public var protocolVersion: UInt16
    public var forkId: UInt32
    /// The newest and oldest execution rules the sender's binary implements.
    public var version: UInt16
    public var versionMin: UInt16
    public var committedHeight: UInt64
    /// The sender has not accepted the recipient yet: answer with a hello.
    public var replyWanted: Bool
    /// The sender's clock: keeps repeated hellos distinct for de-duplication.
    public var timeMs: UInt64
    /// The consensus protocol the sender runs (0 Tendermint, 1 HotStuff-2; any other value is carried,
    /// and refused by the receiver as a protocol it does not run).
    public var consensus: UInt8

    public init(protocolVersion: UInt16, forkId: UInt32, version: UInt16, versionMin: UInt16,
                committedHeight: UInt64, replyWanted: Bool, timeMs: UInt64, consensus: UInt8 = 0) {
        self.protocolVersion = protocolVersion
        self.forkId = forkId
        self.version = version
        self.versionMin = versionMin
        self.committedHeight = committedHeight
        self.replyWanted = replyWanted
        self.timeMs = timeMs
        self.consensus = consensus
    }

    public func encode(to writer: inout WireWriter) {
        writer.u16(protocolVersion)
        writer.u32(forkId)
        writer.u16(version)
        writer.u16(versionMin)
        writer.u64(committedHeight)
        writer.u8(replyWanted ? 1 : 0)
        writer.u64(timeMs)
        writer.u8(consensus)
    }

    public init(from reader: inout WireReader) throws(DecodeError) {
        protocolVersion = try reader.u16("hello.protocolVersion")
        forkId = try reader.u32("hello.forkId")
        version = try reader.u16("hello.version")
        versionMin = try reader.u16("hello.versionMin")
        guard versionMin >= 1, versionMin <= version else {
            throw .invalidValue(field: "hello.versionMin", reason: "\(versionMin) not in 1...\(version)")
        }
        committedHeight = try reader.u64("hello.committedHeight")
        let flag = try reader.u8("hello.replyWanted")
        guard flag <= 1 else { throw .invalidValue(field: "hello.replyWanted", reason: "\(flag) is not 0 or 1") }
        replyWanted = flag == 1
        timeMs = try reader.u64("hello.timeMs")
        consensus = try reader.u8("hello.consensus")
    }
}

/// Ask a peer for the committed block at `height` (answered with sync parts and signatures).
public struct BlockRequest: WireCodable, Equatable {
    public var height: UInt64
    /// The sender's clock: a retry is a new message, never mistaken for a duplicate of the first.
    public var timeMs: UInt64

    public init(height: UInt64, timeMs: UInt64) {
        self.height = height
        self.timeMs = timeMs
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(height)
        writer.u64(timeMs)
    }

    public init(from reader: inout WireReader) throws(DecodeError) {
        height = try reader.u64("blockRequest.height")
        timeMs = try reader.u64("blockRequest.timeMs")
    }
}

/// One piece of a committed block sent for block sync. A block's encoding is the same on every node,
/// so pieces from any peer fill the same assembly; the block is then checked against precommit
/// signatures that arrive separately (`SyncCommit`).
public struct SyncPart: WireCodable, Equatable {
    public var height: UInt64
    public var partsRoot: Bytes32
    public var part: PartSet.Part

    public init(height: UInt64, partsRoot: Bytes32, part: PartSet.Part) {
        self.height = height
        self.partsRoot = partsRoot
        self.part = part
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(height)
        writer.bytes32(partsRoot)
        part.encode(to: &writer)
    }

    public init(from reader: inout WireReader) throws(DecodeError) {
        height = try reader.u64("sync.height")
        partsRoot = try reader.bytes32("sync.partsRoot")
        part = try PartSet.Part(from: &reader)
    }
}

/// Some of the precommit signatures that committed a block, for block sync: a certificate of at
/// most `signaturesMax` signatures. Each signature is checked on its own, so they can come from any
/// peers in any order.
public struct SyncCommit: WireCodable, Equatable {
    public static let signaturesMax = 12

    public var certificate: CommitCertificate

    public init(height: UInt64, round: UInt32, blockId: Bytes32, signatures: [CommitCertificate.Signature]) {
        certificate = CommitCertificate(height: height, round: round, blockId: blockId, signatures: signatures)
    }

    public var height: UInt64 { certificate.height }
    public var round: UInt32 { certificate.round }
    public var blockId: Bytes32 { certificate.blockId }
    public var signatures: [CommitCertificate.Signature] { certificate.signatures }

    public func encode(to writer: inout WireWriter) { certificate.encode(to: &writer) }

    public init(from reader: inout WireReader) throws(DecodeError) {
        certificate = try CommitCertificate(from: &reader)
        guard (1...SyncCommit.signaturesMax).contains(certificate.signatures.count) else {
            throw .oversized(field: "syncCommit.count", length: certificate.signatures.count, max: SyncCommit.signaturesMax)
        }
    }
}

/// Part of a quorum certificate, as a HotStuff-2 leader forwards it: votes of one kind (prevote or precommit)
/// for one height, round and value, with at most `signaturesMax` of their signatures (a certificate of more
/// goes in several), each checked on its own on arrival as if its vote had come from its signer.
public struct VoteBundle: WireCodable, Equatable {
    public static let signaturesMax = 12

    public var kind: MessageKind
    public var vote: Vote
    public var signatures: [CommitCertificate.Signature]

    public init(kind: MessageKind, vote: Vote, signatures: [CommitCertificate.Signature]) {
        precondition(kind == .prevote || kind == .precommit, "a bundle of \(kind) votes")
        self.kind = kind
        self.vote = vote
        self.signatures = signatures
    }

    public func encode(to writer: inout WireWriter) {
        writer.u8(kind.rawValue)
        vote.encode(to: &writer)
        writer.u16(UInt16(signatures.count))
        for entry in signatures { entry.encode(to: &writer) }
    }

    public init(from reader: inout WireReader) throws(DecodeError) {
        let raw = try reader.u8("bundle.kind")
        guard raw == MessageKind.prevote.rawValue || raw == MessageKind.precommit.rawValue else {
            throw .invalidValue(field: "bundle.kind", reason: "\(raw) is not a vote kind")
        }
        kind = MessageKind(rawValue: raw)!
        vote = try Vote(from: &reader)
        let count = try reader.count16("bundle.signatureCount", max: VoteBundle.signaturesMax)
        guard count > 0 else { throw .invalidValue(field: "bundle.signatureCount", reason: "0") }
        var signatures: [CommitCertificate.Signature] = []
        signatures.reserveCapacity(count)
        for _ in 0..<count { signatures.append(try CommitCertificate.Signature(from: &reader)) }
        self.signatures = signatures
    }

    /// The envelope validator `key` signed for this vote, rebuilt for verification.
    public func voteEnvelope(signedBy key: PublicKey, signature: Bytes64, domain: Domain) -> Envelope {
        Envelope(kind: kind, payload: vote.encoded, domain: domain, sender: key, signature: signature)
    }
}

/// A decoded, typed message.
public enum Message: Sendable, Equatable {
    case transfer(Transfer)
    case proposal(Proposal)
    case blockPart(BlockPart)
    case prevote(Vote)
    case precommit(Vote)
    case status(StatusMessage)
    case blockRequest(BlockRequest)
    case syncPart(SyncPart)
    case syncCommit(SyncCommit)
    case hello(Hello)
    case batchChunk(BatchChunk)
    case forcedTx(ForcedTx)
    case l2Transfer(Transfer)
    case l2Claim(Claim)
    case l2Reject(L2Reject)
    case l2BlockPart(L2BlockPart)
    /// A dispute-contract transaction; the ledger decodes the payload (its types live with the step machine).
    case dispute([UInt8])
    case evidence(DuplicateVoteEvidence)
    case certificate(VoteBundle)
    case timeout(Vote)

    /// Decodes the payload of an envelope according to its kind.
    public init(kind: MessageKind, payload: [UInt8]) throws(DecodeError) {
        switch kind {
        case .transfer: self = .transfer(try Transfer(decoding: payload))
        case .proposal: self = .proposal(try Proposal(decoding: payload))
        case .blockPart: self = .blockPart(try BlockPart(decoding: payload))
        case .prevote: self = .prevote(try Vote(decoding: payload))
        case .precommit: self = .precommit(try Vote(decoding: payload))
        case .status: self = .status(try StatusMessage(decoding: payload))
        case .blockRequest: self = .blockRequest(try BlockRequest(decoding: payload))
        case .syncPart: self = .syncPart(try SyncPart(decoding: payload))
        case .syncCommit: self = .syncCommit(try SyncCommit(decoding: payload))
        case .hello: self = .hello(try Hello(decoding: payload))
        case .batchChunk: self = .batchChunk(try BatchChunk(decoding: payload))
        case .forcedTx: self = .forcedTx(try ForcedTx(decoding: payload))
        case .l2Transfer: self = .l2Transfer(try Transfer(decoding: payload))
        case .l2Claim: self = .l2Claim(try Claim(decoding: payload))
        case .l2Reject: self = .l2Reject(try L2Reject(decoding: payload))
        case .l2BlockPart: self = .l2BlockPart(try L2BlockPart(decoding: payload))
        case .dispute: self = .dispute(payload)
        case .evidence: self = .evidence(try DuplicateVoteEvidence(decoding: payload))
        case .certificate: self = .certificate(try VoteBundle(decoding: payload))
        case .timeout: self = .timeout(try Vote(decoding: payload))
        }
    }
}
