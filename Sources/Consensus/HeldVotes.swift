extension Tendermint {
    /// Peers' signed votes of the current height, kept so that a stalled node can pass them on.
    ///
    /// Tendermint's liveness assumes gossip: a vote one correct node received eventually reaches every
    /// correct node, even if its signer crashed or was cut off right after sending it (CometBFT's
    /// `gossipVotesRoutine` sends each peer the votes it lacks from the node's own vote sets).
    /// Re-sending only our own votes is not enough: in swarm seed 59 a validator prevoted nil, reached
    /// two of four peers before a partition, was killed and restarted with only its last vote (the
    /// precommit); the peers that had its prevote precommitted, the ones that had not waited for
    /// +2/3 prevotes, and the height never ended. With these kept, a stalled node hands its peers'
    /// votes on and the height completes.
    ///
    /// Generic over the message (a real node keeps the exact signed envelope; the simulator its
    /// message), pure, and bounded: one vote per round, type and validator (the first; conflicting
    /// ones travel as evidence) and at most `roundsMax` rounds (the oldest go first).
    public struct HeldVotes<Message: Sendable>: Sendable {
        public struct Key: Hashable, Sendable, Comparable {
            public let round: UInt32
            public let isPrecommit: Bool
            public let validator: Int

            public static func < (a: Key, b: Key) -> Bool {
                (a.round, a.isPrecommit ? 1 : 0, a.validator) < (b.round, b.isPrecommit ? 1 : 0, b.validator)
            }
        }

        public static var roundsMax: Int { 8 }

        public private(set) var height: UInt64 = 0
        private var byRound: [UInt32: [Key: Message]] = [:]

        public init() {}

        public var count: Int { byRound.values.reduce(0) { $0 + $1.count } }

        /// Keeps `message` (a vote of `type` signed by `validator`) if it is for the node's current height
        /// and no more than one round ahead of it (a liar's far-future rounds must not push real ones out).
        public mutating func keep(_ message: Message, _ type: VoteType, height: UInt64, round: UInt32, validator: Int,
                                  currentHeight: UInt64, currentRound: UInt32) {
            guard height == currentHeight, UInt64(round) <= UInt64(currentRound) + 1 else { return }
            if self.height != currentHeight { clear(for: currentHeight) }
            let key = Key(round: round, isPrecommit: type == .precommit, validator: validator)
            if byRound[round] == nil {
                if byRound.count >= Self.roundsMax {
                    let oldest = byRound.keys.min()!
                    guard oldest < round else { return } // older than everything kept: not worth a slot
                    byRound[oldest] = nil
                }
                byRound[round] = [:]
            }
            if byRound[round]![key] == nil { byRound[round]![key] = message }
        }

        /// Forgets everything: a new height started.
        public mutating func clear(for newHeight: UInt64) {
            height = newHeight
            byRound.removeAll()
        }

        /// What a node stalled at `round` passes on: the votes of this round and the one before (a peer a
        /// round behind needs them to move on), and the prevotes of `polRound` (a re-proposed value is
        /// only prevoted by peers that saw its proof-of-lock), in a fixed order.
        public func toResend(round: UInt32, polRound: Int32?) -> [Message] {
            var keys: [Key] = []
            for (kept, votes) in byRound {
                if UInt64(kept) + 1 >= UInt64(round) {
                    keys += votes.keys
                } else if Int64(kept) == Int64(polRound ?? -1) {
                    keys += votes.keys.filter { !$0.isPrecommit }
                }
            }
            return keys.sorted().map { byRound[$0.round]![$0]! }
        }
    }
}
