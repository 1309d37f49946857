import FraudProof
import Ledger
import Sodium
import Wire

/// A node's part in the dispute game (Topologies/README.md, "Fraud proofs"), as a pure instance fed every L1 block's
/// dispute events and the contract's state after it:
/// - the proposer (in the sequencer) executes each batch L1 records, asserts its end root with the
///   trace commitment, and answers every challenge; if one of its assertions is defeated it takes the
///   L1-derived state as its own from that batch on ("re-derives from L1") and asserts again;
/// - a challenger (in a replica) executes each batch from L1 alone, challenges an assertion whose root
///   differs from its own (on a parent it agrees with), and plays the game to the end.
/// Everything it knows comes from L1, so a node restarted mid-game replays L1 and plays on.
/// Dishonest behaviours come from `Settings`; honest nodes have `lie == nil`.
public enum DisputeAgent {
    public enum Role: String, Sendable { case proposer, challenger }

    public struct Settings: Sendable {
        public var role: Role
        /// The lie this node tells (nil: honest), and the batch it tells it at (nil: every batch).
        public var lie: Strategy?
        public var lieBatch: UInt64?
        /// Opens (asserts or challenges) but never moves in a game.
        public var silent = false
        /// Identities this node plays as (challengers: several lying challengers, a Sybil attack).
        public var identities = 1
        /// A challenger waits for the window's last `lateChallengeBlocks` blocks to challenge: as late as
        /// it can while its transaction still has room to be included (at the very last block, one busy
        /// proposer made the challenge miss the window and the game never opened). "Last blocks" of the
        /// chain, not of this node's replay: a node catching up on old blocks judges by the tip it knows.
        public var challengeAtWindowEnd = false
        public var lateChallengeBlocks: UInt64 = 4
        /// A transaction not reflected on L1 after this many blocks is sent again.
        public var resendBlocks: UInt64 = 3

        public init(role: Role) { self.role = role }
    }

    /// A transaction to sign with identity `identity` (0: the node's own key) and send to the validators.
    public struct Action: Sendable, Equatable {
        public var identity: Int
        public var tx: DisputeTx
    }

    struct LiarKey: Hashable, Sendable {
        var batch: UInt64
        var identity: Int
    }

    public struct Instance: Sendable {
        public private(set) var settings: Settings
        let context: Machine.Context
        /// The L2 state L1's batches lead to, after the newest recorded batch.
        var truth: FullStore
        /// The proposer's own belief (differs from `truth` after a deviation, until it is defeated).
        var belief: FullStore
        var diverged = false
        public private(set) var defeated = false
        /// By batch: the L1-derived party, and this node's own where it differs.
        var honest: [UInt64: Party] = [:]
        var own: [UInt64: Party] = [:]
        /// Lying challengers' parties, by batch and identity.
        var liars: [LiarKey: Party] = [:]
        /// What was sent, by what it was for, at which L1 height (bounded: entries older than
        /// `sentMemoryBlocks` are forgotten).
        var sent: [String: UInt64] = [:]
        static let sentMemoryBlocks: UInt64 = 200

        public init(settings: Settings, context: Machine.Context, genesis: FullStore) {
            self.settings = settings
            self.context = context
            truth = genesis
            belief = genesis
        }

        /// The batches this node holds executions for (bounded by the contract's unconfirmed batches).
        public var heldBatches: Int { honest.count }

        /// Takes one L1 block's dispute events and the contract after it; returns what to send (nothing
        /// unless `live`: while replaying stored blocks the contract state is not the current one).
        /// `tipHeight` is the highest L1 height this node has heard the chain reach (its peers' heights;
        /// `height` or less when it knows of none higher).
        public mutating func onL1Block(height: UInt64, tipHeight: UInt64, events: [DisputeEvent],
                                       disputes: Disputes, identities: [PublicKey], live: Bool) -> [Action] {
            var actions: [Action] = []
            for event in events { take(event) }
            sent = sent.filter { $0.value + Instance.sentMemoryBlocks > height }
            guard live else { return actions }
            switch settings.role {
            case .proposer:
                actions += assertNext(disputes: disputes, height: height)
                actions += answer(disputes: disputes, identities: identities, height: height)
            case .challenger:
                actions += challenge(disputes: disputes, identities: identities, height: height,
                                     tipHeight: max(height, tipHeight))
                actions += answer(disputes: disputes, identities: identities, height: height)
            }
            return actions
        }

        private mutating func take(_ event: DisputeEvent) {
            switch event {
            case .batchRecorded(let record, let items):
                let execution = Execution(items: items, start: truth, context: context)
                let party = Party(execution: execution, strategy: .honest)
                truth = party.store
                honest[record.index] = party
                guard settings.role == .proposer else { return }
                let lying = !defeated && settings.lie != nil && (settings.lieBatch ?? record.index) == record.index
                if lying || diverged {
                    let mine = Party(execution: Execution(items: items, start: belief, context: context),
                                     strategy: lying ? settings.lie! : .honest)
                    own[record.index] = mine
                    belief = mine.store
                    diverged = true
                } else {
                    belief = truth
                }
            case .rejected(_, let batch, _, _):
                guard settings.role == .proposer else { return }
                // Re-derive from L1: the L1-derived executions are this proposer's from that batch on.
                defeated = true
                diverged = false
                belief = truth
                for key in own.keys where key >= batch { own[key] = nil }
            case .confirmed(_, let batch, _, _):
                for key in honest.keys where key <= batch { honest[key] = nil }
                for key in own.keys where key <= batch { own[key] = nil }
                liars = liars.filter { $0.key.batch > batch }
            default:
                break
            }
        }

