import Foundation

extension Evaluator {
    /// The fraud-proof metrics (Topologies/README.md, "Fraud proofs"), over the whole run: a game is judged when it
    /// ends, whenever that is. Nil for a metric this does not know.
    func evaluateDisputes(_ metric: String) -> (Double?, String)? {
        guard metric.hasPrefix("dispute_") else { return nil }
        guard let disputes = analysis.rollup?.disputes, !disputes.assertions.isEmpty else {
            return (nil, "no assertion was made on L1 (is the dispute contract in the rollup's genesis?)")
        }
        let ended = disputes.games.filter { $0.end != nil }
        let invalid = disputes.assertions.filter { $0.valid == false }
        switch metric {
        case "dispute_games":
            return (Double(disputes.games.count), "\(disputes.games.count) game(s) opened, \(ended.count) ended")
        case "dispute_honest_losses":
            let lost = ended.filter { disputes.honestWon($0) == false }
            let judged = ended.filter { disputes.honestWon($0) != nil }.count
            return (Double(lost.count), lost.isEmpty ? "the side with the derived root won all \(judged) decided game(s)"
                : lost.prefix(3).map { "batch \($0.batch) game \($0.game): \($0.end!.winner) won, \($0.end!.reason)" }
                    .joined(separator: "; "))
        case "dispute_games_open":
            // A liar whose game is still open at the end has not paid yet.
            let open = disputes.games.filter { $0.end == nil }
            return (Double(open.count), open.isEmpty ? "every game ended and settled"
                : "\(open.count) game(s) still open at the end: " + open.prefix(3).map { "batch \($0.batch) game \($0.game)" }
                    .joined(separator: ", "))
        case "dispute_invalid_confirmed":
            let confirmed = invalid.filter { $0.confirmedAt != nil }
            return (Double(confirmed.count), confirmed.isEmpty
                ? "none of the \(invalid.count) assertion(s) with a root other than the derived one was confirmed"
                : confirmed.prefix(3).map { "batch \($0.batch) root \($0.root.prefix(12)) confirmed at L1 \($0.confirmedAt!)" }
                    .joined(separator: "; "))
        case "dispute_invalid_rejected":
            let rejected = invalid.filter { $0.rejectedAt != nil }
            return (Double(rejected.count), "\(rejected.count) of \(invalid.count) assertion(s) with a wrong root removed")
        case "dispute_bisections_exact":
            let problems = ended.compactMap { game in disputes.shapeProblem(game).map { "batch \(game.batch) game \(game.game): \($0)" } }
            guard !ended.isEmpty else { return (nil, "no game ended") }
            return (problems.isEmpty ? 1 : 0, problems.isEmpty
                ? "every game: " + ended.map { "\($0.end!.bisections)" + ($0.oneStep != nil ? "+1-step" : "+timeout") + " (log2 N = \(disputes.depth($0)))" }
                    .prefix(6).joined(separator: ", ")
                : problems.prefix(3).joined(separator: "; "))
        case "dispute_bonds_settled":
            let problems = ended.compactMap { game in disputes.bondProblem(game).map { "batch \(game.batch) game \(game.game): \($0)" } }
            guard !ended.isEmpty else { return (nil, "no game ended") }
            let moved = ended.reduce(0) { $0 + $1.end!.toWinner }, burned = ended.reduce(0) { $0 + $1.end!.burned }
            return (problems.isEmpty ? 1 : 0, problems.isEmpty
                ? "each loser's bond half to the winner, half burned: \(moved) paid, \(burned) burned"
                : problems.prefix(3).joined(separator: "; "))
        case "dispute_detection_l1_blocks_max":
            // An assertion built on a wrong one falls with it; only those on a right parent need a challenge.
            let disputable = invalid.filter { $0.rejectReason?.hasPrefix("built on") != true }
            guard !disputable.isEmpty else { return (nil, "no assertion had a wrong root") }
            let detections = disputable.map { ($0, disputes.detectionBlocks($0)) }
            if let missed = detections.first(where: { $0.1 == nil }) {
                return (Double.infinity, "the wrong root of batch \(missed.0.batch) was never challenged")
            }
            let worst = detections.max { $0.1!.blocks < $1.1!.blocks }!
            return (Double(worst.1!.blocks), "\(worst.1!.blocks) L1 block(s) (\(worst.1!.ms) ms) from the wrong root of batch "
                    + "\(worst.0.batch) to its first challenge (worst)")
        case "dispute_resolution_l1_blocks_max":
            let decided = ended.filter { !$0.end!.closed }
            guard let worst = decided.max(by: { $0.end!.l1Height - $0.l1Height < $1.end!.l1Height - $1.l1Height }) else {
                return (nil, "no game was decided")
            }
            let blocks = worst.end!.l1Height - worst.l1Height
            return (Double(blocks), "\(blocks) L1 blocks (\(worst.end!.timeMs - min(worst.end!.timeMs, worst.timeMs)) ms) "
                    + "from challenge to decision (worst: batch \(worst.batch) game \(worst.game))")
        case "dispute_confirm_l1_blocks_max":
            let valid = disputes.assertions.filter { $0.valid == true && $0.confirmedAt != nil }
            guard let worst = valid.max(by: { $0.confirmedAt! - $0.l1Height < $1.confirmedAt! - $1.l1Height }) else {
                return (nil, "no assertion with the derived root was confirmed")
            }
            let blocks = worst.confirmedAt! - worst.l1Height
            let challenged = Set(disputes.games.map(\.assertion)).contains(worst.id)
            return (Double(blocks), "\(blocks) L1 blocks from assertion to confirmation (worst of \(valid.count): batch \(worst.batch)"
                    + (challenged ? ", challenged)" : ")"))
        default:
            return nil
        }
    }
}
