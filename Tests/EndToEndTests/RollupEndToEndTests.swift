import Foundation
import Testing
@testable import Cluster

extension ClusterEndToEndTests {
    /// A real rollup: four validators, a sequencer and a replica as processes. Clients send L2
    /// transfers and one forced transaction goes through the L1 inbox; the sequencer includes it in
    /// time, the replica derives the sequencer's root for every posted batch, and each transfer is
    /// followed from submission through its L2 block and batch to safe and final.
    @Test(.timeLimit(.minutes(3)))
    func rollupTransactionsGoFromSubmissionToFinal() throws {
        let folder = try ScratchFolder("rollup", file: "rollup.toml", text: Self.rollupScenario)
        defer { folder.remove() }
        let root = folder.root
        let path = folder.file
        let run = try Self.faultline(["run", path, "--runs", root + "/runs", "--out", root + "/out"])
        #expect(run.code == 0, "\(run.out)\(run.err)")
        #expect(run.out.contains("L2 latency, load"), "\(run.out)")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/out/report.json")))
            as? [String: Any]
        let rollup = try #require(json?["rollup"] as? [String: Any])
        let latencies = rollup["latencies"] as? [[String: Any]] ?? []
        let load = try #require(latencies.first { $0["source"] as? String == "load" })
        let submitted = load["submitted"] as? Int ?? 0
        #expect(submitted >= 300, "50/s from 1 s on")
        for stage in ["included", "posted", "safe", "final"] {
            let count = (load[stage] as? [String: Any])?["count"] as? Int ?? 0
            #expect(count >= submitted * 9 / 10, "\(stage): \(count) of \(submitted)")
        }
        let p99 = { (stage: String) in ((load[stage] as? [String: Any])?["p99Ms"] as? Double) ?? 0 }
        #expect(p99("included") <= p99("posted") && p99("posted") <= p99("final"), "stages are in order")
        #expect((rollup["finalHeights"] as? [String: Any])?["r1"] as? Int ?? 0 > 0)
    }

    static let rollupScenario = """
        [cluster]
        name = "rollup-e2e"
        chain_id = "faultline-rollup-e2e"
        seed = 3

        [limits]
        ingress_mode = "lanes"

        [load]
        rate_tx_per_s = 50
        duration_s = 6
        accounts = 64
        layer = "l2"
        start_s = 1

        [rollup]
        forced_inclusion_blocks = 400
        challenge_window_blocks = 5

        [scenario]
        duration_s = 12

        [[node]]
        name = "v1"
        [[node]]
        name = "v2"
        [[node]]
        name = "v3"
        [[node]]
        name = "v4"
        [[node]]
        name = "seq"
        role = "sequencer"
        [[node]]
        name = "r1"
        role = "replica"

        [[step]]
        id = "forced"
        at_s = 2
        action = "forced_tx"
        count = 1

        [[expect]]
        name = "the forced transaction is in the replica's chain, put there by the sequencer"
        metric = "l2_forced_included"
        min = 1

        [[expect]]
        name = "the sequencer included it (derivation never had to)"
        metric = "l2_forced_by_derivation"
        max = 0

        [[expect]]
        name = "the replica derives the sequencer's root for every posted batch"
        metric = "l2_roots_agree"
        equals = true

        [[expect]]
        name = "transfers are final on the replica within 10 s of submission (p99)"
        metric = "l2_final_p99_ms"
        max = 10000
        """
}
