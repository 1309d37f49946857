import Basics
import Foundation

extension ClusterOps {
    /// Waits until the cluster finalizes: validators with more than 2/3 of the stake have finalized a
    /// block, every validator process is running, and rpc nodes, gateways and external members serve (as
    /// `isUp` says). The validators' commits are read from their event logs (a commit is flushed as it
    /// happens), not asked for: on a machine shared by 100 busy node processes one round of status
    /// requests takes ~2.4 s, and the last validators commit their first block 2–3 s after the first
    /// ones (they catch up as the run goes on). A remote run's logs are not on this machine: it waits for
    /// every validator's status, as `isUp` does.
    public static func waitUntilUp(dir: String, manifest: RunManifest, timeoutSeconds: Double) async throws {
        guard manifest.remote != true else {
            try await waitUntil(dir: dir, timeoutSeconds: timeoutSeconds, isUp)
            return
        }
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        let validators = manifest.nodes.filter { $0.role == "validator" }
        let others = Set(manifest.nodes.filter { $0.role != "validator" }.map(\.name))
        // Once the logs and the processes settle the validators, `isUp` judges the rest.
        let settled = validators.map { NodeState(node: $0, pid: nil, alive: true, status: nil, error: nil) }
        let everyValidator = Set(validators.map(\.name))
        var watch = CommitWatch(paths: Dictionary(uniqueKeysWithValues: validators.map {
            ($0.name, dir + "/" + $0.dir + "/events.jsonl")
        }))
        while Date() < deadline {
            if finalized(validators, committed: watch.poll()),
               validators.allSatisfy({ Supervisor.pid($0, runDir: dir).map(Supervisor.isAlive) ?? false }) {
                let states = others.isEmpty ? [] : try await states(dir: dir, only: others)
                if isUp(states + settled, committed: everyValidator) { return }
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        // Timed out: one last round of status requests, which says where each node is in the error.
        try await waitUntil(dir: dir, timeoutSeconds: 0.001, isUp)
    }

    /// Validators holding more than 2/3 of the stake have committed (trivially, when there is no validator:
    /// a cluster of external members).
    static func finalized(_ validators: [RunManifest.NodeEntry], committed: Set<String>) -> Bool {
        guard !validators.isEmpty else { return true }
        let total = validators.reduce(UInt64(0)) { $0 + $1.stake }
        let committedStake = validators.filter { committed.contains($0.name) }.reduce(UInt64(0)) { $0 + $1.stake }
        return Quorum.holds(committedStake, of: total)
    }
}

/// Follows validators' event logs for their first `commit` event, reading only what was appended since the
/// last poll (a log holds nothing else of interest here; reading stops at a node's first commit).
struct CommitWatch {
    private var offsets: [String: UInt64] = [:]
    private var carry: [String: String] = [:]
    private(set) var committed: Set<String> = []
    let paths: [String: String]
    /// Read per log and poll, so a node that writes fast cannot hold the wait up.
    static let chunkBytesMax = 1 << 20

    init(paths: [String: String]) {
        self.paths = paths
    }

    mutating func poll() -> Set<String> {
        for (name, path) in paths where !committed.contains(name) {
            guard let handle = FileHandle(forReadingAtPath: path) else { continue }
            defer { try? handle.close() }
            let offset = offsets[name] ?? 0
            guard (try? handle.seek(toOffset: offset)) != nil,
                  let data = try? handle.read(upToCount: Self.chunkBytesMax), !data.isEmpty else { continue }
            offsets[name] = offset + UInt64(data.count)
            // Lines can straddle two reads: the unfinished tail waits for the rest.
            let text = (carry[name] ?? "") + String(decoding: data, as: UTF8.self)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            carry[name] = lines.last.map(String.init)
            if lines.dropLast().contains(where: { $0.contains("\"event\":\"commit\"") }) { committed.insert(name) }
        }
        return committed
    }
}