        /// The proposer asserts the oldest recorded batch without a live assertion, once its parent is live.
        private mutating func assertNext(disputes: Disputes, height: UInt64) -> [Action] {
            guard let record = disputes.batches.values.filter({ disputes.byBatch[$0.index] == nil }).min(by: { $0.index < $1.index }),
                  let parent = disputes.expectedParent(of: record),
                  let party = own[record.index] ?? honest[record.index] else { return [] }
            let assertion = Assertion(batch: record.index, parent: parent, root: party.claimedRoot,
                                      commitment: party.trace.commitment, endProof: party.endClaim.proof)
            return once("assert/\(record.index)/\(parent.hex)", height: height) ? [Action(identity: 0, tx: .assert(assertion))] : []
        }

        /// A challenger disputes pending assertions within their window: an honest one those whose root is
        /// not its own (on a parent it agrees with); a lying one (Sybil) those whose root is right.
        private mutating func challenge(disputes: Disputes, identities: [PublicKey], height: UInt64,
                                        tipHeight: UInt64) -> [Action] {
            var actions: [Action] = []
            for record in disputes.orderedAssertions where !record.confirmed && height < record.windowEnd(disputes.settings) {
                if settings.challengeAtWindowEnd, tipHeight + settings.lateChallengeBlocks < record.windowEnd(disputes.settings) {
                    continue
                }
                let batch = record.assertion.batch
                if settings.lie != nil, let lieBatch = settings.lieBatch, lieBatch != batch { continue }
                guard let truth = honest[batch], truth.trace.start == record.startHash else { continue }
                let wrong = truth.claimedRoot != record.assertion.root
                guard wrong == (settings.lie == nil) else { continue }
                for identity in 0..<min(settings.identities, identities.count) {
                    guard !record.games.contains(where: { $0.challenger == identities[identity] }) else { continue }
                    let party = party(for: batch, identity: identity, truth: truth)
                    guard once("challenge/\(record.id.hex)/\(identity)", height: height) else { continue }
                    actions.append(Action(identity: identity, tx: .challenge(assertion: record.id,
                                                                             commitment: party.trace.commitment,
                                                                             end: party.endClaim)))
                }
            }
            return actions
        }

        /// Every move this node owes in games it is a party to.
        private mutating func answer(disputes: Disputes, identities: [PublicKey], height: UInt64) -> [Action] {
            guard !settings.silent else { return [] }
            var actions: [Action] = []
            for record in disputes.orderedAssertions where !record.confirmed {
                let batch = record.assertion.batch
                for (index, entry) in record.games.enumerated() where !entry.settled && entry.game.outcome == nil {
                    let side: Bisection.Side
                    let identity: Int
                    let party: Party?
                    if settings.role == .proposer {
                        (side, identity, party) = (.proposer, 0, own[batch] ?? honest[batch])
                    } else if let mine = identities.firstIndex(of: entry.challenger), let truth = honest[batch] {
                        (side, identity, party) = (.challenger, mine, self.party(for: batch, identity: mine, truth: truth))
                    } else {
                        continue
                    }
                    guard let party, party.trace.commitment == (side == .proposer ? record.assertion.commitment
                                                                                   : entry.game.challengerCommitment),
                          let move = party.nextMove(in: entry.game, as: side) else { continue }
                    let game = entry.game
                    guard once("move/\(record.id.hex)/\(index)/\(game.low)/\(game.high)/\(game.turn)", height: height) else {
                        continue
                    }
                    switch move {
                    case .claim(let claim):
                        actions.append(Action(identity: identity, tx: .move(assertion: record.id, game: UInt32(index), claim: claim)))
                    case .oneStep(let proof):
                        actions.append(Action(identity: identity, tx: .oneStep(assertion: record.id, game: UInt32(index),
                                                                             proof: proof)))
                    }
                }
            }
            return actions
        }

        /// The batch the lie is told at, once known (a sequencer's phantom deposit lands in whichever batch
        /// starts next; until then `lieBatch` is `.max`, no batch).
        public mutating func lie(atBatch batch: UInt64) {
            settings.lieBatch = batch
        }

        /// The party a challenger plays as: the truth, or for a liar its lie (each identity lying at
        /// another step).
        private mutating func party(for batch: UInt64, identity: Int, truth: Party) -> Party {
            guard let lie = settings.lie else { return truth }
            let key = LiarKey(batch: batch, identity: identity)
            if let party = liars[key] { return party }
            var strategy = lie
            if case .deviate(let step, let account, let amount) = lie {
                strategy = .deviate(step: step + identity * 7, account: account, amount: amount)
            } else if case .lieEveryMove(let seed) = lie {
                strategy = .lieEveryMove(seed: seed &+ UInt64(identity))
            }
            let party = Party(execution: truth.execution, strategy: strategy)
            liars[key] = party
            return party
        }

        /// Whether to send what `key` names now: never sent, or sent `resendBlocks` ago without effect.
        private mutating func once(_ key: String, height: UInt64) -> Bool {
            if let at = sent[key], at + settings.resendBlocks > height { return false }
            sent[key] = height
            return true
        }
    }
}
