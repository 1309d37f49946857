import Sodium

/// Every message kind that crosses the wire. The kind is signed, so a vote cannot pass as another kind.
public enum MessageKind: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case transfer = 1
    case proposal = 2
    case blockPart = 3
    case prevote = 4
    case precommit = 5
    case status = 6
    case blockRequest = 7
    case syncPart = 8
    case syncCommit = 9
    case hello = 10
    /// An L1 transaction carrying part of an L2 batch, from the sequencer's batch poster.
    case batchChunk = 11
    /// An L1 transaction putting an L2 transaction into the rollup inbox (forced inclusion).
    case forcedTx = 12
    /// L2 transactions, sent to the sequencer.
    case l2Transfer = 13
    case l2Claim = 14
    /// The sequencer's answer to a refused L2 transaction, with the reason.
    case l2Reject = 15
    /// A piece of an L2 block on the sequencer's feed.
    case l2BlockPart = 16
    /// An L1 transaction for the rollup's dispute contract: an assertion, a challenge, a bisection move
    /// or a one-step proof (the payload is decoded by the contract).
    case dispute = 17
    /// An L1 transaction carrying proof that a validator equivocated (`DuplicateVoteEvidence`).
    case evidence = 18
    /// Part of a quorum certificate a leader forwards (HotStuff-2): votes of one kind for one value, each with
    /// its signer's signature, checked one by one on arrival (`VoteBundle`).
    case certificate = 19
    /// A validator's word that its view (round) ended without a decision (HotStuff-2's pacemaker): a `Vote`
    /// with no value; +2/3 of them move every validator to the next view.
    case timeout = 20

    public var description: String {
        switch self {
        case .transfer: return "transfer"
        case .proposal: return "proposal"
        case .blockPart: return "block_part"
        case .prevote: return "prevote"
        case .precommit: return "precommit"
        case .status: return "status"
        case .blockRequest: return "block_request"
        case .syncPart: return "sync_part"
        case .syncCommit: return "sync_commit"
        case .hello: return "hello"
        case .batchChunk: return "batch_chunk"
        case .forcedTx: return "forced_tx"
        case .l2Transfer: return "l2_transfer"
        case .l2Claim: return "l2_claim"
        case .l2Reject: return "l2_reject"
        case .l2BlockPart: return "l2_block_part"
        case .dispute: return "dispute"
        case .evidence: return "evidence"
        case .certificate: return "certificate"
        case .timeout: return "timeout"
        }
    }

    public init?(name: String) {
        guard let kind = MessageKind.allCases.first(where: { $0.description == name }) else { return nil }
        self = kind
    }

    /// Consensus traffic (as opposed to user transactions and sync).
    public var isConsensus: Bool {
        switch self {
        case .proposal, .blockPart, .prevote, .precommit, .certificate, .timeout: return true
        case .transfer, .status, .blockRequest, .syncPart, .syncCommit, .hello, .batchChunk, .forcedTx, .l2Transfer,
             .l2Claim, .l2Reject, .l2BlockPart, .dispute, .evidence: return false
        }
    }

    /// Kinds anyone may sign (user transactions); everything else must come from a known node.
    public var isFromAnyone: Bool {
        switch self {
        case .transfer, .forcedTx, .l2Transfer, .l2Claim, .dispute, .evidence: return true
        case .proposal, .blockPart, .prevote, .precommit, .status, .blockRequest, .syncPart, .syncCommit, .hello,
             .batchChunk, .l2Reject, .l2BlockPart, .certificate, .timeout: return false
        }
    }

    /// Transactions an L1 block may carry; they travel on the user lane.
    public var isL1Transaction: Bool {
        self == .transfer || self == .batchChunk || self == .forcedTx || self == .dispute || self == .evidence
    }

    /// With ingress lanes, kinds that travel on the vote lane (consensus, sync, handshake); transactions
    /// and rollup traffic use the user lane.
    public var isConsensusLane: Bool {
        !(isL1Transaction || isL2Transaction || self == .l2Reject || self == .l2BlockPart)
    }

    /// Transactions an L2 block may carry.
    public var isL2Transaction: Bool { self == .l2Transfer || self == .l2Claim }

    /// Kinds sent without a signature: what they carry is proven on arrival against a root that a signed
    /// message holds (a block part against its proposal's `partsRoot`, as CometBFT's parts). Their sender
    /// field is a claim, never an authentication.
    public var isProvedByRoot: Bool { self == .blockPart }
}

