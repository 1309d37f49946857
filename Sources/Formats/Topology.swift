import Consensus
import FoundationEssentials
import Ledger
import Rollup
import RPC
import Wire

/// A cluster description read from a TOML file in `Topologies/`.
public struct Topology: Sendable, Equatable {
    public struct Node: Sendable, Equatable {
        public var name: String
        public var role: String
        public var stake: UInt64
        public var labels: [String: String]
        /// The newest and oldest execution rules the node's binary implements, and its fork id.
        public var version: UInt16 = 1
        public var versionMin: UInt16 = 1
        public var forkId: UInt32 = 0
        /// How a sequencer or replica behaves in fraud-proof disputes.
        public var dispute = DisputeBehaviour()
        /// An rpc node's priority tier as an upstream (nil: the first rpc node 0, the others 1).
        public var rpcTier: Int?
        /// Misbehaviour from the start (validators only).
        public var byzantine: [ByzantineMode] = []
        /// Twins: this node runs with another validator's key (it is not in genesis itself), so that
        /// validator can be in two places at once and tell each side of a partition something else.
        public var twinOf: String?

        /// The node whose key this node signs with.
        public var keyName: String { twinOf ?? name }
    }

    public struct Load: Sendable, Equatable {
        public var rateTxPerSecond: Int
        public var accounts: Int
        public var durationSeconds: Double
        /// In a scenario, seconds after the start before the load begins.
        public var startSeconds: Double = 0
        /// `layer = "l2"`: L2 transfers to the sequencer instead of L1 transfers to the validators.
        public var l2 = false
    }

    public var path: String
    public var name: String
    public var chainId: String
    public var seed: UInt64
    public var host: String
    public var basePort: Int
    public var timing: NodeConfig.Timing
    public var limits: NodeConfig.Limits
    public var load: Load
    public var nodes: [Node]
    /// `[[upgrade]]`: coordinated rule switches written into genesis.
    public var upgrades: [UpgradePlan] = []
    /// `[cluster] handshake = "rules"`: peers whose binary applies other rules are refused too.
    public var handshakeChecksRules = false
    /// `[cluster] protocol`: the consensus protocol every validator runs.
    public var consensusProtocol: BFT.ProtocolName = .tendermint
    /// `[rollup]`, present when a node has role = "sequencer".
    public var rollup: RollupTopology?
    /// `[gateway]`: the failover policy of gateway nodes and of the `library` rpc client.
    public var gateway = Failover.Settings()
    /// `[rpc_load]`: JSON-RPC load through client policies side by side.
    public var rpcLoad: RPCLoadSpec?
    /// `[cluster] network`: every node on loopback (the default), or each in a network namespace of its own.
    public var network: NetworkMode = .loopback
    /// `[cluster] fault_layer`: which layer makes link faults (nil: the kernel with netns, else the node).
    public var faultLayer: FaultLayer?
    /// `[external]`: the foreign system its `role = "external"` nodes run (etcd, …); nil: Faultline's own nodes.
    public var external: ExternalSystem?

    public static let roles = ["validator", "sequencer", "replica", "rpc", "gateway", "external"]
    public static let nodesMax = 200

    /// The validators in genesis (twins sign with one of these keys and are not counted again).
    public var validators: [Node] { nodes.filter { $0.role == "validator" && $0.twinOf == nil } }
}

/// A mistake in a file the user wrote: names the file, the field (or line) and what was expected.
public struct TopologyError: Error, Equatable, CustomStringConvertible {
    public var file: String
    public var field: String
    public var problem: String

    public init(file: String, field: String, problem: String) {
        self.file = file
        self.field = field
        self.problem = problem
    }

    public var description: String { "\(file): \(field): \(problem)" }
}

extension Topology {
    public static func load(path: String) throws(TopologyError) -> Topology {
        try parse(try text(of: path), path: path)
    }

    /// The UTF-8 text of a topology or scenario file.
    static func text(of path: String) throws(TopologyError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TopologyError(file: path, field: "(file)", problem: "cannot be read (missing or not a file)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw TopologyError(file: path, field: "(file)", problem: "is not UTF-8 text")
        }
        return text
    }

