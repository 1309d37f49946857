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
