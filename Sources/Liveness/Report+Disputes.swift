import Foundation

extension Report {
    /// The fraud-proof games of a run (Topologies/README.md, "Fraud proofs"): every assertion's fate and every game's
    /// moves, clocks, winner and bonds.
    public struct DisputeEntry: Codable, Sendable {
        public struct GameEntry: Codable, Sendable {
            public var batch: UInt64
            public var game: UInt64
            public var assertion: String
            /// Whether the proposer's root was the one the replicas derived (nil: no replica derived the batch).
            public var proposerRootValid: Bool?
            public var challenger: String
            public var challengedAtL1: UInt64
            /// L1 blocks and ms from the assertion to this challenge.
            public var afterAssertionBlocks: UInt64
            public var afterAssertionMs: UInt64
            public var traceLength: UInt64
            public var depth: UInt64
            public var clockBlocks: UInt64
            public var moves: [DisputeAnalysis.Move]
            public var oneStep: UInt64?
            public var endedAtL1: UInt64?
            public var resolutionBlocks: UInt64?
            public var resolutionMs: UInt64?
            public var winner: String?
            public var honestWon: Bool?
            public var reason: String?
            public var bisections: UInt64?
            public var clockProposerLeft: UInt64?
            public var clockChallengerLeft: UInt64?
            public var loserBond: UInt64?
            public var toWinner: UInt64?
            public var burned: UInt64?
            public var refunded: UInt64?
        }

        public var assertions: Int
        public var confirmed: Int
        public var rejected: Int
        /// Assertions whose root differs from the replicas' derived root, and what became of them.
        public var invalid: Int
        public var invalidConfirmed: Int
        public var windowBlocks: UInt64?
        /// L1 blocks from assertion to confirmation, for assertions with the derived root (min, max).
        public var confirmBlocks: [UInt64]
        public var games: [GameEntry]
    }

    static func disputeEntry(_ evaluator: Evaluator) -> DisputeEntry? {
        guard let disputes = evaluator.analysis.rollup?.disputes, !disputes.isEmpty else { return nil }
        let invalid = disputes.assertions.filter { $0.valid == false }
        let confirmBlocks = disputes.assertions.filter { $0.valid == true }.compactMap { assertion in
            assertion.confirmedAt.map { $0 - min($0, assertion.l1Height) }
        }
        let games = disputes.games.map { game -> DisputeEntry.GameEntry in
            let assertion = disputes.assertion(game.assertion)
            let end = game.end
            return DisputeEntry.GameEntry(
                batch: game.batch, game: game.game, assertion: game.assertion, proposerRootValid: assertion?.valid,
                challenger: game.challenger, challengedAtL1: game.l1Height,
                afterAssertionBlocks: game.l1Height - min(game.l1Height, assertion?.l1Height ?? game.l1Height),
                afterAssertionMs: game.timeMs - min(game.timeMs, assertion?.timeMs ?? game.timeMs),
                traceLength: assertion?.length ?? 0, depth: disputes.depth(game), clockBlocks: game.clockBlocks,
                moves: game.moves, oneStep: game.oneStep, endedAtL1: end?.l1Height,
                resolutionBlocks: end.map { $0.l1Height - min($0.l1Height, game.l1Height) },
                resolutionMs: end.map { $0.timeMs - min($0.timeMs, game.timeMs) },
                winner: end?.winner, honestWon: disputes.honestWon(game), reason: end?.reason, bisections: end?.bisections,
                clockProposerLeft: end?.clockProposer, clockChallengerLeft: end?.clockChallenger,
                loserBond: end.map { _ in disputes.loserBond(game) },
                toWinner: end?.toWinner, burned: end?.burned, refunded: end?.refunded)
        }
        return DisputeEntry(
            assertions: disputes.assertions.count, confirmed: disputes.assertions.filter { $0.confirmedAt != nil }.count,
            rejected: disputes.assertions.filter { $0.rejectedAt != nil }.count, invalid: invalid.count,
            invalidConfirmed: invalid.filter { $0.confirmedAt != nil }.count,
            windowBlocks: disputes.assertions.first.map { $0.windowEnd - min($0.windowEnd, $0.l1Height) },
            confirmBlocks: confirmBlocks.isEmpty ? [] : [confirmBlocks.min()!, confirmBlocks.max()!], games: games)
    }

    /// Games listed one per line in the terminal (the rest are in report.json and report.html).
    static let disputeGameLinesMax = 8

