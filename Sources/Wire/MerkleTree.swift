import Sodium

/// A binary Merkle tree over 32-byte leaves, padded to a power of two with the zero hash; inner nodes
/// are BLAKE2b of (0x01, left, right). Keeps every level, so a proof of any leaf is read off, not
/// recomputed. Used for block parts and for fraud-proof trace commitments.
public struct MerkleTree: Sendable {
    /// `levels[0]` are the padded leaves, the last level is the root alone.
    public private(set) var levels: [[Bytes32]]
    /// Leaves given (before padding).
    public let count: Int

    public init(leaves: [Bytes32]) {
        precondition(!leaves.isEmpty, "a Merkle tree needs at least one leaf")
        count = leaves.count
        var level = leaves + Array(repeating: Bytes32.zero, count: (1 << MerkleTree.depth(for: leaves.count)) - leaves.count)
        var levels = [level]
        while level.count > 1 {
            level = stride(from: 0, to: level.count, by: 2).map { Blake2b.hash(prefix: 1, level[$0], level[$0 + 1]) }
            levels.append(level)
        }
        self.levels = levels
    }

    public var root: Bytes32 { levels[levels.count - 1][0] }
    public var depth: Int { levels.count - 1 }

    /// Replaces leaf `index` (one of the leaves given) and rehashes its path to the root: depth hashes.
    public mutating func update(_ index: Int, leaf: Bytes32) {
        precondition(index >= 0 && index < count, "leaf \(index) of \(count)")
        var position = index
        levels[0][position] = leaf
        for level in 1..<levels.count {
            let left = position & ~1
            let hash = Blake2b.hash(prefix: 1, levels[level - 1][left], levels[level - 1][left + 1])
            position >>= 1
            levels[level][position] = hash
        }
    }

    /// The siblings from leaf `index` up to the root.
    public func proof(_ index: Int) -> [Bytes32] {
        precondition(index >= 0 && index < count, "leaf \(index) of \(count)")
        var position = index
        return levels.dropLast().map { level in
            defer { position >>= 1 }
            return level[position ^ 1]
        }
    }

    /// Whether `leaf` is leaf `index` of a tree of depth `proof.count` with `root`.
    public static func verify(leaf: Bytes32, index: Int, proof: [Bytes32], root: Bytes32) -> Bool {
        guard index >= 0, proof.count < Int.bitWidth - 1, index < 1 << proof.count else { return false }
        var hash = leaf
        var position = index
        for sibling in proof {
            hash = position & 1 == 0 ? Blake2b.hash(prefix: 1, hash, sibling) : Blake2b.hash(prefix: 1, sibling, hash)
            position >>= 1
        }
        return hash == root
    }

    /// Levels above the leaves for `count` leaves.
    public static func depth(for count: Int) -> Int {
        var depth = 0
        while (1 << depth) < count { depth += 1 }
        return depth
    }
}
