import RPC
import Wire

/// `[rpc_load]`: a steady JSON-RPC request load during a scenario, sent through several client
/// policies side by side, so one fault is measured against each.
public struct RPCLoadSpec: Sendable, Equatable {
    /// `single` (the first rpc node, no retries), `fallback` (the rpc nodes in order, fixed retries),
    /// `gateway` (the gateway node, no retries), `library` (the Swift client with the full policy on the
    /// rpc nodes), `external` (one given endpoint, e.g. a proxy run beside the cluster).
    public static let policies = ["single", "fallback", "gateway", "library", "external"]

    public var clients: [String] = ["single", "fallback", "gateway"]
    /// Requests per second for each client.
    public var ratePerSecond = 50
    public var startSeconds = 0.0
    /// The naive fallback's retries (each to the next rpc node in order).
    public var retries = 2
    /// The naive clients' per-request timeout.
    public var timeoutMs: UInt64 = 1_000
    /// An `eth_blockNumber` answer more than this far behind the best committed head is stale.
    public var staleBlocks: UInt64 = 16
    /// The `external` client's endpoint.
    public var endpointHost = "127.0.0.1"
    public var endpointPort = 0
    /// Methods sent in turn; reads only by default.
    public var methods = ["eth_blockNumber", "eth_getBalance", "eth_getBlockByNumber", "eth_chainId"]
}

extension Topology {
    public var rpcNodes: [Node] { nodes.filter { $0.role == "rpc" } }
    public var gatewayNodes: [Node] { nodes.filter { $0.role == "gateway" } }

    /// The rpc nodes as upstreams: in the listed order, tier `rpc_tier` (default: the first 0, the rest 1).
    public var rpcUpstreams: [(node: Node, tier: Int)] {
        rpcNodes.enumerated().map { index, node in (node, node.rpcTier ?? (index == 0 ? 0 : 1)) }
    }

    /// `[gateway]`: the failover policy's settings for gateway nodes and the `library` client.
    static func parseGateway(_ reader: TableReader, nodes: [Node]) throws(TopologyError) -> Failover.Settings {
        var settings = Failover.Settings()
        let hasGateway = nodes.contains { $0.role == "gateway" }
        if hasGateway, !nodes.contains(where: { $0.role == "rpc" }) {
            throw reader.fail("node", "a gateway needs at least one node with role = \"rpc\" as its upstream")
        }
        guard let table = try reader.table("gateway", required: false) else { return settings }
        try table.allowOnly(["attempt_timeout_ms", "request_deadline_ms", "attempts_max", "backoff_base_ms",
                             "backoff_max_ms", "retry_budget_ratio", "retry_budget_burst", "hedge_quantile",
                             "hedge_after_ms_min", "breaker_window", "breaker_failures", "breaker_consecutive",
                             "breaker_open_ms", "head_poll_ms", "lag_blocks_max", "lag_ms_max", "quorum", "fail_open"])
        func ms(_ key: String, _ value: inout UInt64, _ range: ClosedRange<UInt64> = 0...600_000) throws(TopologyError) {
            value = try table.uint(key, range: range) ?? value
        }
        func int(_ key: String, _ value: inout Int, _ range: ClosedRange<UInt64>) throws(TopologyError) {
            value = Int(try table.uint(key, range: range) ?? UInt64(value))
        }
        try ms("attempt_timeout_ms", &settings.attemptTimeoutMs, 1...600_000)
        try ms("request_deadline_ms", &settings.requestDeadlineMs, 1...600_000)
        try int("attempts_max", &settings.attemptsMax, 1...16)
        try ms("backoff_base_ms", &settings.backoffBaseMs)
        try ms("backoff_max_ms", &settings.backoffMaxMs)
        settings.retryBudgetRatio = try table.double("retry_budget_ratio", range: 0...100) ?? settings.retryBudgetRatio
        settings.retryBudgetBurst = try table.double("retry_budget_burst", range: 0...1_000_000) ?? settings.retryBudgetBurst
        settings.hedgeQuantile = try table.double("hedge_quantile", range: 0...0.999) ?? settings.hedgeQuantile
        try ms("hedge_after_ms_min", &settings.hedgeAfterMsMin)
        try int("breaker_window", &settings.breakerWindow, 1...10_000)
        try int("breaker_failures", &settings.breakerFailures, 1...10_000)
        try int("breaker_consecutive", &settings.breakerConsecutive, 1...10_000)
        try ms("breaker_open_ms", &settings.breakerOpenMs, 1...600_000)
        try ms("head_poll_ms", &settings.headPollMs)
        try ms("lag_blocks_max", &settings.lagBlocksMax, 0...1_000_000)
        try ms("lag_ms_max", &settings.lagMsMax, 1...3_600_000)
        try int("quorum", &settings.quorum, 0...16)
        settings.failOpen = try table.bool("fail_open") ?? settings.failOpen
        let upstreams = nodes.filter { $0.role == "rpc" }.count
        if settings.quorum > upstreams {
            throw table.fail("quorum", "\(settings.quorum) of \(upstreams) rpc node(s) can never agree")
        }
        guard settings.requestDeadlineMs >= settings.attemptTimeoutMs else {
            throw table.fail("request_deadline_ms", "\(settings.requestDeadlineMs) is below attempt_timeout_ms "
                             + "\(settings.attemptTimeoutMs)")
        }
        return settings
    }

