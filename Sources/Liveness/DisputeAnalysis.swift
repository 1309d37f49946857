import Foundation

/// The dispute games of a run (Topologies/README.md, "Fraud proofs"), from the `dispute_*` events every rollup node
/// logs as it applies L1 blocks. Every node applies the same L1 blocks, and a restarted node logs the blocks it replays
/// again, so an event is keyed by what it says (kind, L1 height, assertion, game, position) and counted once, timed at
/// its L1 block's first commit.
public struct DisputeAnalysis: Sendable {
    public struct Assertion: Sendable, Equatable {
        public var id: String
        public var batch: UInt64
        public var root: String
        /// Trace length N (a power of two): a game over it takes log2 N bisections.
        public var length: UInt64
        public var l1Height: UInt64
        public var timeMs: UInt64
        public var windowEnd: UInt64
        public var bond: UInt64
        /// Whether the root is the one the replicas derived from L1 for this batch (nil: none derived it).
        public var valid: Bool?
        public var confirmedAt: UInt64?
        public var rejectedAt: UInt64?
        public var rejectReason: String?
    }

    public struct Move: Codable, Sendable, Equatable {
        public var l1Height: UInt64
        public var side: String
        /// The trace position claimed, and the disputed range after the move.
        public var index: UInt64
        public var low: UInt64
        public var high: UInt64
        public var clockProposer: UInt64
        public var clockChallenger: UInt64
    }

    public struct End: Sendable, Equatable {
        public var l1Height: UInt64
        public var timeMs: UInt64
        public var winner: String
        public var reason: String
        public var bisections: UInt64
        public var clockProposer: UInt64
        public var clockChallenger: UInt64
        public var toWinner: UInt64
        public var burned: UInt64
        public var refunded: UInt64

        /// Closed without a decision because its assertion fell in another game (bond refunded).
        public var closed: Bool { reason.hasPrefix("closed:") }
        public var timedOut: Bool { reason.hasSuffix("clock ran out") }
    }

    public struct Game: Sendable, Equatable {
        public var assertion: String
        public var game: UInt64
        public var batch: UInt64
        public var challenger: String
        public var bond: UInt64
        public var clockBlocks: UInt64
        public var l1Height: UInt64
        public var timeMs: UInt64
        public var moves: [Move] = []
        /// The step L1 executed, when the game came to a one-step proof.
        public var oneStep: UInt64?
        public var end: End?
    }

    public var assertions: [Assertion] = []
    public var games: [Game] = []

    public var isEmpty: Bool { assertions.isEmpty && games.isEmpty }

    /// Events already counted, by what they say.
    private var seen: Set<String> = []
    /// Games bounded by the contract (32 per assertion, 1,024 batches); a log claiming more is cut here.
    static let gamesMax = 32 * 1_024
    static let movesPerGameMax = 2 * 64

    init() {}

    /// One event line of a node's log; `commitMs` is when its L1 block was first committed, if known.
    mutating func ingest(_ object: [String: Any], event: String, commitMs: UInt64?) {
        let l1Height = RunAnalysis.uint(object["l1Height"]) ?? 0
        let assertion = object["assertion"] as? String ?? ""
        let game = RunAnalysis.uint(object["game"]) ?? 0
        let time = commitMs ?? RunAnalysis.uint(object["t"]) ?? 0
        let key = [event, String(l1Height), assertion, String(game), String(RunAnalysis.uint(object["index"]) ?? 0),
                   object["side"] as? String ?? ""].joined(separator: "|")
        guard event.hasPrefix("dispute_"), event != "dispute_sent", event != "dispute_batch", !seen.contains(key) else { return }
        seen.insert(key)
        func gameIndex() -> Int? { games.lastIndex { $0.assertion == assertion && $0.game == game } }
        func assertionIndex() -> Int? { assertions.lastIndex { $0.id == assertion } }
        switch event {
        case "dispute_asserted":
            assertions.append(Assertion(
                id: assertion, batch: RunAnalysis.uint(object["batch"]) ?? 0, root: object["root"] as? String ?? "",
                length: RunAnalysis.uint(object["length"]) ?? 1, l1Height: l1Height, timeMs: time,
                windowEnd: RunAnalysis.uint(object["windowEnd"]) ?? 0, bond: RunAnalysis.uint(object["bond"]) ?? 0))
        case "dispute_challenged":
            guard games.count < Self.gamesMax else { return }
            games.append(Game(
                assertion: assertion, game: game, batch: assertionIndex().map { assertions[$0].batch } ?? 0,
                challenger: object["challenger"] as? String ?? "", bond: RunAnalysis.uint(object["bond"]) ?? 0,
                clockBlocks: RunAnalysis.uint(object["clock"]) ?? 0, l1Height: l1Height, timeMs: time))
        case "dispute_move":
            guard let index = gameIndex(), games[index].moves.count < Self.movesPerGameMax else { return }
            games[index].moves.append(Move(
                l1Height: l1Height, side: object["side"] as? String ?? "", index: RunAnalysis.uint(object["index"]) ?? 0,
                low: RunAnalysis.uint(object["low"]) ?? 0, high: RunAnalysis.uint(object["high"]) ?? 0,
                clockProposer: RunAnalysis.uint(object["clockProposer"]) ?? 0,
                clockChallenger: RunAnalysis.uint(object["clockChallenger"]) ?? 0))
        case "dispute_one_step":
            guard let index = gameIndex() else { return }
            games[index].oneStep = RunAnalysis.uint(object["step"])
        case "dispute_game_ended":
            guard let index = gameIndex() else { return }
            games[index].end = End(
                l1Height: l1Height, timeMs: time, winner: object["winner"] as? String ?? "",
                reason: object["reason"] as? String ?? "", bisections: RunAnalysis.uint(object["bisections"]) ?? 0,
                clockProposer: RunAnalysis.uint(object["clockProposer"]) ?? 0,
                clockChallenger: RunAnalysis.uint(object["clockChallenger"]) ?? 0,
                toWinner: RunAnalysis.uint(object["toWinner"]) ?? 0, burned: RunAnalysis.uint(object["burned"]) ?? 0,
                refunded: RunAnalysis.uint(object["refunded"]) ?? 0)
        case "dispute_confirmed":
            guard let index = assertionIndex() else { return }
            assertions[index].confirmedAt = l1Height
        case "dispute_rejected":
            guard let index = assertionIndex() else { return }
            assertions[index].rejectedAt = l1Height
            assertions[index].rejectReason = object["reason"] as? String
        default:
            break
        }
    }

