import Basics
import Ledger
import Sodium
import Wire

/// What the replica logic both shells run needs of the shell it runs in: the node's (a block store on
/// disk, an event log file, metrics, UDP) and the simulator's (durable state kept in memory across a
/// simulated crash, the simulated network). The state is the shell's; the logic (`ReplicaHost+*.swift`:
/// receiving, proposals, sync, effects and commits) is written once, for both, and a shell only says how
/// to store, read, send, record and count (its ports).
public protocol ReplicaHost: ConsensusShell {
    /// How the replica core names a peer (the node: by key, twins together; the simulator: by key slot).
    associatedtype ReplicaPeer: Hashable & Comparable & Sendable
    /// How the shell names a peer in the handshake (the node: by name, twins apart; the simulator: by slot).
    associatedtype LinkPeer: Hashable & Comparable & Sendable

    var ledger: Ledger { get set }
    var mempool: Mempool { get set }
    var replica: Replica.Instance<Envelope, ReplicaPeer> { get set }
    var proposals: Replica.Proposals<Replica.PartAssembly> { get set }
    var reception: Replica.Reception { get set }
    /// The run's seeded generator (the node's own; the simulator's one for the whole run).
    var rng: SplitMix64 { get set }
    /// Set at a start on another binary, settled by the next commit (see `Replica.TipAlternative`).
    var tipAlternative: Replica.TipAlternative? { get set }
    var binary: Replica.Binary { get }
    var plans: [UpgradePlan] { get }
    var validators: ValidatorSet { get }
    /// The chain and fork this node signs for.
    var domain: Domain { get }
    var datagramPayloadBytesMax: Int { get }
    /// Block building limits and the clock block timestamps come from (skewed when a fault says so).
    var blockTxsMax: Int { get }
    var blockBytesMax: Int { get }
    var protocolClockMs: UInt64 { get }
    /// The highest block stored, and a stored block (nil: not there, or unreadable).
    var storeHeight: UInt64 { get }
    func committedBlock(at height: UInt64) -> CommittedBlock?
    var nowMs: UInt64 { get }

    /// Makes the committed block durable, with the rules it is executed under, before anything else happens.
    func storeCommitted(_ committed: CommittedBlock, rules: UInt16)
    /// The rules the stored tip counts as executed under, once the next block settles it (`stored`: the store
    /// already says so).
    func settleTipRules(_ rules: UInt16, stored: Bool)
    /// What only this shell does once a block is executed (its views, metrics, the simulator's monitor).
    func committed(_ committed: CommittedBlock, result: Ledger.BlockResult)
    /// Votes-only mode switched: what the shell's receiving edge must now do (drop transactions unchecked).
    func votesOnlyChanged(_ on: Bool)
    /// A line of the event log (built only when the shell writes one); `flush`: before anything else happens.
    func record(_ event: @autoclosure () -> Replica.Event, flush: Bool)
    /// A line of the operator's log (the simulator has none: every fact it matters for is also an event).
    func warn(_ text: @autoclosure () -> String)
    /// Counts in the shell's own metrics.
    func count(_ counter: Replica.Counter)

    // Messages.
    /// This node's message for `domain`: signed by the node; the simulator's network is authenticated by
    /// construction, so its envelopes carry no signature.
    func envelope(_ kind: MessageKind, _ payload: [UInt8], domain: Domain) -> Envelope
    /// Checks a signature the shared logic must check itself (a synced precommit's): the node verifies it.
    func signatureHolds(_ envelope: Envelope) -> Bool
    /// Sends to every peer, to one peer by the core's name for it (and its twins), and to one link.
    func sendToAll(_ envelope: Envelope)
    func send(_ envelope: Envelope, toPeer peer: ReplicaPeer)
    func send(_ envelope: Envelope, toLink peer: LinkPeer)
    /// The peer signing with `key` (nil: not this node's peer).
    func peerId(signing key: PublicKey) -> ReplicaPeer?
    /// Whether to relay this message (the node's transport has de-duplicated already).
    func shouldRelay(_ envelope: Envelope) -> Bool
    /// Rollup traffic from a peer (a sequencer's feed, a rejection), for the shell's rollup part.
    func receiveRollup(_ envelope: Envelope, _ message: Message)

