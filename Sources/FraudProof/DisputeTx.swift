import Sodium
import Wire

/// The proposer's claim about one batch (Topologies/README.md, "Fraud proofs"): executing the batch's input from the
/// state its parent assertion claims ends at `root`, along a trace whose Merkle root is `commitment`. `endProof` proves
/// the last leaf (the halted state on `root`) against the commitment, so a game can open on it without the proposer's
/// help.
public struct Assertion: WireCodable, Equatable, Sendable {
    public var batch: UInt64
    /// The assertion for the batch before (zero: the L2 genesis).
    public var parent: Bytes32
    public var root: Bytes32
    public var commitment: Bytes32
    public var endProof: [Bytes32]

    public init(batch: UInt64, parent: Bytes32, root: Bytes32, commitment: Bytes32, endProof: [Bytes32]) {
        self.batch = batch
        self.parent = parent
        self.root = root
        self.commitment = commitment
        self.endProof = endProof
    }

    public var id: Bytes32 {
        var writer = WireWriter(capacity: 112)
        writer.u8(18)
        writer.u64(batch)
        writer.bytes32(parent)
        writer.bytes32(root)
        writer.bytes32(commitment)
        return Blake2b.hash(writer.bytes)
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(batch)
        writer.bytes32(parent)
        writer.bytes32(root)
        writer.bytes32(commitment)
        writer.hashes(endProof)
    }

    public init(from reader: inout WireReader) throws(DecodeError) {
        batch = try reader.u64("assertion.batch")
        parent = try reader.bytes32("assertion.parent")
        root = try reader.bytes32("assertion.root")
        commitment = try reader.bytes32("assertion.commitment")
        endProof = try reader.hashes("assertion.endProof")
    }
}

/// One L1 transaction for the dispute contract.
public enum DisputeTx: WireCodable, Equatable, Sendable {
    /// The proposer asserts a batch's end root (with `DisputeSettings.assertionBond`).
    case assert(Assertion)
    /// A challenger disputes an assertion with its own trace commitment and end hash (with a bond).
    case challenge(assertion: Bytes32, commitment: Bytes32, end: Bisection.Claim)
    /// A bisection move in game `game` of an assertion; the side is the sender's.
    case move(assertion: Bytes32, game: UInt32, claim: Bisection.Claim)
    /// The challenger's one-step proof once one step remains.
    case oneStep(assertion: Bytes32, game: UInt32, proof: OneStepProof)

    public var label: String {
        switch self {
        case .assert: return "assert"
        case .challenge: return "challenge"
        case .move: return "move"
        case .oneStep: return "one_step"
        }
    }

    public func encode(to writer: inout WireWriter) {
        switch self {
        case .assert(let assertion):
            writer.u8(1)
            assertion.encode(to: &writer)
        case .challenge(let assertion, let commitment, let end):
            writer.u8(2)
            writer.bytes32(assertion)
            writer.bytes32(commitment)
            end.encode(to: &writer)
        case .move(let assertion, let game, let claim):
            writer.u8(3)
            writer.bytes32(assertion)
            writer.u32(game)
            claim.encode(to: &writer)
        case .oneStep(let assertion, let game, let proof):
            writer.u8(4)
            writer.bytes32(assertion)
            writer.u32(game)
            proof.encode(to: &writer)
        }
    }

    public init(from reader: inout WireReader) throws(DecodeError) {
        switch try reader.u8("dispute.kind") {
        case 1:
            self = .assert(try Assertion(from: &reader))
        case 2:
            self = .challenge(assertion: try reader.bytes32("challenge.assertion"),
                              commitment: try reader.bytes32("challenge.commitment"), end: try Bisection.Claim(from: &reader))
        case 3:
            self = .move(assertion: try reader.bytes32("move.assertion"), game: try reader.u32("move.game"),
                         claim: try Bisection.Claim(from: &reader))
        case 4:
            self = .oneStep(assertion: try reader.bytes32("oneStep.assertion"), game: try reader.u32("oneStep.game"),
                            proof: try OneStepProof(from: &reader))
        case let kind:
            throw .invalidValue(field: "dispute.kind", reason: "\(kind)")
        }
    }
}

extension Bisection.Claim: WireCodable {
    public func encode(to writer: inout WireWriter) {
        writer.u64(UInt64(index))
        writer.bytes32(hash)
        writer.hashes(proof)
    }

    public init(from reader: inout WireReader) throws(DecodeError) {
        let index = try reader.u64("claim.index")
        guard index <= 1 << 40 else { throw .invalidValue(field: "claim.index", reason: "\(index)") }
        self.init(index: Int(index), hash: try reader.bytes32("claim.hash"), proof: try reader.hashes("claim.proof"))
    }
}

extension Machine.State {
    /// The state once every one of `itemCount` items is done, on `root`: the last leaf of a trace that
    /// ends at `root`, which L1 can compute from an assertion alone.
    public static func halted(root: Bytes32, itemCount: UInt64) -> Machine.State {
        var state = Machine.State(root: root)
        state.item = itemCount
        return state
    }
}

extension WireWriter {
    /// A Merkle path: a count byte, then the hashes.
    mutating func hashes(_ hashes: [Bytes32]) {
        precondition(hashes.count <= WireReader.pathMax, "a path of \(hashes.count) hashes")
        u8(UInt8(hashes.count))
        for hash in hashes { bytes32(hash) }
    }
}

extension WireReader {
    /// No trace or input tree is deeper than this.
    static let pathMax = 40

    mutating func hashes(_ field: String) throws(DecodeError) -> [Bytes32] {
        let count = Int(try u8(field))
        guard count <= WireReader.pathMax else { throw .invalidValue(field: field, reason: "\(count) hashes, max \(WireReader.pathMax)") }
        var hashes: [Bytes32] = []
        hashes.reserveCapacity(count)
        for _ in 0..<count { hashes.append(try bytes32(field)) }
        return hashes
    }
}
