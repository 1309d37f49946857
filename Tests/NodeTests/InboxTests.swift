import Basics
import Consensus
import NIOCore
import Sodium
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
        guard case .timeout(.propose, 7, 2) = await inbox.next(max: 1)?.first else {
            Issue.record("the urgent input did not come first")
            return
        }
        #expect(inbox.counts.urgent == 0 && inbox.counts.bulk == 1_000)
        #expect(await inbox.next(max: 64)?.count == 64)
        #expect(inbox.counts.bulk == 936)
    }

    /// A burst pushed at once reaches a waiting consumer in one wake-up, in order.
    @Test func burstReachesWaitingConsumerAtOnce() async {
        let inbox = Inbox()
        async let first = inbox.next()
        try? await Task.sleep(for: .milliseconds(20))
        inbox.push([.tick, .sendDue, .timeout(.prevote, height: 1, round: 0)], urgent: false)
        guard let batch = await first, batch.count == 3, case .tick = batch[0], case .sendDue = batch[1],
              case .timeout(.prevote, 1, 0) = batch[2] else {
            Issue.record("the burst did not arrive whole and in order")
            return
        }
        #expect(inbox.counts.bulk == 0)
    }

    @Test func waitingConsumerIsResumedAndFinishEndsIt() async {
        let inbox = Inbox()
        async let first = inbox.next()
        try? await Task.sleep(for: .milliseconds(20))
        inbox.push(.sendDue, urgent: false)
        guard case .sendDue = await first?.first else {
            Issue.record("the waiting consumer was not resumed")
            return
        }
        inbox.finish()
        #expect(await inbox.next() == nil)
        inbox.push(.tick, urgent: true) // ignored after finish
        #expect(await inbox.next() == nil)
    }
}

@Suite struct CoalescingTests {
    static let keys = (0..<3).map { SigningKey(label: "coalesce-\($0)").publicKey }

    func vote(_ validator: Int, height: UInt64, round: UInt32) -> (NodeInput, Vote) {
        let vote = Vote(height: height, round: round, blockId: nil)
        let envelope = Envelope(kind: .prevote, payload: vote.encoded, domain: Domain(chainId: "c"),
                                key: SigningKey(label: "coalesce-\(validator)"))
        return (.message(envelope, .prevote(vote), fromPeer: true, receivedMs: 0), vote)
    }

    func nextVote(_ inbox: Inbox) async -> (PublicKey, Vote)? {
        guard case .message(let envelope, .prevote(let vote), _, _) = await inbox.next(max: 1)?.first else { return nil }
        return (envelope.sender, vote)
    }

    /// A newer vote from a validator replaces its queued older one; queued votes come out by stake.
    @Test func latestVotePerValidatorDrainedByStake() async {
        let inbox = Inbox()
        let stakes: [UInt64] = [10, 30, 20]
        let (old, oldVote) = vote(0, height: 5, round: 0)
        #expect(inbox.pushVote(old, sender: Self.keys[0], kind: .prevote, vote: oldVote, stake: stakes[0]) == 0)
        let (new, newVote) = vote(0, height: 5, round: 2)
        #expect(inbox.pushVote(new, sender: Self.keys[0], kind: .prevote, vote: newVote, stake: stakes[0]) == 1)
        let (late, lateVote) = vote(0, height: 5, round: 1)
        #expect(inbox.pushVote(late, sender: Self.keys[0], kind: .prevote, vote: lateVote, stake: stakes[0]) == 1)
        for validator in 1...2 {
            let (input, v) = vote(validator, height: 5, round: 2)
            inbox.pushVote(input, sender: Self.keys[validator], kind: .prevote, vote: v, stake: stakes[validator])
        }
        inbox.push(.tick, urgent: false)
        var order: [PublicKey] = []
        for _ in 0..<3 {
            guard let (sender, v) = await nextVote(inbox) else { Issue.record("expected a vote"); return }
            #expect(v.round == 2)
            order.append(sender)
        }
        #expect(order == [Self.keys[1], Self.keys[2], Self.keys[0]])
        #expect(inbox.coalesced == 2)
        guard case .tick = await inbox.next(max: 1)?.first else { Issue.record("bulk input after the votes"); return }
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
