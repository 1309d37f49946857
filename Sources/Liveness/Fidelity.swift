/// Does a simulated run tell the same story as a real run of the same scenario? Compared on what
/// the scenario is about: for each fault, whether finality halted while it lasted; whether the run
/// ended halted; and safety (agreement, double signs, state roots). Timing figures (latency, exact
/// gap lengths, throughput) are the real machine's and are not compared: timing expectations that differ
/// are listed as notes, while a mechanism expectation (drops, stale or wrong answers, amplification, a
/// halt that must happen, ...) that passes in one and fails in the other is a mismatch.
public enum Fidelity {
    /// One run's outcome, as compared.
    public struct Outcome: Sendable, Equatable {
        /// Per fault id: the longest halt overlapping it, in seconds (0: finality never stopped).
        public var haltSecondsByFault: [String: Double]
        /// The run ended in a halt this long (nil: it was finalizing at the end).
        public var unendedHaltSeconds: Double?
        public var agreement: Bool
        public var doubleSigns: Int
        public var stateRootDivergences: Int
        /// Expectation name → passed.
        public var expectations: [String: Bool]
        /// Expectation name → what was observed, as the report words it (the figures side by side).
        public var observed: [String: String] = [:]
        /// The expectations about a mechanism, not timing (`ExpectationSpec.sensitivity` is nil: no host load
        /// moves them): one that passes in one run and fails in the other is a mismatch, not a note. Set from
        /// the scenario file (a report does not say which bounds the file marked `timing`).
        public var mechanisms: Set<String> = []
        /// Faults (and "end" for the end of the run) whose real halt came while the host was overloaded:
        /// a real halt the simulation does not show is then a note, not a mismatch.
        public var haltsOnOverloadedHost: Set<String> = []

        public init(haltSecondsByFault: [String: Double], unendedHaltSeconds: Double?, agreement: Bool,
                    doubleSigns: Int, stateRootDivergences: Int, expectations: [String: Bool]) {
            self.haltSecondsByFault = haltSecondsByFault
            self.unendedHaltSeconds = unendedHaltSeconds
            self.agreement = agreement
            self.doubleSigns = doubleSigns
            self.stateRootDivergences = stateRootDivergences
            self.expectations = expectations
        }

        public init(_ report: Report) {
            var windows: [String: [(Double, Double)]] = [:]
            for fault in report.faults {
                windows[fault.id, default: []].append((fault.start, fault.end ?? report.durationSeconds))
            }
            var bySeconds: [String: Double] = [:]
            for (id, spans) in windows {
                let overlapping = report.liveness.halts.filter { halt in
                    spans.contains { halt.start < $0.1 && halt.end > $0.0 }
                }
                bySeconds[id] = overlapping.map(\.seconds).max() ?? 0
            }
            self.init(haltSecondsByFault: bySeconds,
                      unendedHaltSeconds: report.liveness.halts.last { !$0.ended }?.seconds,
                      agreement: report.safety.agreement, doubleSigns: report.safety.doubleSigns.count,
                      stateRootDivergences: report.safety.stateRootDivergences.count,
                      expectations: Dictionary(report.expectations.map { ($0.name, $0.passed) }) { first, _ in first })
            observed = Dictionary(report.expectations.map { ($0.name, $0.observed) }) { first, _ in first }
            // The stretches the real run's analysis judged overloaded, and the halts that overlap them.
            let busy = (report.host?.overloaded ?? []).filter { $0.count == 2 }.map { ($0[0], $0[1]) }
            func overloaded(_ halt: Report.HaltEntry) -> Bool { busy.contains { $0.0 < halt.end && $0.1 > halt.start } }
            for (id, spans) in windows {
                let halts = report.liveness.halts.filter { halt in spans.contains { halt.start < $0.1 && halt.end > $0.0 } }
                if halts.contains(where: overloaded) { haltsOnOverloadedHost.insert(id) }
            }
            if let last = report.liveness.halts.last, !last.ended, overloaded(last) { haltsOnOverloadedHost.insert("end") }
        }
    }

    public struct Comparison: Sendable, Equatable {
        /// Where the two runs tell different stories.
        public var mismatches: [String] = []
        /// Differences too close to call (a halt just over the threshold on one side) and expectations
        /// whose verdicts differ (their bounds are often timing).
        public var notes: [String] = []
        /// What agreed, one line each.
        public var agreements: [String] = []
        /// Each expectation's figure in the real run beside the simulated ones (not judged: how close the
        /// model comes, for the reader).
        public var figures: [String] = []

        public var agrees: Bool { mismatches.isEmpty }
    }

