import Sodium

/// Proof that a validator signed two different votes of one type for one height and round
/// (equivocation): both votes with their signatures. Self-authenticating: anyone holding the chain's
/// domain can check it, so it travels as an L1 transaction (kind `evidence`) signed by whoever
/// reports it, and a block that carries it records the offence for everyone.
///
/// Canonical: the vote whose block id sorts first (nil first) is `first`, so the same two votes
/// always encode to the same bytes whoever reports them.
public struct DuplicateVoteEvidence: WireCodable, Equatable, Hashable {
    /// What one offence is, for de-duplication: one per validator, height, round and vote type.
    public struct Key: Hashable, Sendable, Comparable, CustomStringConvertible {
        public var validator: PublicKey
        public var height: UInt64
        public var round: UInt32
        public var kind: MessageKind

        public static func < (lhs: Key, rhs: Key) -> Bool {
            (lhs.height, lhs.round, lhs.kind.rawValue, lhs.validator) < (rhs.height, rhs.round, rhs.kind.rawValue, rhs.validator)
        }

        public var description: String { "\(kind) of \(validator) at \(height)/\(round)" }
    }

    /// `prevote` or `precommit`.
    public var kind: MessageKind
    public var validator: PublicKey
    public var first: Vote
    public var firstSignature: Bytes64
    public var second: Vote
    public var secondSignature: Bytes64

    /// Orders the two votes canonically; nil if they are not an offence (another height, round or
    /// kind, or the same block id).
    public init?(kind: MessageKind, validator: PublicKey, _ a: Vote, _ signatureA: Bytes64, _ b: Vote,
                 _ signatureB: Bytes64) {
        guard kind == .prevote || kind == .precommit, a.height == b.height, a.round == b.round,
              a.blockId != b.blockId else { return nil }
        let aFirst = DuplicateVoteEvidence.sortsFirst(a.blockId, b.blockId)
        self.kind = kind
        self.validator = validator
        self.first = aFirst ? a : b
        self.firstSignature = aFirst ? signatureA : signatureB
        self.second = aFirst ? b : a
        self.secondSignature = aFirst ? signatureB : signatureA
    }

    public static func sortsFirst(_ a: Bytes32?, _ b: Bytes32?) -> Bool {
        switch (a, b) {
        case (nil, _): return true
        case (_, nil): return false
        case (let x?, let y?): return x < y
        }
    }

    public var key: Key { Key(validator: validator, height: first.height, round: first.round, kind: kind) }

    public func encode(to writer: inout WireWriter) {
        writer.u8(kind.rawValue)
        writer.publicKey(validator)
        first.encode(to: &writer)
        writer.bytes64(firstSignature)
        second.encode(to: &writer)
        writer.bytes64(secondSignature)
    }

    public init(from reader: inout WireReader) throws(DecodeError) {
        let raw = try reader.u8("evidence.kind")
        guard raw == MessageKind.prevote.rawValue || raw == MessageKind.precommit.rawValue,
              let kind = MessageKind(rawValue: raw) else {
            throw .invalidValue(field: "evidence.kind", reason: "\(raw) is not a prevote or a precommit")
        }
        self.kind = kind
        validator = try reader.publicKey("evidence.validator")
        first = try Vote(from: &reader)
        firstSignature = try reader.bytes64("evidence.firstSignature")
        second = try Vote(from: &reader)
        secondSignature = try reader.bytes64("evidence.secondSignature")
        guard first.height == second.height, first.round == second.round else {
            throw .invalidValue(field: "evidence.second", reason: "votes for different heights or rounds")
        }
        guard first.blockId != second.blockId, DuplicateVoteEvidence.sortsFirst(first.blockId, second.blockId) else {
            throw .invalidValue(field: "evidence.second", reason: "votes are equal or not in canonical order")
        }
    }

    /// Why the evidence does not prove an offence under `domain`, or nil when both signatures are the
    /// validator's (two Ed25519 checks).
    public func problem(domain: Domain) -> String? {
        for (vote, signature) in [(first, firstSignature), (second, secondSignature)] {
            let envelope = Envelope(kind: kind, payload: vote.encoded, domain: domain, sender: validator, signature: signature)
            guard envelope.verify(domain: domain) == .valid else {
                return "the \(kind) for \(vote.blockId?.short ?? "nil") is not signed by \(validator)"
            }
        }
        return nil
    }
}
