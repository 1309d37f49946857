import Sodium

/// Envelope signatures this thread checks per second, with the call every node's ingress makes.
/// Used by a lanes node to size its user-transaction budget and by the scenario runner for reference.
public enum VerificationRate {
    public static func measure(seconds: Double) -> Double {
        let key = SigningKey(label: "verification-rate")
        let domain = Domain(chainId: "verification-rate")
        let envelope = Envelope(kind: .transfer, payload: Transfer(to: key.publicKey, amount: 1, fee: 1, nonce: 0).encoded,
                                domain: domain, key: key)
        let clock = ContinuousClock()
        let start = clock.now
        let limit = Duration.milliseconds(Int64(seconds * 1000))
        var count = 0
        while clock.now - start < limit {
            for _ in 0..<64 where envelope.verify(domain: domain) == .valid { count += 1 }
        }
        let elapsed = clock.now - start
        return elapsed.seconds > 0 ? Double(count) / elapsed.seconds : 0
    }
}

extension Duration {
    /// The duration in seconds, as a floating-point number (for rates and benchmark figures).
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
