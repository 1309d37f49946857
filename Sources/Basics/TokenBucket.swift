/// A token bucket: `ratePerSecond` on average, bursts up to `burst`. Time comes in as an argument.
public struct TokenBucket: Sendable {
    public let ratePerSecond: Double
    public let burst: Double
    private var tokens: Double
    private var lastMs: UInt64?

    public init(ratePerSecond: Double, burst: Double) {
        self.ratePerSecond = ratePerSecond
        self.burst = burst
        self.tokens = burst
    }

    /// Takes `amount` tokens if there are that many (nothing is taken otherwise).
    public mutating func take(_ amount: Double = 1, nowMs: UInt64) -> Bool {
        if let lastMs, nowMs > lastMs {
            tokens = min(burst, tokens + Double(nowMs - lastMs) * ratePerSecond / 1000)
        }
        lastMs = max(lastMs ?? nowMs, nowMs)
        guard tokens >= amount else { return false }
        tokens -= amount
        return true
    }
}

/// A share of the reader's wall time for signature checks: each check is charged what checks last cost in
/// wall time (measured per read burst), so the budget shrinks when the host is busy. A budget in checks per
/// second, sized from a start-up benchmark, let a sequencer on a contended host spend all its time verifying
/// while the kernel dropped three quarters of a burst unanswered; charged in time, the reader keeps the rest
/// of each second for reading and shedding.
public struct CheckTimeBudget: Sendable {
    public let share: Double
    /// Milliseconds of checking left (refilled at `share` ms per ms, up to a tenth of a second's worth).
    private var milliseconds: TokenBucket
    /// Wall time one check costs, as last measured (moving average over read bursts).
    public private(set) var costMs: Double

    public static let costMsRange = 0.001...50.0
    /// Bursts with fewer checks than this do not move the estimate (too noisy).
    public static let checksMeasuredMin = 8

    public init(share: Double, checksPerSecond: Double) {
        self.share = share
        milliseconds = TokenBucket(ratePerSecond: share * 1_000, burst: share * 100)
        costMs = min(max(1_000 / max(checksPerSecond, 1), Self.costMsRange.lowerBound), Self.costMsRange.upperBound)
    }

    /// Checks per second the budget allows at the measured cost.
    public var checksPerSecond: Double { share * 1_000 / costMs }

    public mutating func takeCheck(nowMs: UInt64) -> Bool { milliseconds.take(costMs, nowMs: nowMs) }

    public mutating func measured(checks: Int, elapsedMs: Double) {
        guard checks >= Self.checksMeasuredMin, elapsedMs >= 0 else { return }
        let cost = min(max(elapsedMs / Double(checks), Self.costMsRange.lowerBound), Self.costMsRange.upperBound)
        costMs = 0.7 * costMs + 0.3 * cost
    }
}
