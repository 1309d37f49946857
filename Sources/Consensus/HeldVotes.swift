import Sodium

extension BFT {
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
    /// An equivocator's votes are kept for each value it signed (up to `valuesPerSlotMax`), as the core
    /// counts them: with Twins (one key in two processes on the two sides of a partition) the proof-of-lock
    /// a node holds can rest on the other twin's vote, and a peer that lacks that vote can never prevote
    /// the locked value — the side deadlocks (byzantine-twins halted one side at height 33, locked nodes
    /// prevoting the value and their unlocked peer nil, round after round).
    ///
    /// Generic over the message (a real node keeps the exact signed envelope; the simulator its
    /// message), pure, and bounded: at most `valuesPerSlotMax` votes per round, type and validator (the
    /// first for each value) and at most `roundsMax` rounds (the oldest go first).
    public struct HeldVotes<Message: Sendable>: Sendable {
        public struct Key: Hashable, Sendable, Comparable {
            public let round: UInt32
            public let isPrecommit: Bool
            public let validator: Int

            @inlinable
            public init(round: UInt32, isPrecommit: Bool, validator: Int) {
                self.round = round
                self.isPrecommit = isPrecommit
                self.validator = validator
            }

            @inlinable
            public static func < (a: Key, b: Key) -> Bool {
                (a.round, a.isPrecommit ? 1 : 0, a.validator) < (b.round, b.isPrecommit ? 1 : 0, b.validator)
            }
        }

        public static var roundsMax: Int { 8 }
        /// Distinct values kept per slot: an honest validator signs one; an equivocator's first two are
        /// enough to carry either side's proof-of-lock.
        public static var valuesPerSlotMax: Int { 2 }

        // Inlinable (and so these internals usable from inline code): the shells call `keep` for every
        // vote, and unspecialized generic code cost the simulator 13% of its time.
        @usableFromInline var currentHeight: UInt64 = 0
        @usableFromInline var votes: [Key: [(value: Bytes32?, message: Message)]] = [:]
        /// The rounds `votes` holds, at most `roundsMax`.
        @usableFromInline var rounds: [UInt32] = []

        public init() {}

        public var height: UInt64 { currentHeight }
        public var count: Int { votes.values.reduce(0) { $0 + $1.count } }

        /// Keeps `message` (a vote of `type` for `value` signed by `validator`) if it is for the node's current
        /// height and no more than one round ahead of it (a liar's far-future rounds must not push real ones
        /// out), and its slot does not hold this value or `valuesPerSlotMax` values already.
        @inlinable
        public mutating func keep(_ message: Message, _ type: VoteType, value: Bytes32?, height: UInt64, round: UInt32,
                                  validator: Int, currentHeight nodeHeight: UInt64, currentRound: UInt32) {
            guard height == nodeHeight, UInt64(round) <= UInt64(currentRound) + 1 else { return }
            if currentHeight != nodeHeight { clear(for: nodeHeight) }
            let key = Key(round: round, isPrecommit: type == .precommit, validator: validator)
            if let at = votes.index(forKey: key) {
                // Read and appended in place (a copy of the slot would make the append copy it).
                guard votes.values[at].count < Self.valuesPerSlotMax,
                      !votes.values[at].contains(where: { $0.value == value }) else { return }
                votes.values[at].append((value, message))
                return
            }
            if !rounds.contains(round) {
                if rounds.count >= Self.roundsMax {
                    let oldest = rounds.min()!
                    guard oldest < round else { return } // older than everything kept: not worth a slot
                    rounds.removeAll { $0 == oldest }
                    votes = votes.filter { $0.key.round != oldest }
                }
                rounds.append(round)
            }
            votes[key] = [(value, message)]
        }

        /// Forgets everything: a new height started.
        @inlinable
        public mutating func clear(for newHeight: UInt64) {
            currentHeight = newHeight
            if !votes.isEmpty { votes.removeAll(keepingCapacity: true) }
            rounds.removeAll()
        }

        /// What a node stalled at `round` passes on: the votes of this round and the one before (a peer a
        /// round behind needs them to move on), and the prevotes of `polRound` (a re-proposed value is
        /// only prevoted by peers that saw its proof-of-lock), in a fixed order. Votes signed with the
        /// receiving peer's own key are included: a restarted peer may have lost its own earlier votes, and
        /// a twin lacks the ones its other half signed.
        public func toResend(round: UInt32, polRound: Int32?) -> [Message] {
            let lock = Int64(polRound ?? -1)
            return votes.keys.filter { key in
                UInt64(key.round) + 1 >= UInt64(round) || (Int64(key.round) == lock && !key.isPrecommit)
            }.sorted().flatMap { votes[$0]!.map(\.message) }
        }
    }
}
