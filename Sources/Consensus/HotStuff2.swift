import Ledger
import Sodium
import Wire

/// HotStuff-2 (Malkhi and Nayak, "HotStuff-2: Optimal Two-Phase Responsive BFT", 2023) as a pure state machine,
/// in its basic form that decides one block per height (not the pipelined one), on the same ledger, blocks,
/// store, block sync and write-ahead sign state as Tendermint. Tags `// HS2 …` name the steps of the paper's
/// view: Enter, Propose, Vote (vote1), Lock (and vote2), Commit, and the pacemaker's view timer, timeouts and
/// the new leader's wait.
///
/// What makes it HotStuff: votes go to the view's leader only, and the leader forwards the +2/3 it collected as
/// a certificate (`sendCertificate`): O(n) messages per phase where Tendermint's all-to-all votes are O(n²),
/// for two more message delays per block (vote to the leader, certificate back, twice). What makes it
/// HotStuff-2: two voting phases (on the wire as Tendermint's prevote and precommit kinds, so faults by kind
/// read the same) and a view change without a third phase: a replica votes for a proposal whose certificate
/// is at least as recent as its lock; the new leader proposes at once when it holds a certificate of the view
/// just before (no lock can be higher: responsive), else once every validator's timeout reached it or after
/// the wait Δ (`leaderWait`), by which the highest lock of every correct validator has reached it.
public enum HotStuff2 {
    public struct Instance: Sendable {
        public let validators: ValidatorSet
        public let me: Int?
        public let settings: BFT.Settings
        public internal(set) var height: UInt64
        public internal(set) var round: UInt32
        /// `.propose` waiting for the view's proposal, `.prevote` after vote1, `.precommit` after vote2.
        public internal(set) var step: BFT.Step = .propose
        /// The lock: the value and view of the latest certificate this validator sent its vote2 on.
        public internal(set) var lockedValue: Bytes32?
        public internal(set) var lockedRound: Int32 = -1
        /// The latest certificate (+2/3 vote1) known for a proposal this validator holds: what it proposes as leader.
        public internal(set) var highValue: Bytes32?
        public internal(set) var highRound: Int32 = -1
        public internal(set) var lastSigned: BFT.SignState?
        public internal(set) var metrics = BFT.Metrics()
        var rounds = BFT.Rounds()
        public internal(set) var decided = false
        var futureInputs: [BFT.Input] = []
        /// In this view: the leader's wait is over; this validator has sent its timeout.
        var leaderWaitOver = false
        var timedOut = false

        public init(validators: ValidatorSet, me: Int?, settings: BFT.Settings, height: UInt64, round: UInt32 = 0,
                    lastSigned: BFT.SignState? = nil) {
            precondition(height >= 1, "consensus starts at height 1, got \(height)")
            self.validators = validators
            self.me = me
            self.settings = settings
            self.height = height
            self.round = round
            self.lastSigned = lastSigned
        }

        /// The leader of a view: the same rotation as Tendermint's proposers.
        public func leader(round: UInt32) -> Int { validators.proposer(height: height, round: round) }

        public mutating func process(_ input: BFT.Input) -> [BFT.Effect] {
            var effects: [BFT.Effect] = []
            switch input {
            case .start:
                enterView(round, &effects)
            case .proposal, .vote:
                intake(input, &effects)
            case .timeoutVote(let vote, let from, let signature):
                guard admit(height: vote.height, input: input) else { break }
                receiveTimeout(vote, from: from, signature: signature)
            case .timeout(let kind, let timerHeight, let timerRound):
                onTimer(kind, height: timerHeight, round: timerRound, &effects)
            case .committedElsewhere(let committed):
                if committed >= height { enterHeight(committed + 1, &effects) }
            }
            evaluate(&effects)
            return effects
        }

        mutating func receiveTimeout(_ vote: Vote, from: Int, signature: Bytes64) {
            guard from >= 0, from < validators.count, vote.blockId == nil else {
                metrics.unknownValidator += 1
                return
            }
            // Views this validator has left teach nothing, except the one just before (a new leader counts its timeouts).
            guard vote.round + 1 >= round else { return }
            guard vote.round <= round + settings.roundsAheadMax else {
                metrics.roundTooFarAhead += 1
                return
            }
            let stake = validators.stake(of: from)
            if case .duplicate = rounds[vote.round, default: BFT.RoundState()].timeouts.add(
                validator: from, stake: stake, blockId: nil, signature: signature) {
                metrics.duplicateVote += 1
            }
        }

