import Formats
import Testing
import Wire
@testable import Simulation

/// The simulator's model of a validator's receive path under spam (`SimIngress`): the buffer fills at the
/// spam's excess over the node's capacity, what arrives at a full buffer is dropped as often as the spam
/// is, and the mitigations act where the node's do.
@Suite struct SimIngressTests {
    // 1,000 checks a second: one check is 1 ms, the buffer 8,192 ms of checks.
    static func ingress(lanes: Bool = false, unstaked: Double = 0) -> SimIngress {
        SimIngress(capacityPerSecond: 1_000, lanes: lanes, unstakedPerSecond: unstaked, nowUs: 0)
    }

    @Test func theBacklogGrowsAtTheExcessAndStopsAtTheBufferWhereTheKernelDrops() {
        var ingress = Self.ingress()
        ingress.setSpam(perSecond: 2_000, nowUs: 0)
        ingress.advance(to: 1_000_000)
        // 2× capacity: one second of checks queued per second.
        #expect(abs(ingress.one.backlogUs - 1_000_000) < 1)
        #expect(ingress.one.kernelDrops == 0)
        ingress.advance(to: 10_000_000)
        #expect(ingress.one.backlogUs == ingress.bufferUs)
        // Full after 8.192 s; the 1.808 s after it drop the excess (1,000 a second).
        #expect(abs(ingress.one.kernelDrops - 1_808) < 1)
        // A vote now waits for the whole buffer and its own check, if it gets in at all.
        let admitted = ingress.arrive(.prevote, nowUs: 10_000_000, draw: 0.2)
        #expect(admitted.map { abs($0 - ingress.bufferUs - ingress.checkUs) < 1 } == true)
        let dropped = ingress.arrive(.prevote, nowUs: 10_000_000, draw: 0.7) // at 2×, half of what arrives gets in
        #expect(dropped == nil)
    }

    @Test func underCapacityNothingQueuesAndTheBacklogDrainsOnceTheSpamStops() {
        var ingress = Self.ingress()
        ingress.setSpam(perSecond: 500, nowUs: 0)
        #expect(ingress.arrive(.precommit, nowUs: 3_000_000, draw: 0.99).map { abs($0 - 1_000) < 1 } == true)
        ingress.setSpam(perSecond: 3_000, nowUs: 3_000_000)
        ingress.setSpam(perSecond: 0, nowUs: 5_000_000) // 4 s of checks queued, and the vote's 1 ms
        ingress.advance(to: 7_000_000)
        #expect(abs(ingress.one.backlogUs - 2_001_000) < 1)
        ingress.advance(to: 9_500_000)
        #expect(ingress.one.backlogUs == 0)
    }

    @Test func withLanesTheBucketShedsTheSpamUncheckedAndVotesHaveTheirOwnQueue() {
        var ingress = Self.ingress(lanes: true, unstaked: 400)
        ingress.setSpam(perSecond: 5_000, nowUs: 0)
        ingress.advance(to: 2_000_000)
        #expect(ingress.user.backlogUs == 0 && ingress.vote.backlogUs == 0)
        #expect(ingress.dropCounts.map(\.0) == ["user_unstaked_rate_limited"])
        #expect(ingress.dropCounts.first?.1 == 9_200) // (5,000 − 400) a second for 2 s
        #expect(ingress.arrive(.precommit, nowUs: 2_000_000, draw: 0.99).map { abs($0 - 1_000) < 1 } == true)
        #expect(ingress.kernelDrops.map(\.lane) == ["user", "vote"])
    }

    @Test func votesOnlyReadsPastTheQueuedSpamAndMakesItFree() {
        var ingress = Self.ingress()
        ingress.setSpam(perSecond: 2_000, nowUs: 0)
        ingress.advance(to: 3_000_000)
        #expect(abs(ingress.one.backlogUs - 3_000_000) < 1)
        ingress.setVotesOnly(true, nowUs: 3_000_000)
        #expect(ingress.one.backlogUs == 0)
        #expect(ingress.arrive(.prevote, nowUs: 4_000_000, draw: 0.99).map { abs($0 - 1_000) < 1 } == true)
        // The 3,000 queued and the 2,000 of the second after: dropped before their check.
        #expect(ingress.dropCounts.first.map { $0.0 == "votes_only" && $0.1 == 5_000 } == true)
        ingress.setVotesOnly(false, nowUs: 4_000_000)
        ingress.advance(to: 5_000_000)
        #expect(abs(ingress.one.backlogUs - 1_001_000) < 1) // growing again, behind the vote's check
    }
}
