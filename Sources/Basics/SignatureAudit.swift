/// A run's consensus signatures checked for safety, wherever they come from: the simulator feeds each one as
/// it is made (and stops at the first finding), the analysis of a real run feeds the `signed` events of the
/// validators' logs. Two findings:
/// - a **double sign**: one validator (any of its processes) signing two values for one height, round and kind;
/// - a **fork**: at one height, validators holding +2/3 of the stake signed the certificate kind (precommits)
///   for one value in some round, and +2/3 for another value in some round. A light client shown either
///   certificate would accept it; with the liars under 1/3 of the stake Tendermint allows no fork, however
///   the messages went, so a fork is a broken rule even before two nodes have committed the two sides.
///   Liars' signatures count in certificates as they would for a light client; when the validators named
///   liars hold 1/3 or more, forks are not checked.
public struct SignatureAudit<Kind: Hashable & Sendable, Value: Hashable & Sendable>: Sendable {
    public struct Key: Hashable, Sendable {
        public var validator: String
        public var height: UInt64
        public var round: UInt64
        public var kind: Kind

        @inlinable init(validator: String, height: UInt64, round: UInt64, kind: Kind) {
            self.validator = validator
            self.height = height
            self.round = round
            self.kind = kind
        }
    }

    public struct DoubleSign: Sendable {
        public var key: Key
        /// The values signed (nil: a vote for nothing), in the order they were signed.
        public var values: [Value?]
        /// The processes that signed them (two for twins).
        public var nodes: [String]

        @inlinable init(key: Key, values: [Value?], nodes: [String]) {
            self.key = key
            self.values = values
            self.nodes = nodes
        }
    }

    public struct Certificate: Sendable, Equatable {
        public var round: UInt64
        public var value: Value
        /// The validators whose signatures make it, sorted.
        public var signers: [String]

        @inlinable init(round: UInt64, value: Value, signers: [String]) {
            self.round = round
            self.value = value
            self.signers = signers
        }
    }

    public struct Fork: Sendable, Equatable {
        public var height: UInt64
        public var first: Certificate
        public var second: Certificate

        @inlinable init(height: UInt64, first: Certificate, second: Certificate) {
            self.height = height
            self.first = first
            self.second = second
        }
    }

    public enum Finding: Sendable {
        case doubleSign(DoubleSign)
        case fork(Fork)
    }

    @usableFromInline struct CertificateKey: Hashable, Sendable {
        @usableFromInline var height: UInt64
        @usableFromInline var round: UInt64
        @usableFromInline var value: Value

        @inlinable init(height: UInt64, round: UInt64, value: Value) {
            self.height = height
            self.round = round
            self.value = value
        }
    }

    /// Double signs kept (each is a safety failure; the first ones are enough to show), and forks.
    @inlinable public static var findingsMax: Int { 1_000 }

    public let certificateKind: Kind
    @usableFromInline let stakes: [String: UInt64]
    @usableFromInline let totalStake: UInt64
    /// Validators allowed to lie (twins, byzantine modes): forks are checked only while they hold under 1/3.
    public private(set) var liars: Set<String> = []
    @usableFromInline var liarStake: UInt64 = 0
    /// The first value each validator signed per height, round and kind, and the process that signed it.
    public var first: [Key: (value: Value?, node: String)] {
        firstSigned.values.reduce(into: [:]) { all, bucket in all.merge(bucket) { earlier, _ in earlier } }
    }
    /// Signatures are kept in buckets of `bucketHeights` heights, so `forget(below:)` drops whole buckets
    /// instead of rehashing every signature it keeps into a new dictionary (4% of the simulator's time).
    @inlinable static var bucketHeights: UInt64 { 64 }
    /// A new bucket is sized for every validator signing three kinds at each of its heights (growing it
    /// rehashed its keys at every doubling).
    @inlinable var bucketCapacity: Int { Int(Self.bucketHeights) * max(stakes.count, 4) * 3 }
    @usableFromInline var firstSigned: [UInt64: [Key: (value: Value?, node: String)]] = [:]
    @usableFromInline var doubles: [Key: DoubleSign] = [:]
    @usableFromInline var doubleOrder: [Key] = []
    @usableFromInline var precommitters: [UInt64: [CertificateKey: (signers: Set<String>, stake: UInt64)]] = [:]
    /// Per height, the first certificate for each value (a second value makes a fork with the first).
    @usableFromInline var certificates: [UInt64: [Certificate]] = [:]
    public var forks: [Fork] { forksFound }
    public var count: Int { signatures }
    public var heightMax: UInt64 { highest }
    @usableFromInline var forksFound: [Fork] = []
    @usableFromInline var signatures = 0
    @usableFromInline var highest: UInt64 = 0

