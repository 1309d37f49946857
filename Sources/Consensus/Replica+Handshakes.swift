extension Replica {
    /// The handshake with each peer, the same in both engines: nothing but hellos goes to or is taken
    /// from a peer until its hello has been accepted (`HandshakePolicy` judges it); a refused peer gets
    /// another hello every `retryMs` (it may come back fixed); consensus messages that arrive from a peer
    /// not yet accepted wait for its handshake, bounded, and are handed back when it succeeds (the
    /// receiving edge has already marked their bytes seen, so the peer's re-sends would be dropped as
    /// copies: a restarted validator lost the prevotes that came before its handshake and held a height 2 s).
    ///
    /// Generic over `Peer` (the node's peer names, the simulator's slots; twins are handshaken one by one)
    /// and `Held` (what the shell needs to handle a held message again).
    public struct Handshakes<Peer: Hashable & Comparable & Sendable, Held: Sendable>: Sendable {
        public enum Link: Sendable, Equatable {
            case accepted
            case refused(String)
        }

        /// Hellos to a peer not accepted are repeated this often.
        public static var retryMs: UInt64 { 500 }
        /// At most one answer per peer this often to an accepted peer's hellos, however many it sends.
        public static var answerGapMs: UInt64 { 20 }
        /// Consensus messages kept per peer until its handshake.
        public static var heldMax: Int { 64 }

        public private(set) var links: [Peer: Link] = [:]
        var held: [Peer: [Held]] = [:]
        var sentMs: [Peer: UInt64] = [:]
        var answeredMs: [Peer: UInt64] = [:]

        public init() {}

        public func isAccepted(_ peer: Peer) -> Bool { links[peer] == .accepted }

        /// Messages held for `peer`'s handshake.
        public func heldCount(_ peer: Peer) -> Int { held[peer]?.count ?? 0 }

        /// A hello this node sends `peer` now asks for an answer unless the peer is accepted already.
        public mutating func sendingHello(to peer: Peer, nowMs: UInt64) -> Bool {
            sentMs[peer] = nowMs
            return links[peer] != .accepted
        }

        /// The peers (of `peers`) that are due another hello.
        public func hellosDue(_ peers: [Peer], nowMs: UInt64) -> [Peer] {
            peers.filter { links[$0] != .accepted && nowMs - (sentMs[$0] ?? 0) >= Self.retryMs }
        }

        /// A message (other than a hello) from a peer not accepted: kept for its handshake when it is a
        /// consensus message and the peer is not refused (true), else dropped (false).
        public mutating func hold(_ message: Held, from peer: Peer, consensusLane: Bool) -> Bool {
            guard links[peer] == nil, consensusLane, held[peer, default: []].count < Self.heldMax else { return false }
            held[peer, default: []].append(message)
            return true
        }

        public struct HelloOutcome: Sendable {
            /// The link before this hello (nil: none yet) and after it.
            public var previous: Link?
            public var link: Link
            /// Messages held for this peer's handshake, to handle now (it was accepted).
            public var release: [Held]
            /// Answer with our hello now.
            public var answer: Bool
        }

        /// A peer's hello, judged (`refusal`: nil when compatible). Answered when the peer asks and has not
        /// accepted us yet — always when we accept it, so our hello goes out before any vote we send it,
        /// and it never drops one for want of a handshake (an accepted peer's answer wants no reply, so this
        /// cannot ping-pong) — and when the link changed. Two nodes refusing each other answer at most once
        /// per `retryMs / 5`.
        public mutating func heardHello(from peer: Peer, refusal: String?, replyWanted: Bool,
                                        nowMs: UInt64) -> HelloOutcome {
            let previous = links[peer]
            let link: Link = refusal.map { .refused($0) } ?? .accepted
            links[peer] = link
            var release: [Held] = []
            if link == .accepted {
                release = held.removeValue(forKey: peer) ?? []
            } else {
                held[peer] = nil
            }
            let sinceAnswer = nowMs - (answeredMs[peer] ?? 0)
            let answerAccepted = replyWanted && link == .accepted && sinceAnswer >= Self.answerGapMs
            let answerRefused = replyWanted && nowMs - (sentMs[peer] ?? 0) >= Self.retryMs / 5
            let answer = answerAccepted || answerRefused || previous != link
            if answer {
                answeredMs[peer] = nowMs
                sentMs[peer] = nowMs
            }
            return HelloOutcome(previous: previous, link: link, release: release, answer: answer)
        }

        /// Peers refused now, with the reason.
        public var refused: [Peer: String] {
            links.compactMapValues { link in
                if case .refused(let reason) = link { return reason }
                return nil
            }
        }
    }
}