    /// Terminal lines for the fraud-proof games.
    public var disputeLines: [String] {
        guard let disputes else { return [] }
        var lines: [String] = []
        let decided = disputes.games.filter { $0.honestWon != nil }
        lines.append("disputes: \(disputes.assertions) assertion(s) on L1, \(disputes.confirmed) confirmed, "
                     + "\(disputes.rejected) rejected; \(disputes.invalid) with a root other than the replicas derived"
                     + (disputes.invalid > 0 ? " (\(disputes.invalidConfirmed) of them confirmed)" : "")
                     + "; \(disputes.games.count) game(s), the side with the derived root won "
                     + "\(decided.filter { $0.honestWon == true }.count) of \(decided.count) decided")
        if disputes.confirmBlocks.count == 2 {
            let span = disputes.confirmBlocks[0] == disputes.confirmBlocks[1] ? "\(disputes.confirmBlocks[0])"
                : "\(disputes.confirmBlocks[0])–\(disputes.confirmBlocks[1])"
            lines.append("assertions with the derived root confirmed \(span) "
                         + "L1 blocks after they were made" + (disputes.windowBlocks.map { " (window \($0) blocks)" } ?? ""))
        }
        for game in disputes.games.prefix(Self.disputeGameLinesMax) { lines.append(Self.describe(game)) }
        if disputes.games.count > Self.disputeGameLinesMax {
            lines.append("… \(disputes.games.count - Self.disputeGameLinesMax) more game(s) in report.json")
        }
        return lines
    }

    static func describe(_ game: DisputeEntry.GameEntry) -> String {
        let root = game.proposerRootValid.map { $0 ? "derived root" : "wrong root" } ?? "root not derived"
        var line = "game \(game.game) on batch \(game.batch) (\(root), assertion \(game.assertion.prefix(8))): challenger "
            + "\(game.challenger.prefix(8)) at L1 \(game.challengedAtL1), \(game.afterAssertionBlocks) block(s) / "
            + "\(game.afterAssertionMs) ms after the assertion"
        guard let winner = game.winner, let reason = game.reason else {
            return line + "; still open after \(game.moves.count) move(s)"
        }
        if reason.hasPrefix("closed:") {
            return line + "; \(reason), bond \(game.refunded ?? 0) refunded"
        }
        line += "; \(game.bisections ?? 0) bisection(s) (log2 \(game.traceLength) = \(game.depth)) then "
            + (game.oneStep.map { "a one-step proof of step \($0)" } ?? "a timeout")
            + " at L1 \(game.endedAtL1 ?? 0), \(game.resolutionBlocks ?? 0) blocks / \(game.resolutionMs ?? 0) ms after the challenge; "
            + "\(winner) won" + (game.honestWon.map { $0 ? " (honest)" : " (LIAR WON)" } ?? "") + ": \(reason); "
            + "clocks left proposer \(game.clockProposerLeft ?? 0)/\(game.clockBlocks), challenger "
            + "\(game.clockChallengerLeft ?? 0)/\(game.clockBlocks); loser's bond \(game.loserBond ?? 0): "
            + "\(game.toWinner ?? 0) to the winner, \(game.burned ?? 0) burned"
        return line
    }

    /// Games drawn move by move in report.html (the rest are in the table).
    static let disputeGameChartsMax = 4

    /// The games: a table, and for the first few the disputed range narrowing and both clocks, per L1 block.
    func disputeSection() -> String {
        guard let disputes else { return "" }
        var page = "<h2>Fraud-proof games</h2>\n<ul>"
        for line in disputeLines.prefix(2) { page += "<li>\(Self.xml(line))</li>" }
        page += "</ul>\n"
        guard !disputes.games.isEmpty else { return page }
        page += "<table><tr><th>batch</th><th>game</th><th>proposer's root</th><th>challenger</th><th>challenged</th>"
            + "<th>bisections</th><th>ended by</th><th>L1 blocks</th><th>clocks left (P/C)</th><th>winner</th><th>bonds</th></tr>"
        for game in disputes.games {
            let root = game.proposerRootValid.map { $0 ? "<span class=\"ok\">derived</span>" : "<span class=\"bad\">wrong</span>" } ?? "?"
            let endedBy = game.reason.map { reason in
                reason.hasPrefix("closed:") ? "closed" : game.oneStep.map { "one-step proof of step \($0)" } ?? Self.xml(reason)
            } ?? "open"
            let winner = game.winner.map { winner in
                "<span class=\"\(game.honestWon == false ? "bad" : "ok")\" title=\"\(Self.xml(game.reason ?? ""))\">\(winner)</span>"
            } ?? "–"
            let bonds = game.reason?.hasPrefix("closed:") == true ? "\(game.refunded ?? 0) refunded"
                : game.winner == nil ? "held" : "\(game.toWinner ?? 0) to winner, \(game.burned ?? 0) burned"
            page += "<tr><td>\(game.batch)</td><td>\(game.game)</td><td>\(root)</td><td><code>\(game.challenger.prefix(8))</code></td>"
                + "<td>L1 \(game.challengedAtL1) (+\(game.afterAssertionBlocks))</td>"
                + "<td>\(game.bisections.map(String.init) ?? "–") / \(game.depth)</td><td>\(endedBy)</td>"
                + "<td>\(game.resolutionBlocks.map(String.init) ?? "–")</td>"
                + "<td>\(game.clockProposerLeft.map(String.init) ?? "–") / \(game.clockChallengerLeft.map(String.init) ?? "–") of \(game.clockBlocks)</td>"
                + "<td>\(winner)</td><td>\(bonds)</td></tr>"
        }
        page += "</table>\n"
        for game in disputes.games.filter({ !$0.moves.isEmpty }).prefix(Self.disputeGameChartsMax) {
            page += "<h3>Batch \(game.batch), game \(game.game): disputed range and clocks, per L1 block after the challenge</h3>\n"
                + "<p><small>\(Self.xml(Self.describe(game)))</small></p>\n" + gameChart(game)
        }
        return page
    }

