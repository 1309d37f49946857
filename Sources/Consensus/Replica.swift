import DequeModule
import Sodium
import Wire

/// The replica core: what a validator keeps and decides around its `Tendermint.Instance`, the same in
/// both engines. The node's shell (`NodeShell`: real sockets, signatures, disk) and the simulator's
/// (`SimNode`: virtual time and network) each hold one and only translate: they feed it what arrived
/// and when, and perform the sends it plans.
///
/// It owns the message memory of the current height (our own votes and proposal, peers' votes held for
/// passing on), the stall rule and what a stalled node re-sends, peers' committed heights and the block
/// sync requests they lead to, the relay fan-out, the offences already reported, and a byzantine node's
/// send plans. Pure: time comes in as an argument, randomness as a generator the shell seeds (the
/// simulator its run's, the node one from its key), and no effect is performed here.
///
/// Generic over `Message` (the node keeps signed envelopes, the simulator its message values) and
/// `Peer` (the node's public keys, the simulator's node slots).
public enum Replica {
    /// Where a planned message goes.
    public enum Send<Message: Sendable, Peer: Sendable>: Sendable {
        /// To every peer.
        case everyone(Message)
        /// To every peer except the ones signing with this validator's key (it authored the message).
        case everyoneBut(Message, validator: Int)
        /// To one peer.
        case peer(Message, Peer)
    }

    public struct Settings: Sendable, Equatable {
        /// The configured status interval (`limits.status_interval_ms`).
        public var statusIntervalMs: UInt64
        /// Peers this node gossips with.
        public var peerCount: Int
        /// Forwards of each new consensus message to this many random peers (0: no epidemic relay).
        public var relayFanout: Int

        /// Votes-only mode after this long without a new height (`limits.votes_only_after_ms`; 0: never).
        public var votesOnlyAfterMs: UInt64

        public init(statusIntervalMs: UInt64, peerCount: Int, relayFanout: Int, votesOnlyAfterMs: UInt64 = 0) {
            self.statusIntervalMs = statusIntervalMs
            self.peerCount = peerCount
            self.relayFanout = relayFanout
            self.votesOnlyAfterMs = votesOnlyAfterMs
        }

        /// Per peer, added to the status and re-send interval: every node broadcasts to every peer, so with
        /// N nodes the cluster's signature checks grow as N² / interval. Stretching the interval with the
        /// peer count keeps each node's checks near `statusIntervalMs` at three peers (100 validators: one
        /// status a second, not ten; measured by `faultline bench`).
        public static let gossipIntervalPerPeerMs: UInt64 = 10
        /// Heights asked for ahead of the store at once.
        public static let syncWindow: UInt64 = 4
        /// A block request not answered within this is sent again (to a peer drawn again).
        public static let syncRetryMs: UInt64 = 300
        /// Consensus starts once peers with +2/3 of the stake have been heard from, or this long after the
        /// start at the latest, so the first proposal is not sent into the void.
        public static let startWaitMaxMs: UInt64 = 2_000

        /// How often this node announces its status.
        public var gossipIntervalMs: UInt64 {
            max(statusIntervalMs, UInt64(peerCount) * Settings.gossipIntervalPerPeerMs)
        }

        /// No progress for this long (outside the pause after a commit) is a stall: the height's messages
        /// go out again. Twice the gossip interval in large clusters: at 100 validators a height takes about
        /// a second, and re-sending after one interval re-sent most votes to all 99 peers at every height.
        public var stallMs: UInt64 {
            max(statusIntervalMs, 100, UInt64(peerCount) * 2 * Settings.gossipIntervalPerPeerMs)
        }

        /// A peer counts as up while its last word is this recent.
        public var peerSeenWindowMs: UInt64 { max(2_000, 3 * gossipIntervalMs) }

        /// Blocks are asked of peers heard from this recently.
        public var syncHolderWindowMs: UInt64 { max(5_000, peerSeenWindowMs) }
    }

    /// What the core knows of a peer: the highest height it has committed, and when it last said so.
    public struct PeerHeight: Sendable, Equatable {
        public var height: UInt64
        public var seenMs: UInt64

        @inlinable
        public init(height: UInt64, seenMs: UInt64) {
            self.height = height
            self.seenMs = seenMs
        }
    }

