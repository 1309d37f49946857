import Formats
import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// The machine's loopback UDP limit for `faultline bench`: datagrams per second one process delivers
/// to another through SwiftNIO (batched writes and vector reads, as the nodes use), counted at the
/// receiver. The receiver is this process; the sender is a child process (`faultline bench udp-send`).
public enum UDPLimit {
    /// The size of a signed transfer datagram, roughly: what the nodes mostly carry under load.
    public static let datagramBytes = 180

    public struct Record: Codable, Sendable {
        public var datagramsPerSecond: Double
        public var datagramBytes: Int
        public var seconds: Double
        public var received: Int
    }

    /// Starts `executable udp-send --port P --seconds S` and counts what arrives while it sends.
    public static func measure(executable: String, arguments: [String] = ["bench", "udp-send"],
                               seconds: Double) async throws -> Record {
        let counter = ReceiveCounter()
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.so_rcvbuf), value: 8 << 20)
            .channelOption(.datagramVectorReadMessageCount, value: 64)
            .channelInitializer { $0.pipeline.addHandler(counter) }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { channel.close(promise: nil) }
        guard let port = channel.localAddress?.port else { throw RunError("udp limit: the receiving socket has no port") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments + ["--port", "\(port)", "--seconds", "\(seconds)", "--bytes", "\(datagramBytes)"]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // The rate is taken between the first datagram and the sender's exit, so start-up is not counted.
        let deadline = Date().addingTimeInterval(seconds + 10)
        while counter.count == 0, process.isRunning, Date() < deadline { try await Task.sleep(for: .milliseconds(5)) }
        let started = Date()
        let countAtStart = counter.count
        while process.isRunning, Date() < deadline { try await Task.sleep(for: .milliseconds(10)) }
        if process.isRunning { process.terminate() }
        try await Task.sleep(for: .milliseconds(50)) // what is still in the socket buffer
        let elapsed = Date().timeIntervalSince(started)
        guard process.terminationStatus == 0 else {
            throw RunError("udp limit: the sending process exited with status \(process.terminationStatus)")
        }
        let received = counter.count - countAtStart
        return Record(datagramsPerSecond: elapsed > 0 ? Double(received) / elapsed : 0, datagramBytes: datagramBytes,
                      seconds: elapsed, received: received)
    }

    /// The child's side: sends `bytes`-byte datagrams to 127.0.0.1:`port` as fast as the socket takes
    /// them for `seconds`, in batches of 64 with one flush each, waiting for each batch to be written.
    public static func send(port: Int, seconds: Double, bytes: Int) async throws -> Int {
        let target = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        let channel = try await SenderSocket.bind(toward: [target])
        defer { channel.close(promise: nil) }
        let payload = ByteBuffer(repeating: 0xA5, count: bytes)
        let started = Date()
        var sent = 0
        while Date().timeIntervalSince(started) < seconds {
            var last: EventLoopFuture<Void>?
            for _ in 0..<64 {
                last = channel.write(AddressedEnvelope(remoteAddress: target, data: payload))
            }
            channel.flush()
            // A full socket buffer fails the write (ENOBUFS); that is the limit, not an error.
            try? await last?.get()
            sent += 64
        }
        return sent
    }

    final class ReceiveCounter: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        private let received = Atomic<Int>(0)

        var count: Int { received.load(ordering: .relaxed) }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            received.add(1, ordering: .relaxed)
        }
    }
}