    /// Left: how many trace steps are still disputed after each move, on a log2 scale (one halving per
    /// bisection, down to the single step L1 executes). Right: blocks left on each side's clock.
    func gameChart(_ game: DisputeEntry.GameEntry) -> String {
        let start = Double(game.challengedAtL1)
        let lastMove = Double(game.moves.last?.l1Height ?? game.challengedAtL1)
        let maxX = max(Double(game.endedAtL1 ?? 0), lastMove) - start + 1
        func log2(_ width: UInt64) -> Double { Double(64 - max(width, 1).leadingZeroBitCount - 1) }
        var widths: [(x: Double, log: Double)] = [(0, log2(game.traceLength))]
        var clocks: [(x: Double, proposer: Double, challenger: Double)] = [(0, Double(game.clockBlocks), Double(game.clockBlocks))]
        for move in game.moves {
            let x = Double(move.l1Height) - start
            widths.append((x, log2(move.high - min(move.high, move.low))))
            clocks.append((x, Double(move.clockProposer), Double(move.clockChallenger)))
        }
        if let ended = game.endedAtL1 {
            clocks.append((Double(ended) - start, Double(game.clockProposerLeft ?? 0), Double(game.clockChallengerLeft ?? 0)))
        }
        let range = frame(width: 480, height: 220, maxX: maxX, maxY: max(Double(game.depth), 1),
                          yLabel: "disputed steps (log2)", xUnit: "") { plot in
            var points: [String] = []
            for (position, entry) in widths.enumerated() {
                let nextX = position + 1 < widths.count ? widths[position + 1].x : Double(game.endedAtL1 ?? 0) - start
                for x in [entry.x, max(nextX, entry.x)] {
                    let (px, py) = plot(x, entry.log)
                    points.append("\(px),\(py)")
                }
            }
            var svg = "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.6\" points=\"\(points.joined(separator: " "))\"/>"
            for move in game.moves {
                let (px, py) = plot(Double(move.l1Height) - start, log2(move.high - min(move.high, move.low)))
                let color = move.side == "proposer" ? "#1f77b4" : "#d62728"
                svg += "<circle cx=\"\(px)\" cy=\"\(py)\" r=\"3\" fill=\"\(color)\"><title>L1 \(move.l1Height): \(move.side) "
                    + "claims step \(move.index); disputed [\(move.low), \(move.high)]</title></circle>"
            }
            if let step = game.oneStep, let ended = game.endedAtL1 {
                let (px, py) = plot(Double(ended) - start, 0)
                svg += "<rect x=\"\(px - 4)\" y=\"\(py - 4)\" width=\"8\" height=\"8\" fill=\"#000\"><title>L1 \(ended): "
                    + "one-step proof of step \(step)</title></rect><text x=\"\(px - 8)\" y=\"\(py - 8)\" text-anchor=\"end\">"
                    + "L1 executes step \(step)</text>"
            }
            let (lx, ly) = plot(maxX, max(Double(game.depth), 1))
            return svg + "<text x=\"\(lx - 8)\" y=\"\(ly + 14)\" text-anchor=\"end\"><tspan fill=\"#1f77b4\">● proposer</tspan> "
                + "<tspan fill=\"#d62728\">● challenger</tspan></text>"
        }
        let clock = frame(width: 480, height: 220, maxX: maxX, maxY: Double(max(game.clockBlocks, 1)),
                          yLabel: "clock left (L1 blocks)", xUnit: "") { plot in
            var svg = ""
            for (index, (label, color)) in [("proposer", "#1f77b4"), ("challenger", "#d62728")].enumerated() {
                // Straight lines between moves: the side on turn spends its clock block by block.
                let points = clocks.map { entry -> String in
                    let (px, py) = plot(entry.x, index == 0 ? entry.proposer : entry.challenger)
                    return "\(px),\(py)"
                }
                svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.6\" points=\"\(points.joined(separator: " "))\"/>"
                let (lx, ly) = plot(maxX, 0)
                svg += "<text x=\"\(lx - 8)\" y=\"\(ly - 22 + Double(index) * 13)\" text-anchor=\"end\" fill=\"\(color)\" "
                    + "font-weight=\"600\">\(label)</text>"
            }
            return svg
        }
        return "<div style=\"display:flex;gap:8px\">\(range)\(clock)</div>\n"
    }
}
