import Foundation

extension Report {
    /// The safety section's second half: the validators' signature logs (double signs), the
    /// equivocation evidence committed on chain, and what a kill storm did and what survived it.
    func signingAndEvidenceHTML() -> String {
        var page = ""
        if safety.doubleSigns.isEmpty {
            page += "<p>No validator signed two values for one height/round/step "
                + "(\(safety.signaturesRecorded) consensus signatures in the validators' logs).</p>\n"
        } else {
            page += "<p class=\"bad\">\(safety.doubleSigns.count) double signs in the validators' own signature logs "
                + "(of \(safety.signaturesRecorded) signatures).</p>\n"
                + "<table><tr><th>validator</th><th>height</th><th>round</th><th>step</th><th>values signed</th></tr>"
            for double in safety.doubleSigns.prefix(50) {
                page += "<tr><td>\(Self.xml(double.node))</td><td>\(double.height)</td><td>\(double.round)</td>"
                    + "<td>\(Self.xml(double.kind))</td><td><code>"
                    + Self.xml(double.values.map { String($0.prefix(16)) }.joined(separator: " vs ")) + "</code></td></tr>"
            }
            page += "</table>\n"
        }
        if let forks = safety.forks, !forks.isEmpty {
            page += "<p class=\"bad\">\(forks.count) forks: +2/3 of the stake precommitted two different blocks at one "
                + "height.</p>\n<table><tr><th>height</th><th>round</th><th>block</th><th>signed by</th></tr>"
            for fork in forks.prefix(50) {
                for index in fork.values.indices {
                    page += "<tr><td>\(fork.height)</td><td>\(fork.rounds[index])</td><td><code>"
                        + Self.xml(String(fork.values[index].prefix(16))) + "</code></td><td>"
                        + Self.xml(fork.signers[index].joined(separator: ", ")) + "</td></tr>"
                }
            }
            page += "</table>\n"
        }
        if !safety.evidence.isEmpty || safety.evidenceDetections > 0 {
            page += "<h2>Equivocation evidence</h2>\n<p>\(safety.evidence.count) offences committed in blocks "
                + "(\(safety.evidenceDetections) detections by nodes).</p>\n"
            if !safety.evidence.isEmpty {
                page += "<table><tr><th>offender</th><th>vote</th><th>height</th><th>round</th><th>in block</th>"
                    + "<th>reported by</th></tr>"
                for entry in safety.evidence.prefix(100) {
                    page += "<tr><td class=\"bad\">\(Self.xml(entry.offender))</td><td>\(Self.xml(entry.vote))</td>"
                        + "<td>\(entry.height)</td><td>\(entry.round)</td><td>\(entry.block)</td>"
                        + "<td>\(Self.xml(entry.reporter))</td></tr>"
                }
                page += "</table>\n"
            }
        }
        if let storm = safety.killStorm {
            let byNode = storm.killsByNode.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            page += "<h2>Kill storm</h2>\n<p>\(storm.kills) SIGKILLs (\(Self.xml(byNode))), \(storm.restarts) restarts; "
                + "\(storm.tornTailsWritten) torn store tails written, \(storm.tornTailsCut) cut off at start"
                + (storm.tornTailsMissed > 0 ? ", <span class=\"bad\">\(storm.tornTailsMissed) not detected</span>" : "")
                + "; committed blocks lost: " + (safety.noCommittedBlockLost ? "none" : "<span class=\"bad\">yes</span>")
                + ".</p>\n"
        }
        return page
    }
}
