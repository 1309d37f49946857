import Basics
import Consensus
import Formats
import Foundation
import Ledger
import Logging
import NIOEmbedded
import Synchronization
import Sodium
import Testing
import Wire
@testable import Node

/// The node shell's side of versions, without sockets: what leaves for a peer before and after its
/// handshake, stopping on a state root mismatch or a missing upgrade, and refusing to start too early.
@Suite struct ShellRulesTests {
    static let chainId = "shell-test"
    let keys = ["v1", "v2", "v3", "v4"].map { SigningKey(label: "shell-\($0)") }
    let alice = SigningKey(label: "shell-alice")

    func genesis(plans: [UpgradePlan]? = nil) -> Genesis {
        Genesis(chainId: Self.chainId, protocolVersion: 1, genesisTimeMs: 0,
                validators: keys.enumerated().map { .init(name: "v\($0.offset + 1)", publicKey: $0.element.publicKey, stake: 10) },
                allocations: [.init(publicKey: alice.publicKey, balance: 1_000)], upgrades: plans)
    }

    /// The shell's clock, moved by the tests.
    final class Clock: @unchecked Sendable {
        var nowMs: UInt64 = 1_000
    }

    func shell(version: UInt16 = 1, versionMin: UInt16 = 1, plans: [UpgradePlan]? = nil,
               dir: String, clock: Clock = Clock()) throws -> NodeShell {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let peers = (1..<4).map {
            NodeConfig.PeerEntry(name: "v\($0 + 1)", publicKey: keys[$0].publicKey.hex, host: "127.0.0.1", port: 40_000 + $0)
        }
        let config = NodeConfig(name: "v1", role: "validator", chainId: Self.chainId, forkId: 0, protocolVersion: 1,
                                version: version, versionMin: versionMin, host: "127.0.0.1", gossipPort: 40_000,
                                controlPort: 0, keyFile: "", genesisFile: "", tokenFile: "", dataDir: dir,
                                eventsFile: "", peers: peers, timing: .init(), limits: .init())
        return try NodeShell(config: config, key: keys[0], genesis: genesis(plans: plans), dataDir: dir,
                             eventsPath: dir + "/events.jsonl", logger: Logger(label: "test"), timers: { _, _ in },
                             clock: { clock.nowMs })
    }

