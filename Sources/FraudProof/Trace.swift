import Sodium
import Wire

/// An execution trace as the dispute game sees it (Topologies/README.md, "Fraud proofs"): the hash of the agreed start
/// state, then the hash after each step. A halted machine is a fixed point, so the trace is padded
/// to a power of two with its last hash; the commitment is the Merkle root over the post-step
/// hashes (leaf i is the state after step i + 1). Pure.
public struct Trace: Sendable {
    public let start: Bytes32
    /// Steps before padding.
    public let steps: Int
    public let tree: MerkleTree

    /// `after`: the state hash after each step, in order (at least one step).
    public init(start: Bytes32, after: [Bytes32]) {
        precondition(!after.isEmpty, "a trace has at least one step")
        self.start = start
        steps = after.count
        let padded = 1 << MerkleTree.depth(for: after.count)
        tree = MerkleTree(leaves: after + Array(repeating: after[after.count - 1], count: padded - after.count))
    }

    public var commitment: Bytes32 { tree.root }
    /// Steps after padding: a power of two.
    public var length: Int { tree.levels[0].count }
    public var end: Bytes32 { tree.levels[0][length - 1] }

    /// The state hash at position `index` (0: the start, `length`: the end).
    public func hash(at index: Int) -> Bytes32 {
        precondition(index >= 0 && index <= length, "trace position \(index) of \(length)")
        return index == 0 ? start : tree.levels[0][index - 1]
    }

    /// The claim a party makes about position `index`: the hash with its proof against the commitment.
    public func claim(at index: Int) -> Bisection.Claim {
        precondition(index >= 1 && index <= length, "trace position \(index) of \(length)")
        return Bisection.Claim(index: index, hash: hash(at: index), proof: tree.proof(index - 1))
    }
}
