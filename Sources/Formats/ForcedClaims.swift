import Sodium
import Wire

/// A `forced_tx` step: `count` L2 claims, each from a fresh L2 account, wrapped as L1 transactions for
/// the inbox (forced inclusion). The real runner sends them to every validator over UDP; the simulator
/// delivers the same envelopes. Both write the step's record to `rollup/<step>.json`.
public struct ForcedClaims: Sendable {
    /// What a forced-transaction step posted.
    public struct Record: Codable, Sendable {
        public var id: String
        public var count: Int
        public var sentMs: UInt64
        /// The L2 accounts the forced claims fund (hex keys), to check they were included.
        public var claimers: [String]
    }

    public var envelopes: [Envelope] = []
    public var record: Record

    /// Nonces come from `sentMs`: a later step (or run) always uses higher ones.
    public init(chainId: String, seed: UInt64, stepId: String, count: Int, sentMs: UInt64) {
        let domain = Domain(chainId: chainId)
        record = Record(id: stepId, count: count, sentMs: sentMs, claimers: [])
        for index in 0..<count {
            let claimer = SigningKey(label: "\(chainId)/\(stepId)/forced-claimer/\(index)")
            record.claimers.append(claimer.publicKey.hex)
            let inner = Envelope(kind: .l2Claim, payload: Claim(fee: 0).encoded, domain: domain, key: claimer)
            let sender = ClusterSetup.forcedSenderKey(chainId: chainId, seed: seed,
                                                      index: index % ClusterSetup.forcedSendersCount)
            let nonce = sentMs * 1_000 + UInt64(index / ClusterSetup.forcedSendersCount)
            let forced = ForcedTx(fee: 10, nonce: nonce, l2Tx: inner.bytes)
            envelopes.append(Envelope(kind: .forcedTx, payload: forced.encoded, domain: domain, key: sender))
        }
    }
}
