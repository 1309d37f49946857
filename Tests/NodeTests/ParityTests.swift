import Formats
import Consensus
import Foundation
import Ledger
import Logging
import Sodium
import Testing
import Wire
@testable import Node
@testable import Simulation

/// The two engines on one scripted trace: the node's shell (`NodeShell`: signed envelopes, a real
/// store) and the simulator's (`SimNode`: virtual network and disk) are given the same inputs — a start,
/// three peers' hellos, two statuses, then the peers' prevotes and precommits for the node's own
/// proposal — and must send the same kinds of message to the same peers at each step, write the same
/// events, and commit the same block.
@Suite struct ParityTests {
    static let scenarioText = """
        [cluster]
        name = "parity"
        seed = 1
        [timing]
        timeout_commit_ms = 20
        [scenario]
        duration_s = 5
        [[node]]
        name = "v1"
        [[node]]
        name = "v2"
        [[node]]
        name = "v3"
        [[node]]
        name = "v4"
        """

    /// Both engines around one validator: the round-0 proposer of height 1, so the trace needs no
    /// proposal from outside.
    final class Engines {
        let sim: Simulator
        let simNode: SimNode
        var node: NodeShell
        let makeNode: () throws -> NodeShell
        let keys: [String: SigningKey]
        let names: [String]
        let me: Int
        let dir: String

        init() throws {
            let scenario = try Scenario.parse(ParityTests.scenarioText, path: "parity.toml")
            let dir = NSTemporaryDirectory() + "faultline-parity-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            self.dir = dir
            try FileManager.default.createDirectory(atPath: dir + "/node", withIntermediateDirectories: true)
            var settings = Simulator.Settings(seed: 1)
            settings.eventLogs = true
            let sim = try Simulator(scenario: scenario, settings: settings, logDir: dir + "/sim")
            self.sim = sim
            let names = sim.validators.members.map(\.name)
            let me = sim.validators.proposer(height: 1, round: 0)
            self.names = names
            self.me = me
            simNode = sim.nodes[me]
            let topology = scenario.topology
            let keys = Dictionary(uniqueKeysWithValues: names.map {
                ($0, ClusterSetup.nodeKey(chainId: topology.chainId, seed: 1, name: $0))
            })
            self.keys = keys
            let peers = names.enumerated().filter { $0.offset != me }.map { index, name in
                NodeConfig.PeerEntry(name: name, publicKey: keys[name]!.publicKey.hex, host: "127.0.0.1",
                                     port: 40_000 + index)
            }
            let config = NodeConfig(name: names[me], role: "validator", chainId: topology.chainId, forkId: 0,
                                    protocolVersion: 1, version: 1, versionMin: 1, host: "127.0.0.1", gossipPort: 40_000,
                                    controlPort: 0, keyFile: "", genesisFile: "", tokenFile: "", dataDir: dir + "/node",
                                    eventsFile: "", peers: peers, timing: topology.timing, limits: topology.limits)
            let now = sim.nowMs
            let genesis = sim.genesis
            let key = keys[names[me]]!
            makeNode = {
                try NodeShell(config: config, key: key, genesis: genesis, dataDir: dir + "/node",
                              eventsPath: dir + "/node/events.jsonl", logger: Logger(label: "parity"),
                              timers: { _, _ in }, clock: { now })
            }
            node = try makeNode()
        }

        /// SIGKILL and a start on the same disk: a new shell over the node's folder, the simulated node's crash.
        func restart() throws {
            node.events.flush()
            node = try makeNode()
            simNode.crash()
            node.start()
            simNode.start()
        }

        var domain: Domain { node.domain }

        /// What each engine sent since the last call, as "kind→peer", sorted (broadcast order is each
        /// engine's own).
        func sends() -> (node: [String], sim: [String]) {
            let fromNode = node.outbox.items.map { "\($0.kind)→\($0.peer)" }.sorted()
            node.outbox.items.removeAll()
            var fromSim: [String] = []
            var other: [(SimEvent, UInt64)] = []
            while let entry = sim.queue.pop() {
                if case .deliver(let to, let from, let message) = entry.item, from == me {
                    fromSim.append("\(message.kind)→\(sim.nodes[to].name)")
                } else {
                    other.append((entry.item, entry.timeUs))
                }
            }
            for (item, timeUs) in other { sim.queue.push(item, atUs: timeUs) }
            return (fromNode, fromSim.sorted())
        }

        /// The sends of one step, which must be the same in both engines.
        func expectSameSends(_ step: String) -> [String] {
            let (node, sim) = sends()
            #expect(node == sim, "\(step): the node sent \(node), the simulator \(sim)")
            return node
        }

        /// The same signed envelope to both engines (the simulated edge takes a real one as it takes its own).
        func deliver(_ envelope: Envelope, _ message: Message, from name: String) {
            node.receive(envelope, message, fromPeer: true)
            simNode.receive(SimMessage(envelope, message), from: names.firstIndex(of: name)!)
        }

        func hello(from name: String) {
            let hello = Hello(protocolVersion: 1, forkId: 0, version: 1, versionMin: 1, committedHeight: 0,
                              replyWanted: true, timeMs: 0)
            deliver(Envelope(kind: .hello, payload: hello.encoded, domain: domain, key: keys[name]!), .hello(hello), from: name)
        }

