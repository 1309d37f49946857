import Formats
import Consensus
import Foundation
import Wire

/// Swarm testing: each seed draws a cluster and a fault schedule, the simulator runs it, and the
/// verdict says whether safety held throughout (honest nodes agree at every height, no honest
/// validator signs twice) and liveness came back after every fault healed.
public enum Swarm {
    /// One drawn case: rendered as a scenario file, so a failing one can be kept and replayed.
    public struct Case: Sendable, Equatable {
        public struct Node: Sendable, Equatable {
            public var name: String
            public var stake: UInt64
            public var twinOf: String?
            public var byzantine: [String] = []
        }

        public struct Step: Sendable, Equatable {
            public var id: String
            public var atSeconds: Double
            public var durationSeconds: Double
            /// The step's TOML lines after id, at_s and duration_s (action and its fields).
            public var fields: [String]
        }

        public var seed: UInt64
        public var nodes: [Node]
        public var steps: [Step]
        public var loadRate: Int
        /// Faults happen in [0, faultSeconds); the last `healSeconds` have none.
        public var faultSeconds: Double
        public var healSeconds: Double
        public var timeoutProposeMs: Int

        /// Nodes that lie (twins and byzantine modes) and the validators they speak for.
        public var byzantineNodes: Set<String> {
            Set(nodes.filter { $0.twinOf != nil || !$0.byzantine.isEmpty }.flatMap { [$0.name] + ($0.twinOf.map { [$0] } ?? []) })
        }

        public var byzantineValidators: Set<String> {
            Set(nodes.filter { $0.twinOf != nil || !$0.byzantine.isEmpty }.map { $0.twinOf ?? $0.name })
        }

        /// The case as a scenario file: the swarm's checks become its expectations.
        public var toml: String {
            var lines = [
                "# Drawn by `faultline simulate --swarm` from seed \(seed); replay: faultline simulate THIS_FILE --seed \(seed)",
                "[cluster]", "name = \"swarm-\(seed)\"", "chain_id = \"faultline-swarm\"", "seed = \(seed)", "",
                "[timing]", "timeout_propose_ms = \(timeoutProposeMs)", "timeout_commit_ms = 20", "",
                "[load]", "rate_tx_per_s = \(loadRate)", "accounts = 64", "",
                "[scenario]", "duration_s = \(Swarm.format(faultSeconds + healSeconds))", "settle_s = 0",
                "halt_threshold_s = 1.0", "",
            ]
            for node in nodes {
                lines.append("[[node]]")
                lines.append("name = \"\(node.name)\"")
                if node.twinOf == nil { lines.append("stake = \(node.stake)") }
                if let twin = node.twinOf { lines.append("twin_of = \"\(twin)\"") }
                if !node.byzantine.isEmpty {
                    lines.append("byzantine = [\(node.byzantine.map { "\"\($0)\"" }.joined(separator: ", "))]")
                }
            }
            for step in steps {
                lines += ["", "[[step]]", "id = \"\(step.id)\"", "at_s = \(Swarm.format(step.atSeconds))"]
                lines += step.fields
                lines.append("duration_s = \(Swarm.format(step.durationSeconds))")
            }
            lines += ["", "[[expect]]", "name = \"honest nodes agree on every block\"", "metric = \"agreement\"",
                      "equals = true"]
            // The swarm's liveness check: after the last heal, no gap over the bound to the end.
            let lastHealed = steps.max { $0.atSeconds + $0.durationSeconds < $1.atSeconds + $1.durationSeconds }
            lines += ["", "[[expect]]",
                      "name = \"finality comes back after \(lastHealed.map { "the last heal (\($0.id))" } ?? "startup")\"",
                      "metric = \"max_finality_gap_s\"", "window = \"\(lastHealed.map { "after:\($0.id)" } ?? "whole")\"",
                      "max = \(Swarm.format(livenessBoundSeconds))"]
            if byzantineValidators.isEmpty {
                lines += ["", "[[expect]]", "name = \"no validator signs twice\"", "metric = \"double_signs\"", "max = 0"]
            } else {
                // The liar signs twice on purpose (a twin always does); the honest ones' signatures are
                // what the swarm checks, and the report lists every double sign with its signer.
                lines += ["", "[[expect]]", "name = \"double signs (the liar's: \(byzantineValidators.sorted().joined(separator: ", ")))\"",
                          "metric = \"double_signs\"", "min = 0"]
            }
            return lines.joined(separator: "\n") + "\n"
        }
    }

    public enum Verdict: Sendable, Equatable, CustomStringConvertible {
        case passed
        case safety(String)
        case liveness(String)

        public var description: String {
            switch self {
            case .passed: return "passed"
            case .safety(let detail): return "SAFETY: \(detail)"
            case .liveness(let detail): return "LIVENESS: \(detail)"
            }
        }

        public var kind: String {
            switch self {
            case .passed: return "passed"
            case .safety: return "safety"
            case .liveness: return "liveness"
            }
        }
    }

    /// After the last heal, a new height must be finalized within this long, and at the end every node must
    /// be within `spreadMax` heights of the best or have fallen behind less than `lagBoundSeconds` ago.
    public static let livenessBoundSeconds = 5.0
    public static let spreadMax: UInt64 = 2
    public static let lagBoundSeconds = 1.0

    static func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(format: "%.2f", value)
    }

    /// Runs one case; the verdict, and the simulator's outcome.
    public static func check(_ drawn: Case, planted: Tendermint.PlantedBug? = nil, consensus: BFT.ProtocolName? = nil) throws
        -> (Verdict, Simulator.Outcome) {
        let scenario = try Scenario.parse(drawn.toml, path: "swarm-\(drawn.seed).toml")
        var settings = Simulator.Settings(seed: drawn.seed)
        settings.eventLogs = false
        settings.planted = planted
        settings.consensus = consensus
        let simulator = try Simulator(scenario: scenario, settings: settings, logDir: nil)
        simulator.monitor.ignore(nodes: drawn.byzantineNodes, validators: drawn.byzantineValidators)
        simulator.stopAtFirstViolation = true
        let outcome = try simulator.run()
        if let first = outcome.violations.first { return (.safety(first.description), outcome) }
        let healUs = UInt64(drawn.faultSeconds * 1_000_000)
        let gap = simulator.longestGapAfter(healUs)
        if gap > livenessBoundSeconds {
            return (.liveness(String(format: "no new height for %.1f s after every fault healed (bound %.0f s)", gap,
                                     livenessBoundSeconds)), outcome)
        }
        let honest = outcome.heights.filter { !drawn.byzantineNodes.contains($0.key) }
        // Behind by more than `spreadMax` heights, and for longer than `lagBoundSeconds`: at 25 ms blocks a node
        // that misses a block (a double proposer sent it the other one) is three heights behind for the
        // ~60 ms its sync takes, which is not a liveness failure; one left behind for a second is.
        if let best = honest.values.max(), let worst = honest.min(by: { $0.value < $1.value }),
           best - worst.value > spreadMax, simulator.secondsBehind(height: worst.value) > lagBoundSeconds {
            return (.liveness("\(worst.key) ended at height \(worst.value), \(best - worst.value) behind the best "
                              + String(format: "for %.2f s", simulator.secondsBehind(height: worst.value))), outcome)
        }
        return (.passed, outcome)
    }
}
