import NIOCore
import Transport
#if canImport(Glibc)
import Glibc
#endif

/// A port a node could not bind, named: which socket, where, and why.
public struct BindError: Error, CustomStringConvertible {
    public let what: String
    public let host: String
    public let port: Int
    public let reason: String

    public var description: String { "cannot bind \(what) \(host):\(port): \(reason)" }
}

/// Binding with a short, bounded wait while the port is in use: a restarted node's port can still be
/// held for a moment by the process before it, or by a connection that drew it as its local port.
/// Every listening socket a node opens (gossip, vote lane, control, JSON-RPC, gateway) goes through here.
enum PortBinding {
    static let attemptsMax = 25
    static let pauseMs = 200

    static func bind<T>(_ what: String, host: String, port: Int, attempts: Int = attemptsMax,
                        pauseMs: Int = pauseMs, _ open: () async throws -> T) async throws -> T {
        precondition(attempts >= 1, "bind \(what): attempts \(attempts) must be at least 1")
        for attempt in 1...attempts {
            do {
                return try await open()
            } catch let error as IOError where error.errnoCode == EADDRINUSE && attempt < attempts {
                try await Task.sleep(for: .milliseconds(pauseMs))
            } catch let error as IOError {
                let reason = String(cString: strerror(error.errnoCode))
                let waited = error.errnoCode == EADDRINUSE ? " (still, after \(attempts) tries \(pauseMs) ms apart)" : ""
                throw BindError(what: what, host: host, port: port, reason: reason + waited)
            } catch {
                throw BindError(what: what, host: host, port: port, reason: "\(error)")
            }
        }
        preconditionFailure("bind \(what): the loop returns or throws on its last attempt")
    }
}

/// The UDP sockets a node reads: gossip, and the vote lane's own port when lanes are on. A bound
/// `NIOAsyncChannel` must be closed through `executeThenClose` (dropping it traps the process), so a
/// failure to bind the second closes the first before the error is thrown.
struct NodeSockets {
    let gossip: UDPEndpoint.Channel
    let vote: UDPEndpoint.Channel?

    static func bind(host: String, gossipPort: Int, votePort: Int?, datagramBytesMax: Int,
                     attempts: Int = PortBinding.attemptsMax, pauseMs: Int = PortBinding.pauseMs) async throws -> NodeSockets {
        let gossip = try await PortBinding.bind("gossip port (udp)", host: host, port: gossipPort, attempts: attempts,
                                                pauseMs: pauseMs) {
            try await UDPEndpoint.bind(host: host, port: gossipPort, datagramBytesMax: datagramBytesMax)
        }
        guard let votePort else { return NodeSockets(gossip: gossip, vote: nil) }
        do {
            let vote = try await PortBinding.bind("vote port (udp)", host: host, port: votePort, attempts: attempts,
                                                  pauseMs: pauseMs) {
                try await UDPEndpoint.bind(host: host, port: votePort, datagramBytesMax: datagramBytesMax)
            }
            return NodeSockets(gossip: gossip, vote: vote)
        } catch {
            await close(gossip)
            throw error
        }
    }

    /// Finishes the writer and closes the socket of a channel that will not be read.
    static func close(_ channel: UDPEndpoint.Channel) async {
        try? await channel.executeThenClose { _, _ in }
    }
}
