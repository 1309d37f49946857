import Basics
import Consensus
import Formats
import Sodium
import Wire

/// Twins-style schedules (Bano et al., "Twins: BFT Systems Made Robust", OPODIS 2021): a validator may run
/// as two processes with one key (its twins, each honest code, so its equivocations are the ones a real
/// misconfigured or malicious validator makes), and for each of the first few rounds and each step of a
/// round (proposal, prevote, precommit) the processes are split into groups that hear only each other.
/// After the scheduled rounds the network is whole again (a final synchronous stretch, possibly slower
/// than the first rounds' timeouts): safety is checked at every commit and signature as the case runs,
/// liveness at the end. A case runs in this process in simulated time, so many run each second.
public enum Twins {
    /// The step of a round whose messages a partition applies to.
    public enum Phase: Int, Sendable, CaseIterable, Codable, CustomStringConvertible {
        case propose = 0, prevote = 1, precommit = 2

        public var description: String { ["proposal", "prevote", "precommit"][rawValue] }
    }

    /// One drawn case: the same seed draws the same case.
    public struct Case: Sendable, Equatable, Codable, CustomStringConvertible {
        /// Process names in slot order (validators `v1…`, then the twin `vNb`).
        public var nodes: [String]
        /// The validator a twin process speaks for.
        public var twinOf: [String: String]
        public var seed: UInt64
        /// The scheduled rounds: heights `1…heights`, rounds `0..<rounds` of each.
        public var heights: UInt64
        public var rounds: UInt32
        /// Per scheduled (height, round, phase) that is split: the groups, by process name.
        public var partitions: [Key: [[String]]]
        /// Per scheduled (height, round, phase) with lossy links: the links (sender, receiver) that drop it. A
        /// partition is symmetric; a cut is not, and that is what lets one node see a quorum its peers do not.
        public var cuts: [Key: Set<Link>] = [:]
        /// A validator killed (and restarted `downSeconds` later) `atSeconds` after the first block.
        public var crash: Crash?
        /// The final stretch's one-way delay on top of the base latency, in ms (above round 0's timeouts at times):
        /// a network that is whole again, but slower than the first rounds.
        public var finalDelayMs: Double
        /// Simulated seconds after the first block the case runs for.
        public var durationSeconds: Double
        /// When the schedule ends and the network is whole (simulated seconds from the start): time enough for
        /// every scheduled round to time out (a Tendermint network is only assumed to deliver eventually; a
        /// message a partition dropped is gone, its re-sends get through).
        public var wholeAtSeconds = 2.5

        public struct Crash: Sendable, Equatable, Codable {
            public var node: String
            public var atSeconds: Double
            public var downSeconds: Double
        }

        public struct Key: Hashable, Sendable, Comparable, Codable, CustomStringConvertible {
            public var height: UInt64
            public var round: UInt32
            public var phase: Phase

            public static func < (lhs: Key, rhs: Key) -> Bool {
                (lhs.height, lhs.round, lhs.phase.rawValue) < (rhs.height, rhs.round, rhs.phase.rawValue)
            }

            public var description: String { "h\(height) r\(round) \(phase)" }
        }

        public struct Link: Hashable, Sendable, Comparable, Codable, CustomStringConvertible {
            public var from: String
            public var to: String

            public static func < (lhs: Link, rhs: Link) -> Bool { (lhs.from, lhs.to) < (rhs.from, rhs.to) }

            public var description: String { "\(from)→\(to)" }
        }

        public var validators: [String] { nodes.filter { twinOf[$0] == nil } }

        /// The processes and validators that lie (a twin pair is one validator, both its processes liars).
        public var byzantineNodes: Set<String> { Set(twinOf.flatMap { [$0.key, $0.value] }) }
        public var byzantineValidators: Set<String> { Set(twinOf.values) }