/// Which chain and fork a signature is bound to. Messages for another chain or fork never verify.
public struct Domain: Hashable, Sendable {
    public static let tag: [UInt8] = Array("faultline/envelope/v1".utf8)

    public let chainId: String
    public let chainTag: UInt64
    public let forkId: UInt32

    public init(chainId: String, forkId: UInt32 = 0) {
        self.chainId = chainId
        let digest = Blake2b.hash(Array(chainId.utf8)).bytes
        self.chainTag = digest.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
        self.forkId = forkId
    }

    private init(chainId: String, chainTag: UInt64, forkId: UInt32) {
        self.chainId = chainId
        self.chainTag = chainTag
        self.forkId = forkId
    }

    /// The same chain on another fork (to check a handshake from a peer on another fork id).
    public func onFork(_ forkId: UInt32) -> Domain {
        Domain(chainId: chainId, chainTag: chainTag, forkId: forkId)
    }
}

/// A signed message: `signature` covers the domain tag, chain tag, fork id, sender, kind and payload.
///
/// Layout: magic(1) version(1) kind(1) chainTag(8) forkId(4) sender(32) payloadLength(2) payload signature(64).
/// A kind proved by a root (`MessageKind.isProvedByRoot`) has no signature: its layout ends with the payload
/// and its `signature` is zero.
public struct Envelope: Sendable, Equatable {
    public static let magic: UInt8 = 0xFA
    public static let version: UInt8 = 1
    public static let headerBytes = 49
    public static let overheadBytes = headerBytes + 64
    /// No envelope is ever larger than this, whatever the datagram setting.
    public static let payloadBytesMax = 65_000

    public let kind: MessageKind
    public let chainTag: UInt64
    public let forkId: UInt32
    public let sender: PublicKey
    public let payload: [UInt8]
    public let signature: Bytes64
    /// The exact bytes received or produced; relays forward them unchanged.
    public let bytes: [UInt8]
    /// A stable id for de-duplication: BLAKE2b-256 of the exact bytes, computed once (the ingress,
    /// the mempool, block checks and the commit all ask for it).
    public let id: Bytes32

    /// Bytes around the payload of an envelope of `kind`.
    public static func framingBytes(_ kind: MessageKind) -> Int {
        kind.isProvedByRoot ? headerBytes : overheadBytes
    }

    /// Signs `payload` as `key` for `domain`.
    public init(kind: MessageKind, payload: [UInt8], domain: Domain, key: SigningKey) {
        precondition(payload.count <= Envelope.payloadBytesMax, "payload of \(payload.count) bytes")
        precondition(!kind.isProvedByRoot, "\(kind) is sent unsigned: Envelope(proved:payload:domain:sender:)")
        var writer = WireWriter(capacity: payload.count + Envelope.overheadBytes)
        writer.u8(Envelope.magic)
        writer.u8(Envelope.version)
        writer.u8(kind.rawValue)
        writer.u64(domain.chainTag)
        writer.u32(domain.forkId)
        writer.publicKey(key.publicKey)
        writer.blob16(payload)
        let signature = Envelope.withSignedBytes(writer.bytes, count: writer.bytes.count) { key.sign($0) }
        writer.bytes64(signature)
        self.kind = kind
        self.chainTag = domain.chainTag
        self.forkId = domain.forkId
        self.sender = key.publicKey
        self.payload = payload
        self.signature = signature
        self.bytes = writer.bytes
        self.id = Blake2b.hash(writer.bytes)
    }

    /// Parses the framing without checking the signature (see `verify`).
    public init(decoding bytes: [UInt8], payloadBytesMax: Int = Envelope.payloadBytesMax) throws(DecodeError) {
        var reader = WireReader(bytes)
        let magic = try reader.u8("magic")
        guard magic == Envelope.magic else { throw .badMagic(magic) }
        let version = try reader.u8("version")
        guard version == Envelope.version else { throw .unsupportedVersion(version) }
        let kindByte = try reader.u8("kind")
        guard let kind = MessageKind(rawValue: kindByte) else { throw .unknownKind(kindByte) }
        self.kind = kind
        self.chainTag = try reader.u64("chainTag")
        self.forkId = try reader.u32("forkId")
        self.sender = try reader.publicKey("sender")
        self.payload = Array(try reader.blob16("payload", max: payloadBytesMax))
        self.signature = kind.isProvedByRoot ? .zero : try reader.bytes64("signature")
        try reader.expectEnd()
        self.bytes = bytes
        self.id = Blake2b.hash(bytes)
    }

