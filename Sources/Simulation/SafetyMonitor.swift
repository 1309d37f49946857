import Sodium
import Wire

/// Safety checked as the simulation runs, after every commit and every signature: two nodes that
/// commit different blocks at one height; a validator (any of its processes and twins) that signs
/// two values for one height, round and step; or two commit certificates for different blocks at one
/// height (+2/3 of the stake precommitted one block in some round and another block in some round: a fork
/// a light client can be shown, whether or not two nodes have committed each side yet). With the liars'
/// stake under 1/3, Tendermint allows none of them. The event logs let the analysis find the first two
/// after the run; this lets the swarm stop at the first violation without writing them.
public struct SafetyMonitor: Sendable {
    public struct Violation: Sendable, Equatable, CustomStringConvertible {
        public enum Kind: String, Sendable { case agreement, doubleSign = "double_sign", fork }

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

    struct CertificateKey: Hashable {
        var height: UInt64
        var round: UInt32
        var value: Bytes32
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
    /// Stake per validator name (from genesis), for commit certificates; empty: certificates are not checked.
    var stakes: [String: UInt64] = [:]
    var totalStake: UInt64 = 0
    /// Who precommitted each value in each round of a height (liars included: their signatures count in a
    /// certificate as they would for a light client).
    var precommitters: [CertificateKey: Set<String>] = [:]
    /// Per height, the first commit certificate seen.
    var certificates: [UInt64: (round: UInt32, value: Bytes32, signers: [String])] = [:]

    public init() {}

    /// Validators configured to lie (byzantine modes), besides the ignored ones.
    var liars: Set<String> = []

    /// Checks commit certificates against these stakes (validator name → stake); `liars`: the validators
    /// configured to misbehave.
    public mutating func checkCertificates(stakes: [String: UInt64], liars: Set<String>) {
        self.stakes = stakes
        self.liars = liars
        totalStake = stakes.values.reduce(0, +)
    }

    /// Certificates say something only while the liars hold under a third of the stake.
    var certificatesMeaningful: Bool {
        totalStake > 0 && liars.union(ignoredValidators).reduce(UInt64(0)) { $0 + (stakes[$1] ?? 0) } * 3 < totalStake
    }

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
        if kind == .precommit, let value, height >= prunedBelow, certificatesMeaningful {
            certify(validator: validator, height: height, round: round, value: value, timeMs: timeMs)
        }
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
            precommitters = precommitters.filter { $0.key.height >= prunedBelow }
            certificates = certificates.filter { $0.key >= prunedBelow }
        }
    }

    private mutating func certify(validator: String, height: UInt64, round: UInt32, value: Bytes32, timeMs: UInt64) {
        let key = CertificateKey(height: height, round: round, value: value)
        guard precommitters[key, default: []].insert(validator).inserted else { return }
        let signers = precommitters[key]!
        let stake = signers.reduce(UInt64(0)) { $0 + (stakes[$1] ?? 0) }
        guard stake * 3 > totalStake * 2 else { return }
        guard let first = certificates[height] else {
            certificates[height] = (round, value, signers.sorted())
            return
        }
        if first.value != value {
            certificates[height] = (round, value, signers.sorted()) // reported once per new value
            add(Violation(kind: .fork, timeMs: timeMs, height: height,
                          detail: "+2/3 precommitted \(first.value.short) in round \(first.round) ("
                              + first.signers.joined(separator: ",") + ") and \(value.short) in round \(round) ("
                              + signers.sorted().joined(separator: ",") + ")"))
        }
    }

    private mutating func add(_ violation: Violation) {
        if violations.count < SafetyMonitor.violationsMax { violations.append(violation) }
    }
}