    public struct Instance<Message: Sendable, Peer: Hashable & Comparable & Sendable>: Sendable {
        public typealias Planned = Send<Message, Peer>

        public static var ownVotesMax: Int { 6 }
        public static var ownPrevotesMax: Int { 256 }
        public static var evidenceReportedMax: Int { 4_096 }

        public let settings: Settings

        /// Our own votes of the current height (the last `ownVotesMax`), re-sent while the height stalls
        /// (Tendermint assumes eventual delivery; a peer that was down or partitioned missed them).
        public private(set) var ownVotes: [(type: Tendermint.VoteType, round: UInt32, message: Message)] = []
        /// Our prevote of each round of the current height: a proposal that re-proposes a value from round
        /// r needs round r's prevotes at every peer (Algorithm 1, L28), long after `ownVotes` moved on.
        public private(set) var ownPrevotes: [UInt32: Message] = [:]
        /// Our proposal of the current height as it went to every peer (with its block or parts).
        public private(set) var ownProposal: [Message] = []
        /// Peers' signed votes of the current height, passed on while stalled (see `Tendermint.HeldVotes`).
        public var heldVotes: Tendermint.HeldVotes<Message> { held }
        /// Peers' committed heights, from their statuses and votes.
        public var peerHeights: [Peer: PeerHeight] { heights }
        // Inlinable (and so these internals usable from inline code): the shells call `heardVote` and
        // `heard` for every vote, and unspecialized generic code cost the simulator 8% of its time.
        @usableFromInline var held = Tendermint.HeldVotes<Message>()
        @usableFromInline var heights: [Peer: PeerHeight] = [:]
        /// True while the byzantine modes include `replay` (checked for every vote).
        @usableFromInline var keepsReplays = false
        /// Block requests in flight: height → sent at.
        public private(set) var syncRequested: [UInt64: UInt64] = [:]
        /// Offences this node has reported (one evidence transaction each).
        public private(set) var evidenceReported: Set<DuplicateVoteEvidence.Key> = []
        /// Misbehaviour switched on (empty for an honest node), its counters and memory.
        public internal(set) var byzantine = Byzantine()

        var lastProgressMs: UInt64 = 0
        var lastRebroadcastMs: UInt64 = 0
        var rebroadcasts = 0
        var lastStatusMs: UInt64 = 0
        /// A vote for height h tells every peer this node committed h - 1, so while votes flow the periodic
        /// status is skipped (at 100 validators statuses were half of all signature checks).
        var lastVoteSentMs: UInt64 = 0

        public init(settings: Settings, nowMs: UInt64) {
            self.settings = settings
            self.lastProgressMs = nowMs
        }

        // MARK: our own messages

        /// A vote we signed: remembered for re-sends (unless this node withholds its votes).
        public mutating func signedVote(_ message: Message, _ type: Tendermint.VoteType, round: UInt32, nowMs: UInt64) {
            lastVoteSentMs = nowMs
            guard !byzantine.modes.contains(.withholdVotes) else { return }
            ownVotes.append((type, round, message))
            if ownVotes.count > Self.ownVotesMax { ownVotes.removeFirst() }
            if type == .prevote, ownPrevotes.count < Self.ownPrevotesMax { ownPrevotes[round] = message }
        }

        /// Our proposal and its block as they went to every peer.
        public mutating func proposed(_ messages: [Message]) {
            ownProposal = messages
        }

        /// A new height started: the last one's messages are of no use to anyone any more.
        public mutating func startedHeight(_ height: UInt64, nowMs: UInt64) {
            held.clear(for: height)
            forgetOwnMessages()
            lastProgressMs = nowMs
        }

        /// A block was committed (by consensus or sync).
        public mutating func committed(nowMs: UInt64) {
            lastProgressMs = nowMs
        }

        /// Votes-only mode: while on, the receiving edge drops every user transaction before its signature
        /// check, so the votes behind a flood get through (the mitigation the 2022 Solana outage report
        /// calls for). On once nothing was committed for `votesOnlyAfterMs`; off once blocks flow again and
        /// it has been on for at least twice that (so the flood does not return at once).
        public private(set) var votesOnly = false
        var votesOnlySinceMs: UInt64 = 0

