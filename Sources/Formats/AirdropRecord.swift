/// What one airdrop step sent and what came back, as the client writes it to `rollup/<step>.json`
/// and the analysis reads it.
public struct AirdropRecord: Codable, Sendable, Equatable {
    public var id: String
    public var count: Int
    public var sent: Int
    public var seconds: Double
    /// Refusals answered by the sequencer, by reason.
    public var rejected: [String: Int]
    public var startMs: UInt64
    public var endMs: UInt64

    public init(id: String, count: Int, sent: Int, seconds: Double, rejected: [String: Int], startMs: UInt64,
                endMs: UInt64) {
        self.id = id
        self.count = count
        self.sent = sent
        self.seconds = seconds
        self.rejected = rejected
        self.startMs = startMs
        self.endMs = endMs
    }
}