    func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "faultline-shell-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    func hello(from index: Int, forkId: UInt32, timeMs: UInt64 = 5, consensus: UInt8 = 0) -> (Envelope, Message) {
        let hello = Hello(protocolVersion: 1, forkId: forkId, version: 1, versionMin: 1, committedHeight: 0,
                          replyWanted: true, timeMs: timeMs, consensus: consensus)
        let envelope = Envelope(kind: .hello, payload: hello.encoded,
                                domain: Domain(chainId: Self.chainId, forkId: forkId), key: keys[index])
        return (envelope, .hello(hello))
    }

    @Test func onlyHellosLeaveUntilAPeerIsAccepted() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let node = try shell(dir: dir)
        node.start()
        #expect(node.outbox.items.map(\.kind) == [.hello, .hello, .hello])
        node.outbox.items.removeAll()
        // v2 on fork 1: refused; its status is dropped; nothing but hellos goes to it.
        let (foreign, foreignHello) = hello(from: 1, forkId: 1)
        node.receive(foreign, foreignHello, fromPeer: true)
        #expect(node.handshakes.links["v2"] == .refused("fork id 1, ours 0"))
        #expect(node.status.refusedPeers == ["v2": "fork id 1, ours 0"])
        let status = Envelope(kind: .status, payload: StatusMessage(committedHeight: 9, round: 0, timeMs: 6).encoded,
                              domain: Domain(chainId: Self.chainId), key: keys[1])
        node.receive(status, try Message(kind: .status, payload: status.payload), fromPeer: true)
        #expect(node.replica.peerHeights[keys[1].publicKey] == nil)
        // v3 on fork 0: accepted, answered with a hello, and from then on gets everything.
        let (local, localHello) = hello(from: 2, forkId: 0)
        node.receive(local, localHello, fromPeer: true)
        #expect(node.handshakes.links["v3"] == .accepted)
        node.broadcastStatus()
        #expect(node.outbox.items.filter { $0.kind == .status }.map(\.peer) == ["v3"])
        #expect(!node.outbox.items.contains { $0.peer == "v2" && $0.kind != .hello })
    }

    /// A peer running the other consensus protocol (or one this binary does not know) is refused at the
    /// handshake with a reason that names both; a later hello from it on our protocol is accepted.
    @Test func aPeerOnAnotherConsensusProtocolIsRefused() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let clock = Clock()
        let node = try shell(dir: dir, clock: clock)
        node.start()
        #expect(node.outbox.items.allSatisfy { item in
            (try? Envelope(decoding: item.bytes)).flatMap { try? Hello(decoding: $0.payload) }?.consensus == 0
        })
        let (hotstuff, hotstuffHello) = hello(from: 1, forkId: 0, timeMs: 5, consensus: 1)
        node.receive(hotstuff, hotstuffHello, fromPeer: true)
        #expect(node.handshakes.links["v2"] == .refused("consensus protocol hotstuff2, ours tendermint"))
        let (unknown, unknownHello) = hello(from: 2, forkId: 0, timeMs: 5, consensus: 7)
        node.receive(unknown, unknownHello, fromPeer: true)
        #expect(node.handshakes.links["v3"] == .refused("consensus protocol number 7 (unknown), ours tendermint"))
        clock.nowMs += 600
        let (fixed, fixedHello) = hello(from: 1, forkId: 0, timeMs: 6, consensus: 0)
        node.receive(fixed, fixedHello, fromPeer: true)
        #expect(node.handshakes.links["v2"] == .accepted)
    }

    /// A peer that restarted (or started after our first hello was lost) asks again: it is answered
    /// at once even though we sent it a hello a moment ago, so our votes never reach it unannounced.
    @Test func anAcceptedPeerThatAsksIsAnsweredAtOnce() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let clock = Clock()
        let node = try shell(dir: dir, clock: clock)
        node.start()
        let (first, firstHello) = hello(from: 2, forkId: 0, timeMs: 5)
        node.receive(first, firstHello, fromPeer: true)
        node.outbox.items.removeAll()
        clock.nowMs += 30
        let (again, againHello) = hello(from: 2, forkId: 0, timeMs: 6)
        node.receive(again, againHello, fromPeer: true)
        #expect(node.outbox.items.map(\.kind) == [.hello] && node.outbox.items.map(\.peer) == ["v3"])
        // …but not more often than every 20 ms, however many hellos it sends.
        node.outbox.items.removeAll()
        clock.nowMs += 5
        let (third, thirdHello) = hello(from: 2, forkId: 0, timeMs: 7)
        node.receive(third, thirdHello, fromPeer: true)
        #expect(node.outbox.items.isEmpty)
    }

    /// A restarted validator hears a peer's prevotes before that peer's hello: they wait for the handshake
    /// and count once it succeeds (dropped, they were gone for good: the edge had marked their bytes seen,
    /// so the peer's re-sends were dropped as copies and a height waited 2 s under load). A refused peer's
    /// messages are dropped, and the wait is bounded.
    @Test func votesThatComeBeforeTheHandshakeCountOnceItSucceeds() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let node = try shell(dir: dir)
        let (v3Hello, v3Message) = hello(from: 2, forkId: 0)
        node.receive(v3Hello, v3Message, fromPeer: true)
        node.startConsensusNow()
        let vote = Vote(height: 1, round: 0, blockId: nil)
        let prevote = Envelope(kind: .prevote, payload: vote.encoded, domain: node.domain, key: keys[1])
        node.receive(prevote, .prevote(vote), fromPeer: true)
        #expect(node.consensus.stake(.prevote, round: 0, blockId: nil) == 0)
        #expect(node.handshakes.heldCount("v2") == 1)
        let (v2Hello, v2Message) = hello(from: 1, forkId: 0)
        node.receive(v2Hello, v2Message, fromPeer: true)
        #expect(node.handshakes.links["v2"] == .accepted)
        #expect(node.consensus.stake(.prevote, round: 0, blockId: nil) == 10)
        #expect(node.handshakes.heldCount("v2") == 0)
        // v4 is refused: its prevotes never count and are not kept; nor are more than the bound of v4's before.
        let other = Vote(height: 1, round: 1, blockId: nil)
        for round in UInt32(0)..<UInt32(Replica.Handshakes<String, Replica.HeldMessage>.heldMax + 10) {
            let early = Vote(height: 1, round: round, blockId: nil)
            node.receive(Envelope(kind: .precommit, payload: early.encoded, domain: node.domain, key: keys[3]),
                               .precommit(early), fromPeer: true)
        }
        #expect(node.handshakes.heldCount("v4") == Replica.Handshakes<String, Replica.HeldMessage>.heldMax)
        let (foreign, foreignHello) = hello(from: 3, forkId: 1)
        node.receive(foreign, foreignHello, fromPeer: true)
        #expect(node.handshakes.heldCount("v4") == 0)
        node.receive(Envelope(kind: .prevote, payload: other.encoded, domain: node.domain, key: keys[3]),
                           .prevote(other), fromPeer: true)
        #expect(node.consensus.stake(.precommit, round: 0, blockId: nil) == 0)
        #expect(node.consensus.stake(.prevote, round: 1, blockId: nil) == 0)
    }

    /// Round 0's prevote is long gone from the recent votes when a later round re-proposes round 0's
    /// value; a stalled node re-sends it, since peers that missed it cannot prevote that value (L28).
    @Test func theProofOfLockPrevoteIsResentWhileStalled() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let clock = Clock()
        let node = try shell(dir: dir, clock: clock)
        for index in 1..<4 {
            let (envelope, message) = hello(from: index, forkId: 0)
            node.receive(envelope, message, fromPeer: true)
        }
        node.startConsensusNow()
        func nilVotes(_ kind: MessageKind, round: UInt32) {
            for index in 1..<4 {
                let vote = Vote(height: 1, round: round, blockId: nil)
                let envelope = Envelope(kind: kind, payload: vote.encoded, domain: node.domain, key: keys[index])
                node.receive(envelope, kind == .prevote ? .prevote(vote) : .precommit(vote), fromPeer: true)
            }
        }
        // Round 0: no proposal arrives; v1 prevotes nil, everyone precommits nil; round 1 starts.
        node.handle(.timeout(.propose, height: 1, round: 0))
        let roundZero = try #require(node.replica.ownPrevotes[0])
        nilVotes(.prevote, round: 0)
        node.handle(.timeout(.prevote, height: 1, round: 0))
        nilVotes(.precommit, round: 0)
        node.handle(.timeout(.precommit, height: 1, round: 0))
        #expect(node.consensus.round == 1)
        // Round 1 re-proposes a value with proof-of-lock round 0: its prevote goes to every peer once.
        let id = Blake2b.hash([9])
        let proposal = Proposal(height: 1, round: 1, polRound: 0, blockId: id, partsRoot: id, partCount: 1, blockBytes: 10)
        let admitted = node.proposals.admit(proposal, from: 1, body: .init(assembler: .init(root: id, total: 1, bytesMax: 10)),
                                            at: (1, 1), roundsAheadMax: 64, proposer: 1)
        #expect(admitted == .accepted)
        node.outbox.items.removeAll()
        clock.nowMs += 10_000
        node.rebroadcastIfStalled()
        #expect(node.outbox.items.filter { $0.bytes == roundZero.bytes }.map(\.peer).sorted() == ["v2", "v3", "v4"])
    }

    func committed(height: UInt64, on ledger: Ledger, root: Bytes32? = nil, txs: [Envelope] = []) -> CommittedBlock {
        let header = BlockHeader(protocolVersion: 1, height: height, timeMs: height, proposer: keys[1].publicKey,
                                 previousBlockId: ledger.lastBlockId, stateRoot: root ?? ledger.stateRoot,
                                 txRoot: Block.txRoot(txs), txCount: UInt32(txs.count))
        let block = Block(header: header, txs: txs)
        return CommittedBlock(block: block, commit: CommitCertificate(height: height, round: 0, blockId: block.id,
                                                                      signatures: []))
    }

    /// Restarted on a v2 binary, a node re-executes its last block under v2 rules but keeps the v1
    /// result: when the chain builds the next block on the v1 result, the node follows instead of
    /// stopping; when it builds on the v2 result, the new rules are recorded for that block.
    @Test(arguments: [false, true])
    func aRestartOnAnotherBinaryFollowsWhatTheChainBuiltOn(chainUsedOldRules: Bool) throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try shell(version: 1, dir: dir)
        let fee = Envelope(kind: .transfer, payload: Transfer(to: keys[2].publicKey, amount: 5, fee: 3, nonce: 0).encoded,
                           domain: first.domain, key: alice)
        #expect(first.commit(committed(height: 1, on: first.ledger, txs: [fee]), source: "test"))
        let oldRoot = first.ledger.stateRoot
        let restarted = try shell(version: 2, dir: dir)
        let newRoot = restarted.ledger.stateRoot
        #expect(newRoot != oldRoot && restarted.tipAlternative?.ledger.stateRoot == oldRoot)
        let next = committed(height: 2, on: restarted.ledger, root: chainUsedOldRules ? oldRoot : newRoot)
        #expect(restarted.commit(next, source: "sync"))
        #expect(restarted.stopped == nil && restarted.store.height == 2 && restarted.tipAlternative == nil)
        // What a third start replays for block 1: the rules the chain built on.
        var recorded: [UInt16] = []
        _ = try BlockStore(path: dir + "/blocks.dat") { _, rules in recorded.append(rules) }
        #expect(recorded == [chainUsedOldRules ? 1 : 2, 2])
    }

    @Test func aMismatchedRootIsNotStoredAndStopsTheNode() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let node = try shell(dir: dir)
        func committed(root: Bytes32) -> CommittedBlock {
            let header = BlockHeader(protocolVersion: 1, height: 1, timeMs: 1, proposer: keys[1].publicKey,
                                     previousBlockId: node.ledger.lastBlockId, stateRoot: root,
                                     txRoot: Block.txRoot([]), txCount: 0)
            let block = Block(header: header, txs: [])
            return CommittedBlock(block: block, commit: CommitCertificate(height: 1, round: 0, blockId: block.id,
                                                                          signatures: []))
        }
        let other = Blake2b.hash([1])
        #expect(!node.commit(committed(root: other), source: "consensus"))
        #expect(node.store.height == 0)
        #expect(node.stopped == "wrong state root at height 1: expected \(node.ledger.stateRoot.hex), got \(other.hex)")
        let events = try String(contentsOfFile: dir + "/events.jsonl", encoding: .utf8)
        #expect(events.contains("\"event\":\"state_mismatch\""))
    }

    @Test func upgradePlansStopAnOldBinaryAndRefuseATooNewOne() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let plan = UpgradePlan(name: "burn", height: 1, version: 2)
        let old = try shell(version: 1, plans: [plan], dir: dir + "/old")
        old.start()
        #expect(old.stopped == "upgrade burn needed at height 1")
        let later = UpgradePlan(name: "burn", height: 50, version: 2)
        #expect(throws: NodeShell.StartRefused.self) {
            _ = try shell(version: 2, versionMin: 2, plans: [later], dir: dir + "/new")
        }
        let events = try String(contentsOfFile: dir + "/new/events.jsonl", encoding: .utf8)
        #expect(events.contains("refusing to run: this binary implements rules v2...v2, but height 1 runs rules v1; "
                                + "start it at height 50 (upgrade burn) or later"))
        // The same binary with v1 rules kept runs, and applies v1 until the plan's height.
        let kept = try shell(version: 2, versionMin: 1, plans: [later], dir: dir + "/kept")
        #expect(kept.binary.rules(at: 1, plans: kept.plans) == .apply(version: 1)
                && kept.binary.rules(at: 50, plans: kept.plans) == .apply(version: 2))
    }
}

