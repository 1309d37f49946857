import Testing
import Wire
@testable import Formats

@Suite struct LinkShaperTests {
    func shaper(_ rule: LinkRule, seed: UInt64 = 1) -> LinkShaper {
        var shaper = LinkShaper(seed: seed)
        shaper.setTable(LinkFaultTable(links: ["v2": rule]))
        return shaper
    }

    @Test func unruledLinksSendImmediately() {
        var s = shaper(LinkRule(blocked: true))
        #expect(s.route([1], kind: .prevote, peer: "v3", nowMs: 0) == .send(delaysMs: [0]))
        #expect(s.route([1], kind: .prevote, peer: "v2", nowMs: 0) == .dropped(reason: "partition"))
    }

    @Test func dropsByKindOnly() {
        var s = shaper(LinkRule(dropKinds: ["precommit"]))
        #expect(s.route([1], kind: .precommit, peer: "v2", nowMs: 0) == .dropped(reason: "kind_precommit"))
        #expect(s.route([1], kind: .prevote, peer: "v2", nowMs: 0) == .send(delaysMs: [0]))
    }

    @Test(arguments: [10.0, 30.0, 75.0])
    func lossRateMatchesWithinTolerance(percent: Double) {
        var s = shaper(LinkRule(lossPercent: percent))
        var dropped = 0
        for _ in 0..<20_000 where s.route([1], kind: .transfer, peer: "v2", nowMs: 0) != .send(delaysMs: [0]) {
            dropped += 1
        }
        #expect(abs(Double(dropped) / 200 - percent) < 1.5)
    }

    @Test func delayWithJitterStaysInRangeAndReleasesInOrder() {
        var s = shaper(LinkRule(delayMs: 100, jitterMs: 50))
        var delays: [Double] = []
        for index in 0..<1_000 {
            guard case .send(let d) = s.route([UInt8(index % 256)], kind: .transfer, peer: "v2", nowMs: 0) else {
                Issue.record("dropped")
                return
            }
            delays += d
        }
        #expect(delays.allSatisfy { $0 >= 50 && $0 <= 150 })
        #expect(s.due(nowMs: 49).isEmpty)
        let released = s.due(nowMs: 150)
        #expect(released.count == 1_000)
        #expect(zip(released, released.dropFirst()).allSatisfy { $0.dueMs <= $1.dueMs })
        #expect(s.pendingCount == 0)
    }

    @Test func bandwidthQueuesDatagramsBehindEachOther() {
        var s = shaper(LinkRule(bandwidthBytesPerSecond: 100_000)) // 1,000 bytes take 10 ms
        let big = [UInt8](repeating: 0, count: 1_000)
        var last = 0.0
        for _ in 0..<10 {
            guard case .send(let d) = s.route(big, kind: .blockPart, peer: "v2", nowMs: 0) else {
                Issue.record("a bandwidth limit dropped a datagram it should have queued")
                return
            }
            last = d[0]
        }
        #expect(abs(last - 100) < 0.001)
    }

    @Test func duplicatesAndSameSeedReplaysExactly() {
        var a = shaper(LinkRule(lossPercent: 20, delayMs: 5, jitterMs: 5, duplicatePercent: 30), seed: 42)
        var b = shaper(LinkRule(lossPercent: 20, delayMs: 5, jitterMs: 5, duplicatePercent: 30), seed: 42)
        var copies = 0
        for index in 0..<2_000 {
            let first = a.route([1], kind: .transfer, peer: "v2", nowMs: Double(index))
            #expect(first == b.route([1], kind: .transfer, peer: "v2", nowMs: Double(index)))
            if case .send(let d) = first { copies += d.count }
        }
        #expect(copies > 1_800 && copies < 2_200) // 80% delivered, 30% of those twice: ~2,080
    }

    @Test func combinedRulesCompose() {
        let both = LinkRule(lossPercent: 50, delayMs: 10).combined(with: LinkRule(lossPercent: 50, delayMs: 20))
        #expect(both.lossPercent == 75 && both.delayMs == 30 && !both.blocked)
        #expect(LinkRule(dropKinds: ["a"]).combined(with: LinkRule(blocked: true, dropKinds: ["b"]))
                == LinkRule(blocked: true, dropKinds: ["a", "b"]))
    }
}
