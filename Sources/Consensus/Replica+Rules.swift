import Basics
import Ledger
import Sodium
import Wire

extension Replica {
    /// What a node's binary is: the execution rules it implements (`versionMin...version`), the wire
    /// protocol version, the fork it is on, and the consensus protocol it runs. Both engines judge
    /// heights and peers by it.
    public struct Binary: Sendable, Equatable {
        public var version: UInt16
        public var versionMin: UInt16
        public var forkId: UInt32
        public var protocolVersion: UInt16
        public var consensus: BFT.ProtocolName

        public init(version: UInt16 = 1, versionMin: UInt16 = 1, forkId: UInt32 = 0, protocolVersion: UInt16 = 1,
                    consensus: BFT.ProtocolName = .tendermint) {
            self.version = version
            self.versionMin = versionMin
            self.forkId = forkId
            self.protocolVersion = protocolVersion
            self.consensus = consensus
        }

        public var identity: HandshakePolicy.Identity {
            HandshakePolicy.Identity(forkId: forkId, protocolVersion: protocolVersion, version: version,
                                     versionMin: versionMin)
        }

        /// The rules this binary applies at `height` under the genesis's upgrade plans.
        public func rules(at height: UInt64, plans: [UpgradePlan]) -> RulesSchedule.Decision {
            RulesSchedule.decide(height: height, binaryVersion: version, versionMin: versionMin, plans: plans)
        }

        /// Why a peer's hello is refused (nil: accepted). `signedForFork` is the fork its envelope was signed
        /// for; `consensus` the protocol number it names. A peer on the other protocol would read no vote of
        /// ours as we mean it (HotStuff-2 sends votes to the leader, Tendermint to everyone): a cluster of
        /// both is a misconfiguration, refused at the handshake like another fork.
        public func refusal(of theirs: HandshakePolicy.Identity, consensus: UInt8, signedForFork: UInt32, height: UInt64,
                            plans: [UpgradePlan], checkRules: Bool) -> String? {
            guard theirs.forkId == signedForFork else {
                return "hello names fork id \(theirs.forkId) but is signed for fork id \(signedForFork)"
            }
            if consensus != self.consensus.wireCode {
                let name = BFT.ProtocolName(wireCode: consensus).map { "\($0)" } ?? "number \(consensus) (unknown)"
                return "consensus protocol \(name), ours \(self.consensus)"
            }
            return HandshakePolicy.refusal(ours: identity, theirs: theirs, height: height, plans: plans,
                                           checkRules: checkRules)
        }

        /// Why this binary must not run from `height` on (a `refused_start` event and the exit), or nil.
        public func refusalToStart(at height: UInt64, plans: [UpgradePlan]) -> String? {
            guard case .tooEarly(let rules, let plan) = self.rules(at: height, plans: plans) else { return nil }
            let when = plan.map { "; start it at height \($0.height) (upgrade \($0.name)) or later" } ?? ""
            return "refusing to run: this binary implements rules v\(versionMin)...v\(version), "
                + "but height \(height) runs rules v\(rules)\(when)"
        }
    }

    /// Why a node stops deciding (it keeps serving blocks and status): the reason, and its event.
    public struct Stop: Sendable {
        public var reason: String
        public var event: String
        public var fields: [(String, JSONValue)]

        /// The event's fields with the reason.
        public var eventFields: [(String, JSONValue)] { fields + [("reason", .string(reason))] }

        public static func mismatch(_ block: Block, expected: Bytes32, rules: UInt16, source: String) -> Stop {
            let height = block.header.height
            return Stop(
                reason: "wrong state root at height \(height): expected \(expected.hex), got \(block.header.stateRoot.hex)",
                event: "state_mismatch",
                fields: [("height", .uint(height)), ("expected", .string(expected.hex)),
                         ("got", .string(block.header.stateRoot.hex)), ("rules", .uint(UInt64(rules))),
                         ("source", .string(source))])
        }

        public static func upgrade(_ plan: UpgradePlan, height: UInt64, binary: Binary) -> Stop {
            Stop(reason: "upgrade \(plan.name) needed at height \(plan.height)", event: "upgrade_needed",
                 fields: [("height", .uint(height)), ("plan", .string(plan.name)), ("planHeight", .uint(plan.height)),
                          ("planVersion", .uint(UInt64(plan.version))), ("binaryVersion", .uint(UInt64(binary.version)))])
        }

