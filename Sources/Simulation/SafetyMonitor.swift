import Basics
import Sodium
import Wire

/// Safety checked as the simulation runs, after every commit and every signature: two nodes that
/// commit different blocks at one height, and what the shared `SignatureAudit` finds in the signatures
/// (the analysis of a real run's logs uses the same one): a validator (any of its processes and twins)
/// that signs two values for one height, round and step, or a fork — two commit certificates for
/// different blocks at one height (+2/3 of the stake precommitted one block in some round and another
/// block in some round), whether or not two nodes have committed each side yet. This lets the swarm and
/// Twins stop at the first violation without writing event logs.
public struct SafetyMonitor: Sendable {
    public struct Violation: Sendable, Equatable, CustomStringConvertible {
        public enum Kind: String, Sendable { case agreement, doubleSign = "double_sign", fork }

        public var kind: Kind
        public var timeMs: UInt64
        public var height: UInt64
        public var detail: String

        public var description: String { "\(kind.rawValue) at height \(height): \(detail)" }
    }

    public static let violationsMax = 100
    /// Signatures kept this many heights below the highest signed one (a restarted validator's
    /// double sign would be at the height it crashed in, far above this).
    static let signatureWindow: UInt64 = 1_000

    var committed: [UInt64: (id: Bytes32, node: String)] = [:]
    /// Every signature, the liars' too (their precommits count in certificates); kinds are `MessageKind` raw values.
    var audit = SignatureAudit<UInt8, Bytes32>(certificateKind: MessageKind.precommit.rawValue, stakes: [:])
    var prunedBelow: UInt64 = 0
    public private(set) var violations: [Violation] = []
    /// Liars and what they speak for (the swarm's twins and byzantine nodes): their commits and
    /// double signs are not the honest nodes' safety.
    var ignoredNodes: Set<String> = []
    var ignoredValidators: Set<String> = []
    public var signaturesSeen: Int { audit.count }

    public init() {}

    public var safe: Bool { violations.isEmpty }

    /// Checks commit certificates against these stakes (validator name → stake); `liars`: the validators
    /// configured to misbehave. Before the first signature.
    mutating func checkCertificates(stakes: [String: UInt64], liars: Set<String>) {
        precondition(audit.count == 0, "certificate stakes set after \(audit.count) signatures")
        audit = SignatureAudit(certificateKind: MessageKind.precommit.rawValue, stakes: stakes)
        audit.addLiars(liars.union(ignoredValidators))
    }

    mutating func addLiars(_ names: [String]) { audit.addLiars(names) }

    public mutating func ignore(nodes: Set<String>, validators: Set<String>) {
        ignoredNodes = nodes
        ignoredValidators = validators
        audit.addLiars(validators)
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
        let finding = audit.record(validator: validator, node: node, height: height, round: UInt64(round),
                                   kind: kind.rawValue, value: value)
        switch finding {
        case .doubleSign(let double) where !ignoredValidators.contains(validator):
            let values = double.values.map { $0?.short ?? "nil" }
            add(Violation(kind: .doubleSign, timeMs: timeMs, height: height,
                          detail: "\(validator) signed \(kind) round \(round) for \(values[0]) (on \(double.nodes[0])) "
                              + "and \(values[1]) (on \(double.nodes.last!))"))
        case .fork(let fork):
            add(Violation(kind: .fork, timeMs: timeMs, height: height, detail: Self.describe(fork)))
        case .doubleSign, nil:
            break
        }
        if audit.heightMax > prunedBelow + 2 * SafetyMonitor.signatureWindow {
            prunedBelow = audit.heightMax - SafetyMonitor.signatureWindow
            audit.forget(below: prunedBelow)
        }
    }

    static func describe(_ fork: SignatureAudit<UInt8, Bytes32>.Fork) -> String {
        "+2/3 precommitted \(fork.first.value.short) in round \(fork.first.round) ("
            + fork.first.signers.joined(separator: ",") + ") and \(fork.second.value.short) in round \(fork.second.round) ("
            + fork.second.signers.joined(separator: ",") + ")"
    }

    private mutating func add(_ violation: Violation) {
        if violations.count < SafetyMonitor.violationsMax { violations.append(violation) }
    }
}
