import Formats
import Foundation
import NIOCore
import NIOPosix
import Sodium
import Wire

/// Sends signed transfers at a steady rate to the validators over UDP, from its own socket, and
/// records each submission (`{"t":ms,"tx":id}`) so latency can be joined with the nodes' commits.
/// With `l2`, sends L2 transfers to the sequencer instead (recorded in `l2-submissions.jsonl`).
public final class LoadGenerator: @unchecked Sendable {
    public struct Stats: Sendable {
        public var sent: Int
        public var seconds: Double
    }

    let domain: Domain
    let accounts: [SigningKey]
    let targets: [SocketAddress]
    let submissions: UnsafeMutablePointer<FILE>?
    let kind: MessageKind
    private var nonces: [UInt64]

    public init(manifest: RunManifest, runDir: String, l2: Bool = false) throws {
        domain = Domain(chainId: manifest.chainId)
        accounts = (0..<manifest.accounts).map {
            ClusterSetup.accountKey(chainId: manifest.chainId, seed: manifest.seed, index: $0)
        }
        kind = l2 ? .l2Transfer : .transfer
        targets = try manifest.nodes.filter { $0.role == (l2 ? "sequencer" : "validator") }.map {
            try SocketAddress.node($0.host, port: $0.gossipPort)
        }
        guard !targets.isEmpty else { throw RunError(l2 ? "L2 load needs a sequencer node" : "load needs validators") }
        try FileManager.default.createDirectory(atPath: runDir + "/load", withIntermediateDirectories: true)
        submissions = fopen(runDir + (l2 ? "/load/l2-submissions.jsonl" : "/load/submissions.jsonl"), "a")
        // Nonces must only increase; starting from the clock keeps a second load run valid.
        let start = UInt64(Date().timeIntervalSince1970 * 1000) * 1_000
        nonces = Array(repeating: start, count: accounts.count)
    }

    deinit { if let submissions { fclose(submissions) } }

    /// Sends for `seconds` at `rate` per second (or until `shouldStop` says so), calling `progress` ~4×/s.
    public func run(rate: Int, seconds: Double, shouldStop: @Sendable () -> Bool = { false },
                    progress: (Stats) async -> Void = { _ in }) async throws -> Stats {
        let channel = try await SenderSocket.bind(sendBufferBytes: 4 << 20, toward: targets)
        defer { channel.close(promise: nil) }
        let started = Date()
        var sent = 0
        var lastProgress = started
        var account = 0
        while true {
            let elapsed = Date().timeIntervalSince(started)
            if shouldStop() { break }
            // The last pass tops up to exactly rate × seconds.
            let target = elapsed >= seconds ? Int(Double(rate) * seconds) : Int(Double(rate) * elapsed)
            if elapsed >= seconds && sent >= target { break }
            let due = min(target - sent, max(rate / 20, 1))
            if due > 0 {
                let nowMs = UInt64(Date().timeIntervalSince1970 * 1000)
                for _ in 0..<due {
                    let index = account % accounts.count
                    account += 1
                    let transfer = Transfer(to: accounts[(index + 1) % accounts.count].publicKey, amount: 1, fee: 1,
                                            nonce: nonces[index])
                    nonces[index] += 1
                    let envelope = Envelope(kind: kind, payload: transfer.encoded, domain: domain,
                                            key: accounts[index])
                    let target = targets[sent % targets.count]
                    channel.write(AddressedEnvelope(remoteAddress: target, data: ByteBuffer(bytes: envelope.bytes)),
                                  promise: nil)
                    if let submissions {
                        fputs("{\"t\":\(nowMs),\"tx\":\"\(envelope.id.short)\"}\n", submissions)
                    }
                    sent += 1
                }
                channel.flush()
            }
            if Date().timeIntervalSince(lastProgress) >= 0.25 {
                lastProgress = Date()
                await progress(Stats(sent: sent, seconds: elapsed))
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        if let submissions { fflush(submissions) }
        return Stats(sent: sent, seconds: Date().timeIntervalSince(started))
    }
}
