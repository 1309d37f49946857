/// One JSON-RPC request of a scenario's RPC load, as `load/rpc-clients.jsonl` holds it: written by
/// the load (Cluster), read by the analysis (Liveness).
public struct RPCRequestRecord: Codable, Sendable, Equatable {
    /// When it was sent (ms since the epoch).
    public var t: UInt64
    public var client: String
    public var method: String
    public var ok: Bool
    public var error: String?
    /// Sent → answered.
    public var ms: UInt64
    /// Upstream requests it caused at the client (retries and hedges included).
    public var attempts: Int
    /// The head an `eth_blockNumber` answer named.
    public var head: UInt64?
    /// For block answers: the block's number and the hash it was given with (hex, no 0x).
    public var block: UInt64?
    public var hash: String?

    public init(t: UInt64, client: String, method: String, ok: Bool, error: String? = nil, ms: UInt64,
                attempts: Int, head: UInt64? = nil, block: UInt64? = nil, hash: String? = nil) {
        self.t = t
        self.client = client
        self.method = method
        self.ok = ok
        self.error = error
        self.ms = ms
        self.attempts = attempts
        self.head = head
        self.block = block
        self.hash = hash
    }
}

/// `load/rpc-load.json`: what the analysis needs to know about the RPC load.
public struct RPCLoadRecord: Codable, Sendable {
    public var clients: [String]
    public var ratePerSecond: Int
    public var staleBlocks: UInt64
    public var methods: [String]

    public init(clients: [String], ratePerSecond: Int, staleBlocks: UInt64, methods: [String]) {
        self.clients = clients
        self.ratePerSecond = ratePerSecond
        self.staleBlocks = staleBlocks
        self.methods = methods
    }
}
