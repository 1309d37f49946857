import Foundation
import Ledger
import RPC
import RPCClient
import Sodium
import Formats
import Wire

/// What `faultline up` leaves in a run folder so every later command can find the cluster.
public struct RunManifest: Codable, Sendable {
    public struct NodeEntry: Codable, Sendable {
        public var name: String
        public var role: String
        public var stake: UInt64
        public var labels: [String: String]
        public var publicKey: String
        public var host: String
        public var gossipPort: Int
        public var votePort: Int
        public var controlPort: Int
        /// Relative to the run folder.
        public var dir: String
        /// The JSON-RPC port of rpc and gateway nodes.
        public var rpcPort: Int?
        /// With `network = "netns"`: the network namespace the node runs in (`host` is its address there).
        public var namespace: String?
    }

    public var name: String
    public var chainId: String
    public var seed: UInt64
    public var topologyPath: String
    public var createdAtMs: UInt64
    public var nodes: [NodeEntry]
    public var accounts: Int
    public var load: LoadSettings
    /// With `network = "netns"`: the bridge, namespaces and veths the run made (nil: loopback).
    public var network: NetworkPlan?
    /// The layer that makes link faults when a fault does not say (nil: node).
    public var faultLayer: FaultLayer?
    /// The foreign system the nodes run (nil: Faultline's own nodes).
    public var external: ExternalSystem?
    /// The nodes are not this machine's processes (an export to Kubernetes): a node is alive when its
    /// control port answers, and process faults go through its control port or the cluster's own tools.
    public var remote: Bool?

    /// The layer a link fault uses when it names none: the run's, else the kernel's in namespaces.
    public var defaultFaultLayer: FaultLayer { faultLayer ?? (network == nil ? .node : .kernel) }

    public struct LoadSettings: Codable, Sendable {
        public var rateTxPerSecond: Int
        public var durationSeconds: Double
        /// The load goes to the sequencer as L2 transfers (absent: false).
        public var l2: Bool?
    }
}

/// Creates and reads run folders: keys, genesis, per-node configs, the run token.
public enum RunFolder {
    /// The time in folder names: `20261207T105031` (UTC).
    public static func stamp(_ date: Date = Date()) -> String {
        ISO8601DateFormatter.string(from: date, timeZone: .gmt, formatOptions: [.withYear, .withMonth, .withDay, .withTime])
    }