        public var description: String {
            var parts: [String] = ["\(validators.count) validators"
                + (twinOf.isEmpty ? "" : ", twins " + twinOf.sorted { $0.key < $1.key }.map { "\($0.value)/\($0.key)" }
                    .joined(separator: " "))]
            for key in Set(partitions.keys).union(cuts.keys).sorted() {
                if let groups = partitions[key] {
                    parts.append("\(key): " + groups.map { "{" + $0.joined(separator: ",") + "}" }.joined(separator: " "))
                }
                if let links = cuts[key] {
                    parts.append("\(key) cut: " + links.sorted().map(\.description).joined(separator: " "))
                }
            }
            if let crash {
                parts.append("kill \(crash.node) at +\(Swarm.format(crash.atSeconds)) s for \(Swarm.format(crash.downSeconds)) s")
            }
            parts.append("then whole" + (finalDelayMs > 0 ? " with +\(Int(finalDelayMs)) ms per message" : ""))
            return parts.joined(separator: "; ")
        }

        /// The cluster as a scenario file: short timeouts (rounds go by quickly), a light load from a few accounts (so
        /// twins build different blocks), the crash as a kill step.
        var toml: String {
            var lines = ["[cluster]", "name = \"twins-\(seed)\"", "chain_id = \"faultline-twins\"", "seed = \(seed)", "",
                         "[timing]", "timeout_propose_ms = 100", "timeout_propose_delta_ms = 50",
                         "timeout_prevote_ms = 50", "timeout_prevote_delta_ms = 25", "timeout_precommit_ms = 50",
                         "timeout_precommit_delta_ms = 25", "timeout_commit_ms = 10", "",
                         "[load]", "rate_tx_per_s = 40", "accounts = 8", "",
                         "[scenario]", "duration_s = \(Swarm.format(wholeAtSeconds + durationSeconds))", "settle_s = 0", ""]
            for node in nodes {
                lines += ["[[node]]", "name = \"\(node)\""]
                lines.append(twinOf[node].map { "twin_of = \"\($0)\"" } ?? "stake = 10")
            }
            if let crash {
                lines += ["", "[[step]]", "id = \"crash\"", "at_s = \(Swarm.format(crash.atSeconds))", "action = \"kill\"",
                          "targets = [\"\(crash.node)\"]", "duration_s = \(Swarm.format(crash.downSeconds))"]
            }
            return lines.joined(separator: "\n") + "\n"
        }
    }

    /// Draws a case: 4, 5 or 7 validators of equal stake, 60% of the time one with a twin; 2 heights × 3 rounds
    /// scheduled, each step split (with probability 0.3, 0.5 or 0.7) into 2 (or 3) random groups or, a quarter of
    /// those times, with random one-way links cut; a quarter of
    /// the cases kill and restart one honest validator; the final stretch as fast as the first rounds or slower
    /// than round 0's timeouts.
    public static func draw(seed: UInt64) -> Case {
        var rng = SplitMix64(seed: seed ^ 0x5457_494E_5321) // "TWINS!"
        func below(_ count: Int) -> Int { Int(rng.next() % UInt64(count)) }
        // 4 validators (f = 1: +2/3 is 3, the same as a majority), 5 (+2/3 is 4, a majority 3) or 7.
        var nodes = (1...[4, 4, 5, 5, 7][below(5)]).map { "v\($0)" }
        var twinOf: [String: String] = [:]
        if rng.nextUnit() < 0.6 {
            let liar = nodes[below(nodes.count)]
            twinOf[liar + "b"] = liar
            nodes.append(liar + "b")
        }
        var partitions: [Case.Key: [[String]]] = [:]
        var cuts: [Case.Key: Set<Case.Link>] = [:]
        let heights: UInt64 = 2, rounds: UInt32 = 3
        // Some cases split few steps (a clear story), some most of them.
        let splitChance = [0.3, 0.5, 0.7][below(3)]
        for height in 1...heights {
            for round in 0..<rounds {
                for phase in Phase.allCases where rng.nextUnit() < splitChance {
                    let key = Case.Key(height: height, round: round, phase: phase)
                    (partitions[key], cuts[key]) = drawSplit(nodes, cutShare: 0.25, rng: &rng)
                }
            }
        }
        var crash: Case.Crash?
        if rng.nextUnit() < 0.25 {
            let honest = nodes.filter { twinOf[$0] == nil && !twinOf.values.contains($0) }
            crash = Case.Crash(node: honest[below(honest.count)], atSeconds: ((rng.nextUnit() * 1.5) * 100).rounded() / 100,
                               downSeconds: ((0.05 + rng.nextUnit() * 0.5) * 100).rounded() / 100)
        }
        let finalDelayMs = [0.0, 0, 0, 150][below(4)]
        return Case(nodes: nodes, twinOf: twinOf, seed: seed, heights: heights, rounds: rounds, partitions: partitions,
                    cuts: cuts, crash: crash, finalDelayMs: finalDelayMs, durationSeconds: 9)
    }

