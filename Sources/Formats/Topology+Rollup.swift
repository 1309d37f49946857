import Ledger
import Rollup
import Wire

/// The `[rollup]` table: the sequencer's settings, the forced-inclusion bound and the L2 airdrop.
public struct RollupTopology: Sendable, Equatable {
    public var settings = RollupSettings()
    public var forcedInclusionBlocks: UInt64 = 100
    /// Claims the airdrop pool can pay, and the amount of each.
    public var airdropClaims: UInt64 = 1_000_000
    public var airdropAmount: UInt64 = 1_000
    /// The dispute contract (fraud proofs), when any of its keys is given.
    public var disputes: DisputeSettings?
}

extension Topology {
    public var sequencerNode: Node? { nodes.first { $0.role == "sequencer" } }
    public var replicaNodes: [Node] { nodes.filter { $0.role == "replica" } }

    static func parseRollup(_ reader: TableReader, nodes: [Node]) throws(TopologyError) -> RollupTopology? {
        let sequencers = nodes.filter { $0.role == "sequencer" }
        let table = try reader.table("rollup", required: false)
        guard !sequencers.isEmpty else {
            if let replica = nodes.first(where: { $0.role == "replica" }) {
                throw reader.fail("node", "replica '\(replica.name)' needs a node with role = \"sequencer\"")
            }
            if table != nil { throw reader.fail("rollup", "a [rollup] table needs a node with role = \"sequencer\"") }
            return nil
        }
        guard sequencers.count == 1 else {
            throw reader.fail("node", "one sequencer at most; found \(sequencers.map(\.name).joined(separator: ", "))")
        }
        var rollup = RollupTopology()
        rollup.settings.feedPeers = nodes.filter { $0.role == "replica" }.map(\.name)
        guard let table else { return rollup }
        try table.allowOnly(["block_interval_ms", "block_txs_max", "queue_txs_max", "queue_wait_ms_max", "sender_per_s",
                             "sender_burst", "base_fee_min", "base_fee_step_txs", "backlog_bytes_max",
                             "backlog_intake_per_s", "batch_bytes_max", "post_interval_ms", "resend_ms",
                             "backlog_blocks_max", "uplink_bytes_per_s", "uplink_queue_max",
                             "forced_inclusion_blocks", "airdrop_claims", "airdrop_amount", "verify_workers", "verify_share",
                             "challenge_window_blocks", "dispute_window_blocks", "dispute_clock_blocks",
                             "assertion_bond", "challenge_bond"])
        var settings = rollup.settings
        settings.blockIntervalMs = try table.uint("block_interval_ms", range: 10...60_000) ?? settings.blockIntervalMs
        settings.blockTxsMax = Int(try table.uint("block_txs_max", range: 1...8_192) ?? UInt64(settings.blockTxsMax))
        settings.queueTxsMax = Int(try table.uint("queue_txs_max", range: 1...50_000_000) ?? UInt64(settings.queueTxsMax))
        settings.queueWaitMsMax = try table.uint("queue_wait_ms_max", range: 0...3_600_000) ?? settings.queueWaitMsMax
        settings.senderPerSecond = try table.double("sender_per_s", range: 0...1_000_000) ?? settings.senderPerSecond
        settings.senderBurst = try table.double("sender_burst", range: 1...1_000_000) ?? settings.senderBurst
        settings.baseFeeMin = try table.uint("base_fee_min", range: 0...1_000_000_000) ?? settings.baseFeeMin
        settings.baseFeeStepTxs = Int(try table.uint("base_fee_step_txs", range: 0...10_000_000)
            ?? UInt64(settings.baseFeeStepTxs))
        settings.backlogBytesMax = Int(try table.uint("backlog_bytes_max", range: 0...1_000_000_000)
            ?? UInt64(settings.backlogBytesMax))
        settings.backlogIntakePerSecond = try table.double("backlog_intake_per_s", range: 0...1_000_000)
            ?? settings.backlogIntakePerSecond
        if settings.backlogBytesMax > 0, settings.backlogIntakePerSecond <= 0 {
            throw table.fail("backlog_intake_per_s", "must be above 0 when backlog_bytes_max is set (the intake it slows to)")
        }
        settings.batchBytesMax = Int(try table.uint("batch_bytes_max", range: 1_000...1_000_000)
            ?? UInt64(settings.batchBytesMax))
        settings.postIntervalMs = try table.uint("post_interval_ms", range: 0...60_000) ?? settings.postIntervalMs
        settings.resendMs = try table.uint("resend_ms", range: 50...600_000) ?? settings.resendMs
        settings.backlogBlocksMax = Int(try table.uint("backlog_blocks_max", range: 1...10_000_000)
            ?? UInt64(settings.backlogBlocksMax))
        settings.uplinkBytesPerSecond = Int(try table.uint("uplink_bytes_per_s", range: 0...10_000_000_000)
            ?? UInt64(settings.uplinkBytesPerSecond))
        settings.uplinkQueueMax = Int(try table.uint("uplink_queue_max", range: 16...10_000_000)
            ?? UInt64(settings.uplinkQueueMax))
        settings.verifyWorkers = Int(try table.uint("verify_workers", range: 0...64) ?? UInt64(settings.verifyWorkers))
        settings.verifyShare = try table.double("verify_share", range: 0...1) ?? settings.verifyShare
        settings.challengeWindowBlocks = try table.uint("challenge_window_blocks", range: 0...1_000_000)
            ?? settings.challengeWindowBlocks
        rollup.settings = settings
        rollup.forcedInclusionBlocks = try table.uint("forced_inclusion_blocks", range: 1...1_000_000)
            ?? rollup.forcedInclusionBlocks
        rollup.airdropClaims = try table.uint("airdrop_claims", range: 0...100_000_000) ?? rollup.airdropClaims
        rollup.airdropAmount = try table.uint("airdrop_amount", range: 1...1_000_000_000) ?? rollup.airdropAmount
        let disputeKeys = ["dispute_window_blocks", "dispute_clock_blocks", "assertion_bond", "challenge_bond"]
        if disputeKeys.contains(where: { table.table[$0] != nil }) {
            rollup.disputes = DisputeSettings(
                windowBlocks: try table.uint("dispute_window_blocks", range: 1...1_000_000) ?? 20,
                clockBlocks: try table.uint("dispute_clock_blocks", range: 1...1_000_000) ?? 40,
                assertionBond: try table.uint("assertion_bond", range: 1...1_000_000_000) ?? 10_000,
                challengeBond: try table.uint("challenge_bond", range: 1...1_000_000_000) ?? 4_000)
        }
        return rollup
    }
}
