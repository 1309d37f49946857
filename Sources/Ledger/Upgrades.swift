// Upgrade plans: which rules apply at which height. `Rules` (what each version executes) is in Wire,
// shared with the fraud-proof step machine.

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

/// Which rules a node applies at a height, given the genesis's upgrade plans and the range of rules
/// versions its binary implements (`versionMin...version`).
public enum RulesSchedule {
    public enum Decision: Sendable, Equatable {
        case apply(version: UInt16)
        /// The plan needs rules this binary does not have: the node must stop before this height.
        case upgradeNeeded(UpgradePlan)
        /// The height still runs older rules than this binary keeps: it must not run yet (`plan` is
        /// the next plan that brings rules it has, if any).
        case tooEarly(rules: UInt16, plan: UpgradePlan?)
    }

    /// - The last plan at or below `height` decides, if the binary has its version.
    /// - Before any plan, a binary whose version some plan schedules waits for it (version 1).
    /// - A binary whose version no plan mentions applies its own rules from genesis: an
    ///   uncoordinated upgrade, the mixed-version case.
    /// - Rules older than `versionMin` are refused: the binary was started too early.
    public static func decide(height: UInt64, binaryVersion: UInt16, versionMin: UInt16 = 1,
                              plans: [UpgradePlan]) -> Decision {
        let sorted = plans.sorted { $0.height < $1.height }
        let rules: UInt16
        if let active = sorted.last(where: { $0.height <= height }) {
            guard binaryVersion >= active.version else { return .upgradeNeeded(active) }
            rules = active.version
        } else if sorted.contains(where: { $0.version <= binaryVersion && $0.version > 1 }) {
            rules = 1
        } else {
            rules = max(binaryVersion, 1)
        }
        guard rules >= versionMin else {
            return .tooEarly(rules: rules, plan: sorted.first { $0.height > height && $0.version >= versionMin })
        }
        return .apply(version: rules)
    }
}

/// What two nodes tell each other before exchanging anything else, and whether they are compatible.
/// The fork id and the wire protocol version must match. With `checkRules`, the peer's binary must
/// also apply the same execution rules as ours at our next height (judged from the version range it
/// announces and the shared upgrade plans): a peer that would compute other state roots is refused
/// up front instead of halting consensus later.
public enum HandshakePolicy {
    public struct Identity: Sendable, Equatable {
        public var forkId: UInt32
        public var protocolVersion: UInt16
        public var version: UInt16
        public var versionMin: UInt16

        public init(forkId: UInt32, protocolVersion: UInt16, version: UInt16, versionMin: UInt16) {
            self.forkId = forkId
            self.protocolVersion = protocolVersion
            self.version = version
            self.versionMin = versionMin
        }
    }

    /// Nil when compatible, else why not (for the log line and the event).
    public static func refusal(ours: Identity, theirs: Identity, height: UInt64, plans: [UpgradePlan],
                               checkRules: Bool) -> String? {
        if theirs.forkId != ours.forkId { return "fork id \(theirs.forkId), ours \(ours.forkId)" }
        if theirs.protocolVersion != ours.protocolVersion {
            return "protocol version \(theirs.protocolVersion), ours \(ours.protocolVersion)"
        }
        guard checkRules else { return nil }
        let mine = RulesSchedule.decide(height: height, binaryVersion: ours.version, versionMin: ours.versionMin,
                                        plans: plans)
        let peer = RulesSchedule.decide(height: height, binaryVersion: theirs.version, versionMin: theirs.versionMin,
                                        plans: plans)
        guard mine != peer else { return nil }
        return "binary version \(theirs.version) \(describe(peer)) here, ours \(describe(mine))"
    }

    static func describe(_ decision: RulesSchedule.Decision) -> String {
        switch decision {
        case .apply(let version): return "applies rules v\(version)"
        case .upgradeNeeded(let plan): return "needs upgrade \(plan.name)"
        case .tooEarly(let rules, _): return "cannot run rules v\(rules)"
        }
    }
}