    /// One step's split: random groups (2, sometimes 3) or, `cutShare` of the time, random one-way links cut.
    static func drawSplit(_ nodes: [String], cutShare: Double, rng: inout SplitMix64) -> ([[String]]?, Set<Case.Link>?) {
        if rng.nextUnit() < cutShare {
            let cutChance = rng.nextUnit() < 0.5 ? 0.3 : 0.6
            var links: Set<Case.Link> = []
            for from in nodes {
                for to in nodes where to != from && rng.nextUnit() < cutChance { links.insert(Case.Link(from: from, to: to)) }
            }
            return (nil, links.isEmpty ? nil : links)
        }
        let groupCount = rng.nextUnit() < 0.8 ? 2 : 3
        var groups = Array(repeating: [String](), count: groupCount)
        for node in nodes { groups[Int(rng.next() % UInt64(groupCount))].append(node) }
        groups = groups.filter { !$0.isEmpty }
        return (groups.count >= 2 ? groups : nil, nil)
    }

    /// A neighbour of `parent`, for the guided search: one scheduled step re-drawn (whole, split or cut), one
    /// link of a cut step flipped, or the crash moved, dropped or added. The cluster (validators, twins) stays.
    public static func mutate(_ parent: Case, rng: inout SplitMix64) -> Case {
        var child = parent
        let keys = (1...parent.heights).flatMap { height in
            (0..<parent.rounds).flatMap { round in Phase.allCases.map { Case.Key(height: height, round: round, phase: $0) } }
        }
        let key = keys[Int(rng.next() % UInt64(keys.count))]
        switch rng.next() % 6 {
        case 0:
            child.partitions[key] = nil
            child.cuts[key] = nil
        case 1, 2:
            (child.partitions[key], child.cuts[key]) = drawSplit(parent.nodes, cutShare: 0.5, rng: &rng)
        case 3, 4:
            let from = parent.nodes[Int(rng.next() % UInt64(parent.nodes.count))]
            let others = parent.nodes.filter { $0 != from }
            let link = Case.Link(from: from, to: others[Int(rng.next() % UInt64(others.count))])
            child.partitions[key] = nil
            var links = parent.cuts[key] ?? []
            if links.remove(link) == nil { links.insert(link) }
            child.cuts[key] = links.isEmpty ? nil : links
        default:
            let honest = parent.nodes.filter { parent.twinOf[$0] == nil && !parent.twinOf.values.contains($0) }
            child.crash = rng.nextUnit() < 0.3 ? nil
                : Case.Crash(node: honest[Int(rng.next() % UInt64(honest.count))],
                             atSeconds: ((rng.nextUnit() * 1.5) * 100).rounded() / 100,
                             downSeconds: ((0.05 + rng.nextUnit() * 0.5) * 100).rounded() / 100)
        }
        return child
    }

    /// How close a run came to a disagreement, from what the honest validators signed: at the worst height, the
    /// distinct blocks they precommitted (two is legitimate in Tendermint, a lock given up for a newer
    /// proof-of-lock, and rare: the state every lock bug needs), then the distinct blocks they prevoted.
    static func nearness(_ monitor: SafetyMonitor) -> Int {
        var precommitted: [UInt64: Set<Bytes32>] = [:], prevoted: [UInt64: Set<Bytes32>] = [:]
        for (key, entry) in monitor.audit.first where !monitor.ignoredValidators.contains(key.validator) {
            guard let value = entry.value else { continue }
            if key.kind == MessageKind.precommit.rawValue { precommitted[key.height, default: []].insert(value) }
            if key.kind == MessageKind.prevote.rawValue { prevoted[key.height, default: []].insert(value) }
        }
        return 10 * (precommitted.values.map(\.count).max() ?? 0) + (prevoted.values.map(\.count).max() ?? 0)
    }

    /// The heights every honest process must have committed by the end: the scheduled ones and two more.
    static func heightsDue(_ drawn: Case) -> UInt64 { drawn.heights + 2 }

