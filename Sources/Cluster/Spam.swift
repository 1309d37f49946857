import Foundation
import NIOCore
import NIOPosix
import Sodium
import Wire

/// The machine's verification capacity, measured (not assumed) with the same libsodium call nodes use.
public struct VerificationCapacity: Codable, Sendable, Equatable {
    public var perCorePerSecond: Double
    public var cores: Int
    public var validators: Int

    /// What one validator can verify when all validators share this machine's cores.
    public var perNodeBound: Double { perCorePerSecond * Double(cores) / Double(max(validators, 1)) }

    public static func measure(validators: Int, seconds: Double = 0.3) -> VerificationCapacity {
        let key = SigningKey(label: "capacity-probe")
        let envelope = Envelope(kind: .transfer,
                                payload: Transfer(to: key.publicKey, amount: 1, fee: 1, nonce: 1).encoded,
                                domain: Domain(chainId: "capacity-probe"), key: key)
        let domain = Domain(chainId: "capacity-probe")
        var count = 0
        let start = Date()
        while Date().timeIntervalSince(start) < seconds {
            for _ in 0..<256 where envelope.verify(domain: domain) == .valid { count += 1 }
        }
        return VerificationCapacity(perCorePerSecond: Double(count) / Date().timeIntervalSince(start),
                                    cores: ProcessInfo.processInfo.activeProcessorCount, validators: validators)
    }
}

/// Transfers signed ahead of time by unstaked, unfunded senders: each costs a validator one signature
/// verification and is then refused at admission (the sender cannot pay), so spam loads the
/// verification path without filling blocks.
public final class SpamPool: Sendable {
    public let datagrams: [[UInt8]]
    public static let sendersCount = 1_024

    init(datagrams: [[UInt8]]) { self.datagrams = datagrams }

    /// Signs `count` distinct transfers on every core.
    public static func make(count: Int, chainId: String, seed: UInt64) async -> SpamPool {
        let domain = Domain(chainId: chainId)
        let workers = max(ProcessInfo.processInfo.activeProcessorCount, 1)
        let chunks = await withTaskGroup(of: (Int, [[UInt8]]).self) { group in
            for worker in 0..<workers {
                group.addTask {
                    var out: [[UInt8]] = []
                    let senders = (0..<(sendersCount / workers)).map {
                        SigningKey(label: "spam/\(seed)/\(worker)/\($0)")
                    }
                    let receiver = SigningKey(label: "spam/receiver").publicKey
                    var index = worker
                    while index < count {
                        let sender = senders[index % senders.count]
                        let transfer = Transfer(to: receiver, amount: 1, fee: 1, nonce: UInt64(index))
                        out.append(Envelope(kind: .transfer, payload: transfer.encoded, domain: domain, key: sender).bytes)
                        index += workers
                    }
                    return (worker, out)
                }
            }
            var all: [(Int, [[UInt8]])] = []
            for await chunk in group { all.append(chunk) }
            return all.sorted { $0.0 < $1.0 }.map(\.1)
        }
        return SpamPool(datagrams: chunks.flatMap { $0 })
    }

    public struct Stats: Codable, Sendable {
        public var sent: Int
        public var seconds: Double
        public var achievedPerSecond: Double { seconds > 0 ? Double(sent) / seconds : 0 }
    }

    /// Sends every target `ratePerTarget` datagrams a second for `seconds`, from the pool, in order.
    public func blast(ratePerTarget: Int, seconds: Double, targets: [SocketAddress],
                      shouldStop: @Sendable () -> Bool = { false }) async throws -> Stats {
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.so_sndbuf), value: 8 << 20)
            .bind(host: "127.0.0.1", port: 0).get()
        defer { channel.close(promise: nil) }
        let started = Date()
        var sent = 0
        var next = 0
        let total = ratePerTarget * targets.count
        while !shouldStop() {
            let elapsed = Date().timeIntervalSince(started)
            if elapsed >= seconds || next >= datagrams.count { break }
            let due = min(Int(Double(total) * elapsed) - sent, 4_096, datagrams.count - next)
            if due > 0 {
                for _ in 0..<due {
                    let target = targets[sent % targets.count]
                    channel.write(AddressedEnvelope(remoteAddress: target, data: ByteBuffer(bytes: datagrams[next])),
                                  promise: nil)
                    next += 1
                    sent += 1
                }
                channel.flush()
            }
            try await Task.sleep(for: .milliseconds(2))
        }
        return Stats(sent: sent, seconds: Date().timeIntervalSince(started))
    }
}
