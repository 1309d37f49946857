/// Execution rules by version (upgrade plans, which say which rules apply at which height, are in Ledger).
///
/// Version 2 changes one deterministic rule, so that nodes on different versions execute the same
/// block into different state roots (the mixed-version halts of Topologies/README.md, "Mixed validator versions"):
/// under version 1 the proposer receives each fee in full; under version 2 half of each fee, rounded up, is burned.
public enum Rules {
    /// The newest rules version this code implements.
    public static let newestVersion: UInt16 = 2

    /// What the block's proposer is credited for a transfer paying `fee`.
    public static func proposerShare(fee: UInt64, version: UInt16) -> UInt64 {
        switch version {
        case ..<2: return fee
        default: return fee - (fee / 2 + fee % 2)
        }
    }
}
