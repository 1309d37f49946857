@testable import Consensus
import Testing

/// The handshake rules both engines share: what waits for a peer's hello, when a hello is answered or
/// repeated, and what a refusal drops.
@Suite struct ReplicaHandshakesTests {
    typealias Links = Replica.Handshakes<String, String>

    @Test func consensusMessagesWaitForTheHandshakeAndAreHandedBackWhenItSucceeds() {
        var links = Links()
        var kept = [links.hold("prevote", from: "v2", consensusLane: true),
                    links.hold("status", from: "v2", consensusLane: false)]
        for index in 1..<Links.heldMax { _ = links.hold("vote \(index)", from: "v2", consensusLane: true) }
        kept.append(links.hold("one too many", from: "v2", consensusLane: true))
        #expect(kept == [true, false, false])
        let outcome = links.heardHello(from: "v2", refusal: nil, replyWanted: true, nowMs: 1_000)
        #expect(outcome.previous == nil && outcome.link == .accepted && outcome.answer)
        #expect(outcome.release.count == Links.heldMax && outcome.release.first == "prevote")
        #expect(links.isAccepted("v2") && links.heldCount("v2") == 0)
    }

    @Test func aRefusedPeersMessagesAreDroppedAndItsHellosRepeated() {
        var links = Links()
        _ = links.hold("prevote", from: "v3", consensusLane: true)
        let refused = links.heardHello(from: "v3", refusal: "fork id 1, ours 0", replyWanted: true, nowMs: 1_000)
        #expect(refused.link == .refused("fork id 1, ours 0") && refused.release.isEmpty && refused.answer)
        let keptFromRefused = links.hold("prevote", from: "v3", consensusLane: true)
        #expect(links.heldCount("v3") == 0 && !keptFromRefused)
        #expect(links.refused == ["v3": "fork id 1, ours 0"])
        // Its hellos again every retry interval; an accepted peer gets none.
        let asksRefused = links.sendingHello(to: "v3", nowMs: 1_000)
        _ = links.heardHello(from: "v4", refusal: nil, replyWanted: false, nowMs: 1_000)
        let asksAccepted = links.sendingHello(to: "v4", nowMs: 1_000)
        #expect(asksRefused && !asksAccepted)
        #expect(links.hellosDue(["v3", "v4"], nowMs: 1_499).isEmpty)
        #expect(links.hellosDue(["v3", "v4"], nowMs: 1_500) == ["v3"])
        // The same refusal again, within a fifth of the retry time of our last hello: not answered.
        let again = links.heardHello(from: "v3", refusal: "fork id 1, ours 0", replyWanted: true, nowMs: 1_050)
        #expect(!again.answer)
    }

    @Test func anAcceptedPeersHellosAreAnsweredAtMostOncePerGap() {
        var links = Links()
        let first = links.heardHello(from: "v2", refusal: nil, replyWanted: true, nowMs: 1_000)
        let soon = links.heardHello(from: "v2", refusal: nil, replyWanted: true, nowMs: 1_010)
        let later = links.heardHello(from: "v2", refusal: nil, replyWanted: true, nowMs: 1_020)
        let unasked = links.heardHello(from: "v2", refusal: nil, replyWanted: false, nowMs: 2_000)
        #expect([first.answer, soon.answer, later.answer, unasked.answer] == [true, false, true, false])
    }
}
