import Basics
import Wire

extension Swarm {
    static let lies = ["equivocate", "double_propose", "withhold_votes", "invalid_proposal", "bad_parts"]

    /// A random cluster (4 to 7 validators, equal or random stakes, half the time one liar holding
    /// under 1/3 of the stake: a twin or a byzantine mode) and 1 to 5 faults from the shared
    /// vocabulary (a quarter of the cases also spam at 0.5–3× capacity), all healed before the last
    /// `healSeconds`. The same seed draws the same case.
    public static func draw(seed: UInt64) -> Case {
        var rng = SplitMix64(seed: seed ^ 0x5357_4152_4D21) // "SWARM!"
        func pick<T>(_ items: [T]) -> T { items[Int(rng.next() % UInt64(items.count))] }
        func between(_ low: Double, _ high: Double) -> Double { low + rng.nextUnit() * (high - low) }
        let count = 4 + Int(rng.next() % 4)
        let equalStakes = rng.nextUnit() < 0.5
        var nodes = (1...count).map { Case.Node(name: "v\($0)", stake: equalStakes ? 10 : 1 + rng.next() % 20) }
        let total = nodes.reduce(0) { $0 + $1.stake }
        if rng.nextUnit() < 0.5 {
            let under = nodes.indices.filter { nodes[$0].stake * 3 < total }
            if !under.isEmpty {
                let liar = pick(under)
                if rng.nextUnit() < 0.5 {
                    nodes.append(Case.Node(name: nodes[liar].name + "b", stake: 0, twinOf: nodes[liar].name))
                } else {
                    nodes[liar].byzantine = [pick(lies)]
                }
            }
        }
        let names = nodes.map(\.name)
        let validators = nodes.filter { $0.twinOf == nil }.map(\.name)
        let faultSeconds = Double(8 + rng.next() % 8)
        var steps: [Case.Step] = []
        for index in 0..<(1 + Int(rng.next() % 5)) {
            let at = between(0.5, faultSeconds - 1)
            let duration = between(0.3, min(4, faultSeconds - at - 0.1))
            let fields: [String]
            switch rng.next() % 9 {
            case 0, 1:
                var groups: [[String]] = Array(repeating: [], count: 2 + Int(rng.next() % 2))
                for name in names { groups[Int(rng.next() % UInt64(groups.count))].append(name) }
                groups = groups.filter { !$0.isEmpty }
                guard groups.count >= 2 else { continue }
                fields = ["action = \"partition\"", "groups = [\(groups.map { quoted($0) }.joined(separator: ", "))]"]
            case 2:
                fields = ["action = \"kill\"", "targets = [\"\(pick(names))\"]"]
            case 3:
                fields = ["action = \"pause\"", "targets = [\"\(pick(names))\"]"]
            case 4:
                fields = ["action = \"loss\"", "percent = \(Int(between(5, 50)))"]
            case 5:
                fields = ["action = \"delay\"", "ms = \(Int(between(5, 200)))", "jitter_ms = \(Int(between(0, 50)))"]
            case 6:
                fields = [pick(["action = \"duplicate\"", "action = \"reorder\""]), "percent = \(Int(between(10, 60)))"]
            case 7:
                fields = ["action = \"drop\"", "kinds = [\"\(pick(["prevote", "precommit", "proposal", "block_part"]))\"]",
                          "from = \"\(pick(names))\""]
            default:
                fields = ["action = \"skew\"", "targets = [\"\(pick(validators))\"]", "ms = \(Int(between(-2_000, 2_000)))"]
            }
            steps.append(Case.Step(id: "f\(index + 1)", atSeconds: (at * 100).rounded() / 100,
                                   durationSeconds: (duration * 100).rounded() / 100, fields: fields))
        }
        // A quarter of the cases also get spam, drawn from a stream of its own so the rest of every
        // case is what the same seed drew before spam could be simulated.
        var spamRng = SplitMix64(seed: seed ^ 0x5350_414D) // "SPAM"
        if spamRng.nextUnit() < 0.25 {
            let at = 0.5 + spamRng.nextUnit() * (faultSeconds - 1.5)
            let duration = 0.3 + spamRng.nextUnit() * (min(4, faultSeconds - at - 0.1) - 0.3)
            let k = ((0.5 + spamRng.nextUnit() * 2.5) * 100).rounded() / 100
            steps.append(Case.Step(id: "spam", atSeconds: (at * 100).rounded() / 100,
                                   durationSeconds: (max(duration, 0.3) * 100).rounded() / 100,
                                   fields: ["action = \"spam\"", "k = \(k)"]))
        }
        return Case(seed: seed, nodes: nodes, steps: steps.sorted { $0.atSeconds < $1.atSeconds },
                    loadRate: rng.nextUnit() < 0.5 ? 0 : 50, faultSeconds: faultSeconds, healSeconds: 8,
                    timeoutProposeMs: 300)
    }

    static func quoted(_ names: [String]) -> String { "[" + names.map { "\"\($0)\"" }.joined(separator: ", ") + "]" }

    /// Smaller cases that may still fail: each fault removed, each fault halved, the load removed,
    /// the liar made honest (greedy delta debugging takes the first that still fails, and repeats).
    public static func simplifications(of drawn: Case) -> [Case] {
        var out: [Case] = []
        for index in drawn.steps.indices {
            var smaller = drawn
            smaller.steps.remove(at: index)
            out.append(smaller)
        }
        for index in drawn.steps.indices where drawn.steps[index].durationSeconds >= 0.2 {
            var shorter = drawn
            shorter.steps[index].durationSeconds = (drawn.steps[index].durationSeconds * 50).rounded() / 100
            out.append(shorter)
        }
        if drawn.loadRate > 0 {
            var quiet = drawn
            quiet.loadRate = 0
            out.append(quiet)
        }
        let last = drawn.steps.map { $0.atSeconds + $0.durationSeconds }.max() ?? 0
        if drawn.faultSeconds > 2, last + 0.5 < drawn.faultSeconds {
            var sooner = drawn
            sooner.faultSeconds = max(2, (last + 0.5).rounded(.up))
            out.append(sooner)
        }
        return out
    }
}
