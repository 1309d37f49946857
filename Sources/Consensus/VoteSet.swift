import Sodium
import Wire

extension Tendermint {
    /// The votes of one type in one round: at most one per validator, with stake tallied per value.
    struct VoteSet: Sendable {
        struct Entry: Sendable {
            var blockId: Bytes32?
            var signature: Bytes64
        }

        enum AddResult { case added, duplicate, conflicting(Entry) }

        private(set) var entries: [Int: Entry] = [:]
        private(set) var stakeByValue: [Bytes32?: UInt64] = [:]
        private(set) var totalStake: UInt64 = 0

        mutating func add(validator: Int, stake: UInt64, blockId: Bytes32?, signature: Bytes64) -> AddResult {
            if let existing = entries[validator] {
                return existing.blockId == blockId ? .duplicate : .conflicting(existing)
            }
            entries[validator] = Entry(blockId: blockId, signature: signature)
            stakeByValue[blockId, default: 0] += stake
            totalStake += stake
            return .added
        }

        func stake(for blockId: Bytes32?) -> UInt64 { stakeByValue[blockId] ?? 0 }

        /// The value (or nil) that has a quorum, if any.
        func quorumValue(_ isQuorum: (UInt64) -> Bool) -> Bytes32?? {
            for (value, stake) in stakeByValue where isQuorum(stake) { return .some(value) }
            return .none
        }

        func signatures(for blockId: Bytes32) -> [CommitCertificate.Signature] {
            entries.filter { $0.value.blockId == blockId }
                .map { CommitCertificate.Signature(validator: UInt16($0.key), signature: $0.value.signature) }
                .sorted { $0.validator < $1.validator }
        }

        var voters: Dictionary<Int, Entry>.Keys { entries.keys }
    }

    /// Everything known about one round of the current height.
    struct RoundState: Sendable {
        var proposal: Proposal?
        var proposalValid = false
        var prevotes = VoteSet()
        var precommits = VoteSet()
        var prevoteTimeoutScheduled = false   // L34 "for the first time"
        var precommitTimeoutScheduled = false // L47 "for the first time"
        var lockedOrUpdatedValid = false      // L36 "for the first time"
    }
}
