import Sodium
import Testing
import Wire
@testable import Rollup

/// The sequencer's admission rules as tables: each refusal has its reason, and every bound holds.
@Suite struct AdmissionTests {
    let domain = Domain(chainId: "admission-l2")

    func tx(_ sender: SigningKey, nonce: UInt64 = 0, fee: UInt64 = 1) -> Envelope {
        Envelope(kind: .transfer, payload: Transfer(to: sender.publicKey, amount: 1, fee: fee, nonce: nonce).encoded,
                 domain: domain, key: sender)
    }

    @Test func aFullQueueRefusesAndTheUnboundedOneKeepsGrowing() {
        var bounded = Admission.Instance(settings: .init(queueTxsMax: 3))
        var legacy = Admission.Instance(settings: .init(queueTxsMax: 5_000_000))
        var reasons: [Admission.Reject?] = []
        for index in 0..<5 {
            let sender = SigningKey(label: "claimer-\(index)")
            reasons.append(bounded.offer(tx(sender), fee: 1, nowMs: 0, backlogBytes: 0))
            #expect(legacy.offer(tx(sender), fee: 1, nowMs: 0, backlogBytes: 0) == nil)
        }
        #expect(reasons == [nil, nil, nil, .queueFull, .queueFull])
        #expect(bounded.queue.count == 3 && legacy.queue.count == 5)
        #expect(bounded.rejected == [.queueFull: 2])
    }

    @Test func theBaseFeeRisesWithDepth() {
        var admission = Admission.Instance(settings: .init(queueTxsMax: 100, baseFeeMin: 2, baseFeeStepTxs: 4))
        #expect(admission.baseFee == 2)
        for index in 0..<4 {
            #expect(admission.offer(tx(SigningKey(label: "a\(index)")), fee: 2, nowMs: 0, backlogBytes: 0) == nil)
        }
        #expect(admission.baseFee == 4)
        #expect(admission.offer(tx(SigningKey(label: "cheap")), fee: 3, nowMs: 0, backlogBytes: 0) == .underpriced)
        #expect(admission.offer(tx(SigningKey(label: "paying")), fee: 4, nowMs: 0, backlogBytes: 0) == nil)
    }

    @Test func oneSenderIsRateLimitedAndTheSenderTableIsBounded() {
        var admission = Admission.Instance(settings: .init(queueTxsMax: 1_000, senderPerSecond: 10, senderBurst: 2,
                                                           sendersTrackedMax: 3))
        let spammer = SigningKey(label: "spammer")
        let outcomes = (0..<4).map { admission.offer(tx(spammer, nonce: UInt64($0)), fee: 1, nowMs: 0, backlogBytes: 0) }
        #expect(outcomes == [nil, nil, .rateLimited, .rateLimited])
        // 100 ms later the bucket has one token again.
        #expect(admission.offer(tx(spammer, nonce: 9), fee: 1, nowMs: 100, backlogBytes: 0) == nil)
        for index in 0..<10 { _ = admission.offer(tx(SigningKey(label: "s\(index)")), fee: 1, nowMs: 100, backlogBytes: 0) }
        #expect(admission.trackedSenders == 3)
    }

    @Test func aBacklogOverItsLimitSlowsIntakeInsteadOfStoppingIt() {
        var admission = Admission.Instance(settings: .init(queueTxsMax: 1_000, backlogBytesMax: 10_000,
                                                           backlogIntakePerSecond: 10))
        var accepted = 0
        for ms in stride(from: UInt64(0), to: 1_000, by: 10) {
            if admission.offer(tx(SigningKey(label: "b\(ms)")), fee: 1, nowMs: ms, backlogBytes: 50_000) == nil {
                accepted += 1
            }
        }
        #expect((9...11).contains(accepted), "\(accepted) accepted in 1 s at 10/s")
        #expect(admission.rejected[.backlog] == 100 - accepted)
        #expect(admission.offer(tx(SigningKey(label: "drained")), fee: 1, nowMs: 1_000, backlogBytes: 0) == nil)
    }

    @Test func takeKeepsArrivalOrderAndDropsWhatWaitedTooLong() {
        var admission = Admission.Instance(settings: .init(queueTxsMax: 100, queueWaitMsMax: 12_000))
        let keys = (0..<4).map { SigningKey(label: "t\($0)") }
        for (index, key) in keys.enumerated() {
            _ = admission.offer(tx(key), fee: 1, nowMs: UInt64(index) * 5_000, backlogBytes: 0)
        }
        let (taken, expired) = admission.take(max: 10, nowMs: 15_001)
        #expect(expired.map(\.tx.sender) == [keys[0].publicKey])
        #expect(taken.map(\.tx.sender) == keys[1...].map(\.publicKey))
        #expect(admission.rejected[.expired] == 1 && admission.queue.isEmpty)
    }
}
