import Sodium

/// Splitting a large byte string into datagram-sized parts whose Merkle root can be signed once,
/// and checking each part on arrival against that root (as CometBFT's block parts).
public enum PartSet {
    public static let partsMax = 4096
    public static let proofDepthMax = 12

    public struct Part: WireCodable, Equatable {
        public var index: UInt16
        public var total: UInt16
        public var proof: [Bytes32]
        public var data: [UInt8]

        public init(index: UInt16, total: UInt16, proof: [Bytes32], data: [UInt8]) {
            self.index = index
            self.total = total
            self.proof = proof
            self.data = data
        }

        public func encode(to writer: inout WireWriter) {
            writer.u16(index)
            writer.u16(total)
            writer.u8(UInt8(proof.count))
            for hash in proof { writer.bytes32(hash) }
            writer.blob16(data)
        }

        public init(from reader: inout WireReader) throws(DecodeError) {
            index = try reader.u16("part.index")
            total = try reader.u16("part.total")
            guard total >= 1, Int(total) <= PartSet.partsMax else {
                throw .oversized(field: "part.total", length: Int(total), max: PartSet.partsMax)
            }
            guard index < total else {
                throw .invalidValue(field: "part.index", reason: "\(index) >= total \(total)")
            }
            let depth = Int(try reader.u8("part.proofDepth"))
            guard depth <= PartSet.proofDepthMax else {
                throw .oversized(field: "part.proofDepth", length: depth, max: PartSet.proofDepthMax)
            }
            var proof: [Bytes32] = []
            proof.reserveCapacity(depth)
            for _ in 0..<depth { proof.append(try reader.bytes32("part.proof")) }
            self.proof = proof
            data = Array(try reader.blob16("part.data", max: Envelope.payloadBytesMax))
        }

        /// True when this part's data hashes up to `root` through its proof.
        public func verify(root: Bytes32) -> Bool {
            guard proof.count == PartSet.depth(for: Int(total)) else { return false }
            return MerkleTree.verify(leaf: PartSet.leafHash(data), index: Int(index), proof: proof, root: root)
        }
    }

    /// Bytes of one part's header and proof inside a payload, for sizing the data.
    public static func partOverhead(total: Int) -> Int {
        2 + 2 + 1 + 32 * depth(for: total) + 2
    }

    public static func depth(for count: Int) -> Int { MerkleTree.depth(for: count) }

    static func leafHash<C: Collection>(_ data: C) -> Bytes32 where C.Element == UInt8 {
        var buffer: [UInt8] = [0]
        buffer.append(contentsOf: data)
        return Blake2b.hash(buffer)
    }

    /// Splits `bytes` so that each part, with `fixedOverhead` bytes around it, fits `payloadBytesMax`.
    public static func split(_ bytes: [UInt8], payloadBytesMax: Int, fixedOverhead: Int) -> (root: Bytes32, parts: [Part]) {
        var total = 1
        var chunk = 0
        // The proof length depends on the part count, which depends on the chunk size: iterate to a fit.
        for _ in 0..<16 {
            chunk = payloadBytesMax - fixedOverhead - partOverhead(total: total)
            precondition(chunk > 0, "datagram payload \(payloadBytesMax) too small for parts")
            let needed = max(1, (bytes.count + chunk - 1) / chunk)
            if needed <= total { break }
            total = needed
        }
        precondition(total <= partsMax, "\(bytes.count) bytes need \(total) parts, max \(partsMax)")
        var chunks: [[UInt8]] = []
        chunks.reserveCapacity(total)
        for index in 0..<total {
            let start = min(index * chunk, bytes.count)
            let end = min(start + chunk, bytes.count)
            chunks.append(Array(bytes[start..<end]))
        }
        let (root, proofs) = merkle(leaves: chunks.map { leafHash($0) })
        let parts = (0..<total).map {
            Part(index: UInt16($0), total: UInt16(total), proof: proofs[$0], data: chunks[$0])
        }
        return (root, parts)
    }

    /// The Merkle root of the leaves padded to a power of two with the zero hash, and each leaf's proof.
    public static func merkle(leaves: [Bytes32]) -> (root: Bytes32, proofs: [[Bytes32]]) {
        let tree = MerkleTree(leaves: leaves)
        return (tree.root, leaves.indices.map(tree.proof))
    }

    /// Collects verified parts for one root; bounded by `bytesMax`.
    public struct Assembler: Sendable {
        public let root: Bytes32
        public let total: Int
        public let bytesMax: Int
        private var parts: [[UInt8]?]
        public private(set) var received = 0
        private var bytes = 0

        public init(root: Bytes32, total: Int, bytesMax: Int) {
            precondition(total >= 1 && total <= PartSet.partsMax, "part total \(total)")
            self.root = root
            self.total = total
            self.bytesMax = bytesMax
            self.parts = Array(repeating: nil, count: total)
        }

        public enum AddResult: Sendable, Equatable {
            case added, duplicate, complete([UInt8]), rejected(String)

            /// The part proved against the root and was not there yet.
            public var isNewAndProven: Bool {
                switch self {
                case .added, .complete: return true
                case .duplicate, .rejected: return false
                }
            }
        }

        public var isComplete: Bool { received == total }

        public mutating func add(_ part: Part) -> AddResult {
            guard Int(part.total) == total else { return .rejected("part total \(part.total), expected \(total)") }
            guard parts[Int(part.index)] == nil else { return .duplicate }
            guard bytes + part.data.count <= bytesMax else { return .rejected("over \(bytesMax) bytes") }
            guard part.verify(root: root) else { return .rejected("bad Merkle proof for part \(part.index)") }
            parts[Int(part.index)] = part.data
            received += 1
            bytes += part.data.count
            if received == total {
                var whole: [UInt8] = []
                whole.reserveCapacity(bytes)
                for piece in parts { whole.append(contentsOf: piece!) }
                return .complete(whole)
            }
            return .added
        }
    }
}
