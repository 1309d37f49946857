import Basics
import Sodium
import Wire

/// How an rpc node misbehaves on purpose (`faultline fault rpc`, scenario `action = "rpc"`): the
/// upstream failure modes of real RPC provider outages.
public struct UpstreamFault: Codable, Sendable, Equatable, CustomStringConvertible {
    public static let modes = ["ok", "down", "errors", "latency", "frozen", "lag", "wrong"]

    /// `ok`; `down` (the port refuses connections); `errors` (HTTP `status`, or with status 200 a
    /// JSON-RPC internal error); `latency` (`ms` added to every answer, and `tailMs` to `tailPercent`
    /// of them: a slow tail); `frozen` (answers stuck at the head it had); `lag` (answers `lagBlocks`
    /// behind); `wrong` (balances, nonces and block hashes made up).
    public var mode: String
    /// The share of requests affected by `errors` and `wrong`.
    public var percent: Double
    public var status: Int
    public var ms: UInt64
    public var tailPercent: Double
    public var tailMs: UInt64
    public var lagBlocks: UInt64

    public init(mode: String = "ok", percent: Double = 100, status: Int = 503, ms: UInt64 = 0,
                tailPercent: Double = 0, tailMs: UInt64 = 0, lagBlocks: UInt64 = 0) {
        self.mode = mode
        self.percent = percent
        self.status = status
        self.ms = ms
        self.tailPercent = tailPercent
        self.tailMs = tailMs
        self.lagBlocks = lagBlocks
    }

    public static let ok = UpstreamFault()

    /// A problem with the settings, named, or nil.
    public var problem: String? {
        guard UpstreamFault.modes.contains(mode) else {
            return "mode '\(mode)' is not one of \(UpstreamFault.modes.joined(separator: ", "))"
        }
        guard (0...100).contains(percent), (0...100).contains(tailPercent) else { return "percent must be 0...100" }
        guard status == 200 || (400...599).contains(status) else {
            return "status \(status): expected 429, a 5xx, or 200 for JSON-RPC errors"
        }
        guard ms <= 600_000, tailMs <= 600_000 else { return "ms and tail_ms must be at most 600000" }
        guard lagBlocks <= UInt64(ChainView.lagViewsKept) else {
            return "lag_blocks must be at most \(ChainView.lagViewsKept)"
        }
        return nil
    }

    public var description: String {
        switch mode {
        case "errors": return "errors (\(status == 200 ? "JSON-RPC -32603" : "HTTP \(status)") on \(percent)%)"
        case "latency": return "latency +\(ms) ms" + (tailPercent > 0 ? ", \(tailPercent)% +\(tailMs) ms" : "")
        case "lag": return "lagging \(lagBlocks) blocks"
        case "wrong": return "wrong answers on \(percent)%"
        default: return mode
        }
    }

    /// What happens to one request under this fault.
    public struct Decision: Sendable, Equatable {
        public var delayMs: UInt64 = 0
        /// Answer with this HTTP status (200: a JSON-RPC internal error) instead of the method's answer.
        public var errorStatus: Int?
        public var wrong = false
    }

    public func decide(_ rng: inout SplitMix64) -> Decision {
        var decision = Decision()
        switch mode {
        case "errors":
            if rng.nextPercent() < percent { decision.errorStatus = status }
        case "latency":
            decision.delayMs = ms + (rng.nextPercent() < tailPercent ? tailMs : 0)
        case "wrong":
            decision.wrong = rng.nextPercent() < percent
        default:
            break
        }
        return decision
    }
}

extension ChainView {
    /// Views an rpc node keeps for the lagging-head mode.
    public static let lagViewsKept = 64

    /// The same view with made-up state: every balance doubled plus one, nonces shifted, block hashes
    /// flipped. What a broken or malicious provider answers; a quorum of honest upstreams outvotes it.
    public func falsified() -> ChainView {
        var copy = self
        copy.accounts = accounts.mapValues { Account(balance: $0.balance &* 2 &+ 1, nonce: $0.nonce &+ 3) }
        copy.blocks = blocks.mapValues { block in
            var changed = block
            var bytes = block.id.bytes
            bytes[0] ^= 0xff
            changed.id = Bytes32(bytes) ?? block.id
            return changed
        }
        return copy
    }
}
