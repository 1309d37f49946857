import Ledger
import Rollup
import Sodium
import Wire

/// What a topology and a seed determine before anything runs: every node's and account's key, and the
/// chain's genesis. The real cluster (`RunFolder`) and the simulator derive them the same way, so a
/// simulated run and a real one of the same file and seed have the same validators, accounts and balances.
public enum ClusterSetup {
    public static let accountBalance: UInt64 = 1_000_000_000_000

    /// Deterministic keys: the same topology and seed give the same cluster.
    public static func nodeKey(chainId: String, seed: UInt64, name: String) -> SigningKey {
        SigningKey(label: "\(chainId)/\(seed)/node/\(name)")
    }

    public static func accountKey(chainId: String, seed: UInt64, index: Int) -> SigningKey {
        SigningKey(label: "\(chainId)/\(seed)/account/\(index)")
    }

    /// L1 accounts that post forced transactions (funded in genesis when there is a rollup).
    public static let forcedSendersCount = 16

    public static func forcedSenderKey(chainId: String, seed: UInt64, index: Int) -> SigningKey {
        SigningKey(label: "\(chainId)/\(seed)/forced-sender/\(index)")
    }

    public static func airdropPoolKey(chainId: String, seed: UInt64) -> SigningKey {
        SigningKey(label: "\(chainId)/\(seed)/airdrop-pool")
    }

    /// The key of claimer `index` of an airdrop drawn from `seed` (a fresh account on L2).
    public static func airdropClaimerKey(seed: UInt64, index: Int) -> SigningKey {
        SigningKey(label: "airdrop/\(seed)/claimer/\(index)")
    }

    /// The rollup section of genesis: the load accounts are funded on L2 as on L1, plus the airdrop pool.
    static func rollupGenesis(_ topology: Topology, seed: UInt64) -> RollupGenesis? {
        guard let rollup = topology.rollup, let sequencer = topology.sequencerNode else { return nil }
        let pool = airdropPoolKey(chainId: topology.chainId, seed: seed).publicKey
        let accounts = (0..<topology.load.accounts).map {
            Genesis.Allocation(publicKey: accountKey(chainId: topology.chainId, seed: seed, index: $0).publicKey,
                               balance: accountBalance)
        }
        let (poolBalance, overflow) = rollup.airdropClaims.multipliedReportingOverflow(by: rollup.airdropAmount)
        return RollupGenesis(sequencer: nodeKey(chainId: topology.chainId, seed: seed, name: sequencer.name).publicKey,
                             forcedInclusionBlocks: rollup.forcedInclusionBlocks,
                             l2Allocations: accounts + [.init(publicKey: pool, balance: overflow ? UInt64.max : poolBalance)],
                             airdropPool: pool, airdropAmount: rollup.airdropAmount, disputes: rollup.disputes)
    }

    /// L1 funds for bonds: the sequencer and every replica identity, when the rollup has disputes.
    static func disputeAllocations(_ topology: Topology, seed: UInt64) -> [Genesis.Allocation] {
        guard topology.rollup?.disputes != nil else { return [] }
        return topology.nodes.filter { $0.role == "sequencer" || $0.role == "replica" }.flatMap { node in
            DisputeIdentity.keys(of: nodeKey(chainId: topology.chainId, seed: seed, name: node.name),
                                 count: node.dispute.identities).map { .init(publicKey: $0.publicKey, balance: disputeFunds) }
        }
    }

    static let disputeFunds: UInt64 = 1_000_000

    /// The chain's genesis for a topology and seed: validators' keys and stakes, funded load accounts
    /// (and the rollup's), upgrade plans. The real cluster and the simulator start from the same one.
    public static func genesis(topology: Topology, seed: UInt64, timeMs: UInt64) -> Genesis {
        Genesis(
            chainId: topology.chainId, protocolVersion: 1, genesisTimeMs: timeMs,
            validators: topology.validators.map {
                .init(name: $0.name, publicKey: nodeKey(chainId: topology.chainId, seed: seed, name: $0.name).publicKey,
                      stake: $0.stake)
            },
            allocations: (0..<topology.load.accounts).map {
                .init(publicKey: accountKey(chainId: topology.chainId, seed: seed, index: $0).publicKey,
                      balance: accountBalance)
            } + (topology.rollup == nil ? [] : (0..<forcedSendersCount).map {
                .init(publicKey: forcedSenderKey(chainId: topology.chainId, seed: seed, index: $0).publicKey,
                      balance: accountBalance)
            }) + disputeAllocations(topology, seed: seed),
            upgrades: topology.upgrades.isEmpty ? nil : topology.upgrades,
            rollup: rollupGenesis(topology, seed: seed))
    }
}

/// A run-time error with its reason (a selector that matches no node, a file that cannot be read).
public struct RunError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
