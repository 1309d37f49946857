import Basics
import Sodium
import Wire

/// The chain's starting point: validators with stake and funded accounts. Written as JSON in a run folder.
public struct Genesis: Codable, Sendable, Equatable {
    public struct Validator: Codable, Sendable, Equatable {
        public var name: String
        public var publicKey: String
        public var stake: UInt64

        public init(name: String, publicKey: PublicKey, stake: UInt64) {
            self.name = name
            self.publicKey = publicKey.hex
            self.stake = stake
        }
    }

    public struct Allocation: Codable, Sendable, Equatable {
        public var publicKey: String
        public var balance: UInt64

        public init(publicKey: PublicKey, balance: UInt64) {
            self.publicKey = publicKey.hex
            self.balance = balance
        }
    }

    public var chainId: String
    public var protocolVersion: UInt16
    public var genesisTimeMs: UInt64
    public var validators: [Validator]
    public var allocations: [Allocation]
    /// Coordinated rule switches (see `RulesSchedule`); absent means none.
    public var upgrades: [UpgradePlan]?
    /// The L2 rollup settled on this chain, if any.
    public var rollup: RollupGenesis?

    public init(chainId: String, protocolVersion: UInt16, genesisTimeMs: UInt64, validators: [Validator],
                allocations: [Allocation], upgrades: [UpgradePlan]? = nil, rollup: RollupGenesis? = nil) {
        self.chainId = chainId
        self.protocolVersion = protocolVersion
        self.genesisTimeMs = genesisTimeMs
        self.validators = validators
        self.allocations = allocations
        self.upgrades = upgrades
        self.rollup = rollup
    }

    public enum Problem: Error, Equatable, CustomStringConvertible {
        case badKey(field: String, value: String)
        case noValidators
        case zeroStake(name: String)
        case duplicate(field: String, value: String)
        case badUpgrade(name: String, problem: String)
        case noRollup
        case badRollup(field: String, problem: String)

        public var description: String {
            switch self {
            case .badKey(let field, let value): return "\(field): '\(value)' is not a 64-hex-digit Ed25519 key"
            case .noValidators: return "validators: at least one validator is required"
            case .zeroStake(let name): return "validators.\(name).stake: must be greater than 0"
            case .duplicate(let field, let value): return "\(field): '\(value)' appears twice"
            case .badUpgrade(let name, let problem): return "upgrades.\(name): \(problem)"
            case .noRollup: return "rollup: this genesis has no rollup section"
            case .badRollup(let field, let problem): return "rollup.\(field): \(problem)"
            }
        }
    }

    /// The upgrade plans, checked: named, at heights from 1 in increasing order, each raising the version.
    public func upgradePlans() throws(Problem) -> [UpgradePlan] {
        let plans = upgrades ?? []
        var previous = UpgradePlan(name: "genesis", height: 0, version: 1)
        for plan in plans {
            guard !plan.name.isEmpty else { throw .badUpgrade(name: "?", problem: "a plan needs a name") }
            guard plan.height > previous.height else {
                throw .badUpgrade(name: plan.name, problem: "height \(plan.height) must be above \(previous.height) (\(previous.name))")
            }
            guard plan.version > previous.version else {
                throw .badUpgrade(name: plan.name,
                                  problem: "version \(plan.version) must be above \(previous.version) (\(previous.name))")
            }
            previous = plan
        }
        return plans
    }

    public func validatorSet() throws(Problem) -> ValidatorSet {
        guard !validators.isEmpty else { throw .noValidators }
        var members: [ValidatorSet.Member] = []
        var seen = Set<PublicKey>()
        for validator in validators {
            guard let bytes = Hex.decode(validator.publicKey), let key = PublicKey(bytes) else {
                throw .badKey(field: "validators.\(validator.name).publicKey", value: validator.publicKey)
            }
            guard validator.stake > 0 else { throw .zeroStake(name: validator.name) }
            guard seen.insert(key).inserted else { throw .duplicate(field: "validators", value: validator.name) }
            members.append(.init(name: validator.name, publicKey: key, stake: validator.stake))
        }
        return ValidatorSet(members: members)
    }

    public func initialAccounts() throws(Problem) -> [PublicKey: Account] {
        try Genesis.accounts(allocations)
    }

    static func accounts(_ allocations: [Allocation]) throws(Problem) -> [PublicKey: Account] {
        var accounts: [PublicKey: Account] = [:]
        for allocation in allocations {
            guard let bytes = Hex.decode(allocation.publicKey), let key = PublicKey(bytes) else {
                throw .badKey(field: "allocations.publicKey", value: allocation.publicKey)
            }
            guard accounts[key] == nil else { throw .duplicate(field: "allocations", value: allocation.publicKey) }
            accounts[key] = Account(balance: allocation.balance, nonce: 0)
        }
        return accounts
    }
}

/// The validators of a chain, their stake, the quorum thresholds and the proposer schedule.
public struct ValidatorSet: Sendable, Equatable {
    public struct Member: Sendable, Equatable {
        public var name: String
        public var publicKey: PublicKey
        public var stake: UInt64

        public init(name: String, publicKey: PublicKey, stake: UInt64) {
            self.name = name
            self.publicKey = publicKey
            self.stake = stake
        }
    }

    public static let scheduleLengthMax = 10_000

    public let members: [Member]
    public let totalStake: UInt64
    private let indexByKey: [PublicKey: Int]
    /// A weighted round-robin order of proposers (CometBFT's proposer-priority algorithm), cycled.
    private let schedule: [UInt16]

    public init(members: [Member]) {
        precondition(!members.isEmpty && members.count <= Int(UInt16.max), "validator count \(members.count)")
        self.members = members
        self.totalStake = members.reduce(0) { $0 + $1.stake }
        var index: [PublicKey: Int] = [:]
        for (position, member) in members.enumerated() { index[member.publicKey] = position }
        self.indexByKey = index
        self.schedule = ValidatorSet.makeSchedule(stakes: members.map(\.stake))
    }

    public var count: Int { members.count }

    public func index(of key: PublicKey) -> Int? { indexByKey[key] }

    public func stake(of index: Int) -> UInt64 { members[index].stake }

    /// More than two thirds of the total stake.
    public func isQuorum(_ stake: UInt64) -> Bool { Quorum.holds(stake, of: totalStake) }

    /// More than one third: at least one honest validator is among them.
    public func isOneThirdPlus(_ stake: UInt64) -> Bool { stake * 3 > totalStake }

    /// The proposer of (height, round).
    public func proposer(height: UInt64, round: UInt32) -> Int {
        let slot = (height &+ UInt64(round)) % UInt64(schedule.count)
        return Int(schedule[Int(slot)])
    }

    static func makeSchedule(stakes: [UInt64]) -> [UInt16] {
        let total = stakes.reduce(0, +)
        let divisor = stakes.reduce(0) { gcd($0, $1) }
        let period = Int(min(UInt64(scheduleLengthMax), total / max(divisor, 1)))
        var priorities = [Int64](repeating: 0, count: stakes.count)
        var order: [UInt16] = []
        order.reserveCapacity(period)
        for _ in 0..<max(period, 1) {
            for index in stakes.indices { priorities[index] += Int64(stakes[index]) }
            var best = 0
            for index in stakes.indices where priorities[index] > priorities[best] { best = index }
            priorities[best] -= Int64(total)
            order.append(UInt16(best))
        }
        return order
    }

    private static func gcd(_ a: UInt64, _ b: UInt64) -> UInt64 { b == 0 ? a : gcd(b, a % b) }
}
