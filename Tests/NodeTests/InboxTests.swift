import Consensus
import NIOCore
import Testing
import Transport
import Wire
@testable import Node

@Suite struct InboxTests {
    /// Urgent input (timers, votes with lanes on) is always taken before queued bulk input.
    @Test func urgentInputOvertakesQueuedBulk() async {
        let inbox = Inbox()
        for _ in 0..<1_000 { inbox.push(.tick, urgent: false) }
        inbox.push(.timeout(.propose, height: 7, round: 2), urgent: true)
        guard case .timeout(.propose, 7, 2) = await inbox.next() else {
            Issue.record("the urgent input did not come first")
            return
        }
        #expect(inbox.counts.urgent == 0 && inbox.counts.bulk == 1_000)
    }

    @Test func waitingConsumerIsResumedAndFinishEndsIt() async {
        let inbox = Inbox()
        async let first = inbox.next()
        try? await Task.sleep(for: .milliseconds(20))
        inbox.push(.sendDue, urgent: false)
        guard case .sendDue = await first else {
            Issue.record("the waiting consumer was not resumed")
            return
        }
        inbox.finish()
        #expect(await inbox.next() == nil)
        inbox.push(.tick, urgent: true) // ignored after finish
        #expect(await inbox.next() == nil)
    }
}

@Suite struct AdmissionTests {
    @Test func tokenBucketAdmitsItsRateAndBurst() {
        var bucket = TokenBucket(ratePerSecond: 1_000, burst: 100)
        var admitted = 0
        for _ in 0..<500 where bucket.take(nowMs: 0) { admitted += 1 }
        #expect(admitted == 100) // the burst
        admitted = 0
        for ms in stride(from: UInt64(1), through: 1_000, by: 1) {
            for _ in 0..<10 where bucket.take(nowMs: ms) { admitted += 1 }
        }
        #expect(admitted >= 990 && admitted <= 1_010) // the rate, over one second
    }

    @Test func consensusTrafficGoesToTheVoteLane() throws {
        let main = try SocketAddress(ipAddress: "127.0.0.1", port: 4000)
        let vote = try SocketAddress(ipAddress: "127.0.0.1", port: 4001)
        let lanes = Peer(name: "v2", address: main, voteAddress: vote)
        #expect(lanes.address(for: .transfer) == main)
        #expect(lanes.address(for: .precommit) == vote && lanes.address(for: .blockPart) == vote)
        let legacy = Peer(name: "v3", address: main)
        #expect(legacy.address(for: .prevote) == main)
    }
}
