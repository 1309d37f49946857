import Liveness
import Testing

/// RPC figures from hand-written request logs: each test plants the failure it must find.
@Suite struct RPCAnalysisTests {
    /// The chain makes a block every 100 ms from t = 0: height h at 100·h.
    static let heads = (1...200).map { (timeMs: UInt64($0) * 100, height: UInt64($0)) }

    static func request(_ t: UInt64, _ client: String, ok: Bool = true, ms: UInt64 = 5, attempts: Int = 1,
                        head: UInt64? = nil) -> RPCAnalysis.Request {
        RPCAnalysis.Request(t: t, client: client, method: head == nil ? "eth_getBalance" : "eth_blockNumber", ok: ok,
                            error: ok ? nil : "-32002 down", ms: ms, attempts: attempts, head: head)
    }

    static func analysis(_ requests: [RPCAnalysis.Request], samples: [RPCAnalysis.GatewaySample] = []) -> RPCAnalysis {
        RPCAnalysis(requests: requests, clients: ["single", "gateway"], staleBlocks: 16,
                    gatewaySamples: samples.isEmpty ? [:] : ["gw": samples], upstreamEvents: [], heads: heads)
    }

    @Test func errorsDuringAnOutageAndTheFailoverTimes() {
        // 100 requests a second; the fault starts at 5,000; the single client fails until 7,000.
        let requests = stride(from: UInt64(4_000), to: 10_000, by: 10).map { t in
            Self.request(t, "single", ok: t < 5_000 || t >= 7_000)
        }
        let rpc = Self.analysis(requests)
        let during = rpc.summary("single", in: [5_000...8_000])
        #expect(during.requests == 301)
        #expect(during.errors == 200)
        let times = rpc.failover("single", faultStartMs: 5_000, endMs: 10_000)
        #expect(times.firstSuccessMs == 2_005, "the first request sent after the fault that succeeded, answered")
        // From 6,990 the next second holds one failure in 100: 99% success.
        #expect(times.ms99 == 1_990)
        let never = rpc.failover("single", faultStartMs: 5_000, endMs: 6_900)
        #expect(never.ms99 == nil && never.firstSuccessMs == nil)
    }

    @Test func aClientThatNeverFailedFailsOverInZero() {
        let requests = stride(from: UInt64(0), to: 3_000, by: 10).map { Self.request($0, "gateway") }
        #expect(Self.analysis(requests).failover("gateway", faultStartMs: 500, endMs: 3_000).ms99 == 0)
    }

    @Test func aFewErrorsInASecondStillCountAsFailedOver() {
        // One error in 100 is 99% success; two are not.
        var requests = stride(from: UInt64(0), to: 2_000, by: 10).map { Self.request($0, "gateway") }
        requests[3].ok = false
        #expect(Self.analysis(requests).failover("gateway", faultStartMs: 0, endMs: 2_000).ms99 == 0)
        requests[4].ok = false
        let later = Self.analysis(requests).failover("gateway", faultStartMs: 0, endMs: 2_000).ms99
        #expect(later == 40, "the first second-long window with at most 1% errors starts after the second error")
    }

    @Test func staleAnswersAreJudgedAgainstTheHeadWhenSent() {
        // At t = 5,000 the chain is at 50: an answer of 34 is 16 behind (fresh), 33 is 17 behind (stale).
        let rpc = Self.analysis([Self.request(5_000, "single", head: 34), Self.request(5_010, "single", head: 33),
                                 Self.request(5_020, "gateway", head: 50)])
        #expect(rpc.summary("single", in: [0...10_000]).staleAnswers == 1)
        #expect(rpc.summary("gateway", in: [0...10_000]).staleAnswers == 0)
    }

    /// Two requests in flight together are not ordered: the later-produced answer may arrive first
    /// (scheduling on a busy machine). Only an answer received before a request was sent binds it.
    @Test func overlappingRequestsDoNotOrderTheirAnswers() {
        let rpc = Self.analysis([Self.request(1_000, "gateway", ms: 30, head: 101),   // arrives 1,030
                                 Self.request(1_005, "gateway", ms: 26, head: 100),   // sent before 101 arrived
                                 Self.request(1_040, "gateway", ms: 2, head: 100)])   // sent after: a decrease
        #expect(rpc.summary("gateway", in: [0...10_000]).headDecreases == 1)
    }

    @Test func aHeadBelowOneAlreadySeenIsADecreaseInArrivalOrder() {
        // Sent in order 100, 99 — but the 100 arrives after the 99: no decrease. Then 98 arrives last: one.
        let rpc = Self.analysis([Self.request(1_000, "single", ms: 50, head: 100), Self.request(1_010, "single", ms: 5, head: 99),
                                 Self.request(1_100, "single", ms: 5, head: 98)])
        #expect(rpc.summary("single", in: [0...10_000]).headDecreases == 1)
    }

    @Test func aBlockUnderAHashTheChainNeverCommittedIsAWrongAnswer() {
        var right = Self.request(1_000, "gateway")
        right.block = 7
        right.hash = "aa"
        var wrong = Self.request(1_010, "single")
        wrong.block = 7
        wrong.hash = "55"
        var unknown = Self.request(1_020, "single")
        unknown.block = 999 // past the chain's end: nothing to judge it by
        unknown.hash = "00"
        let rpc = RPCAnalysis(requests: [right, wrong, unknown], clients: ["single", "gateway"], staleBlocks: 16,
                              gatewaySamples: [:], upstreamEvents: [], heads: Self.heads, blockHashes: [7: "aa"])
        #expect(rpc.summary("single", in: [0...5_000]).wrongAnswers == 1)
        #expect(rpc.summary("gateway", in: [0...5_000]).wrongAnswers == 0)
    }

    @Test func amplificationCountsUpstreamAttemptsPerRequest() {
        let requests = [Self.request(1_000, "single", attempts: 3), Self.request(1_010, "single", attempts: 1)]
        #expect(Self.analysis(requests).summary("single", in: [0...2_000]).amplification == 2)
        // The gateway client's amplification is the gateway's: 150 attempts for 100 requests in the window.
        let samples = [RPCAnalysis.GatewaySample(timeMs: 900, requests: 10, attempts: 10, hedges: 0, retries: 0),
                       RPCAnalysis.GatewaySample(timeMs: 1_900, requests: 110, attempts: 160, hedges: 30, retries: 20)]
        let gateway = Self.analysis([Self.request(1_000, "gateway")], samples: samples)
        #expect(gateway.summary("gateway", in: [1_000...2_000]).amplification == 1.5)
    }
}