    /// A halt shorter than `clearFactor` × the scenario's threshold is too close to call: a slower
    /// machine or another start order turns it into a long block interval, and back.
    public static let clearFactor = 2.0

    /// Compares a real run with simulated runs of the same scenario under several seeds. A real run is
    /// one sample of a random process (a kill storm halts finality in some runs and not in others), so
    /// the simulation agrees on a point when the real outcome is among the simulated ones; where every
    /// seed tells the other story, it is a mismatch (or a note, when every halt involved is too short to
    /// call). A deterministic fault (a 2|2 partition) gives the same verdict on every seed, so there
    /// this is as strict as one seed.
    public static func compare(real: Outcome, simulated: [Outcome], haltThresholdSeconds threshold: Double) -> Comparison {
        precondition(!simulated.isEmpty, "compare with at least one simulated run")
        var result = Comparison()
        let clear = threshold * clearFactor
        let seeds = simulated.count
        func haltText(_ seconds: Double) -> String { seconds == 0 ? "did not halt" : String(format: "halted %.1f s", seconds) }
        func simulatedText(_ all: [Double]) -> String {
            let halted = all.filter { $0 > 0 }
            if seeds == 1 { return haltText(all[0]) }
            guard let low = halted.min(), let high = halted.max() else { return "did not halt in any of \(seeds) seeds" }
            return "halted in \(halted.count) of \(seeds) seeds (" + (low == high ? String(format: "%.1f s", low)
                : String(format: "%.1f–%.1f s", low, high)) + ")"
        }
        /// One halt-or-not point: agrees if the real verdict is among the simulated ones.
        func judge(_ label: String, _ r: Double, _ all: [Double], overloaded: Bool = false) {
            let line = "\(label): real \(haltText(r)), simulated \(simulatedText(all))"
            if all.contains(where: { ($0 > 0) == (r > 0) }) {
                result.agreements.append(line)
            } else if r > 0, overloaded {
                result.notes.append(line + " (the real halt came while the host was overloaded)")
            } else if max(r, all.max() ?? 0) >= clear {
                result.mismatches.append(line)
            } else {
                result.notes.append(line + String(format: " (halts under %.1f s: too close to call)", clear))
            }
        }
        let ids = simulated.reduce(Set(real.haltSecondsByFault.keys)) { $0.union($1.haltSecondsByFault.keys) }
        for id in ids.sorted() {
            let all = simulated.compactMap { $0.haltSecondsByFault[id] }
            guard let r = real.haltSecondsByFault[id], all.count == seeds else {
                result.mismatches.append("fault \(id) happened in the real run: \(real.haltSecondsByFault[id] != nil), "
                                         + "in \(all.count) of \(seeds) simulated")
                continue
            }
            judge("fault \(id)", r, all, overloaded: real.haltsOnOverloadedHost.contains(id))
        }
        judge("end of the run", real.unendedHaltSeconds ?? 0, simulated.map { $0.unendedHaltSeconds ?? 0 },
              overloaded: real.haltsOnOverloadedHost.contains("end"))
        let safety: [(String, (Outcome) -> Bool)] = [
            ("nodes agree on every block", \.agreement),
            ("some validator signed two values", { $0.doubleSigns > 0 }),
            ("state roots diverged", { $0.stateRootDivergences > 0 }),
        ]
        for (what, property) in safety {
            let r = property(real)
            let count = simulated.filter(property).count
            let line = "\(what): real \(r), simulated " + (seeds == 1 ? "\(count == 1)" : "true in \(count) of \(seeds) seeds")
            if (r && count > 0) || (!r && count < seeds) { result.agreements.append(line) } else { result.mismatches.append(line) }
        }
        for name in real.expectations.keys.sorted() {
            guard let r = real.expectations[name] else { continue }
            if let observed = real.observed[name] {
                let theirs = simulated.compactMap { $0.observed[name] }
                let distinct = theirs.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
                if !distinct.isEmpty {
                    result.figures.append("\(name): real \(observed); simulated " + (distinct.count == 1 ? distinct[0]
                        : "\(distinct[0]) (the first seed's; \(distinct.count) different figures over \(seeds) seeds)"))
                }
            }
            let verdicts = simulated.compactMap { $0.expectations[name] }
            if !verdicts.isEmpty, !verdicts.contains(r) {
                let line = "expectation \"\(name)\": real \(r ? "passed" : "failed"), simulated "
                    + (seeds == 1 ? (r ? "failed" : "passed") : "\(r ? "failed" : "passed") in every seed")
                if real.mechanisms.contains(name) {
                    result.mismatches.append(line + " (a mechanism, not timing)")
                } else {
                    result.notes.append(line)
                }
            }
        }
        return result
    }
}
