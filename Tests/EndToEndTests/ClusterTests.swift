import Formats
import Foundation
import NIOCore
import NIOPosix
import Sodium
import Testing
import Wire
@testable import Cluster
@testable import Liveness

extension Tag {
    @Tag static var e2e: Self
}

/// Real `faultline-node` processes on loopback. Each step waits for a condition on the nodes'
/// `/status`, never for a fixed time, except where the point is that nothing happens.
@Suite(.tags(.e2e), .serialized) struct ClusterEndToEndTests {
    static let topologyText = """
        [cluster]
        name = "e2e"
        chain_id = "faultline-e2e"
        [timing]
        timeout_propose_ms = 200
        timeout_commit_ms = 10
        [load]
        accounts = 64
        [[node]]
        name = "v1"
        [[node]]
        name = "v2"
        [[node]]
        name = "v3"
        [[node]]
        name = "v4"
        """

    static func heights(_ states: [ClusterOps.NodeState]) -> [String: UInt64] {
        Dictionary(uniqueKeysWithValues: states.map { ($0.node.name, $0.status?.height ?? 0) })
    }

    static func rejected(_ metrics: String, _ reason: String) -> Int {
        let prefix = "faultline_ingress_rejected_total{reason=\"\(reason)\"} "
        guard let line = metrics.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return 0 }
        return Int(line.dropFirst(prefix.count)) ?? 0
    }

    @Test(.timeLimit(.minutes(2)))
    func garbageKillRestartAndHalfDown() async throws {
        let folder = try ScratchFolder("cluster", file: "e2e.toml", text: Self.topologyText)
        defer { folder.remove() }
        let up = try await ClusterOps.up(topology: try Topology.load(path: folder.file), runsRoot: folder.runs)
        let dir = up.dir
        let manifest = up.manifest
        let token = try RunFolder.token(dir)
        var downed = false
        defer { if !downed { Task { try? await ClusterOps.down(dir: dir) } } }
        func node(_ name: String) -> RunManifest.NodeEntry { manifest.nodes.first { $0.name == name }! }
        func waitAll(_ seconds: Double = 20, _ condition: @escaping ([String: UInt64]) -> Bool) async throws {
            try await ClusterOps.waitUntil(dir: dir, timeoutSeconds: seconds) { condition(Self.heights($0)) }
        }

        // 1. Hostile datagrams at v1 from another socket: dropped, counted, v1 stays live.
        let v1 = node("v1")
        let domain = Domain(chainId: manifest.chainId)
        let outsider = SigningKey(label: "outsider")
        let insider = ClusterSetup.nodeKey(chainId: manifest.chainId, seed: manifest.seed, name: "v2")
        // A height no node has reached: votes for committed heights are dropped before their signature
        // is checked (stale_height), and these must reach the check.
        let ahead: UInt64 = 1 << 40
        let vote = Envelope(kind: .prevote, payload: Vote(height: ahead, round: 0, blockId: nil).encoded, domain: domain,
                            key: insider)
        var badSignature = vote.bytes
        badSignature[badSignature.count - 1] ^= 1
        let garbage: [[UInt8]] = [
            [0xde, 0xad, 0xbe, 0xef],                                   // malformed
            Array(vote.bytes.prefix(40)),                               // truncated
            [UInt8](repeating: 0xFA, count: 3_000),                     // oversized
            badSignature,                                               // bad signature
            Envelope(kind: .prevote, payload: Vote(height: ahead, round: 0, blockId: nil).encoded,
                     domain: Domain(chainId: "another-chain"), key: insider).bytes, // wrong chain
            Envelope(kind: .precommit, payload: Vote(height: 1, round: 0, blockId: nil).encoded, domain: domain,
                     key: outsider).bytes,                              // not a member
            Array(Bundle.encode([badSignature, vote.bytes]).dropLast(7)), // a bundle cut short: malformed
            Bundle.encode([badSignature, Array(vote.bytes.prefix(40))]), // a bundle: bad signature, then truncated
        ]
        let socket = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let target = try SocketAddress(ipAddress: v1.host, port: v1.gossipPort)
        for _ in 0..<50 {
            for bytes in garbage {
                try await socket.writeAndFlush(AddressedEnvelope(remoteAddress: target, data: ByteBuffer(bytes: bytes)))
            }
        }
        try await socket.close()
        var metrics = ""
        try await ClusterOps.waitUntil(dir: dir, timeoutSeconds: 10) { _ in true }
        for _ in 0..<200 {
            let response = try await ControlClient.request(port: v1.controlPort, path: "/metrics", token: token)
            metrics = String(decoding: response.body, as: UTF8.self)
            if Self.rejected(metrics, "unknown_sender") >= 50 && Self.rejected(metrics, "bad_signature") >= 100 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        // Each bundle's envelopes are judged one by one, like datagrams of their own.
        #expect(Self.rejected(metrics, "malformed") >= 200)
        #expect(Self.rejected(metrics, "oversized") >= 50)
        #expect(Self.rejected(metrics, "bad_signature") >= 100)
        #expect(Self.rejected(metrics, "wrong_chain") >= 50)
        #expect(Self.rejected(metrics, "unknown_sender") >= 50)
        // Each envelope with a bad signature was checked at the edge (and counted there) before it was
        // refused: a copy of an invalid one is not remembered, so it is checked again.
        let checked = try #require(ControlClient.metricSum("faultline_edge_signature_checks_total", in: metrics))
        #expect(checked >= Double(Self.rejected(metrics, "bad_signature")))
        let unauthorized = try await ControlClient.request(port: v1.controlPort, path: "/status", token: "wrong")
        #expect(unauthorized.status == 401)
        let afterGarbage = Self.heights(try await ClusterOps.states(dir: dir))["v1"]!
        try await waitAll { $0["v1"]! >= afterGarbage + 3 }

        // 2. Under load, kill -9 v2: the other three (3 of 4 stake) keep finalizing.
        let generator = try LoadGenerator(manifest: manifest, runDir: dir)
        let load = Task { try await generator.run(rate: 200, seconds: 60, shouldStop: { Task.isCancelled }) }
        defer { load.cancel() }
        let v2 = node("v2")
        let killedPid = Supervisor.pid(v2, runDir: dir)!
        #expect(Supervisor.signal(killedPid, SIGKILL))
        let atKill = Self.heights(try await ClusterOps.states(dir: dir)).values.max()!
        try await waitAll { h in ["v1", "v3", "v4"].allSatisfy { h[$0]! >= atKill + 10 } }

        // 3. Restart v2: it reloads its store, catches up by block sync and signs again.
        try Supervisor.start(v2, runDir: dir)
        let atRestart = Self.heights(try await ClusterOps.states(dir: dir)).values.max()!
        try await waitAll { $0["v2"]! >= atRestart + 5 }
        let signedAgainAfter = Self.heights(try await ClusterOps.states(dir: dir))["v2"]!
        try await waitAll { $0.values.allSatisfy { $0 >= signedAgainAfter + 10 } }

        // 4. Kill v3 and v4: 2 of 4 is not +2/3, so finality stops; it resumes when they return.
        for name in ["v3", "v4"] { _ = Supervisor.signal(Supervisor.pid(node(name), runDir: dir)!, SIGKILL) }
        try await Task.sleep(for: .milliseconds(300)) // let a block already in flight land
        let stalled = Self.heights(try await ClusterOps.states(dir: dir))
        try await Task.sleep(for: .milliseconds(1_500)) // the point: nothing is finalized meanwhile
        let stillStalled = Self.heights(try await ClusterOps.states(dir: dir))
        #expect(stillStalled["v1"] == stalled["v1"] && stillStalled["v2"] == stalled["v2"])
        for name in ["v3", "v4"] { try Supervisor.start(node(name), runDir: dir) }
        let stalledAt = max(stalled["v1"]!, stalled["v2"]!)
        try await waitAll(30) { $0.values.allSatisfy { $0 >= stalledAt + 5 } }

        // 5. Nobody double-signed (every node would have seen conflicting votes), all alive, all agree.
        load.cancel()
        let finalStates = try await ClusterOps.states(dir: dir)
        #expect(finalStates.allSatisfy { $0.alive })
        #expect(finalStates.map { $0.status?.conflictingVotes ?? -1 } == [0, 0, 0, 0])
        try await ClusterOps.down(dir: dir)
        downed = true
        let analysis = RunAnalysis.analyze(nodeDirs: manifest.nodes.map { ($0.name, dir + "/" + $0.dir) },
                                           submissionsPath: dir + "/load/submissions.jsonl")
        #expect(analysis.agreement, "conflicts: \(analysis.conflicts)")
        #expect(analysis.noCommittedBlockLost, "\(analysis.nodes.map(\.lostOnRestart))")
        let v1Drops = analysis.nodes.first { $0.name == "v1" }!.drops
        #expect((v1Drops["bad_signature"] ?? 0) >= 50 && (v1Drops["malformed"] ?? 0) >= 100, "\(v1Drops)")
        #expect(analysis.heightsChecked > 30)
        let v2Summary = analysis.nodes.first { $0.name == "v2" }!
        #expect(v2Summary.starts == 2 && v2Summary.syncedCommits > 0)
        // v2 (validator index 1) signs commits again after its restart.
        let v2Signed = try Self.signedHeights(eventsPath: dir + "/nodes/v1/events.jsonl", validator: 1)
        #expect(v2Signed.contains { $0 > signedAgainAfter })
        #expect(analysis.txsCommitted > 0)
    }

    static func signedHeights(eventsPath: String, validator: Int) throws -> [UInt64] {
        let text = try String(contentsOfFile: eventsPath, encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  object["event"] as? String == "commit", let signers = object["signers"] as? [Int],
                  signers.contains(validator) else { return nil }
            return (object["height"] as? NSNumber)?.uint64Value
        }
    }
}