        // HS2 Enter: start the view timer; a new leader after a failed view also starts its wait (Δ).
        mutating func enterView(_ view: UInt32, _ effects: inout [BFT.Effect]) {
            round = view
            step = .propose
            leaderWaitOver = false
            timedOut = false
            effects.append(.roundStarted(height: height, round: round))
            effects.append(.scheduleTimeout(.view, height: height, round: round, durationMs: settings.duration(.view, round: round)))
            if me == leader(round: round), round > 0 {
                effects.append(.scheduleTimeout(.leaderWait, height: height, round: round,
                                                durationMs: settings.duration(.leaderWait, round: round)))
            }
        }

        private mutating func onTimer(_ kind: BFT.TimeoutKind, height timerHeight: UInt64, round timerRound: UInt32,
                                      _ effects: inout [BFT.Effect]) {
            guard timerHeight == height else { return }
            switch kind {
            case .view: // HS2 pacemaker: the view ended without a decision
                guard timerRound == round, step != .commit else { return }
                if settings.planted == .hs2TimeoutOnce, timedOut { return } // the planted bug: no second timeout
                sendTimeout(&effects)
                // Again after as long, until +2/3 time out (a timeout can be lost like any message).
                effects.append(.scheduleTimeout(.view, height: height, round: round, durationMs: settings.duration(.view, round: round)))
            case .leaderWait: // HS2 Propose: Δ has passed since the view began
                if timerRound == round { leaderWaitOver = true }
            case .commit:
                if step == .commit { enterHeight(height + 1, &effects) }
            case .propose, .prevote, .precommit:
                metrics.otherProtocol += 1
            }
        }

        /// This validator's timeout for the current view, with its highest certificate to the next leader.
        mutating func sendTimeout(_ effects: inout [BFT.Effect]) {
            timedOut = true
            effects.append(.broadcastTimeout(Vote(height: height, round: round, blockId: nil)))
            if highRound >= 0, let value = highValue, let at = rounds.index(of: UInt32(highRound)) {
                effects.append(.sendCertificate(.prevote, Vote(height: height, round: UInt32(highRound), blockId: value),
                                                signatures: rounds.states[at].prevotes.signatures(for: value),
                                                to: leader(round: round + 1)))
            }
        }

        mutating func enterHeight(_ newHeight: UInt64, _ effects: inout [BFT.Effect]) {
            height = newHeight
            round = 0
            step = .propose
            lockedValue = nil
            lockedRound = -1
            highValue = nil
            highRound = -1
            decided = false
            rounds.removeAll()
            effects.append(.newHeight(height))
            enterView(0, &effects)
            replayFutureInputs(&effects) { core, vote, from, signature in
                core.receiveTimeout(vote, from: from, signature: signature)
            }
        }

        /// Signs a vote (after its sign state) and sends it to the view's leader.
        mutating func sign(_ type: BFT.VoteType, _ value: Bytes32, _ effects: inout [BFT.Effect]) {
            let state = BFT.SignState(height: height, round: round, step: type == .prevote ? 1 : 2)
            guard lastSigned.map({ state > $0 }) ?? true else {
                metrics.refusedToResign += 1
                return
            }
            guard me != nil else { return }
            lastSigned = state
            effects.append(.persistSignState(state))
            effects.append(.sendVote(type, Vote(height: height, round: round, blockId: value), to: leader(round: round)))
        }
    }
}

extension HotStuff2.Instance: ConsensusCore, RoundKeeping {
    public var snapshot: [String: String] {
        var out: [String: String] = [
            "protocol": "hotstuff2", "height": "\(height)", "round": "\(round)", "step": step.description,
            "leader": "\(leader(round: round))",
            "locked": lockedValue.map { "\($0.short)@\(lockedRound)" } ?? "none",
            "high": highValue.map { "\($0.short)@\(highRound)" } ?? "none",
            "lastSigned": lastSigned.map { "\($0.height)/\($0.round)/\($0.step)" } ?? "none",
            "futureInputs": "\(futureInputs.count)",
        ]
        roundLines(&out)
        return out
    }
}
