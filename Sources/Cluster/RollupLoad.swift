import Formats
import Foundation
import NIOCore
import NIOPosix
import Sodium
import Wire

/// The scenario runner's rollup steps: an airdrop burst to the sequencer and forced transactions to
/// the L1 inbox. Each writes what it sent to `rollup/<step>.json` in the run folder.
extension ScenarioRunner {
    static func airdropTask(dir: String, manifest: RunManifest, step: Scenario.Step, pool: AirdropPool,
                            rate: Int, asked: Scenario.LoadRate) -> Task<Void, Never> {
        Task {
            guard let sequencer = manifest.nodes.first(where: { $0.role == "sequencer" }),
                  let address = try? SocketAddress.node(sequencer.host, port: sequencer.gossipPort),
                  let keyBytes = Hex.decode(sequencer.publicKey), let key = PublicKey(keyBytes) else { return }
            let relative = if case .timesCapacity = asked { " (\(asked))" } else { "" }
            let description = "airdrop: \(pool.datagrams.count) claims at \(rate)/s\(relative)"
            try? FaultEngine.recordWindow(dir, id: step.id, action: "airdrop", description: description, start: true)
            try? FileManager.default.createDirectory(atPath: dir + "/rollup", withIntermediateDirectories: true)
            let record = try? await pool.send(id: step.id, ratePerSecond: rate, target: address, sequencer: key,
                                              drainSeconds: 1, submissionsPath: dir + "/rollup/\(step.id)-submissions.jsonl",
                                              shouldStop: { Task.isCancelled })
            try? FaultEngine.recordWindow(dir, id: step.id, action: "airdrop", description: description, start: false)
            if let record { try? writeRecord(dir: dir, id: step.id, record) }
        }
    }

    /// Posts `count` forced claims (each from a fresh L2 account) to every validator as L1 transactions.
    static func postForced(dir: String, manifest: RunManifest, step: Scenario.Step, count: Int) async throws {
        let targets = try manifest.nodes.filter { $0.role == "validator" }.map {
            try SocketAddress.node($0.host, port: $0.gossipPort)
        }
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: SenderSocket.localHost(toward: targets), port: 0).get()
        defer { channel.close(promise: nil) }
        let claims = ForcedClaims(chainId: manifest.chainId, seed: manifest.seed, stepId: step.id, count: count,
                                  sentMs: FaultEngine.now())
        for envelope in claims.envelopes {
            for target in targets {
                channel.write(AddressedEnvelope(remoteAddress: target, data: ByteBuffer(bytes: envelope.bytes)), promise: nil)
            }
        }
        channel.flush()
        try FaultEngine.recordWindow(dir, id: step.id, action: "forced_tx", description: "\(count) forced transaction(s) to the L1 inbox",
                                     start: true, instant: true)
        try writeRecord(dir: dir, id: step.id, claims.record)
    }

    static func writeRecord(dir: String, id: String, _ value: some Encodable) throws {
        try FileManager.default.createDirectory(atPath: dir + "/rollup", withIntermediateDirectories: true)
        try RunFolder.writeJSON(dir + "/rollup/\(id).json", value, mode: 0o644)
    }
}