    public static func parse(_ text: String, path: String) throws(TopologyError) -> Topology {
        let reader = TableReader(file: path, prefix: "", table: try TableReader.document(text, path: path))
        try reader.allowOnly(["cluster", "timing", "limits", "load", "node", "upgrade", "rollup", "scenario", "step",
                              "expect", "gateway", "rpc_load", "external"])
        let cluster = try reader.table("cluster", required: true)!
        try cluster.allowOnly(["name", "chain_id", "seed", "host", "base_port", "handshake", "validators", "network",
                               "fault_layer", "protocol"])
        let protocolText = try cluster.string("protocol") ?? BFT.ProtocolName.tendermint.rawValue
        guard let consensusProtocol = BFT.ProtocolName(rawValue: protocolText) else {
            throw cluster.fail("protocol", "expected one of \(BFT.ProtocolName.names), got '\(protocolText)'")
        }
        let handshake = try cluster.string("handshake") ?? "fork"
        guard ["fork", "rules"].contains(handshake) else {
            throw cluster.fail("handshake", "expected \"fork\" (fork id and protocol version) or \"rules\" "
                               + "(also the execution rules), got '\(handshake)'")
        }
        let name = try cluster.string("name") ?? Topology.fileStem(path)
        let chainId = try cluster.string("chain_id") ?? "faultline-\(name)"
        let seed = try cluster.uint("seed", range: 0...UInt64(Int64.max)) ?? 1
        let host = try cluster.string("host") ?? "127.0.0.1"
        guard host.hasPrefix("127.") || host == "::1" else {
            throw TopologyError(file: path, field: "cluster.host", problem: "must be a loopback address, got '\(host)'")
        }
        let basePort = Int(try cluster.uint("base_port", range: 0...65_000) ?? 0)
        let networkName = try cluster.string("network") ?? NetworkMode.loopback.rawValue
        guard let network = NetworkMode(rawValue: networkName) else {
            throw cluster.fail("network", "expected \"loopback\" (every node on this host's loopback) or \"netns\" "
                               + "(each node in a network namespace of its own; needs root), got '\(networkName)'")
        }
        var faultLayer: FaultLayer?
        if let layerName = try cluster.string("fault_layer") {
            guard let layer = FaultLayer(rawValue: layerName) else {
                throw cluster.fail("fault_layer", "expected \"node\" (the nodes' own UDP layer) or \"kernel\" "
                                   + "(nftables and tc in each node's namespace), got '\(layerName)'")
            }
            guard layer == .node || network == .netns else {
                throw cluster.fail("fault_layer", "\"kernel\" needs network = \"netns\" (kernel rules live in each node's "
                                   + "own namespace)")
            }
            faultLayer = layer
        }

        var timing = NodeConfig.Timing()
        if let table = try reader.table("timing", required: false) {
            try table.allowOnly(["timeout_propose_ms", "timeout_propose_delta_ms", "timeout_prevote_ms",
                                 "timeout_prevote_delta_ms", "timeout_precommit_ms", "timeout_precommit_delta_ms",
                                 "timeout_commit_ms"])
            let range: ClosedRange<UInt64> = 0...600_000
            timing.timeoutProposeMs = try table.uint("timeout_propose_ms", range: 1...600_000) ?? timing.timeoutProposeMs
            timing.timeoutProposeDeltaMs = try table.uint("timeout_propose_delta_ms", range: range) ?? timing.timeoutProposeDeltaMs
            timing.timeoutPrevoteMs = try table.uint("timeout_prevote_ms", range: 1...600_000) ?? timing.timeoutPrevoteMs
            timing.timeoutPrevoteDeltaMs = try table.uint("timeout_prevote_delta_ms", range: range) ?? timing.timeoutPrevoteDeltaMs
            timing.timeoutPrecommitMs = try table.uint("timeout_precommit_ms", range: 1...600_000) ?? timing.timeoutPrecommitMs
            timing.timeoutPrecommitDeltaMs = try table.uint("timeout_precommit_delta_ms", range: range)
                ?? timing.timeoutPrecommitDeltaMs
            timing.timeoutCommitMs = try table.uint("timeout_commit_ms", range: range) ?? timing.timeoutCommitMs
        }

        var limits = NodeConfig.Limits()
        if let table = try reader.table("limits", required: false) {
            limits = try parseLimits(table)
        }

        var load = Load(rateTxPerSecond: 200, accounts: 256, durationSeconds: 10)
        if let table = try reader.table("load", required: false) {
            try table.allowOnly(["rate_tx_per_s", "accounts", "duration_s", "start_s", "layer"])
            if let layer = try table.string("layer") {
                guard layer == "l1" || layer == "l2" else { throw table.fail("layer", "expected \"l1\" or \"l2\", got '\(layer)'") }
                load.l2 = layer == "l2"
            }
            load.startSeconds = try table.double("start_s", range: 0...3_600) ?? 0
            load.rateTxPerSecond = Int(try table.uint("rate_tx_per_s", range: 0...1_000_000) ?? UInt64(load.rateTxPerSecond))
            load.accounts = Int(try table.uint("accounts", range: 1...1_000_000) ?? UInt64(load.accounts))
            load.durationSeconds = try table.double("duration_s", range: 0...86_400) ?? load.durationSeconds
        }

        let nodeTables = try reader.tableArray("node")
        // `validators = N`: N equal validators v1…vN, for large clusters (`[[node]]` tables say more).
        let validatorCount = try cluster.uint("validators", range: 1...UInt64(nodesMax))
        if validatorCount != nil, !nodeTables.isEmpty {
            throw TopologyError(file: path, field: "cluster.validators",
                                problem: "give either validators = N or [[node]] tables, not both")
        }
        guard !nodeTables.isEmpty || validatorCount != nil else {
            throw TopologyError(file: path, field: "node", problem: "at least one [[node]] (or cluster.validators = N) is required")
        }
        guard nodeTables.count <= nodesMax else {
            throw TopologyError(file: path, field: "node", problem: "\(nodeTables.count) nodes, at most \(nodesMax)")
        }
        var nodes: [Node] = []
        var names = Set<String>()
        for table in nodeTables {
            try table.allowOnly(["name", "role", "stake", "labels", "version", "version_min", "fork_id", "dispute",
                                 "dispute_batch", "dispute_step", "dispute_silent", "dispute_identities",
                                 "dispute_at_window_end", "rpc_tier", "byzantine", "twin_of"])
            let nodeName = try table.string("name", required: true)!
            guard (1...32).contains(nodeName.utf8.count), nodeName.unicodeScalars.allSatisfy({ scalar in
                scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || scalar == "-"
                                   || scalar == "_")
            }) else {
                throw TopologyError(file: path, field: "\(table.prefix)name",
                                    problem: "'\(nodeName)' must be 1-32 letters, digits, '-' or '_'")
            }
            guard names.insert(nodeName).inserted else {
                throw TopologyError(file: path, field: "\(table.prefix)name", problem: "'\(nodeName)' is used by two nodes")
            }
            let role = try table.string("role") ?? "validator"
            guard roles.contains(role) else {
                throw TopologyError(file: path, field: "\(table.prefix)role",
                                    problem: "'\(role)' is not a role; expected one of \(roles.joined(separator: ", "))")
            }
            let stake = try table.uint("stake", range: 1...1_000_000_000) ?? 10
            var labels: [String: String] = [:]
            if let labelTable = try table.table("labels", required: false) {
                for key in labelTable.table.keys.sorted() {
                    labels[key] = try labelTable.string(key, required: true)!
                }
            }
            var node = Node(name: nodeName, role: role, stake: stake, labels: labels)
            try parseVersions(table, into: &node)
            node.dispute = try parseDispute(table, role: role)
            if let tier = try table.uint("rpc_tier", range: 0...16) {
                guard role == "rpc" else { throw table.fail("rpc_tier", "only an rpc node has an upstream tier") }
                node.rpcTier = Int(tier)
            }
            if table.table["byzantine"] != nil {
                guard role == "validator" else { throw table.fail("byzantine", "only a validator can be byzantine") }
                node.byzantine = try table.byzantineModes("byzantine")
            }
            node.twinOf = try table.string("twin_of")
            if node.twinOf != nil, role != "validator" { throw table.fail("twin_of", "only a validator can have a twin") }
            nodes.append(node)
        }
        for (index, node) in nodes.enumerated() {
            guard let twinOf = node.twinOf else { continue }
            guard let original = nodes.first(where: { $0.name == twinOf }), original.role == "validator",
                  original.twinOf == nil else {
                throw TopologyError(file: path, field: "node[\(index + 1)].twin_of",
                                    problem: "'\(twinOf)' is not a validator of this file (a twin copies a validator's key)")
            }
        }
        for index in 0..<Int(validatorCount ?? 0) {
            nodes.append(Node(name: "v\(index + 1)", role: "validator", stake: 10, labels: [:]))
        }
        guard nodes.contains(where: { $0.role == "validator" || $0.role == "external" }) else {
            throw TopologyError(file: path, field: "node", problem: "at least one node needs role = \"validator\"")
        }
        var topology = Topology(path: path, name: name, chainId: chainId, seed: seed, host: host, basePort: basePort,
                                timing: timing, limits: limits, load: load, nodes: nodes)
        topology.upgrades = try parseUpgrades(reader)
        topology.handshakeChecksRules = handshake == "rules"
        topology.consensusProtocol = consensusProtocol
        topology.rollup = try parseRollup(reader, nodes: nodes)
        topology.gateway = try parseGateway(reader, nodes: nodes)
        topology.rpcLoad = try parseRPCLoad(reader, nodes: nodes)
        topology.network = network
        topology.faultLayer = faultLayer
        topology.external = try parseExternal(reader, nodes: nodes, network: network, path: path)
        if network == .netns, nodes.count > NetworkMode.netnsNodesMax {
            throw TopologyError(file: path, field: "cluster.network",
                                problem: "netns gives each node an address in one /24: at most \(NetworkMode.netnsNodesMax) nodes, "
                                    + "this file has \(nodes.count)")
        }
        if load.l2, topology.rollup == nil {
            throw TopologyError(file: path, field: "load.layer", problem: "\"l2\" needs a node with role = \"sequencer\"")
        }
        return topology
    }

    /// The `dispute*` keys of a `[[node]]`: how a sequencer or replica behaves in fraud-proof disputes.
    static func parseDispute(_ table: TableReader, role: String) throws(TopologyError) -> DisputeBehaviour {
        var behaviour = DisputeBehaviour()
        let keys = ["dispute", "dispute_batch", "dispute_step", "dispute_silent", "dispute_identities", "dispute_at_window_end"]
        if role != "sequencer" && role != "replica", let key = keys.first(where: { table.table[$0] != nil }) {
            throw table.fail(key, "only a sequencer or a replica takes part in disputes")
        }
        if let lie = try table.string("dispute") {
            guard DisputeBehaviour.lies.contains(lie) else {
                throw table.fail("dispute", "'\(lie)' is not a behaviour; expected one of \(DisputeBehaviour.lies.joined(separator: ", "))")
            }
            behaviour.lie = lie
        }
        behaviour.batch = try table.uint("dispute_batch", range: 0...1_000_000)
        behaviour.step = Int(try table.uint("dispute_step", range: 0...100_000_000) ?? 0)
        behaviour.silent = try table.bool("dispute_silent") ?? false
        behaviour.identities = Int(try table.uint("dispute_identities", range: 1...16) ?? 1)
        behaviour.atWindowEnd = try table.bool("dispute_at_window_end") ?? false
        if role == "sequencer", behaviour.identities > 1 {
            throw table.fail("dispute_identities", "the sequencer asserts as itself; identities are for replicas")
        }
        return behaviour
    }

    /// `version`, `version_min` and `fork_id` of a `[[node]]`.
    static func parseVersions(_ table: TableReader, into node: inout Node) throws(TopologyError) {
        let newest = UInt64(Rules.newestVersion)
        node.version = UInt16(try table.uint("version", range: 1...newest) ?? 1)
        node.versionMin = UInt16(try table.uint("version_min", range: 1...newest) ?? 1)
        guard node.versionMin <= node.version else {
            throw table.fail("version_min", "\(node.versionMin) is above version \(node.version)")
        }
        node.forkId = UInt32(try table.uint("fork_id", range: 0...UInt64(UInt32.max)) ?? 0)
    }

    /// `[[upgrade]]` tables: name, height, version; checked like genesis checks them.
    static func parseUpgrades(_ reader: TableReader) throws(TopologyError) -> [UpgradePlan] {
        var plans: [UpgradePlan] = []
        for table in try reader.tableArray("upgrade") {
            try table.allowOnly(["name", "height", "version"])
            let name = try table.string("name", required: true)!
            let height = try table.uint("height", range: 1...UInt64(Int64.max))
            guard let height else { throw table.fail("height", "an upgrade needs the height it takes effect at") }
            let version = UInt16(try table.uint("version", range: 2...UInt64(Rules.newestVersion))
                ?? UInt64(Rules.newestVersion))
            plans.append(UpgradePlan(name: name, height: height, version: version))
        }
        let genesis = Genesis(chainId: "", protocolVersion: 1, genesisTimeMs: 0, validators: [], allocations: [],
                              upgrades: plans)
        do {
            _ = try genesis.upgradePlans()
        } catch {
            throw reader.fail("upgrade", error.description)
        }
        return plans
    }
}

