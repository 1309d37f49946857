import Formats
import Foundation
import NIOCore
import NIOPosix
import Sodium
import Wire

/// The scenario runner's rollup steps: an airdrop burst to the sequencer and forced transactions to
/// the L1 inbox. Each writes what it sent to `rollup/<step>.json` in the run folder.
extension ScenarioRunner {
    /// What a forced-transaction step posted.
    public struct ForcedRecord: Codable, Sendable {
        public var id: String
        public var count: Int
        public var sentMs: UInt64
        /// The L2 accounts the forced claims fund (hex keys), to check they were included.
        public var claimers: [String]
    }

    static func airdropTask(dir: String, manifest: RunManifest, step: Scenario.Step, pool: AirdropPool,
                            rate: Int, asked: Scenario.LoadRate) -> Task<Void, Never> {
        Task {
            guard let sequencer = manifest.nodes.first(where: { $0.role == "sequencer" }),
                  let address = try? SocketAddress(ipAddress: sequencer.host, port: sequencer.gossipPort),
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
        let domain = Domain(chainId: manifest.chainId)
        let targets = try manifest.nodes.filter { $0.role == "validator" }.map {
            try SocketAddress(ipAddress: $0.host, port: $0.gossipPort)
        }
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        defer { channel.close(promise: nil) }
        let sentMs = FaultEngine.now()
        var claimers: [String] = []
        for index in 0..<count {
            let claimer = SigningKey(label: "\(manifest.chainId)/\(step.id)/forced-claimer/\(index)")
            claimers.append(claimer.publicKey.hex)
            let inner = Envelope(kind: .l2Claim, payload: Claim(fee: 0).encoded, domain: domain, key: claimer)
            let sender = ClusterSetup.forcedSenderKey(chainId: manifest.chainId, seed: manifest.seed,
                                                   index: index % ClusterSetup.forcedSendersCount)
            // Nonces from the clock: a later step (or run) always uses higher ones.
            let nonce = sentMs * 1_000 + UInt64(index / ClusterSetup.forcedSendersCount)
            let forced = ForcedTx(fee: 10, nonce: nonce, l2Tx: inner.bytes)
            let envelope = Envelope(kind: .forcedTx, payload: forced.encoded, domain: domain, key: sender)
            for target in targets {
                channel.write(AddressedEnvelope(remoteAddress: target, data: ByteBuffer(bytes: envelope.bytes)), promise: nil)
            }
        }
        channel.flush()
        try FaultEngine.recordWindow(dir, id: step.id, action: "forced_tx", description: "\(count) forced transaction(s) to the L1 inbox",
                                     start: true, instant: true)
        try writeRecord(dir: dir, id: step.id, ForcedRecord(id: step.id, count: count, sentMs: sentMs, claimers: claimers))
    }

    static func writeRecord(dir: String, id: String, _ value: some Encodable) throws {
        try FileManager.default.createDirectory(atPath: dir + "/rollup", withIntermediateDirectories: true)
        try RunFolder.writeJSON(dir + "/rollup/\(id).json", value, mode: 0o644)
    }
}
