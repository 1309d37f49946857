import Sodium
import Wire

extension BFT {
    /// The votes of one type in one round. Algorithm 1 counts, for each value, the distinct validators
    /// that signed a vote for it: an equivocating validator counts toward both of its values (as its
    /// signatures say), but toward "+2/3 of any" (L34, L44, L55) once, by its first vote. Dropping the
    /// second vote instead halts the chain: honest nodes that saw the two votes in different orders
    /// disagree on whether a value has its proof-of-lock, and the locked ones never unlock
    /// (byzantine-equivocation.toml halted for 11 s that way).
    struct VoteSet: Sendable {
        struct Entry: Sendable {
            var blockId: Bytes32?
            var signature: Bytes64
        }

        enum AddResult { case added, duplicate, conflicting(Entry) }

        /// Conflicting values kept per validator beyond its first vote (a liar can sign any number).
        static let conflictsPerValidatorMax = 3

        /// Each validator's first vote.
        private(set) var entries: [Int: Entry] = [:]
        /// Each validator's further, conflicting votes (at most `conflictsPerValidatorMax`).
        private(set) var conflicts: [Int: [Entry]] = [:]
        private(set) var stakeByValue: [Bytes32?: UInt64] = [:]
        private(set) var totalStake: UInt64 = 0

        /// `voters`: how many validators may vote (the first vote sizes the table for them, instead of growing
        /// it and rehashing at every doubling).
        mutating func add(validator: Int, stake: UInt64, blockId: Bytes32?, signature: Bytes64,
                          voters: Int = 0) -> AddResult {
            if entries.isEmpty, voters > 0 { entries.reserveCapacity(voters) }
            guard let existing = entries[validator] else {
                entries[validator] = Entry(blockId: blockId, signature: signature)
                stakeByValue[blockId, default: 0] += stake
                totalStake += stake
                return .added
            }
            let others = conflicts[validator] ?? []
            if existing.blockId == blockId || others.contains(where: { $0.blockId == blockId }) { return .duplicate }
            if others.count < VoteSet.conflictsPerValidatorMax {
                conflicts[validator, default: []].append(Entry(blockId: blockId, signature: signature))
                stakeByValue[blockId, default: 0] += stake
            }
            return .conflicting(existing)
        }

        func stake(for blockId: Bytes32?) -> UInt64 { stakeByValue[blockId] ?? 0 }

        /// The value (or nil) that has a quorum, if any. Two can only when more than a third of the
        /// stake equivocates; then the first in evidence order (nil, then the smallest id), so every
        /// run picks the same one whatever the dictionary's order.
        func quorumValue(_ isQuorum: (UInt64) -> Bool) -> Bytes32?? {
            let values = stakeByValue.filter { isQuorum($0.value) }.map(\.key)
            guard !values.isEmpty else { return .none }
            return .some(values.min { DuplicateVoteEvidence.sortsFirst($0, $1) }!)
        }

        /// The validators that signed a vote for `blockId` (first or conflicting), with their signatures.
        func signers(of blockId: Bytes32) -> [(validator: Int, signature: Bytes64)] {
            var out: [(validator: Int, signature: Bytes64)] = []
            for (validator, entry) in entries {
                if entry.blockId == blockId {
                    out.append((validator, entry.signature))
                } else if let other = conflicts[validator]?.first(where: { $0.blockId == blockId }) {
                    out.append((validator, other.signature))
                }
            }
            return out.sorted { $0.validator < $1.validator }
        }

        func signatures(for blockId: Bytes32) -> [CommitCertificate.Signature] {
            signers(of: blockId).map { CommitCertificate.Signature(validator: UInt16($0.validator), signature: $0.signature) }
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
        /// HotStuff-2: validators whose view ended here without a decision, and the certificates a leader forwarded.
        var timeouts = VoteSet()
        var forwardedPrevotes = false
        var forwardedPrecommits = false
    }
}

extension BFT {
    /// The rounds of the current height that have any state, in ascending order. Two parallel arrays, not
    /// a dictionary: an array's element is read in place (`states[at].prevotes.totalStake`), while a
    /// dictionary's getter copies the whole round state — six vote maps retained and released on every
    /// rule evaluation, and a vote added to such a copy copied its maps too. A height has few rounds;
    /// lookups are a binary search.
    struct Rounds: Sendable {
        private(set) var numbers: [UInt32] = []
        /// `states[at]` is the state of round `numbers[at]`.
        private(set) var states: [RoundState] = []

        var isEmpty: Bool { numbers.isEmpty }

        /// Where round `number` is, or where it would be inserted.
        private func position(_ number: UInt32) -> Int {
            var low = 0, high = numbers.count
            while low < high {
                let mid = (low + high) / 2
                if numbers[mid] < number { low = mid + 1 } else { high = mid }
            }
            return low
        }

        func index(of number: UInt32) -> Int? {
            let at = position(number)
            return at < numbers.count && numbers[at] == number ? at : nil
        }

        /// A copy of round `number`'s state (status, tests); the rules read `states[at]` in place.
        subscript(number: UInt32) -> RoundState? { index(of: number).map { states[$0] } }

        /// Round `number`'s state for changing in place, created empty if the round has none.
        subscript(number: UInt32, default empty: @autoclosure () -> RoundState) -> RoundState {
            get { self[number] ?? empty() }
            _modify {
                let at = position(number)
                if at == numbers.count || numbers[at] != number {
                    numbers.insert(number, at: at)
                    states.insert(empty(), at: at)
                }
                yield &states[at]
            }
        }

        mutating func removeAll() {
            numbers.removeAll(keepingCapacity: true)
            states.removeAll(keepingCapacity: true)
        }
    }
}
