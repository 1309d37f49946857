import Formats
import Foundation
import Wire

/// The files a simulated run leaves, in the formats a real run writes (so `faultline report` and the
/// analysis read both): each node's `events.jsonl`, `faults.jsonl`, `kills.jsonl` and the load's
/// `load/submissions.jsonl`. Without a folder nothing is written (the swarm checks in memory).
struct SimLogs {
    static let bufferBytesMax = 1 << 20

    let dir: String?
    private var handles: [FileHandle] = []
    private var buffers: [String] = []
    private var submissions = ""
    private var submissionsHandle: FileHandle?
    /// `layer = "l2"`: the L2 load's submissions (`load/l2-submissions.jsonl`), written at the end.
    private var l2Submissions = ""
    /// `forced_tx` steps' records (`rollup/<step>.json`).
    var forced: [ForcedClaims.Record] = []
    /// Airdrop steps' records and submissions (`rollup/<step>.json`, `rollup/<step>-submissions.jsonl`).
    var airdrops: [AirdropRecord] = []
    private var airdropSubmissions: [String: String] = [:]
    var timeline: [FaultEvent] = []
    var kills: [String] = []
    /// `[rpc_load]`: its settings and every request's record (`load/rpc-load.json`, `load/rpc-clients.jsonl`).
    var rpcLoad: (settings: RPCLoadRecord, requests: [RPCRequestRecord])?

    init(dir: String?, nodes: [String]) throws {
        self.dir = dir
        guard let dir else { return }
        for name in nodes {
            handles.append(try SimLogs.create(dir + "/nodes/" + name + "/events.jsonl"))
            buffers.append("")
        }
        submissionsHandle = try SimLogs.create(dir + "/load/submissions.jsonl")
    }

    var enabled: Bool { dir != nil }

    private static func create(_ path: String) throws -> FileHandle {
        let folder = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o644]),
              let handle = FileHandle(forWritingAtPath: path) else { throw RunError("cannot write \(path)") }
        return handle
    }

    mutating func write(_ slot: Int, _ line: @autoclosure () -> String) {
        guard dir != nil else { return }
        buffers[slot] += line()
        if buffers[slot].utf8.count >= SimLogs.bufferBytesMax {
            handles[slot].write(Data(buffers[slot].utf8))
            buffers[slot] = ""
        }
    }

    mutating func submitted(timeMs: UInt64, tx: String, l2: Bool) {
        guard dir != nil else { return }
        if l2 {
            l2Submissions += "{\"t\":\(timeMs),\"tx\":\"\(tx)\"}\n"
            return
        }
        submissions += "{\"t\":\(timeMs),\"tx\":\"\(tx)\"}\n"
        if submissions.utf8.count >= SimLogs.bufferBytesMax {
            submissionsHandle?.write(Data(submissions.utf8))
            submissions = ""
        }
    }

    mutating func airdropSubmitted(step: String, timeMs: UInt64, tx: String) {
        guard dir != nil else { return }
        airdropSubmissions[step, default: ""] += "{\"t\":\(timeMs),\"tx\":\"\(tx)\"}\n"
    }

    mutating func record(_ event: FaultEvent) { timeline.append(event) }

    mutating func killLine(timeMs: UInt64, event: String, node: String, storm: String, bytes: UInt64? = nil) {
        // The real storm's line, with pid 0 (there is no process).
        kills.append("{\"event\":\"\(event)\",\"node\":\"\(node)\",\"pid\":0,\"storm\":\"\(storm)\",\"t\":\(timeMs)"
                     + (bytes.map { ",\"bytes\":\($0)" } ?? "") + "}\n")
    }

    mutating func close() throws {
        guard let dir else { return }
        for (slot, handle) in handles.enumerated() {
            handle.write(Data(buffers[slot].utf8))
            try handle.close()
        }
        submissionsHandle?.write(Data(submissions.utf8))
        try submissionsHandle?.close()
        if !l2Submissions.isEmpty { try Data(l2Submissions.utf8).write(to: URL(fileURLWithPath: dir + "/load/l2-submissions.jsonl")) }
        if !forced.isEmpty || !airdrops.isEmpty {
            try FileManager.default.createDirectory(atPath: dir + "/rollup", withIntermediateDirectories: true)
            let writer = JSONEncoder()
            writer.outputFormatting = [.prettyPrinted, .sortedKeys]
            for record in forced { try writer.encode(record).write(to: URL(fileURLWithPath: dir + "/rollup/\(record.id).json")) }
            for record in airdrops {
                try writer.encode(record).write(to: URL(fileURLWithPath: dir + "/rollup/\(record.id).json"))
                try Data((airdropSubmissions[record.id] ?? "").utf8)
                    .write(to: URL(fileURLWithPath: dir + "/rollup/\(record.id)-submissions.jsonl"))
            }
        }
        buffers = buffers.map { _ in "" }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var faults = ""
        for event in timeline { faults += String(decoding: try encoder.encode(event), as: UTF8.self) + "\n" }
        try Data(faults.utf8).write(to: URL(fileURLWithPath: dir + "/faults.jsonl"))
        if !kills.isEmpty { try Data(kills.joined().utf8).write(to: URL(fileURLWithPath: dir + "/kills.jsonl")) }
        if let rpcLoad {
            try encoder.encode(rpcLoad.settings).write(to: URL(fileURLWithPath: dir + "/load/rpc-load.json"))
            var lines = Data()
            for record in rpcLoad.requests.sorted(by: { $0.t < $1.t }) {
                lines.append(try encoder.encode(record))
                lines.append(10)
            }
            try lines.write(to: URL(fileURLWithPath: dir + "/load/rpc-clients.jsonl"))
        }
    }
}