extension Topology {
    static func parseLimits(_ table: TableReader) throws(TopologyError) -> NodeConfig.Limits {
        var limits = NodeConfig.Limits()
        try table.allowOnly(["block_txs_max", "block_bytes_max", "mempool_txs_max", "datagram_payload_bytes_max",
                             "ingress_queue_max", "status_interval_ms", "gossip_relay_fanout", "ingress_mode",
                             "user_verify_share", "staked_share", "vote_sender_per_s", "votes_only_after_ms",
                             "coalesce_votes", "vote_checks_per_height_max"])
        limits.blockTxsMax = Int(try table.uint("block_txs_max", range: 0...20_000) ?? UInt64(limits.blockTxsMax))
        limits.blockBytesMax = Int(try table.uint("block_bytes_max", range: 1_000...3_000_000)
            ?? UInt64(limits.blockBytesMax))
        limits.mempoolTxsMax = Int(try table.uint("mempool_txs_max", range: 1...1_000_000) ?? UInt64(limits.mempoolTxsMax))
        limits.datagramPayloadBytesMax = Int(try table.uint("datagram_payload_bytes_max", range: 576...65_000)
            ?? UInt64(limits.datagramPayloadBytesMax))
        limits.ingressQueueMax = Int(try table.uint("ingress_queue_max", range: 16...1_000_000)
            ?? UInt64(limits.ingressQueueMax))
        limits.statusIntervalMs = try table.uint("status_interval_ms", range: 10...60_000) ?? limits.statusIntervalMs
        limits.gossipRelayFanout = Int(try table.uint("gossip_relay_fanout", range: 0...16)
            ?? UInt64(limits.gossipRelayFanout))
        if let mode = try table.string("ingress_mode") {
            guard ["legacy", "lanes"].contains(mode) else {
                throw table.fail("ingress_mode", "expected \"legacy\" or \"lanes\", got '\(mode)'")
            }
            limits.ingressMode = mode
        }
        limits.userVerifyShare = try table.double("user_verify_share", range: 0.01...1) ?? limits.userVerifyShare
        limits.stakedShare = try table.double("staked_share", range: 0...1) ?? limits.stakedShare
        limits.voteSenderPerSecond = Int(try table.uint("vote_sender_per_s", range: 0...10_000_000)
            ?? UInt64(limits.voteSenderPerSecond))
        limits.votesOnlyAfterMs = try table.uint("votes_only_after_ms", range: 0...3_600_000) ?? limits.votesOnlyAfterMs
        limits.voteChecksPerHeightMax = Int(try table.uint("vote_checks_per_height_max", range: 0...1_000_000)
            ?? UInt64(limits.voteChecksPerHeightMax))
        if let value = table.table["coalesce_votes"] {
            guard let flag = value.bool else { throw table.fail("coalesce_votes", "expected true or false") }
            limits.coalesceVotes = flag
        }
        return limits
    }
}

