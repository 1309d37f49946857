import Formats
import Foundation

/// A scenario's load steps (spam, airdrop bursts, forced transactions) as a runner sends them: the
/// verification capacity that sets their rates is measured first, their transactions are signed before
/// their windows, and each starts when its trigger holds. A local run and a remote run's collector
/// (`faultline collect`) send them with this one type; kill storms are the local runner's alone.
public final class LoadSteps: Sendable {
    public let capacity: VerificationCapacity
    let pools: [String: SpamPool]
    let airdrops: [String: AirdropPool]
    let results = ScenarioRunner.SpamResults()

    /// Measures the capacity (on this machine; `coresPerValidator` when each validator has cores of its
    /// own elsewhere) and signs every spam and airdrop step's transactions.
    public static func prepare(_ scenario: Scenario, coresPerValidator: Double? = nil) async -> LoadSteps {
        let validators = scenario.topology.validators.count
        var capacity = VerificationCapacity.measure(validators: validators)
        capacity.coresPerValidator = coresPerValidator
        var pools: [String: SpamPool] = [:]
        var airdrops: [String: AirdropPool] = [:]
        for step in scenario.steps {
            if let spam = step.spam {
                let count = Int(Double(spam.ratePerNode(capacity) * validators) * (step.durationSeconds ?? 1) * 1.05) + 64
                pools[step.id] = await SpamPool.make(count: count, chainId: scenario.topology.chainId,
                                                     seed: UInt64(pools.count + 1))
            }
            if case .airdrop(let count, _, let fee) = step.rollupLoad {
                airdrops[step.id] = await AirdropPool.make(count: count, fee: fee, chainId: scenario.topology.chainId,
                                                           seed: UInt64(airdrops.count + 1))
            }
        }
        return LoadSteps(capacity: capacity, pools: pools, airdrops: airdrops)
    }

    init(capacity: VerificationCapacity, pools: [String: SpamPool], airdrops: [String: AirdropPool]) {
        self.capacity = capacity
        self.pools = pools
        self.airdrops = airdrops
    }

    /// Whether a step is one this type sends.
    public static func sends(_ step: Scenario.Step) -> Bool { step.spam != nil || step.rollupLoad != nil }

    /// Starts a load step now: spam and airdrops in a task of their own (appended to `background`),
    /// forced transactions at once. False when the step is not a load step.
    func start(_ step: Scenario.Step, dir: String, manifest: RunManifest,
               background: inout [Task<Void, Never>]) async throws -> Bool {
        if let spam = step.spam, let pool = pools[step.id] {
            background.append(ScenarioRunner.blastTask(dir: dir, manifest: manifest, step: step, spam: spam, pool: pool,
                                                       capacity: capacity, results: results))
            return true
        }
        switch step.rollupLoad {
        case .airdrop(_, let rate, _):
            if let pool = airdrops[step.id] {
                background.append(ScenarioRunner.airdropTask(dir: dir, manifest: manifest, step: step, pool: pool,
                                                             rate: rate.perSecond(capacity), asked: rate))
            }
            return true
        case .forced(let count):
            try await ScenarioRunner.postForced(dir: dir, manifest: manifest, step: step, count: count)
            return true
        case nil:
            return false
        }
    }

    /// What each spam step asked for and achieved, once its task has ended.
    public var spam: [SpamRecord] { results.all }
}
