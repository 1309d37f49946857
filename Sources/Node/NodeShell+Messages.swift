import Consensus
import Ledger
import Sodium
import Transport
import Wire

extension NodeShell {
    func transactionProblem(_ block: Block) -> String? { unverifiedTransactionProblem(block) }

    func countInvalidProposal(_ key: Replica.ProposalKey, _ problem: String) {
        metrics.invalidProposals.increment()
        logger.warning("invalid proposal at \(key.height)/\(key.round): \(problem)")
    }

    /// Every transaction's signature is checked, except those already verified into the mempool or by an
    /// edge (still on their way to the mempool) and the batch chunks this node (the sequencer) signed itself.
    func unverifiedTransactionProblem(_ block: Block) -> String? {
        for tx in block.txs where !mempool.contains(tx.id) && !verifiedElsewhere(tx)
            && rollup?.signedChunks.contains(tx.id) != true {
            metrics.blockTxChecks.increment()
            guard tx.verify(domain: domain) == .valid else { return "transaction \(tx.id) has a bad signature" }
            if let problem = Replica.evidenceSignatureProblem(tx, domain: domain) { return "evidence \(tx.id): \(problem)" }
        }
        return nil
    }

    /// An edge found this transaction's signature valid, for this node's chain and fork (a fork changes at an
    /// upgrade or a recovery; the id covers the envelope's own chain and fork fields).
    private func verifiedElsewhere(_ tx: Envelope) -> Bool {
        tx.chainTag == domain.chainTag && tx.forkId == domain.forkId && verifiedTxs.contains(tx.id)
    }
}
