/// Execution rules by version, and upgrade plans: which rules apply at which height.
///
/// Version 2 changes one deterministic rule, so that nodes on different versions execute the same
/// block into different state roots (the mixed-version halts of INCIDENTS.md §2): under version 1 the
/// proposer receives each fee in full; under version 2 half of each fee, rounded up, is burned.
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

/// A coordinated switch of execution rules: from `height` on, every node applies `version`.
public struct UpgradePlan: Codable, Sendable, Equatable {
    public var name: String
    public var height: UInt64
    public var version: UInt16

    public init(name: String, height: UInt64, version: UInt16) {
        self.name = name
        self.height = height
        self.version = version
    }
}

/// Which rules a node applies at a height, given the genesis's upgrade plans and the newest
/// version its binary implements.
public enum RulesSchedule {
    public enum Decision: Sendable, Equatable {
        case apply(version: UInt16)
        /// The plan needs rules this binary does not have: the node must stop before this height.
        case upgradeNeeded(UpgradePlan)
    }

    /// - The last plan at or below `height` decides, if the binary has its version.
    /// - Before any plan, a binary whose version some plan schedules waits for it (version 1).
    /// - A binary whose version no plan mentions applies its own rules from genesis: an
    ///   uncoordinated upgrade, the mixed-version case.
    public static func decide(height: UInt64, binaryVersion: UInt16, plans: [UpgradePlan]) -> Decision {
        let sorted = plans.sorted { $0.height < $1.height }
        if let active = sorted.last(where: { $0.height <= height }) {
            return binaryVersion >= active.version ? .apply(version: active.version) : .upgradeNeeded(active)
        }
        if sorted.contains(where: { $0.version <= binaryVersion && $0.version > 1 }) { return .apply(version: 1) }
        return .apply(version: max(binaryVersion, 1))
    }
}
