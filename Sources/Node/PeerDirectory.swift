import Formats
import NIOCore
import NIOPosix
import Synchronization

/// Where each peer is. A config names a peer by IP address (loopback and namespaced runs) or by DNS
/// name (Kubernetes: `validator-1.validator`, a headless Service's record for one pod). Names are
/// looked up at start, again every `retryMs` while they do not resolve (a pod's record appears only
/// once the pod runs), whenever the peer says hello (a restarted pod comes back with a new address),
/// and every `refreshMs` as a backstop. The edges read the set of peer addresses (`contains`) from
/// their own tasks; the main loop gets each change as an input.
final class PeerDirectory: Sendable {
    struct Named: Sendable, Equatable {
        var name: String
        var host: String
        var port: Int
        var votePort: Int
    }

    static let retryMs: UInt64 = 500
    static let refreshMs: UInt64 = 30_000

    private struct State {
        /// The named peers' addresses as they resolved.
        var addresses: Set<SocketAddress> = []
        var resolved: [String: SocketAddress] = [:]
        var lastTriedMs: [String: UInt64] = [:]
        var requested: Set<String> = []
    }

    /// Peers given by name, in config order (empty when every peer is an IP address).
    let named: [Named]
    /// Peers given as IP addresses: fixed, read without the lock (every datagram asks).
    private let literal: Set<SocketAddress>
    private let state: Mutex<State>

    /// `literal`: the addresses of peers given as IP addresses (fixed for the process's life).
    init(named: [Named], literal: [SocketAddress]) {
        self.named = named
        self.literal = Set(literal)
        self.state = Mutex(State())
    }

    /// Whether a datagram from this address came from a peer (a validator forwarding, not a client).
    func contains(_ address: SocketAddress) -> Bool {
        if literal.contains(address) { return true }
        return !named.isEmpty && state.withLock { $0.addresses.contains(address) }
    }

    /// Look this peer up again soon (it said hello: it may have restarted elsewhere). Bounded: one
    /// entry per named peer.
    func request(_ name: String) {
        guard named.contains(where: { $0.name == name }) else { return }
        _ = state.withLock { $0.requested.insert(name) }
    }

    /// The named peers to look up now.
    func due(nowMs: UInt64) -> [Named] {
        state.withLock { state in
            named.filter { peer in
                let last = state.lastTriedMs[peer.name]
                let wait = state.resolved[peer.name] == nil ? Self.retryMs
                    : state.requested.contains(peer.name) ? Self.retryMs : Self.refreshMs
                return last.map { nowMs >= $0 + wait } ?? true
            }
        }
    }

    /// A lookup's result; true when the peer's address changed (the main loop must hear of it).
    func record(_ peer: Named, address: SocketAddress?, nowMs: UInt64) -> Bool {
        state.withLock { state in
            state.lastTriedMs[peer.name] = nowMs
            state.requested.remove(peer.name)
            guard let address, state.resolved[peer.name] != address else { return false }
            if let old = state.resolved[peer.name] {
                state.addresses.remove(old)
                if peer.votePort > 0, let oldVote = try? old.withPort(peer.votePort) { state.addresses.remove(oldVote) }
            }
            state.resolved[peer.name] = address
            state.addresses.insert(address)
            if peer.votePort > 0, let vote = try? address.withPort(peer.votePort) { state.addresses.insert(vote) }
            return true
        }
    }

    /// A blocking lookup (getaddrinfo), IPv4 first; nil when the name does not resolve yet.
    static func lookup(_ peer: Named) -> SocketAddress? {
        try? SocketAddress.makeAddressResolvingHost(peer.host, port: peer.port)
    }

    /// The directory for a config: literal addresses as they are, names checked (RFC 1123 labels).
    static func make(_ peers: [NodeConfig.PeerEntry]) throws -> PeerDirectory {
        var named: [Named] = []
        var literal: [SocketAddress] = []
        for entry in peers {
            if let address = try? SocketAddress(ipAddress: entry.host, port: entry.port) {
                literal.append(address)
                if entry.votePort > 0, let vote = try? SocketAddress(ipAddress: entry.host, port: entry.votePort) {
                    literal.append(vote)
                }
            } else if let problem = HostName.problem(entry.host) {
                throw ConfigError(field: "peers.\(entry.name).host", problem: problem)
            } else {
                named.append(Named(name: entry.name, host: entry.host, port: entry.port, votePort: entry.votePort))
            }
        }
        return PeerDirectory(named: named, literal: literal)
    }
}

extension SocketAddress {
    /// The same host on another port.
    func withPort(_ port: Int) throws -> SocketAddress {
        guard let ip = ipAddress else { throw SocketAddressError.unsupported }
        return try SocketAddress(ipAddress: ip, port: port)
    }
}