    public static func create(topology: Topology, runsRoot: String, seed: UInt64? = nil,
                              network: NetworkPlan? = nil) throws -> (String, RunManifest) {
        let seed = seed ?? topology.seed
        let dir = (runsRoot as NSString).appendingPathComponent("\(topology.name)-\(stamp())-\(getpid())")
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let token = Hex.encode(SecureRandom.bytes(32))
        try writeFile(dir + "/token", token + "\n", mode: 0o600)
        if let text = try? String(contentsOfFile: topology.path, encoding: .utf8) {
            try writeFile(dir + "/topology.toml", text, mode: 0o644)
        }
        // In namespaces every node is a host of its own: the same ports everywhere, addresses differ.
        let ports = network != nil
            ? Array(repeating: (gossip: HostNetwork.gossipPort, vote: HostNetwork.votePort,
                                control: HostNetwork.controlPort, rpc: HostNetwork.rpcPort), count: topology.nodes.count)
            : try PortAllocator.allocate(count: topology.nodes.count, basePort: topology.basePort, host: topology.host)
        var entries: [RunManifest.NodeEntry] = []
        for (index, node) in topology.nodes.enumerated() {
            let key = ClusterSetup.nodeKey(chainId: topology.chainId, seed: seed, name: node.keyName)
            let servesRPC = node.role == "rpc" || node.role == "gateway"
            let member = network?.member(node.name)
            entries.append(.init(name: node.name, role: node.role, stake: node.stake, labels: node.labels,
                                 publicKey: key.publicKey.hex, host: member?.address ?? topology.host,
                                 gossipPort: ports[index].gossip, votePort: topology.limits.lanes ? ports[index].vote : 0,
                                 controlPort: ports[index].control, dir: "nodes/\(node.name)",
                                 rpcPort: servesRPC ? ports[index].rpc : nil, namespace: member?.namespace))
        }
        let genesis = ClusterSetup.genesis(topology: topology, seed: seed, timeMs: UInt64(Date().timeIntervalSince1970 * 1000))
        try writeJSON(dir + "/genesis.json", genesis, mode: 0o644)
        for (index, node) in topology.nodes.enumerated() {
            let nodeDir = dir + "/" + entries[index].dir
            try fm.createDirectory(atPath: nodeDir, withIntermediateDirectories: true,
                                   attributes: [.posixPermissions: 0o700])
            if node.role == "external", let external = topology.external {
                // A foreign binary: its command line, filled in for this member, is all it needs from us.
                let members = externalMembers(entries, runDir: dir)
                try writeJSON(nodeDir + "/command.json",
                              external.argv(member: members[index], members: members, cluster: "faultline-\(seed)-\(getpid())"),
                              mode: 0o644)
                try fm.createDirectory(atPath: nodeDir + "/data", withIntermediateDirectories: true,
                                       attributes: [.posixPermissions: 0o700])
                continue
            }
            let key = ClusterSetup.nodeKey(chainId: topology.chainId, seed: seed, name: node.keyName)
            try writeFile(nodeDir + "/key", key.seed.hex + "\n", mode: 0o600)
            let config = nodeConfig(topology, index: index, entries: entries)
            try writeJSON(nodeDir + "/node.json", config, mode: 0o644)
            if node.role == "gateway" {
                try writeJSON(nodeDir + "/gateway.json", gatewayFile(topology, entries: entries, seed: seed &+ UInt64(index)),
                              mode: 0o644)
            }
        }
        let manifest = RunManifest(
            name: topology.name, chainId: topology.chainId, seed: seed, topologyPath: topology.path,
            createdAtMs: UInt64(Date().timeIntervalSince1970 * 1000), nodes: entries, accounts: topology.load.accounts,
            load: .init(rateTxPerSecond: topology.load.rateTxPerSecond, durationSeconds: topology.load.durationSeconds,
                        l2: topology.load.l2 ? true : nil),
            network: network, faultLayer: topology.faultLayer, external: topology.external)
        try writeJSON(dir + "/run.json", manifest, mode: 0o644)
        let current = (runsRoot as NSString).deletingLastPathComponent + "/current"
        try? fm.removeItem(atPath: current)
        try? fm.createSymbolicLink(atPath: current, withDestinationPath: URL(fileURLWithPath: dir).standardized.path)
        return (dir, manifest)
    }

    /// Node `index`'s config: its peers (every other node but gateways, which gossip with no one) at the
    /// entries' hosts and ports, paths relative to its folder in a run folder.
    static func nodeConfig(_ topology: Topology, index: Int, entries: [RunManifest.NodeEntry]) -> NodeConfig {
        let node = topology.nodes[index]
        let peers = node.role == "gateway" ? [] : entries.enumerated().filter {
            $0.offset != index && $0.element.role != "gateway"
        }.map {
            NodeConfig.PeerEntry(name: $0.element.name, publicKey: $0.element.publicKey, host: $0.element.host,
                                 port: $0.element.gossipPort, votePort: $0.element.votePort)
        }
        var config = NodeConfig(
            name: node.name, role: node.role, chainId: topology.chainId, forkId: node.forkId, protocolVersion: 1,
            version: node.version, versionMin: node.versionMin, handshakeChecksRules: topology.handshakeChecksRules,
            host: entries[index].host, gossipPort: entries[index].gossipPort, votePort: entries[index].votePort,
            controlPort: entries[index].controlPort,
            keyFile: "key", genesisFile: "../../genesis.json", tokenFile: "../../token", dataDir: "data",
            eventsFile: "events.jsonl", peers: peers, timing: topology.timing, limits: topology.limits)
        config.rollup = ["sequencer", "replica"].contains(node.role) ? topology.rollup?.settings : nil
        config.consensusProtocol = topology.consensusProtocol == .tendermint ? nil : topology.consensusProtocol
        config.rollup?.dispute = node.dispute
        config.rpcPort = entries[index].rpcPort
        config.byzantine = node.byzantine.isEmpty ? nil : node.byzantine
        return config
    }