    /// `stakes`: validator name → stake (empty: forks are not checked).
    public init(certificateKind: Kind, stakes: [String: UInt64]) {
        self.certificateKind = certificateKind
        self.stakes = stakes
        totalStake = stakes.values.reduce(0, +)
    }

    public mutating func addLiars<S: Sequence>(_ names: S) where S.Element == String {
        liars.formUnion(names)
        liarStake = liars.reduce(0) { $0 + (stakes[$1] ?? 0) }
    }

    /// Records one signature; what it revealed, if anything (a double sign once per key, a fork once per new
    /// certificate value at a height).
    @inlinable
    public mutating func record(validator: String, node: String, height: UInt64, round: UInt64, kind: Kind,
                                value: Value?) -> Finding? {
        signatures += 1
        highest = max(highest, height)
        var finding: Finding?
        let key = Key(validator: validator, height: height, round: round, kind: kind)
        // One lookup: the slot is read, and filled if empty, in place.
        var earlier: (value: Value?, node: String)?
        func firstOrRecord(_ slot: inout (value: Value?, node: String)?) {
            if let slot { earlier = slot } else { slot = (value, node) }
        }
        let capacity = bucketCapacity // read before the bucket is opened for change
        firstOrRecord(&firstSigned[height / Self.bucketHeights, default: Dictionary(minimumCapacity: capacity)][key])
        if let earlier, earlier.value != value {
            finding = doubleSign(key, earlier: earlier, value: value, node: node)
        }
        if kind == certificateKind, let value, forksChecked,
           let fork = certify(validator: validator, height: height, round: round, value: value) {
            finding = .fork(fork)
        }
        return finding
    }

    @inlinable
    mutating func doubleSign(_ key: Key, earlier: (value: Value?, node: String), value: Value?,
                                     node: String) -> Finding? {
        if var entry = doubles[key] {
            if !entry.values.contains(value) { entry.values.append(value) }
            if !entry.nodes.contains(node) { entry.nodes.append(node) }
            doubles[key] = entry
            return nil
        }
        guard doubles.count < Self.findingsMax else { return nil }
        let entry = DoubleSign(key: key, values: [earlier.value, value],
                               nodes: earlier.node == node ? [node] : [earlier.node, node])
        doubles[key] = entry
        doubleOrder.append(key)
        return .doubleSign(entry)
    }

    @inlinable
    mutating func certify(validator: String, height: UInt64, round: UInt64, value: Value) -> Fork? {
        let key = CertificateKey(height: height, round: round, value: value)
        let added = stakes[validator] ?? 0
        var signers: Set<String> = [], stake: UInt64 = 0
        // One lookup: the entry is changed in place and read back.
        let voters = stakes.count
        func add(_ entry: inout (signers: Set<String>, stake: UInt64)) -> Bool {
            if entry.signers.isEmpty { entry.signers.reserveCapacity(voters) }
            guard entry.signers.insert(validator).inserted else { return false }
            entry.stake += added
            (signers, stake) = entry
            return true
        }
        guard add(&precommitters[height / Self.bucketHeights, default: [:]][key, default: ([], 0)]) else { return nil }
        // Once, when the signers first reach +2/3 (later signatures add nothing).
        guard Quorum.holds(stake, of: totalStake), !Quorum.holds(stake - added, of: totalStake) else { return nil }
        let certificate = Certificate(round: round, value: value, signers: signers.sorted())
        let earlier = certificates[height, default: []]
        guard !earlier.contains(where: { $0.value == value }) else { return nil }
        certificates[height, default: []].append(certificate)
        guard let other = earlier.first, forksFound.count < Self.findingsMax else { return nil }
        let fork = Fork(height: height, first: other, second: certificate)
        forksFound.append(fork)
        return fork
    }

    /// Whether forks are checked: stakes known and the liars under 1/3 of them.
    @inlinable
    public var forksChecked: Bool { totalStake > 0 && liarStake * 3 < totalStake }

    /// The double signs, in the order they were found.
    public var doubleSigns: [DoubleSign] { doubleOrder.compactMap { doubles[$0] } }

    /// Forgets signatures below `height`, in buckets of `bucketHeights` (a long simulation keeps a window;
    /// findings stay).
    @inlinable
    public mutating func forget(below height: UInt64) {
        // Whole buckets: those with a height at or above `height` stay.
        firstSigned = firstSigned.filter { ($0.key + 1) * Self.bucketHeights > height }
        precommitters = precommitters.filter { ($0.key + 1) * Self.bucketHeights > height }
        certificates = certificates.filter { $0.key >= height }
    }
}