/// Typed access to one TOML table with errors that name the file and the dotted field.
struct TableReader {
    let file: String
    let prefix: String
    let table: TOML.Table

    /// The TOML document of a file's text; a syntax error names the line and column.
    static func document(_ text: String, path: String) throws(TopologyError) -> TOML.Table {
        do {
            return try TOML.parse(text)
        } catch {
            throw TopologyError(file: path, field: "line \(error.line), column \(error.column)",
                                problem: "TOML syntax error: \(error.message)")
        }
    }

    func fail(_ key: String, _ problem: String) -> TopologyError {
        TopologyError(file: file, field: prefix + TableReader.printable(key), problem: problem)
    }

    /// A list of byzantine mode names.
    func byzantineModes(_ key: String) throws(TopologyError) -> [ByzantineMode] {
        var modes: [ByzantineMode] = []
        for name in try stringList(key) {
            guard let mode = ByzantineMode(rawValue: name) else {
                throw fail(key, "'\(name)' is not a byzantine mode; expected one of \(ByzantineMode.names)")
            }
            modes.append(mode)
        }
        return modes
    }

    /// A key as TOML would write it: bare when it can be, else quoted (`""` for the empty key), so a
    /// field in an error is never blank or ambiguous.
    static func printable(_ key: String) -> String {
        let bare = !key.isEmpty && key.utf8.allSatisfy { byte in
            (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
                || byte == 0x5F || byte == 0x2D || byte == 0x5B || byte == 0x5D || byte == 0x2E
        }
        guard !bare else { return key }
        let escaped = key.unicodeScalars.map { scalar -> String in
            switch scalar {
            case "\"": return "\\\""
            case "\\": return "\\\\"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F: return "\\u{\(String(scalar.value, radix: 16))}"
            default: return String(scalar)
            }
        }.joined()
        return "\"\(escaped)\""
    }

    func allowOnly(_ keys: Set<String>) throws(TopologyError) {
        for key in table.keys where !keys.contains(key) {
            throw fail(key, "unknown field; expected one of \(keys.sorted().joined(separator: ", "))")
        }
    }

    func string(_ key: String, required: Bool = false) throws(TopologyError) -> String? {
        guard let value = table[key] else {
            if required { throw fail(key, "is required (a string)") }
            return nil
        }
        guard let text = value.string else { throw fail(key, "expected a string, got \(value.type)") }
        return text
    }

    func uint(_ key: String, range: ClosedRange<UInt64>) throws(TopologyError) -> UInt64? {
        guard let value = table[key] else { return nil }
        guard let number = value.int else { throw fail(key, "expected an integer, got \(value.type)") }
        guard number >= 0, range.contains(UInt64(number)) else {
            throw fail(key, "\(number) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return UInt64(number)
    }

    func bool(_ key: String) throws(TopologyError) -> Bool? {
        guard let value = table[key] else { return nil }
        guard let flag = value.bool else { throw fail(key, "expected true or false") }
        return flag
    }

    func double(_ key: String, range: ClosedRange<Double>) throws(TopologyError) -> Double? {
        guard let value = table[key] else { return nil }
        guard let number = value.double ?? value.int.map(Double.init) else {
            throw fail(key, "expected a number, got \(value.type)")
        }
        guard range.contains(number) else {
            throw fail(key, "\(number) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }

    func table(_ key: String, required: Bool) throws(TopologyError) -> TableReader? {
        guard let value = table[key] else {
            if required { throw fail(key, "is required (a [\(key)] table)") }
            return nil
        }
        guard let inner = value.table else { throw fail(key, "expected a table, got \(value.type)") }
        return TableReader(file: file, prefix: prefix + key + ".", table: inner)
    }

    func tableArray(_ key: String) throws(TopologyError) -> [TableReader] {
        guard let value = table[key] else { return [] }
        guard let array = value.array else { throw fail(key, "expected [[\(key)]] tables, got \(value.type)") }
        var out: [TableReader] = []
        for (index, element) in array.enumerated() {
            guard let inner = element.table else { throw fail("\(key)[\(index + 1)]", "expected a table") }
            out.append(TableReader(file: file, prefix: "\(prefix)\(key)[\(index + 1)].", table: inner))
        }
        return out
    }
}

extension Topology {
    /// A path's file name without its extension ("Topologies/quickstart.toml" → "quickstart").
    static func fileStem(_ path: String) -> String {
        let file = path.split(separator: "/").last.map(String.init) ?? path
        guard let dot = file.lastIndex(of: "."), dot != file.startIndex else { return file }
        return String(file[..<dot])
    }
}
