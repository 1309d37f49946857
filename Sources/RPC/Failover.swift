import Sodium
import Wire

/// The failover policy shared by the Swift client (`RPCClient`) and the `gateway` node: ordered
/// upstreams in priority tiers, retries with exponential backoff and jitter for idempotent methods
/// under a retry budget, hedged requests after a latency quantile, a circuit breaker per upstream
/// with half-open probes, head polling with exclusion of lagging upstreams, a head that never goes
/// backward, optional k-of-n quorum for reads, and failing open when every upstream looks bad.
///
/// Pure: time comes in as `nowMs`, randomness from a seeded generator the instance owns, and sending
/// is an effect the shell carries out; each answer comes back as an input.
public enum Failover {
    public struct Settings: Codable, Sendable, Equatable {
        /// One attempt's limit (the shell's HTTP timeout), and the whole request's.
        public var attemptTimeoutMs: UInt64 = 1_000
        public var requestDeadlineMs: UInt64 = 3_000
        /// Attempts per request, the first included.
        public var attemptsMax = 3
        /// Retry n waits a uniform draw from [0, min(backoffMaxMs, backoffBaseMs · 2^n)] (full jitter).
        public var backoffBaseMs: UInt64 = 10
        public var backoffMaxMs: UInt64 = 200
        /// Retries and hedges earn `retryBudgetRatio` tokens per client request, up to `retryBudgetBurst`
        /// saved: in the long run upstream requests stay under (1 + ratio) × client requests.
        public var retryBudgetRatio = 0.2
        public var retryBudgetBurst = 30.0
        /// Hedge an idempotent request on a second upstream when the first has not answered after this
        /// quantile of its recent latencies (0: no hedging), but never sooner than `hedgeAfterMsMin`.
        public var hedgeQuantile = 0.95
        public var hedgeAfterMsMin: UInt64 = 20
        /// Circuit breaker: open after `breakerFailures` failures among an upstream's last
        /// `breakerWindow` outcomes, or `breakerConsecutive` in a row; one probe after `breakerOpenMs`.
        public var breakerWindow = 80
        public var breakerFailures = 20
        public var breakerConsecutive = 5
        public var breakerOpenMs: UInt64 = 2_000
        /// Head polling (`eth_blockNumber` to every upstream) and exclusion of an upstream more than
        /// `lagBlocksMax` behind the best head, or whose head stood still `lagMsMax` while the best moved.
        public var headPollMs: UInt64 = 200
        public var lagBlocksMax: UInt64 = 8
        public var lagMsMax: UInt64 = 2_000
        /// Reads answered only when this many upstreams agree (0: off).
        public var quorum = 0
        /// When every upstream is open or excluded, still try them (best first) rather than refuse.
        public var failOpen = true
        public var openRequestsMax = 10_000

        public init() {}

        /// Naive ordered fallback with fixed retries: the first upstream, then the next, nothing else.
        public static func naiveFallback(retries: Int) -> Settings {
            var settings = Settings()
            settings.attemptsMax = retries + 1
            settings.backoffBaseMs = 0
            settings.backoffMaxMs = 0
            settings.retryBudgetRatio = 1_000
            settings.retryBudgetBurst = 1_000_000
            settings.hedgeQuantile = 0
            settings.breakerFailures = Int.max
            settings.breakerConsecutive = Int.max
            settings.headPollMs = 0
            settings.lagBlocksMax = .max
            settings.lagMsMax = .max
            settings.naiveOrder = true
            return settings
        }

        /// Always the listed order (no rotation within a tier), retrying even non-idempotent methods.
        public var naiveOrder = false
    }

    public struct Upstream: Codable, Sendable, Equatable {
        public var name: String
        /// Lower tiers are tried first; upstreams of one tier share the load in turn.
        public var tier: Int

        public init(name: String, tier: Int) {
            self.name = name
            self.tier = tier
        }
    }

    /// How one attempt ended, as the shell saw it.
    public enum Outcome: Sendable, Equatable {
        /// An answer to pass on: a result, or an error that is the client's (bad params, unknown method).
        /// `blockNumber` is the head an `eth_blockNumber` answer names; `digest` identifies the result
        /// (for quorum).
        case answered(blockNumber: UInt64?, digest: UInt64)
        /// Nothing was sent (the connection was refused, or no pooled connection came free in time): safe to
        /// retry whatever the method.
        case connectFailed
        case timedOut
        /// HTTP 5xx or 429, a server-side JSON-RPC error, or a body that is not a JSON-RPC response.
        case failed(String)
    }