        public static func tooEarly(height: UInt64, rules: UInt16, binary: Binary) -> Stop {
            Stop(reason: "height \(height) runs rules v\(rules), older than this binary keeps (v\(binary.versionMin))",
                 event: "too_early", fields: [("height", .uint(height))])
        }
    }

    /// Whether a committed block may be stored and executed here: the rules version to execute it under,
    /// or why this node stops instead. A block whose state root is not this node's, or that needs rules
    /// this binary lacks, is not stored.
    public static func commitRules(_ block: Block, ledger: Ledger, binary: Binary, plans: [UpgradePlan],
                                   source: String) -> Result<UInt16, StopError> {
        let height = block.header.height
        guard block.header.stateRoot == ledger.stateRoot else {
            return .failure(StopError(stop: .mismatch(block, expected: ledger.stateRoot, rules: ledger.rulesVersion,
                                                      source: source)))
        }
        switch binary.rules(at: height, plans: plans) {
        case .apply(let version):
            return .success(version)
        case .upgradeNeeded(let plan):
            return .failure(StopError(stop: .upgrade(plan, height: height, binary: binary)))
        case .tooEarly(let version, _):
            return .failure(StopError(stop: .tooEarly(height: height, rules: version, binary: binary)))
        }
    }

    public struct StopError: Error {
        public var stop: Stop
    }

    /// The last stored block's result is confirmed only by the next block's header. So a node restarted
    /// on another binary executes its last block under the rules that binary applies now, and keeps the
    /// result under the recorded rules as an alternative: the first block committed on top decides which
    /// one the network built on (`resolve`). This is CometBFT's `rollback` of one height before a restart
    /// on a fixed binary, done only when the chain has not moved on without it.
    public struct TipAlternative: Sendable {
        public var ledger: Ledger
        public var recordedRules: UInt16
        public var currentRules: UInt16

        /// Executes `tip` (stored with `rules`) on `ledger`, the state before it: under the rules `binary`
        /// applies now, with the recorded rules' result as the alternative when the two roots differ.
        /// `result` is the block's result under the recorded rules.
        public static func reexecute(_ tip: (block: Block, rules: UInt16), ledger: inout Ledger, binary: Binary,
                                     plans: [UpgradePlan], result: inout Ledger.BlockResult?) -> TipAlternative? {
            var rules = tip.rules
            if case .apply(let version) = binary.rules(at: tip.block.header.height, plans: plans) { rules = version }
            var recorded = ledger
            recorded.rulesVersion = tip.rules
            result = recorded.execute(tip.block)
            guard rules != tip.rules else {
                ledger = recorded
                return nil
            }
            ledger.rulesVersion = rules
            ledger.execute(tip.block)
            guard recorded.stateRoot != ledger.stateRoot else {
                ledger = recorded
                return nil
            }
            return TipAlternative(ledger: recorded, recordedRules: tip.rules, currentRules: rules)
        }

        /// The ledger a block on top of the tip must extend: `current` (the re-executed tip), or the tip as
        /// first executed when that is what the block's header carries.
        public func base(for block: Block, current: Ledger) -> Ledger {
            block.header.stateRoot != current.stateRoot && block.header.stateRoot == ledger.stateRoot ? ledger : current
        }

        public enum Resolution: Sendable {
            /// The chain built on the tip as first executed: keep that ledger.
            case keepRecorded(Ledger)
            /// The chain built on the re-executed tip: record the current rules for it.
            case recordCurrent(UInt16)
            /// Neither: the block is judged against the current ledger (and stops the node).
            case neither
        }

        /// Which execution of the tip `block` (the next height) extends.
        public func resolve(for block: Block, current: Ledger) -> Resolution {
            if block.header.stateRoot == ledger.stateRoot, block.header.stateRoot != current.stateRoot {
                return .keepRecorded(ledger)
            }
            return block.header.stateRoot == current.stateRoot ? .recordCurrent(currentRules) : .neither
        }
    }
}
