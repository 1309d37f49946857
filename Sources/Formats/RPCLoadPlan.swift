import RPC
import Wire

/// What `[rpc_load]` sends and through which policy, decided once for both engines: the real load
/// (`Cluster.RPCLoad`, over HTTP) and the simulator's (in virtual time) build their clients, requests and
/// records from this.
extension RPCLoadSpec {
    /// Where a client policy sends its requests.
    public enum Upstreams: Sendable, Equatable {
        /// The first rpc node of the lowest tier.
        case primary
        /// Every rpc node, lowest tier first (the naive fallback's order).
        case byTier
        /// The gateway node.
        case gateway
        /// Every rpc node as listed, with their tiers (the library client's full policy).
        case all
        /// `endpoint` (a proxy run beside the cluster).
        case external
    }

    /// A client policy's upstreams and settings.
    public func policy(_ name: String, gateway: Failover.Settings) -> (upstreams: Upstreams, settings: Failover.Settings) {
        func naive(_ retries: Int) -> Failover.Settings {
            var settings = Failover.Settings.naiveFallback(retries: retries)
            settings.attemptTimeoutMs = timeoutMs
            settings.requestDeadlineMs = timeoutMs * UInt64(retries + 1)
            return settings
        }
        switch name {
        case "single": return (.primary, naive(0))
        case "fallback": return (.byTier, naive(retries))
        case "gateway":
            // The gateway makes its own attempts; the client waits for its deadline, plus a margin.
            var settings = naive(0)
            settings.attemptTimeoutMs = max(timeoutMs, gateway.requestDeadlineMs + 500)
            settings.requestDeadlineMs = settings.attemptTimeoutMs
            return (.gateway, settings)
        case "library": return (.all, gateway)
        default: return (.external, naive(0))
        }
    }

    /// Request `index` of a client's stream. Blocks are asked for a little below the last head the client
    /// saw: a fixed height has one right answer on every honest upstream (what a quorum compares, and what
    /// `wrong` is judged by).
    public func request(_ index: Int, addresses: [String], head: UInt64) -> JSONRPC.Request {
        let method = methods[index % methods.count]
        let params: [JSON]
        switch method {
        case "eth_getBalance", "eth_getTransactionCount":
            params = [.string(addresses[index % addresses.count]), .string("latest")]
        case "eth_getBlockByNumber": params = [head > 2 ? JSON.quantity(head - 2) : .string("latest"), .bool(false)]
        default: params = []
        }
        return JSONRPC.Request(id: .int(Int64(index)), method: method, params: params)
    }
}

extension RPCRequestRecord {
    /// The record of a request answered with `response` (a JSON-RPC response object) after `ms`.
    public init(t: UInt64, client: String, method: String, response: JSON, ms: UInt64, attempts: Int) {
        self.init(t: t, client: client, method: method, ok: true, ms: ms, attempts: attempts)
        switch JSONRPC.outcome(of: response) {
        case .success(let result)?:
            if method == "eth_blockNumber" { head = result.quantity }
            if method == "eth_getBlockByNumber" {
                block = result["number"]?.quantity
                hash = result["hash"]?.string.map { String($0.dropFirst(2)) }
            }
        case .failure(let failure)?:
            ok = false
            error = "\(failure.code) \(failure.message.prefix(100))"
        case nil:
            ok = false
            error = "not a JSON-RPC response"
        }
    }
}