    /// Runs one case in this process; the verdict and the simulator's outcome (nil when nothing was finalized).
    public static func check(_ drawn: Case, planted: Tendermint.PlantedBug? = nil, consensus: BFT.ProtocolName? = nil) throws
        -> (Swarm.Verdict, Simulator.Outcome?) {
        let (verdict, outcome, _) = try run(drawn, planted: planted, consensus: consensus)
        return (verdict, outcome)
    }

    /// `check`, with how near the run came to a disagreement (`nearness`) for the guided search.
    public static func run(_ drawn: Case, planted: Tendermint.PlantedBug? = nil, consensus: BFT.ProtocolName? = nil) throws
        -> (Swarm.Verdict, Simulator.Outcome?, nearness: Int) {
        let scenario = try Scenario.parse(drawn.toml, path: "twins-\(drawn.seed).toml")
        var settings = Simulator.Settings(seed: drawn.seed)
        settings.eventLogs = false
        settings.planted = planted
        settings.consensus = consensus
        settings.firstBlockWithinSeconds = drawn.wholeAtSeconds + drawn.durationSeconds
        let simulator = try Simulator(scenario: scenario, settings: settings, logDir: nil)
        simulator.monitor.ignore(nodes: drawn.byzantineNodes, validators: drawn.byzantineValidators)
        simulator.stopAtFirstViolation = true
        simulator.roundSchedule = RoundSchedule(drawn, slots: simulator.nodes.map(\.name))
        let honest = simulator.nodes.filter { !drawn.byzantineNodes.contains($0.name) }.map(\.slot)
        simulator.goal = (heightsDue(drawn), honest, 0) // past every scheduled height: nothing left to split
        let outcome: Simulator.Outcome
        do {
            outcome = try simulator.run()
        } catch let error as RunError {
            if let first = simulator.monitor.violations.first { return (.safety(first.description), nil, 0) }
            return (.liveness("\(error)"), nil, 0)
        }
        let near = nearness(simulator.monitor)
        if let first = outcome.violations.first { return (.safety(first.description), outcome, near) }
        if !simulator.goalMet {
            let worst = outcome.heights.filter { !drawn.byzantineNodes.contains($0.key) }.min { $0.value < $1.value }
            return (.liveness("\(worst?.key ?? "?") at height \(worst?.value ?? 0) at the end, "
                              + "\(Swarm.format(drawn.durationSeconds)) s after the network was whole (every honest node "
                              + "must reach \(heightsDue(drawn)))"), outcome, near)
        }
        return (.passed, outcome, near)
    }

    /// Smaller cases that may still fail: each split step made whole, the crash removed, the final stretch
    /// as fast as the rest, the twin removed (greedy delta debugging takes the first that still fails).
    public static func simplifications(of drawn: Case) -> [Case] {
        var out: [Case] = []
        for key in drawn.partitions.keys.sorted() {
            var whole = drawn
            whole.partitions[key] = nil
            out.append(whole)
        }
        for key in drawn.cuts.keys.sorted() {
            var whole = drawn
            whole.cuts[key] = nil
            out.append(whole)
        }
        for (key, links) in drawn.cuts.sorted(by: { $0.key < $1.key }) where links.count > 1 {
            for link in links.sorted() {
                var fewer = drawn
                fewer.cuts[key]!.remove(link)
                out.append(fewer)
            }
        }
        if drawn.crash != nil {
            var calm = drawn
            calm.crash = nil
            out.append(calm)
        }
        if drawn.finalDelayMs > 0 {
            var fast = drawn
            fast.finalDelayMs = 0
            out.append(fast)
        }
        for (twin, _) in drawn.twinOf {
            var single = drawn
            single.twinOf[twin] = nil
            single.nodes.removeAll { $0 == twin }
            single.partitions = single.partitions.compactMapValues { groups in
                let left = groups.map { $0.filter { $0 != twin } }.filter { !$0.isEmpty }
                return left.count >= 2 ? left : nil
            }
            single.cuts = single.cuts.compactMapValues { links in
                let left = links.filter { $0.from != twin && $0.to != twin }
                return left.isEmpty ? nil : left
            }
            out.append(single)
        }
        return out
    }