    /// A run folder for a simulated run (`faultline simulate`): the topology, genesis and manifest
    /// a real run writes, with no keys, token or ports (nothing listens), and an empty folder per node
    /// for its event log. The same reports read it. `stamp` names it (the seed, so reruns replace it).
    public static func createSimulated(topology: Topology, runsRoot: String, seed: UInt64, timeMs: UInt64,
                                       stamp: String) throws -> (String, RunManifest) {
        let dir = (runsRoot as NSString).appendingPathComponent("\(topology.name)-sim-\(stamp)")
        let fm = FileManager.default
        try? fm.removeItem(atPath: dir)
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        if let text = try? String(contentsOfFile: topology.path, encoding: .utf8) {
            try writeFile(dir + "/topology.toml", text, mode: 0o644)
        }
        var entries: [RunManifest.NodeEntry] = []
        for node in topology.nodes {
            let key = ClusterSetup.nodeKey(chainId: topology.chainId, seed: seed, name: node.keyName)
            entries.append(.init(name: node.name, role: node.role, stake: node.stake, labels: node.labels,
                                 publicKey: key.publicKey.hex, host: "simulated", gossipPort: 0, votePort: 0,
                                 controlPort: 0, dir: "nodes/\(node.name)", rpcPort: nil))
            try fm.createDirectory(atPath: dir + "/nodes/" + node.name, withIntermediateDirectories: true,
                                   attributes: [.posixPermissions: 0o700])
        }
        try fm.createDirectory(atPath: dir + "/load", withIntermediateDirectories: true,
                               attributes: [.posixPermissions: 0o700])
        try writeJSON(dir + "/genesis.json", ClusterSetup.genesis(topology: topology, seed: seed, timeMs: timeMs), mode: 0o644)
        let manifest = RunManifest(
            name: topology.name, chainId: topology.chainId, seed: seed, topologyPath: topology.path,
            createdAtMs: timeMs, nodes: entries, accounts: topology.load.accounts,
            load: .init(rateTxPerSecond: topology.load.rateTxPerSecond, durationSeconds: topology.load.durationSeconds,
                        l2: nil))
        try writeJSON(dir + "/run.json", manifest, mode: 0o644)
        return (dir, manifest)
    }

    /// The template values of every node of a run with external nodes (absolute data folders).
    public static func externalMembers(_ entries: [RunManifest.NodeEntry], runDir: String) -> [ExternalSystem.Member] {
        let root = URL(fileURLWithPath: runDir).standardized.path
        return entries.enumerated().map { index, entry in
            ExternalSystem.Member(name: entry.name, index: index + 1, address: entry.host, data: root + "/" + entry.dir + "/data")
        }
    }

    /// A gateway's upstreams (every rpc node, by tier) and the topology's policy.
    static func gatewayFile(_ topology: Topology, entries: [RunManifest.NodeEntry], seed: UInt64) -> GatewayFile {
        GatewayFile(upstreams: endpoints(topology, entries: entries), settings: topology.gateway, seed: seed)
    }

    /// The rpc nodes as JSON-RPC endpoints, in the topology's order, with their tiers.
    public static func endpoints(_ topology: Topology, entries: [RunManifest.NodeEntry]) -> [Endpoint] {
        topology.rpcUpstreams.compactMap { node, tier in
            entries.first { $0.name == node.name }.flatMap { entry in
                entry.rpcPort.map { Endpoint(name: entry.name, host: entry.host, port: $0, tier: tier) }
            }
        }
    }

