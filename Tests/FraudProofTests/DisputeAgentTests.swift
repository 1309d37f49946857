import Ledger
import Rollup
import Sodium
import Testing
import Wire
@testable import FraudProof

/// The dispute agent's timing, fed L1 block by block from the contract harness.
@Suite struct DisputeAgentTests {
    /// A challenger told to wait for the window's last blocks challenges when the *chain* is in them: a
    /// node replaying blocks 6 behind the tip it has heard of challenges 6 blocks earlier in its replay
    /// (on a busy host a lagging replica judged by its own replay posted after the window had closed).
    @Test(arguments: [UInt64(0), 6])
    func aLateChallengerChallengesInTheChainsLastBlocksOfTheWindow(behind: UInt64) throws {
        var harness = try ContractHarness()
        let genesis = harness.l2.machineStore
        let (index, execution) = harness.postBatch(seed: 3, txs: 12, blocks: 3)
        let id = harness.assert(batch: index, Party(execution: execution, strategy: .honest))
        let windowEnd = harness.disputes.assertions[id]!.windowEnd(harness.disputes.settings)
        var settings = DisputeAgent.Settings(role: .challenger)
        settings.lie = .lieEveryMove(seed: 1)
        settings.challengeAtWindowEnd = true
        var agent = DisputeAgent.Instance(settings: settings, context: harness.disputes.context, genesis: genesis)
        let key = ContractHarness.challengers[0]
        var fed = 0
        var challengedAt: UInt64?
        while challengedAt == nil, harness.height < windowEnd {
            let actions = agent.onL1Block(height: harness.height, tipHeight: harness.height + behind,
                                          events: Array(harness.events[fed...]), disputes: harness.disputes,
                                          identities: [key.publicKey], live: true)
            fed = harness.events.count
            if let action = actions.first(where: { if case .challenge = $0.tx { true } else { false } }) {
                challengedAt = harness.height
                #expect(harness.commit([harness.sign(key, action.tx)]) == [.applied])
            } else {
                harness.commit([])
            }
        }
        #expect(challengedAt == windowEnd - settings.lateChallengeBlocks - behind)
        #expect(harness.disputes.assertions[id]!.games.count == 1)
    }
}
