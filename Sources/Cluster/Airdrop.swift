import Formats
import Foundation
import NIOCore
import NIOPosix
import Sodium
import Synchronization
import Transport
import Wire

/// An airdrop rush (Topologies/README.md, "L2 sequencer", Optimism 2022): claims from many distinct, fresh accounts,
/// signed ahead of the burst on every core, then sent to the sequencer at a rate. The client counts the sequencer's
/// answers by reason, as a wallet would show them.
public final class AirdropPool: Sendable {
    public let datagrams: [[UInt8]]
    /// Each claim's short id, as the sequencer's block events name it.
    public let ids: [String]
    /// The chain's domain: the sequencer's refusals are checked under it.
    public let domain: Domain

    init(datagrams: [[UInt8]], ids: [String], domain: Domain) {
        self.datagrams = datagrams
        self.ids = ids
        self.domain = domain
    }

    public static func make(count: Int, fee: UInt64, chainId: String, seed: UInt64) async -> AirdropPool {
        let domain = Domain(chainId: chainId)
        let workers = max(UsableCores.count, 1)
        let payload = Claim(fee: fee).encoded
        let parts = await withTaskGroup(of: (Int, [Envelope]).self) { group in
            for worker in 0..<workers {
                group.addTask {
                    var out: [Envelope] = []
                    out.reserveCapacity(count / workers + 1)
                    for index in stride(from: worker, to: count, by: workers) {
                        out.append(Envelope(kind: .l2Claim, payload: payload, domain: domain,
                                            key: ClusterSetup.airdropClaimerKey(seed: seed, index: index)))
                    }
                    return (worker, out)
                }
            }
            var all: [(Int, [Envelope])] = []
            for await part in group { all.append(part) }
            return all.sorted { $0.0 < $1.0 }.map(\.1)
        }
        // Interleave the workers' strides back into claimer order.
        let envelopes = (0..<count).map { parts[$0 % workers][$0 / workers] }
        return AirdropPool(datagrams: envelopes.map(\.bytes), ids: envelopes.map(\.id.short), domain: domain)
    }

    /// With `submissionsPath`, records each claim's send time and id (`{"t":ms,"tx":id}` lines) for the
    /// latency join. With `bundleBytesMax`, the claims due at one moment go out in bundles of up to that many
    /// bytes (the sequencer takes each claim as if it came alone) instead of one datagram per claim.
    public func send(id: String, ratePerSecond: Int, target: SocketAddress, sequencer: PublicKey, drainSeconds: Double,
                     submissionsPath: String? = nil, bundleBytesMax: Int? = nil,
                     shouldStop: @escaping @Sendable () -> Bool) async throws -> AirdropRecord {
        let submissions = submissionsPath.flatMap { fopen($0, "a") }
        defer { if let submissions { fclose(submissions) } }
        let answers = RejectCounter(sequencer: sequencer, domain: domain)
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.so_sndbuf), value: 8 << 20)
            .channelOption(.socketOption(.so_rcvbuf), value: 8 << 20)
            .channelInitializer { channel in channel.pipeline.addHandler(answers) }
            .bind(host: SenderSocket.localHost(toward: [target]), port: 0).get()
        defer { channel.close(promise: nil) }
        let startMs = UInt64(Date().timeIntervalSince1970 * 1000)
        let started = Date()
        var sent = 0
        while !shouldStop(), sent < datagrams.count {
            let due = min(Int(Double(ratePerSecond) * Date().timeIntervalSince(started)) - sent, 4_096, datagrams.count - sent)
            if due > 0 {
                let nowMs = UInt64(Date().timeIntervalSince1970 * 1000)
                let claims = datagrams[sent..<(sent + due)]
                let outgoing = bundleBytesMax.map { Bundle.pack(Array(claims), datagramBytesMax: $0) } ?? Array(claims)
                for bytes in outgoing {
                    channel.write(AddressedEnvelope(remoteAddress: target, data: ByteBuffer(bytes: bytes)), promise: nil)
                }
                if let submissions {
                    for index in sent..<(sent + due) { fputs("{\"t\":\(nowMs),\"tx\":\"\(ids[index])\"}\n", submissions) }
                }
                sent += due
                channel.flush()
            }
            // Not `try`: a burst stopped early (the schedule's end) still reports what it sent.
            try? await Task.sleep(for: .milliseconds(2))
        }
        let seconds = Date().timeIntervalSince(started)
        let drainUntil = Date().addingTimeInterval(drainSeconds)
        while !shouldStop(), Date() < drainUntil { try? await Task.sleep(for: .milliseconds(50)) }
        return AirdropRecord(id: id, count: datagrams.count, sent: sent, seconds: seconds, rejected: answers.counts,
                      startMs: startMs, endMs: UInt64(Date().timeIntervalSince1970 * 1000))
    }
}

/// Counts the transactions the sequencer's `l2_reject` answers refuse, by reason. An answer counts only if
/// it is signed by the sequencer's key under the chain's domain (one check per answer: the sequencer
/// refuses many transactions in one signed message).
final class RejectCounter: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let sequencer: PublicKey
    let domain: Domain
    private let table = Mutex<[String: Int]>([:])

    init(sequencer: PublicKey, domain: Domain) {
        self.sequencer = sequencer
        self.domain = domain
    }

    var counts: [String: Int] { table.withLock { $0 } }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data).data
        guard let bytes = buffer.readBytes(length: buffer.readableBytes),
              let envelope = try? Envelope(decoding: bytes), envelope.kind == .l2Reject, envelope.sender == sequencer,
              let reject = try? L2Reject(decoding: envelope.payload), envelope.verify(domain: domain) == .valid else { return }
        table.withLock { $0[reject.reason, default: 0] += reject.txIds.count }
    }
}