        func status(from name: String) {
            let status = StatusMessage(committedHeight: 0, round: 0, timeMs: 0)
            deliver(Envelope(kind: .status, payload: status.encoded, domain: domain, key: keys[name]!), .status(status),
                    from: name)
        }

        func vote(_ type: Tendermint.VoteType, _ vote: Vote, from name: String) {
            let envelope = Envelope(kind: type.kind, payload: vote.encoded, domain: domain, key: keys[name]!)
            deliver(envelope, type == .prevote ? .prevote(vote) : .precommit(vote), from: name)
        }

        func events(_ path: String) throws -> [[String: Any]] {
            try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }
    }

    @Test func theNodeAndTheSimulatorAnswerOneTraceAlike() throws {
        let engines = try Engines()
        defer { try? FileManager.default.removeItem(atPath: engines.dir) }
        let peers = engines.names.filter { $0 != engines.names[engines.me] }
        let expectSameSends = engines.expectSameSends

        // Start: a hello to every peer and nothing else (no handshake yet: the status stays in).
        engines.node.start()
        engines.simNode.start()
        #expect(expectSameSends("start") == peers.map { "hello→\($0)" }.sorted())
        // The peers' hellos: each accepted and answered.
        for peer in peers { engines.hello(from: peer) }
        #expect(expectSameSends("hellos") == peers.map { "hello→\($0)" }.sorted())
        // Two statuses: each new peer gets ours; with them +2/3 of the stake is heard and consensus starts:
        // the proposal and its block to every peer, then our prevote for it.
        engines.status(from: peers[0])
        engines.status(from: peers[1])
        let started = expectSameSends("statuses")
        #expect(started.filter { $0.hasPrefix("proposal→") }.count == 3)
        #expect(started.filter { $0.hasPrefix("prevote→") }.count == 3)
        // The peers prevote and precommit the proposal: we precommit, then decide and commit height 1.
        let proposed = try #require(engines.node.proposals[.init(height: 1, round: 0)]?.proposal.blockId)
        #expect(engines.simNode.proposals[.init(height: 1, round: 0)]?.proposal.blockId == proposed)
        for peer in peers { engines.vote(.prevote, Vote(height: 1, round: 0, blockId: proposed), from: peer) }
        #expect(expectSameSends("prevotes").filter { $0.hasPrefix("precommit→") }.count == 3)
        for peer in peers { engines.vote(.precommit, Vote(height: 1, round: 0, blockId: proposed), from: peer) }
        _ = expectSameSends("precommits")
        #expect(engines.node.store.height == 1 && engines.simNode.storeHeight == 1)

        // The same events in the same order, and the same block committed.
        try engines.sim.logs.close()
        let nodeEvents = try engines.events(engines.dir + "/node/events.jsonl")
        let simEvents = try engines.events(engines.dir + "/sim/nodes/\(engines.names[engines.me])/events.jsonl")
        #expect(nodeEvents.compactMap { $0["event"] as? String } == simEvents.compactMap { $0["event"] as? String })
        let commits = [nodeEvents, simEvents].map { $0.first { $0["event"] as? String == "commit" }?["hash"] as? String }
        #expect(commits[0] != nil && commits[0] == commits[1] && commits[0] == proposed.hex)
    }

    @Test func aRestartResendsTheVoteSignedBeforeTheCrashInBothEngines() throws {
        let engines = try Engines()
        defer { try? FileManager.default.removeItem(atPath: engines.dir) }
        let peers = engines.names.filter { $0 != engines.names[engines.me] }
        let expectSameSends = engines.expectSameSends
        func handshakeAndStatuses() {
            for peer in peers { engines.hello(from: peer) }
            engines.status(from: peers[0])
            engines.status(from: peers[1])
        }
        engines.node.start()
        engines.simNode.start()
        handshakeAndStatuses()
        #expect(expectSameSends("first start").filter { $0.hasPrefix("prevote→") }.count == 3)
        // Killed after its prevote: back on the same disk, it does not propose again (it signed that step),
        // and re-sends the very prevote it signed before the crash.
        try engines.restart()
        #expect(expectSameSends("restart") == peers.map { "hello→\($0)" }.sorted())
        handshakeAndStatuses()
        let resumed = expectSameSends("after the restart")
        #expect(resumed.filter { $0.hasPrefix("prevote→") }.count == 3)
        #expect(!resumed.contains { $0.hasPrefix("proposal→") })
        try engines.sim.logs.close()
        engines.node.events.flush()
        let nodeEvents = try engines.events(engines.dir + "/node/events.jsonl").compactMap { $0["event"] as? String }
        let simEvents = try engines.events(engines.dir + "/sim/nodes/\(engines.names[engines.me])/events.jsonl")
            .compactMap { $0["event"] as? String }
        #expect(nodeEvents == simEvents)
        #expect(nodeEvents.filter { $0 == "vote_restored" }.count == 1 && nodeEvents.filter { $0 == "start" }.count == 2)
    }
}