    static func parseRPCLoad(_ reader: TableReader, nodes: [Node]) throws(TopologyError) -> RPCLoadSpec? {
        guard let table = try reader.table("rpc_load", required: false) else { return nil }
        try table.allowOnly(["clients", "rate_per_s", "start_s", "retries", "timeout_ms", "stale_blocks", "endpoint",
                             "methods"])
        var spec = RPCLoadSpec()
        if table.table["clients"] != nil { spec.clients = try table.stringList("clients") }
        guard !spec.clients.isEmpty else { throw table.fail("clients", "name at least one client policy") }
        for client in spec.clients where !RPCLoadSpec.policies.contains(client) {
            throw table.fail("clients", "'\(client)' is not a client policy; expected "
                             + RPCLoadSpec.policies.joined(separator: ", "))
        }
        guard Set(spec.clients).count == spec.clients.count else { throw table.fail("clients", "a policy is named twice") }
        guard nodes.contains(where: { $0.role == "rpc" }) else {
            throw table.fail("clients", "[rpc_load] needs at least one node with role = \"rpc\"")
        }
        if spec.clients.contains("gateway"), !nodes.contains(where: { $0.role == "gateway" }) {
            throw table.fail("clients", "the \"gateway\" client needs a node with role = \"gateway\"")
        }
        spec.ratePerSecond = Int(try table.uint("rate_per_s", range: 1...5_000) ?? UInt64(spec.ratePerSecond))
        spec.startSeconds = try table.double("start_s", range: 0...3_600) ?? 0
        spec.retries = Int(try table.uint("retries", range: 0...16) ?? UInt64(spec.retries))
        spec.timeoutMs = try table.uint("timeout_ms", range: 1...600_000) ?? spec.timeoutMs
        spec.staleBlocks = try table.uint("stale_blocks", range: 0...1_000_000) ?? spec.staleBlocks
        if let endpoint = try table.string("endpoint") {
            let parts = endpoint.split(separator: ":")
            guard parts.count == 2, let port = Int(parts[1]), (1...65_535).contains(port) else {
                throw table.fail("endpoint", "expected HOST:PORT, got '\(endpoint)'")
            }
            spec.endpointHost = String(parts[0])
            spec.endpointPort = port
        }
        if spec.clients.contains("external"), spec.endpointPort == 0 {
            throw table.fail("endpoint", "the \"external\" client needs endpoint = \"HOST:PORT\"")
        }
        if table.table["methods"] != nil {
            spec.methods = try table.stringList("methods")
            for method in spec.methods where !Methods.all.contains(method) || method == "eth_sendRawTransaction" {
                throw table.fail("methods", "'\(method)' is not a read method an rpc node serves; expected some of "
                                 + Methods.idempotent.sorted().joined(separator: ", "))
            }
            guard !spec.methods.isEmpty else { throw table.fail("methods", "name at least one method") }
        }
        return spec
    }
}