    /// Shrinks a failing case to one that fails the same way (safety or liveness), in at most `triesMax` runs.
    public static func shrink(_ drawn: Case, verdict: Swarm.Verdict, planted: Tendermint.PlantedBug?,
                              consensus: BFT.ProtocolName? = nil, triesMax: Int = 300) -> (Case, Swarm.Verdict, tries: Int) {
        var current = drawn, currentVerdict = verdict, tries = 0, progress = true
        while progress, tries < triesMax {
            progress = false
            for candidate in simplifications(of: current) where tries < triesMax {
                tries += 1
                guard let (candidateVerdict, _) = try? check(candidate, planted: planted, consensus: consensus) else { continue }
                if candidateVerdict.kind == verdict.kind {
                    current = candidate
                    currentVerdict = candidateVerdict
                    progress = true
                    break
                }
            }
        }
        return (current, currentVerdict, tries)
    }
}

/// The simulated network's per-round delivery (`Simulator.roundSchedule`): until `wholeAtUs`, a consensus
/// message of a scheduled height, round and step reaches only the processes in its sender's group (statuses and
/// block sync: by the sender's own height, round and step), and every other message (later rounds, transactions)
/// arrives. From `wholeAtUs` on the network is whole
/// (what was dropped is gone; re-sends get through) and every message is `finalDelayMs` late.
struct RoundSchedule {
    let heights: UInt64
    let rounds: UInt32
    let wholeAtUs: UInt64
    let count: Int
    /// Per (height, round, phase) index, per link (sender × count + receiver): delivered (nil: that step is whole).
    let reach: [[Bool]?]
    let finalDelayMs: Double

    init(_ drawn: Twins.Case, slots: [String]) {
        heights = drawn.heights
        rounds = drawn.rounds
        finalDelayMs = drawn.finalDelayMs
        wholeAtUs = UInt64(drawn.wholeAtSeconds * 1_000_000)
        count = slots.count
        var table: [[Bool]?] = Array(repeating: nil, count: Int(drawn.heights) * Int(drawn.rounds) * 3)
        let n = slots.count
        for key in Set(drawn.partitions.keys).union(drawn.cuts.keys) {
            var links = Array(repeating: true, count: n * n)
            if let split = drawn.partitions[key] {
                var bySlot = Array(repeating: -1, count: n)
                for (group, members) in split.enumerated() {
                    for member in members { if let slot = slots.firstIndex(of: member) { bySlot[slot] = group } }
                }
                for from in 0..<n { for to in 0..<n { links[from * n + to] = bySlot[from] == bySlot[to] } }
            }
            for link in drawn.cuts[key] ?? [] {
                if let from = slots.firstIndex(of: link.from), let to = slots.firstIndex(of: link.to) { links[from * n + to] = false }
            }
            table[((Int(key.height) - 1) * Int(drawn.rounds) + Int(key.round)) * 3 + key.phase.rawValue] = links
        }
        reach = table
    }

    /// Extra delay for a message from `from` to `to`, in ms; nil: dropped. Block sync and statuses follow the
    /// sender's current height, round and step (`senderAt`): a partition that hides a round's precommits must
    /// also hide the block a node that saw them commits meanwhile, or the round is not partitioned at all.
    func fate(from: Int, to: Int, _ message: SimMessage, nowUs: UInt64,
              senderAt: (height: UInt64, round: UInt32, step: Tendermint.Step)?) -> Double? {
        if nowUs >= wholeAtUs { return finalDelayMs }
        let height: UInt64, round: UInt32, phase: Int
        switch message.message {
        case .proposal(let proposal): (height, round, phase) = (proposal.height, proposal.round, 0)
        case .blockPart(let part): (height, round, phase) = (part.height, part.round, 0)
        case .prevote(let vote): (height, round, phase) = (vote.height, vote.round, 1)
        case .precommit(let vote): (height, round, phase) = (vote.height, vote.round, 2)
        case .status, .blockRequest, .syncPart, .syncCommit:
            guard let senderAt else { return 0 }
            (height, round, phase) = (senderAt.height, senderAt.round, min(Int(senderAt.step.rawValue), 2))
        default: return 0
        }
        guard height >= 1, height <= heights, round < rounds else { return 0 }
        guard let links = reach[((Int(height) - 1) * Int(rounds) + Int(round)) * 3 + phase] else { return 0 }
        return links[from * count + to] ? 0 : nil
    }
}
