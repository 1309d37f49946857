@testable import Cluster
import Foundation
import Testing

/// How `up` learns that validators finalized: from their event logs, read as they grow.
@Suite struct UpWatchTests {
    static func folder() throws -> String {
        let dir = NSTemporaryDirectory() + "upwatch-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func append(_ text: String, to path: String) throws {
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(text.utf8))
        try handle.close()
    }

    /// A commit counts once its whole line is there; other events, a missing log, and a commit line cut in
    /// the middle (the writer's next flush completes it) do not.
    @Test func aValidatorCountsFromItsFirstCompleteCommitLine() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let v1 = dir + "/v1.jsonl", v2 = dir + "/v2.jsonl"
        var watch = CommitWatch(paths: ["v1": v1, "v2": v2, "v3": dir + "/absent.jsonl"])
        try Self.append(#"{"t":1,"node":"v1","event":"start","height":0}"# + "\n", to: v1)
        try Self.append(#"{"t":2,"node":"v1","event":"signed","kind":"prevote"}"# + "\n" + #"{"t":3,"node":"v1","event":"comm"#,
                        to: v1)
        try Self.append(#"{"t":1,"node":"v2","event":"committee","height":1}"# + "\n", to: v2)
        #expect(watch.poll().isEmpty)
        try Self.append(#"it","height":1}"# + "\n", to: v1)
        #expect(watch.poll() == ["v1"])
        try Self.append(#"{"t":4,"node":"v2","event":"commit","height":1}"# + "\n", to: v2)
        #expect(watch.poll() == ["v1", "v2"])
    }

    static func node(_ name: String, role: String = "validator", stake: UInt64 = 10) -> RunManifest.NodeEntry {
        RunManifest.NodeEntry(name: name, role: role, stake: stake, labels: [:], publicKey: "", host: "127.0.0.1",
                              gossipPort: 1, votePort: 1, controlPort: 1, dir: "nodes/" + name)
    }

    /// Validators known from their logs need no status; a validator that did not commit still holds the
    /// cluster back unless its status says it cannot join.
    @Test func committedValidatorsNeedNoStatus() {
        let states = ["v1", "v2", "v3", "v4"].map {
            ClusterOps.NodeState(node: Self.node($0), pid: nil, alive: true, status: nil, error: nil)
        }
        #expect(ClusterOps.isUp(states, committed: ["v1", "v2", "v3", "v4"]))
        #expect(!ClusterOps.isUp(states, committed: ["v1", "v2", "v3"]))
        #expect(!ClusterOps.isUp(states))
    }

    /// The cluster finalizes once more than 2/3 of the stake has committed; a cluster without validators
    /// (etcd members only) has nothing to wait for.
    @Test func finalizedAtMoreThanTwoThirdsOfTheStake() {
        let four = ["v1", "v2", "v3", "v4"].map { Self.node($0) }
        #expect(ClusterOps.finalized(four, committed: ["v1", "v2", "v3"]))
        #expect(!ClusterOps.finalized(four, committed: ["v1", "v2"]))
        let heavy = [Self.node("v1", stake: 70), Self.node("v2"), Self.node("v3"), Self.node("v4")]
        #expect(ClusterOps.finalized(heavy, committed: ["v1"]))
        #expect(!ClusterOps.finalized(heavy, committed: ["v2", "v3", "v4"]))
        #expect(ClusterOps.finalized([], committed: []))
    }
}