        /// Checks the votes-only rule (each tick, once consensus runs): the new state when it changes.
        public mutating func updateVotesOnly(nowMs: UInt64) -> Bool? {
            let threshold = settings.votesOnlyAfterMs
            guard threshold > 0 else { return nil }
            let sinceProgress = nowMs - min(lastProgressMs, nowMs)
            let turnOn = !votesOnly && sinceProgress >= threshold
            let turnOff = votesOnly && sinceProgress < threshold / 2 && nowMs - min(votesOnlySinceMs, nowMs) >= 2 * threshold
            guard turnOn || turnOff else { return nil }
            votesOnly = turnOn
            votesOnlySinceMs = nowMs
            return turnOn
        }

        /// Why this node stopped deciding, once it has (it keeps serving blocks and status until restarted).
        public private(set) var stopped: String?

        /// Stops deciding (state root mismatch, upgrade needed): nothing of ours goes out again. False if
        /// stopped already (the first reason stands).
        public mutating func stop(_ stop: Replica.Stop) -> Bool {
            guard stopped == nil else { return false }
            stopped = stop.reason
            forgetOwnMessages()
            return true
        }

        public mutating func forgetOwnMessages() {
            ownVotes.removeAll()
            ownPrevotes.removeAll()
            ownProposal.removeAll()
        }

        // MARK: what peers say

        /// A peer's status: its committed height, as it says now.
        /// Returns whether the peer is new to this node (just started, or restarted): it gets our status at once.
        @discardableResult
        public mutating func heardStatus(_ peer: Peer, committed height: UInt64, nowMs: UInt64) -> Bool {
            let isNew = heights[peer] == nil
            heights[peer] = PeerHeight(height: height, seenMs: nowMs)
            return isNew
        }

        /// What a peer's message implies about it: it has committed at least `height`.
        @inlinable
        public mutating func heard(_ peer: Peer, committedAtLeast height: UInt64, nowMs: UInt64) {
            let known = heights[peer]?.height ?? 0
            heights[peer] = PeerHeight(height: max(known, height), seenMs: nowMs)
        }

        /// A peer's verified vote: kept to pass on while stalled, and for a replaying node's pool.
        @inlinable
        public mutating func heardVote(_ message: Message, _ type: Tendermint.VoteType, _ vote: Vote, validator: Int,
                                       at consensus: (height: UInt64, round: UInt32)) {
            if keepsReplays { keepForReplay(message, height: vote.height) }
            held.keep(message, type, value: vote.blockId, height: vote.height, round: vote.round,
                           validator: validator, currentHeight: consensus.height, currentRound: consensus.round)
        }

        /// The highest committed height a peer has told this node of (0 before any).
        public var bestPeerHeight: UInt64 { peerHeights.values.map(\.height).max() ?? 0 }

        /// Peers heard from within `peerSeenWindowMs`.
        public func peersUp(nowMs: UInt64) -> Int {
            peerHeights.values.filter { nowMs - $0.seenMs < settings.peerSeenWindowMs }.count
        }

        // MARK: status and stall re-sends

        /// Whether the periodic status is due (none while our votes tell peers our height); if so it counts
        /// as sent now.
        public mutating func statusDue(nowMs: UInt64) -> Bool {
            let interval = settings.gossipIntervalMs
            guard nowMs - lastStatusMs >= interval, nowMs - lastVoteSentMs >= interval else { return false }
            lastStatusMs = nowMs
            return true
        }

        /// A status sent for another reason (start-up, a new peer): the next periodic one waits.
        public mutating func sentStatus(nowMs: UInt64) {
            lastStatusMs = nowMs
        }

        /// The current round's proposal as this node holds it, for stall re-sends.
        public struct HeldProposal: Sendable {
            public var polRound: Int32
            /// The proposal with its block (or parts), as received; nil until the block is complete.
            public var messages: [Message]?
            public var author: Int

            public init(polRound: Int32, messages: [Message]?, author: Int) {
                self.polRound = polRound
                self.messages = messages
                self.author = author
            }
        }