    public static func load(_ dir: String) throws -> RunManifest {
        let path = dir + "/run.json"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RunError("no run folder at \(dir) (missing run.json); start one with `faultline up`")
        }
        do {
            return try JSONDecoder().decode(RunManifest.self, from: data)
        } catch {
            throw RunError("\(path) is not a valid run manifest: \(error)")
        }
    }

    public static func token(_ dir: String) throws -> String {
        guard let text = try? String(contentsOfFile: dir + "/token", encoding: .utf8) else {
            throw RunError("cannot read the run token at \(dir)/token")
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `--run DIR`, else $FAULTLINE_RUN, else `.faultline/current`.
    public static func resolve(_ explicit: String?) -> String {
        if let explicit { return explicit }
        if let env = ProcessInfo.processInfo.environment["FAULTLINE_RUN"] { return env }
        let current = ".faultline/current"
        return (try? FileManager.default.destinationOfSymbolicLink(atPath: current)) ?? current
    }

    static func writeFile(_ path: String, _ text: String, mode: Int) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8),
                                             attributes: [.posixPermissions: mode]) else {
            throw RunError("cannot write \(path)")
        }
    }

    static func writeJSON<T: Encodable>(_ path: String, _ value: T, mode: Int) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeFile(path, String(decoding: try encoder.encode(value), as: UTF8.self) + "\n", mode: mode)
    }
}

/// Picks free loopback ports (or consecutive ones from a base port). Free ports come from below the
/// kernel's ephemeral range: a port drawn from that range can be taken, while its node is down for a
/// kill or restart, by any outgoing connection that gets it as its local port, and the node then
/// cannot come back on it.
enum PortAllocator {
    /// Where picked ports start; the top is the first ephemeral port.
    static let pickedPortMin = 10_000

    /// With a base port: node i has gossip, vote and control at base + 3i, + 1, + 2, and its JSON-RPC
    /// port (rpc and gateway nodes) at base + 3·count + i.
    static func allocate(count: Int, basePort: Int, host: String) throws -> [(gossip: Int, vote: Int, control: Int, rpc: Int)] {
        if basePort > 0 {
            return (0..<count).map { (basePort + 3 * $0, basePort + 3 * $0 + 1, basePort + 3 * $0 + 2, basePort + 3 * count + $0) }
        }
        var picker = Picker(range: pickedPortMin..<max(ephemeralPortMin(), pickedPortMin + 1_000))
        return try (0..<count).map { _ in
            (try picker.next(SOCK_DGRAM, on: host), try picker.next(SOCK_DGRAM, on: host),
             try picker.next(SOCK_STREAM, on: host), try picker.next(SOCK_STREAM, on: host))
        }
    }

    /// The first port of Linux's ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`), 32768 if
    /// it cannot be read.
    static func ephemeralPortMin() -> Int {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
        return text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first.flatMap { Int($0) } ?? 32_768
    }

    /// Walks the range from a random start (parallel runs start apart), keeping ports that bind now.
    struct Picker {
        let range: Range<Int>
        var offset: Int
        var used = Set<Int>()

        init(range: Range<Int>) {
            self.range = range
            self.offset = Int.random(in: 0..<range.count)
        }

        mutating func next(_ type: __socket_type, on host: String) throws -> Int {
            for _ in 0..<range.count {
                let port = range.lowerBound + offset % range.count
                offset += 1
                if !used.contains(port), try PortAllocator.canBind(port: port, type: type, host: host) {
                    used.insert(port)
                    return port
                }
            }
            throw RunError("no free port on \(host) in \(range.lowerBound)..<\(range.upperBound)")
        }
    }

    static func canBind(port: Int, type: __socket_type, host: String) throws -> Bool {
        let v6 = host.contains(":")
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(type.rawValue), 0)
        guard fd >= 0 else { throw RunError("socket(): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        func binds<Address>(_ address: Address) -> Bool {
            withUnsafePointer(to: address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<Address>.size)) }
            } == 0
        }
        if v6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = UInt16(port).bigEndian
            if inet_pton(AF_INET6, host, &address.sin6_addr) == 1 { return binds(address) }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(port).bigEndian
            if inet_pton(AF_INET, host, &address.sin_addr) == 1 { return binds(address) }
        }
        throw RunError("host \(host) is not an address")
    }
}
