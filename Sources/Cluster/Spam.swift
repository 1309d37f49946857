import Foundation
import Synchronization
import NIOCore
import NIOPosix
import Formats
import Sodium
import Transport
import Wire

extension VerificationCapacity {
    /// Measures this machine now (see the type's documentation in `Formats`).
    public static func measure(validators: Int, seconds: Double = 0.6) -> VerificationCapacity {
        let domain = Domain(chainId: "capacity-probe")
        let receiver = SigningKey(label: "capacity-probe/receiver").publicKey
        let samples = (0..<256).map { index in
            Envelope(kind: .transfer, payload: Transfer(to: receiver, amount: 1, fee: 1, nonce: UInt64(index)).encoded,
                     domain: domain, key: SigningKey(label: "capacity-probe/\(index % 16)")).bytes
        }
        let verify = VerificationRate.measureWithShare(seconds: seconds / 3)
        let ingress = try? LoopbackProbe().measure(samples: samples, seconds: seconds * 2 / 3) { bytes in
            guard let envelope = try? Envelope(decoding: bytes, payloadBytesMax: 2_048),
                  (try? Message(kind: envelope.kind, payload: envelope.payload)) != nil else { return false }
            _ = envelope.id
            return envelope.verify(domain: domain) == .valid
        }
        return VerificationCapacity(verifyPerCorePerSecond: verify.perSecond / verify.cpuShare,
                                    ingressPerCorePerSecond: ingress ?? verify.perSecond / verify.cpuShare,
                                    cores: UsableCores.count, validators: validators, cpuShare: verify.cpuShare)
    }
}

/// Two blocking UDP sockets on 127.0.0.1 and two threads: one sends, the other receives and does the
/// validator's work on each datagram. The figure is datagrams handled per second of this process's
/// CPU time (both threads, user and kernel), so the spammer's sending, the kernel's loopback delivery
/// and the wake-ups between them are all charged, as they are when the cluster runs.
final class LoopbackProbe: @unchecked Sendable {
    private let sender: Int32
    private let receiver: Int32
    private var address = sockaddr_in()
    /// Datagrams the sender may have in flight; keeps the receive buffer from overflowing.
    private static let creditsMax = 64

    struct SocketError: Error, CustomStringConvertible {
        var description: String
    }

    init() throws {
        sender = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        receiver = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard sender >= 0, receiver >= 0 else { throw SocketError(description: "capacity probe: socket() failed") }
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        let ready = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                bind(receiver, address, length) == 0 && getsockname(receiver, address, &length) == 0
            }
        } && setsockopt(receiver, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size)) == 0
        guard ready else {
            close(sender)
            close(receiver)
            throw SocketError(description: "capacity probe: cannot bind 127.0.0.1")
        }
    }

    deinit {
        close(sender)
        close(receiver)
    }

    /// Datagrams for which `work` returned true, per second of process CPU time.
    func measure(samples: [[UInt8]], seconds: Double, work: ([UInt8]) -> Bool) throws -> Double {
        // Starts at 0 and is topped up: libdispatch traps if a semaphore dies below its initial value.
        let credits = DispatchSemaphore(value: 0)
        for _ in 0..<Self.creditsMax { credits.signal() }
        let stop = Atomic<Bool>(false)
        let done = DispatchSemaphore(value: 0)
        let target = address
        let sender = self.sender
        Thread.detachNewThread {
            var target = target
            var index = 0
            while !stop.load(ordering: .relaxed) {
                guard credits.wait(timeout: .now() + .milliseconds(200)) == .success else { continue }
                let bytes = samples[index % samples.count]
                index += 1
                _ = withUnsafePointer(to: &target) { pointer in
                    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                        sendto(sender, bytes, bytes.count, 0, address, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
            done.signal()
        }
        var buffer = [UInt8](repeating: 0, count: 2_048)
        var handled = 0
        let cpuStart = Self.processCPUSeconds()
        let wallStart = Date()
        while Date().timeIntervalSince(wallStart) < seconds {
            let received = buffer.withUnsafeMutableBytes { recv(receiver, $0.baseAddress, $0.count, 0) }
            guard received > 0 else { throw SocketError(description: "capacity probe: nothing received over loopback") }
            if work(Array(buffer[0..<received])) { handled += 1 }
            credits.signal()
        }
        let cpu = Self.processCPUSeconds() - cpuStart
        stop.store(true, ordering: .relaxed)
        credits.signal()
        done.wait()
        return cpu > 0 ? Double(handled) / cpu : 0
    }

    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1_000_000
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
        let workers = max(UsableCores.count, 1)
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
        let channel = try await SenderSocket.bind(toward: targets)
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
            // Not `try`: spam stopped early (the schedule's end) still reports what it sent.
            try? await Task.sleep(for: .milliseconds(2))
        }
        return Stats(sent: sent, seconds: Date().timeIntervalSince(started))
    }
}