    public enum Timer: Sendable, Equatable {
        case hedge
        case retry
        case deadline
    }

    public enum Response: Sendable, Equatable {
        /// Pass on what this attempt received.
        case attempt(Int)
        /// Answer `eth_blockNumber` with this head (an upstream named a lower one than already served).
        case head(UInt64)
        case failure(JSONRPC.Failure)
    }

    public enum Effect: Sendable, Equatable {
        case send(request: UInt64, attempt: Int, upstream: Int)
        case schedule(request: UInt64, Timer, atMs: UInt64)
        case respond(request: UInt64, Response)
        /// Ask this upstream for its head (`eth_blockNumber`); the answer comes back to `onHead`.
        case poll(upstream: Int)
        /// Something worth a line in the event log: breaker and exclusion changes, failing open.
        case event(String, upstream: Int)
    }

    /// Counts since start, for metrics and the report's retry amplification.
    public struct Counters: Sendable, Equatable, Codable {
        public var requests = 0
        public var attempts = 0
        public var retries = 0
        public var hedges = 0
        public var answered = 0
        public var errors = 0
        public var failedAttempts = 0
        public var staleRefused = 0
        public var headClamped = 0
        public var failedOpen = 0
        public var polls = 0
        public var refusedOverload = 0
    }
}

extension Failover {
    /// How the shell reads an upstream's HTTP answer: 2xx with a JSON-RPC result, or an error that is
    /// the client's (bad params, unknown method, a refused transaction), is an answer to pass on;
    /// 429/5xx, a server-side JSON-RPC error or a body that is not a response is a failed attempt.
    public static func classify(httpStatus: Int, body: [UInt8], method: String) -> Outcome {
        guard (200..<300).contains(httpStatus) else { return .failed("HTTP \(httpStatus)") }
        guard let json = JSON.parse(body), let outcome = JSONRPC.outcome(of: json) else {
            return .failed("not a JSON-RPC response")
        }
        switch outcome {
        case .success(let result):
            var blockNumber: UInt64?
            if method == "eth_blockNumber" {
                guard let number = result.quantity else { return .failed("eth_blockNumber answered \(result)") }
                blockNumber = number
            }
            return .answered(blockNumber: blockNumber, digest: digest(result.rendered))
        case .failure(let failure):
            if clientErrorCodes.contains(failure.code) {
                return .answered(blockNumber: nil, digest: digest(Array("error \(failure.code)".utf8)))
            }
            return .failed("JSON-RPC error \(failure.code) \(failure.message.prefix(80))")
        }
    }

    /// Errors about the request itself: asking another upstream would get the same answer.
    public static let clientErrorCodes: Set<Int64> = [
        JSONRPC.Code.parseError.rawValue, JSONRPC.Code.invalidRequest.rawValue, JSONRPC.Code.methodNotFound.rawValue,
        JSONRPC.Code.invalidParams.rawValue, JSONRPC.Code.transactionRejected.rawValue,
    ]

    /// a + b, stopping at UInt64.max (settings use .max for "never").
    static func plus(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : sum
    }

    static func digest(_ bytes: [UInt8]) -> UInt64 {
        Blake2b.hash(bytes).bytes.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }
}

extension Failover {
    /// The JSON-RPC response the policy's answer stands for: the body an attempt received as it came, a
    /// clamped head, or an error saying why no upstream could answer. `bodies`: what each attempt received.
    public static func response(_ answer: Response, requestId: JSON, bodies: [Int: [UInt8]]) -> (json: JSON, attempt: Int?) {
        switch answer {
        case .attempt(let attempt):
            if let body = bodies[attempt], let json = JSON.parse(body) { return (json, attempt) }
            return (JSONRPC.error(id: requestId, JSONRPC.Failure(.internalError, "answer lost")), nil)
        case .head(let head):
            return (JSONRPC.result(id: requestId, JSON.quantity(head)), nil)
        case .failure(let failure):
            return (JSONRPC.error(id: requestId, failure), nil)
        }
    }
}