    /// Marks each assertion valid or not against the roots derived from L1, by batch.
    mutating func judge(derivedRoots: [UInt64: String]) {
        for index in assertions.indices {
            assertions[index].valid = derivedRoots[assertions[index].batch].map { $0 == assertions[index].root }
        }
    }

    public func assertion(_ id: String) -> Assertion? { assertions.last { $0.id == id } }

    /// Whether the side that claimed the derived root won (nil: undecided, closed, or nothing to judge by).
    public func honestWon(_ game: Game) -> Bool? {
        guard let end = game.end, !end.closed, let valid = assertion(game.assertion)?.valid else { return nil }
        return (end.winner == "proposer") == valid
    }

    /// ceil(log2 N) for the game's trace.
    public func depth(_ game: Game) -> UInt64 {
        var depth: UInt64 = 0
        while (UInt64(1) << depth) < (assertion(game.assertion)?.length ?? 1) { depth += 1 }
        return depth
    }

    /// What is wrong with a finished game's shape, if anything: a game decided by a one-step proof takes
    /// exactly ceil(log2 N) bisections; one decided by a clock takes fewer; each ends exactly one way.
    public func shapeProblem(_ game: Game) -> String? {
        guard let end = game.end, !end.closed else { return nil }
        if end.reason.hasPrefix("the challenger's trace ends where") { return nil }
        let depth = depth(game)
        if game.oneStep != nil {
            if end.timedOut { return "a one-step proof and a timeout" }
            return end.bisections == depth ? nil : "\(end.bisections) bisections before the one-step proof, not \(depth)"
        }
        guard end.timedOut else { return "ended with neither a one-step proof nor a timeout (\(end.reason))" }
        return end.bisections <= depth ? nil : "\(end.bisections) bisections for a trace of depth \(depth)"
    }

    /// What is wrong with a finished game's bonds, if anything: the loser's bond half to the winner and
    /// half burned (an odd unit burned), a closed game's bond refunded whole.
    public func bondProblem(_ game: Game) -> String? {
        guard let end = game.end else { return nil }
        if end.closed {
            return end.refunded == game.bond && end.toWinner == 0 && end.burned == 0
                ? nil : "closed game refunded \(end.refunded) of a \(game.bond) bond"
        }
        let lost = loserBond(game)
        guard end.toWinner + end.burned == lost, end.burned >= end.toWinner, end.burned - end.toWinner <= 1, end.refunded == 0 else {
            return "loser's bond \(lost): \(end.toWinner) to the winner, \(end.burned) burned, \(end.refunded) refunded"
        }
        return nil
    }

    /// The bond the losing side of a decided game put up (0 while open or when closed).
    public func loserBond(_ game: Game) -> UInt64 {
        guard let end = game.end, !end.closed else { return 0 }
        return end.winner == "proposer" ? game.bond : assertion(game.assertion)?.bond ?? 0
    }

    /// L1 blocks from an invalid assertion to its first challenge (nil: never challenged).
    public func detectionBlocks(_ assertion: Assertion) -> (blocks: UInt64, ms: UInt64)? {
        guard let first = games.filter({ $0.assertion == assertion.id }).min(by: { $0.l1Height < $1.l1Height }) else { return nil }
        return (first.l1Height - min(first.l1Height, assertion.l1Height),
                first.timeMs > assertion.timeMs ? first.timeMs - assertion.timeMs : 0)
    }
}