    // The effects of the consensus core (`execute`).
    /// This node's validator index (nil: it follows without voting).
    var me: Int? { get }
    /// The sign state the core asked to persist, written with the signature that follows it.
    var pendingSignState: Tendermint.SignState? { get set }
    /// Makes the sign state durable with the message signed under it (see `persistSignState`); false: the
    /// write failed, do not sign.
    func writeSignState(_ state: Tendermint.SignState, kind: MessageKind, payload: [UInt8]) -> Bool
    /// What only this shell does with each signature it makes (the simulator's safety monitor).
    func signed(_ kind: MessageKind, height: UInt64, round: UInt32, value: Bytes32?, validator: String)
    /// The name this node signs under (its validator's; its own when it is none).
    var signerName: String { get }
    /// Peers in name order, one per key: the order a lying node splits them in.
    var peersByName: [LinkPeer] { get }
    func scheduleTimeout(_ kind: Tendermint.TimeoutKind, height: UInt64, round: UInt32, afterMs: UInt64)
    /// What only this shell does when a round starts (metrics, the simulator's step triggers).
    func roundStarted(height: UInt64, round: UInt32)
    /// A new height: the shell forgets what it kept for older ones (relayed votes).
    func forgetBelow(height: UInt64)
    /// What the shell checks of a block beyond the ledger's rules (the node: signatures not yet checked); nil: fine.
    func transactionProblem(_ block: Block) -> String?
    /// What only this shell does with an invalid proposal (metrics, the operator's log).
    func countInvalidProposal(_ key: Replica.ProposalKey, _ problem: String)

    // Starting consensus (`startConsensusIfReady`).
    var consensusStarted: Bool { get set }
    /// When this process started (its clock).
    var startedAtMs: UInt64 { get }
    /// The validators this node has heard from (by index), itself included.
    var heardValidators: Set<Int> { get }
    /// The core's height, round and step (nil: no core running), and its counters.
    var corePosition: (height: UInt64, round: UInt32, step: Tendermint.Step)? { get }
    var coreMetrics: Tendermint.Metrics? { get }
    /// Whether the core counts this vote already (a certificate's copy of it needs no second check).
    func coreHasVote(_ type: BFT.VoteType, round: UInt32, validator: Int, height: UInt64) -> Bool
    /// The core's settings (how far ahead it looks, its quorum rule).
    var coreSettings: Tendermint.Settings { get }
    /// The last sign state made durable, and the vote signed with it (as the sign-state file keeps them).
    var lastSignState: Tendermint.SignState? { get }
    var lastSignedVote: (type: Tendermint.VoteType, vote: Vote)? { get }

    // Evidence, stops and byzantine modes.
    /// A validator's name for the event log.
    func validatorName(_ key: PublicKey) -> String
    /// The evidence transaction this node sends for an equivocation (signed with both offending signatures).
    func evidenceTransaction(_ evidence: DuplicateVoteEvidence) -> Envelope
    /// What only this shell does when it stops (metrics, the operator's log).
    func stopped(_ stop: Replica.Stop)
    /// What only this shell does when its byzantine modes change.
    func byzantineChanged(_ modes: [ByzantineMode])

    // Re-sends and block sync.
    /// Every peer, by the id the replica core names it with.
    var peerIds: [ReplicaPeer] { get }
    /// The peer signing as validator `index` (nil: not this node's peer).
    func peer(ofValidator index: Int) -> ReplicaPeer?
    /// The signers of the block +2/3 precommitted at this height in an earlier round, when the core saw one.
    var decidedElsewhereSigners: [Int]? { get }

    // The handshake (`heardHello`).
    var handshakes: Replica.Handshakes<LinkPeer, Replica.HeldMessage> { get set }
    /// Every peer the handshake runs with, and the ones signing with `key` (a twinned key's message could
    /// come from any of them).
    var linkPeers: [LinkPeer] { get }
    func linkPeers(signing key: PublicKey) -> [LinkPeer]
    /// The first of those: whose handshake admits the key's messages.
    func handshakeLink(signing key: PublicKey) -> LinkPeer?
    /// `[cluster] handshake = "rules"`: peers whose binary applies other rules are refused too.
    var handshakeChecksRules: Bool { get }
    /// A peer's name for the event log.
    func linkName(_ peer: LinkPeer) -> String
    /// What only this shell does with a hello's outcome (metrics, the operator's log).
    func handshakeHeard(_ peer: LinkPeer, _ outcome: Replica.Handshakes<LinkPeer, Replica.HeldMessage>.HelloOutcome)
}
