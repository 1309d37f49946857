import Sodium
import Wire

/// Safety checked as the simulation runs, after every commit and every signature: two nodes that
/// commit different blocks at one height, or a validator (any of its processes and twins) that signs
/// two values for one height, round and step. The event logs let the analysis find the same after
/// the run; this lets the swarm stop at the first violation without writing them.
public struct SafetyMonitor: Sendable {
    public struct Violation: Sendable, Equatable, CustomStringConvertible {
        public enum Kind: String, Sendable { case agreement, doubleSign = "double_sign" }

        public var kind: Kind
        public var timeMs: UInt64
        public var height: UInt64
        public var detail: String

        public var description: String { "\(kind.rawValue) at height \(height): \(detail)" }
    }

    struct SignKey: Hashable {
        var validator: String
        var height: UInt64
        var round: UInt32
        var kind: UInt8
    }

    public static let violationsMax = 100
    /// Signatures kept this many heights below the highest signed one (a restarted validator's
    /// double sign would be at the height it crashed in, far above this).
    static let signatureWindow: UInt64 = 1_000

    var committed: [UInt64: (id: Bytes32, node: String)] = [:]
    var signatures: [SignKey: (value: Bytes32?, node: String)] = [:]
    var signedHeightMax: UInt64 = 0
    var prunedBelow: UInt64 = 0
    public private(set) var violations: [Violation] = []
    /// Liars and what they speak for (the swarm's twins and byzantine nodes): their commits and
    /// signatures are not the honest nodes' safety.
    var ignoredNodes: Set<String> = []
    var ignoredValidators: Set<String> = []
    public private(set) var signaturesSeen = 0

    public init() {}

    public var safe: Bool { violations.isEmpty }

    public mutating func ignore(nodes: Set<String>, validators: Set<String>) {
        ignoredNodes = nodes
        ignoredValidators = validators
    }

    mutating func committed(node: String, height: UInt64, blockId: Bytes32, timeMs: UInt64) {
        guard !ignoredNodes.contains(node) else { return }
        guard let first = committed[height] else {
            committed[height] = (blockId, node)
            return
        }
        if first.id != blockId {
            add(Violation(kind: .agreement, timeMs: timeMs, height: height,
                          detail: "\(first.node) committed \(first.id.short), \(node) committed \(blockId.short)"))
        }
    }

    mutating func signed(validator: String, node: String, height: UInt64, round: UInt32, kind: MessageKind,
                         value: Bytes32?, timeMs: UInt64) {
        signaturesSeen += 1
        guard !ignoredValidators.contains(validator) else { return }
        let key = SignKey(validator: validator, height: height, round: round, kind: kind.rawValue)
        if let earlier = signatures[key] {
            if earlier.value != value {
                add(Violation(kind: .doubleSign, timeMs: timeMs, height: height,
                              detail: "\(validator) signed \(kind) round \(round) for \(earlier.value?.short ?? "nil") "
                                  + "(on \(earlier.node)) and \(value?.short ?? "nil") (on \(node))"))
            }
            return
        }
        signatures[key] = (value, node)
        signedHeightMax = max(signedHeightMax, height)
        if signedHeightMax > prunedBelow + 2 * SafetyMonitor.signatureWindow {
            prunedBelow = signedHeightMax - SafetyMonitor.signatureWindow
            signatures = signatures.filter { $0.key.height >= prunedBelow }
        }
    }

    private mutating func add(_ violation: Violation) {
        if violations.count < SafetyMonitor.violationsMax { violations.append(violation) }
    }
}