    /// The kind of a framed envelope, read without decoding or verifying it (for shedding load
    /// before the expensive step); nil if the bytes are too short or the kind unknown.
    public static func peekKind(_ bytes: [UInt8]) -> MessageKind? {
        bytes.count > 2 && bytes[0] == magic ? MessageKind(rawValue: bytes[2]) : nil
    }

    /// The claimed sender of a framed envelope, not yet verified.
    public static func peekSender(_ bytes: [UInt8]) -> PublicKey? {
        bytes.count >= 15 + 32 && bytes[0] == magic ? PublicKey(bytes[15..<47]) : nil
    }

    /// Checks the domain and the Ed25519 signature. This is the expensive step (~50 µs). A kind proved by
    /// a root has no signature and never verifies: its receiver proves its content instead.
    public func verify(domain: Domain) -> VerifyResult {
        let bound = checkDomain(domain)
        guard bound == .valid else { return bound }
        guard !kind.isProvedByRoot else { return .badSignature }
        let ok = Envelope.withSignedBytes(bytes, count: bytes.count - 64) {
            sender.verify(signature: signature, message: $0)
        }
        return ok ? .valid : .badSignature
    }

    /// The chain and fork check alone: all an unsigned kind (`MessageKind.isProvedByRoot`) gets at the edge.
    public func checkDomain(_ domain: Domain) -> VerifyResult {
        guard chainTag == domain.chainTag else { return .wrongChain }
        guard forkId == domain.forkId else { return .wrongFork }
        return .valid
    }

    public enum VerifyResult: Sendable, Equatable {
        case valid, badSignature, wrongChain, wrongFork
    }

    /// The domain tag followed by the envelope bytes from `kind` to the end of the payload.
    private static func withSignedBytes<R>(
        _ bytes: [UInt8], count: Int, _ body: (UnsafeRawBufferPointer) -> R
    ) -> R {
        var message = Domain.tag
        message.reserveCapacity(Domain.tag.count + count)
        message.append(contentsOf: bytes[2..<count])
        return message.withUnsafeBytes(body)
    }

    /// An unsigned envelope of a kind proved by a root (a block part): `sender` says who made it, for
    /// logs and filters; the receiver proves the payload against the root its signed message carries.
    public init(proved kind: MessageKind, payload: [UInt8], domain: Domain, sender: PublicKey) {
        precondition(kind.isProvedByRoot, "\(kind) must be signed")
        self.init(kind: kind, payload: payload, domain: domain, sender: sender, signature: .zero)
    }

    /// Rebuilds a signed envelope from its parts (used to check commit certificates, which keep
    /// only signatures). Returns the envelope whose signature can then be verified. For a kind proved by
    /// a root the signature is not part of the bytes.
    public init(kind: MessageKind, payload: [UInt8], domain: Domain, sender: PublicKey, signature: Bytes64) {
        precondition(payload.count <= Envelope.payloadBytesMax, "payload of \(payload.count) bytes")
        var writer = WireWriter(capacity: payload.count + Envelope.overheadBytes)
        writer.u8(Envelope.magic)
        writer.u8(Envelope.version)
        writer.u8(kind.rawValue)
        writer.u64(domain.chainTag)
        writer.u32(domain.forkId)
        writer.publicKey(sender)
        writer.blob16(payload)
        if !kind.isProvedByRoot { writer.bytes64(signature) }
        self.kind = kind
        self.chainTag = domain.chainTag
        self.forkId = domain.forkId
        self.sender = sender
        self.payload = payload
        self.signature = kind.isProvedByRoot ? .zero : signature
        self.bytes = writer.bytes
        self.id = Blake2b.hash(writer.bytes)
    }
}

extension Envelope: CustomStringConvertible {
    public var description: String { "\(kind) from \(sender) (\(bytes.count) bytes, id \(id.short))" }
}