/// The once-a-second figures a node logs (timer lateness, vote delay) are nearest-rank percentiles.
@Suite struct SampledPercentileTests {
    @Test(arguments: [
        // Ten on-time ticks and one two-second stall: the stall is the p99 (it was hidden as the 2nd largest).
        ([0, 0, 1, 1, 2, 2, 3, 5, 8, 1_900] as [UInt64], 0.99, UInt64(1_900)),
        ([0, 0, 1, 1, 2, 2, 3, 5, 8, 1_900], 0.5, 2),
        ([7], 0.99, 7),
        ([7], 0.0, 7),
        ([], 0.99, 0),
        (Array(1...200), 0.99, 198),
    ])
    func nearestRank(samples: [UInt64], quantile: Double, expected: UInt64) {
        #expect(samples.sampledPercentile(quantile) == expected)
    }
}

/// Timer lateness, the host-health figure: for the main loop's ticks and for the network event loop's timer.
@Suite struct TickLatenessTests {
    @Test func eachArrivalCountsTheTimePastItsIntervalAndADrainEmpties() {
        var lateness = TickLateness(intervalMs: 100)
        for wall in [1_000, 1_100, 1_350, 1_420, 1_520] as [UInt64] { lateness.note(wallMs: wall) }
        #expect(lateness.drain() == [0, 150, 0, 0])  // the first arrival only starts the count
        #expect(lateness.drain().isEmpty)
        lateness.note(wallMs: 3_620)
        #expect(lateness.drain() == [2_000])  // a two-second stall shows on the next arrival
    }

    @Test func samplesAreBoundedBetweenDrains() {
        var lateness = TickLateness(intervalMs: 10)
        for step in 0...UInt64(TickLateness.samplesMax + 50) { lateness.note(wallMs: step * 10) }
        #expect(lateness.drain().count == TickLateness.samplesMax)
    }

    /// The event loop's timer: a loop that ran its 100 ms timer 300 ms late shows it.
    @Test func theEventLoopsTimerReportsHowLateTheLoopRanIt() async throws {
        let loop = EmbeddedEventLoop()
        let wall = Mutex<UInt64>(0)
        let lateness = EventLoopLateness(loop: loop, intervalMs: 100, clock: { wall.withLock { $0 } })
        for late in [0, 0, 300, 0] as [UInt64] {
            wall.withLock { $0 += 100 + late }
            loop.advanceTime(by: .milliseconds(100))
        }
        #expect(lateness.drain() == [0, 300, 0])
        lateness.cancel()
        loop.advanceTime(by: .milliseconds(500))
        #expect(lateness.drain().isEmpty)
    }
}
