import DequeModule
import Ledger
import Sodium
import Wire

/// A byzantine node's send plans. The consensus core stays honest and the honest path stays in the
/// shells' honest code; a mode only transforms what goes out (a second vote or proposal to half the
/// peers, a wrong state root, votes kept back, old or foreign or out-of-range messages), so every lie
/// is one an honest core must survive. The same plans drive the node and the simulator.
extension Replica.Instance {
    public struct Byzantine: Sendable {
        public static var replayPoolMax: Int { 512 }
        /// Messages a flooding or replaying node sends per tick.
        public static var messagesPerTick: Int { 50 }

        public internal(set) var modes: Set<ByzantineMode> = []
        /// What it sent, by kind (`byzantine_sent_<kind>` in the `drops` event).
        public internal(set) var sent: [String: Int] = [:]
        var replayPool: Deque<(height: UInt64, message: Message)> = []
        var floodCounter: UInt32 = 0

    }

    /// Keeps a peer's vote to replay later (only while replaying; bounded).
    @usableFromInline
    mutating func keepForReplay(_ message: Message, height: UInt64) {
        guard byzantine.modes.contains(.replay) else { return }
        byzantine.replayPool.append((height, message))
        if byzantine.replayPool.count > Byzantine.replayPoolMax { byzantine.replayPool.removeFirst() }
    }

    /// Switches misbehaviour on (an empty list: honest again).
    public mutating func setByzantine(_ modes: [ByzantineMode]) {
        byzantine.modes = Set(modes)
        byzantine.replayPool.removeAll()
        keepsReplays = byzantine.modes.contains(.replay)
    }

    public enum VotePlan: Sendable, Equatable {
        case honest
        /// Signed, recorded, never sent.
        case withhold
        /// To every other peer (in name order) a second vote of the same height, round and type for this value.
        case equivocate(otherValue: Bytes32?)
    }

    /// How our own vote goes out.
    public mutating func planOwnVote(_ vote: Vote) -> VotePlan {
        if byzantine.modes.contains(.withholdVotes) {
            byzantine.sent["withheld_vote", default: 0] += 1
            return .withhold
        }
        guard byzantine.modes.contains(.equivocate) else { return .honest }
        byzantine.sent["equivocating_vote", default: 0] += 1
        let other: Bytes32? = vote.blockId == nil
            ? Blake2b.hash(Array("faultline/equivocate/\(vote.height)/\(vote.round)".utf8)) : nil
        return .equivocate(otherValue: other)
    }

    public enum ProposalPlan: Sendable, Equatable {
        case honest
        /// The parts do not match their proofs: the block never assembles.
        case badParts
        /// To every other peer (in name order) a second proposal of this block (the same transactions a
        /// millisecond later).
        case double(Block)
    }

    /// How our proposal of `block` goes out.
    public mutating func planOwnProposal(_ block: Block) -> ProposalPlan {
        if byzantine.modes.contains(.badParts) {
            byzantine.sent["bad_parts", default: 0] += 1
            return .badParts
        }
        guard byzantine.modes.contains(.doublePropose) else { return .honest }
        byzantine.sent["double_proposal", default: 0] += 1
        var header = block.header
        header.timeMs += 1
        return .double(Block(header: header, txs: block.txs))
    }

    /// The state root a proposal claims: ours, or (invalid_proposal) one that is wrong.
    public mutating func claimedStateRoot(height: UInt64, ours: Bytes32) -> Bytes32 {
        guard byzantine.modes.contains(.invalidProposal) else { return ours }
        byzantine.sent["invalid_proposal", default: 0] += 1
        return Blake2b.hash(Array("faultline/invalid-root/\(height)".utf8))
    }

    /// One tick's floods and replays.
    public struct TickPlan: Sendable {
        /// Peers' messages of earlier heights, to send to everyone again.
        public var replays: [Message] = []
        /// Prevotes to sign for another chain id.
        public var otherChain: [Vote] = []
        /// Validly signed prevotes for long-past or far-future heights.
        public var floods: [Vote] = []
    }

    /// What a byzantine validator sends this tick at `height` (nothing for an honest node).
    public mutating func misbehaviour(height: UInt64) -> TickPlan {
        var plan = TickPlan()
        let modes = byzantine.modes
        guard !modes.isEmpty else { return plan }
        let count = Byzantine.messagesPerTick
        if modes.contains(.replay) {
            let old = byzantine.replayPool.filter { $0.height < height }.prefix(count).map(\.message)
            plan.replays = Array(old)
            byzantine.sent["replayed", default: 0] += old.count
        }
        if modes.contains(.otherChain) {
            plan.otherChain = (0..<count).map { index in
                Vote(height: height, round: byzantine.floodCounter &+ UInt32(index), blockId: nil)
            }
            byzantine.sent["other_chain", default: 0] += count
        }
        for (mode, vote) in ByzantineMode.floodVotes(modes, height: height, counter: byzantine.floodCounter,
                                                     count: count) {
            plan.floods.append(vote)
            byzantine.sent[mode.rawValue, default: 0] += 1
        }
        byzantine.floodCounter &+= UInt32(count)
        return plan
    }
}

extension Replica {
    /// Peers in the order a lying node splits them (by name): even positions get its first message, odd
    /// ones its second.
    public static func halves<Peer>(_ peersInOrder: [Peer]) -> (first: [Peer], second: [Peer]) {
        var first: [Peer] = []
        var second: [Peer] = []
        for (index, peer) in peersInOrder.enumerated() {
            if index % 2 == 0 { first.append(peer) } else { second.append(peer) }
        }
        return (first, second)
    }
}
