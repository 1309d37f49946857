import Foundation
import Testing
@testable import Cluster
import Liveness

extension ClusterEndToEndTests {
    /// Mixed versions on real processes, driven like an operator would from a shell:
    /// v4 runs a version-2 binary and stops on the first state root mismatch while the other three
    /// go on; `faultline fault upgrade` puts it back on version 1 but on fork id 1, and every peer
    /// refuses it at the handshake (log line, /metrics counter); back on fork id 0 it re-executes its
    /// last block under version-1 rules and catches up.
    @Test(.timeLimit(.minutes(2)))
    func versionSplitStopAndHandshakeRefusal() async throws {
        let folder = try ScratchFolder("versions", file: "versions.toml",
                                       text: Self.topologyText.replacingOccurrences(of: "name = \"v4\"", with: "name = \"v4\"\nversion = 2"))
        defer { folder.remove() }
        let root = folder.root
        let topologyPath = folder.file
        let up = try Self.faultline(["up", topologyPath, "--runs", root + "/runs"])
        #expect(up.code == 0, "up failed: \(up.err)")
        let dir = try FileManager.default.contentsOfDirectory(atPath: root + "/runs").map { root + "/runs/" + $0 }.first!
        defer { _ = try? Self.faultline(["down", "--run", dir]) }
        let manifest = try RunFolder.load(dir)
        let token = try RunFolder.token(dir)
        let v1 = manifest.nodes.first { $0.name == "v1" }!

        // 1. Transfers with fees: v4 computes another root and stops with the message; the rest go on.
        let generator = try LoadGenerator(manifest: manifest, runDir: dir)
        let load = Task { try await generator.run(rate: 100, seconds: 60, shouldStop: { Task.isCancelled }) }
        defer { load.cancel() }
        try await ClusterOps.waitUntil(dir: dir, timeoutSeconds: 20) { states in
            states.first { $0.node.name == "v4" }?.status?.stopped != nil
        }
        let stoppedStates = try await ClusterOps.states(dir: dir)
        let v4Status = try #require(stoppedStates.first { $0.node.name == "v4" }?.status)
        let reason = try #require(v4Status.stopped)
        #expect(reason.hasPrefix("wrong state root at height \(v4Status.height + 1): expected "), "\(reason)")
        let v4Height = v4Status.height
        try await ClusterOps.waitUntil(dir: dir, timeoutSeconds: 20) { states in
            Self.heights(states).filter { $0.key != "v4" }.values.allSatisfy { $0 >= v4Height + 10 }
        }
        #expect(Self.heights(try await ClusterOps.states(dir: dir))["v4"] == v4Height) // stopped means stopped

        // 2. Back to version 1, but on fork id 1: refused at the handshake by every peer.
        let onFork = try Self.faultline(["fault", "upgrade", "v4", "--version", "1", "--fork-id", "1", "--run", dir])
        #expect(onFork.code == 0, "\(onFork.err)")
        #expect(onFork.out.contains("v4: running, rules v1 now (binary v1...v1, fork id 1)"), "\(onFork.out)")
        var metrics = ""
        try await ClusterOps.waitUntil(dir: dir, timeoutSeconds: 10) { states in
            states.first { $0.node.name == "v1" }?.status?.refusedPeers["v4"] == "fork id 1, ours 0"
        }
        let response = try await ControlClient.request(port: v1.controlPort, path: "/metrics", token: token)
        metrics = String(decoding: response.body, as: UTF8.self)
        let refused = metrics.split(separator: "\n").first { $0.hasPrefix("faultline_handshake_refused_total ") }
        #expect((refused.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0) >= 1, "\(metrics)")
        let log = try String(contentsOfFile: dir + "/" + v1.dir + "/node.log", encoding: .utf8)
        #expect(log.contains("handshake: refusing v4 ("), "v1's log has no refusal line")
        let atRefusal = Self.heights(try await ClusterOps.states(dir: dir))
        try await Task.sleep(for: .milliseconds(800)) // the point: v4 gets no block while refused
        #expect(Self.heights(try await ClusterOps.states(dir: dir))["v4"] == atRefusal["v4"])

        // 3. Fork id 0 again: accepted; its last block re-executed under v1 rules, it catches up.
        let back = try Self.faultline(["fault", "upgrade", "v4", "--version", "1", "--fork-id", "0", "--run", dir])
        #expect(back.code == 0, "\(back.err)")
        let top = Self.heights(try await ClusterOps.states(dir: dir)).values.max()!
        try await ClusterOps.waitUntil(dir: dir, timeoutSeconds: 20) { states in
            (Self.heights(states)["v4"] ?? 0) >= top && states.allSatisfy { $0.status?.stopped == nil }
        }
        load.cancel()
        #expect(try Self.faultline(["down", "--run", dir]).code == 0)
        let analysis = RunAnalysis.analyze(nodeDirs: manifest.nodes.map { ($0.name, dir + "/" + $0.dir) },
                                           submissionsPath: nil)
        #expect(analysis.agreement)
        let divergence = try #require(analysis.divergences.first)
        #expect(divergence.height == v4Height)
        #expect(divergence.sides.map(\.nodes) == [["v1", "v2", "v3"], ["v4"]])
        #expect(divergence.sidesAtEnd.map(\.nodes) == [["v1", "v2", "v3", "v4"]])
    }
}