        /// While no new height is committed, every `stallMs` outside the pause after a commit: our proposal
        /// and votes to every peer; our prevote of the proof-of-lock round a re-proposal names (unless it is
        /// among our votes already); the current proposal and block to all but its author (CometBFT's part
        /// gossip: every node holding the round's block helps deliver it); and peers' votes to one peer per
        /// stall, in turn (to every peer at once would be N² per stall). Peers that have them drop the
        /// copies before verification.
        public mutating func stallResends(nowMs: UInt64, step: Tendermint.Step, round: UInt32, me: Int?,
                                          proposal: HeldProposal?, peers: [Peer]) -> [Planned] {
            var sends: [Planned] = []
            let stallMs = settings.stallMs
            // Waiting out timeout_commit is not a stall (at 100 ms blocks it would re-send every height's votes).
            guard step != .commit, nowMs - lastProgressMs >= stallMs, nowMs - lastRebroadcastMs >= stallMs else {
                return sends
            }
            lastRebroadcastMs = nowMs
            for message in ownProposal + ownVotes.map(\.message) { sends.append(.everyone(message)) }
            if let polRound = proposal?.polRound, polRound >= 0, let prevote = ownPrevotes[UInt32(polRound)],
               !ownVotes.contains(where: { $0.type == .prevote && $0.round == UInt32(polRound) }) {
                sends.append(.everyone(prevote))
            }
            if let proposal, proposal.author != me, let messages = proposal.messages {
                for message in messages { sends.append(.everyoneBut(message, validator: proposal.author)) }
            }
            let sorted = peers.sorted()
            guard !sorted.isEmpty else { return sends }
            let target = sorted[rebroadcasts % sorted.count]
            rebroadcasts += 1
            for message in held.toResend(round: round, polRound: proposal?.polRound) {
                sends.append(.peer(message, target))
            }
            return sends
        }

        // MARK: block sync

        /// The blocks to ask for now: each missing height in the window that is not in flight, of a peer
        /// drawn at random among those heard from recently that have it.
        public mutating func syncRequests(storeHeight: UInt64, nowMs: UInt64,
                                          rng: inout some RandomNumberGenerator) -> [(height: UInt64, peer: Peer)] {
            let best = bestPeerHeight
            guard best > storeHeight else { return [] }
            syncRequested = syncRequested.filter { $0.key > storeHeight && nowMs - $0.value < Settings.syncRetryMs }
            var requests: [(height: UInt64, peer: Peer)] = []
            let window = settings.syncHolderWindowMs
            for height in (storeHeight + 1)...min(best, storeHeight + Settings.syncWindow)
            where syncRequested[height] == nil {
                let holders = peerHeights.filter { $0.value.height >= height && nowMs - $0.value.seenMs < window }
                    .map(\.key).sorted()
                guard !holders.isEmpty else { continue }
                syncRequested[height] = nowMs
                requests.append((height, holders[Int(rng.next() % UInt64(holders.count))]))
            }
            return requests
        }

        /// +2/3 precommitted a block of `height` in an earlier round and this node has not decided: the
        /// signers hold it, so they count as having it (the next `syncRequests` asks one of them).
        public mutating func decidedElsewhere(height: UInt64, signers: [Peer], nowMs: UInt64) {
            for signer in signers { heard(signer, committedAtLeast: height, nowMs: nowMs) }
        }

        // MARK: relay and evidence

        /// Epidemic gossip: `relayFanout` peers drawn from `candidates` (the peers other than the sender).
        public func relayTargets(_ candidates: [Peer], rng: inout some RandomNumberGenerator) -> [Peer] {
            var pool = candidates.sorted()
            var targets: [Peer] = []
            for _ in 0..<min(settings.relayFanout, pool.count) {
                targets.append(pool.remove(at: Int(rng.next() % UInt64(pool.count))))
            }
            return targets
        }

        /// Whether this node should report an offence it saw: once each, and not once the chain has it.
        public mutating func shouldReport(_ key: DuplicateVoteEvidence.Key, onChain: Bool) -> Bool {
            guard !onChain, !evidenceReported.contains(key) else { return false }
            if evidenceReported.count >= Self.evidenceReportedMax { evidenceReported.removeAll() }
            evidenceReported.insert(key)
            return true
        }
    }
}
