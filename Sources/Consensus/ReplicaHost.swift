import Ledger
import Wire

/// What the replica logic both shells run needs of the shell it runs in: the node's (a block store on
/// disk, an event log file, metrics) and the simulator's (durable state kept in memory across a
/// simulated crash). The state is the shell's; the logic below is written once, for both, and a shell
/// only says how to store, record and count (its ports).
public protocol ReplicaHost: ConsensusShell {
    associatedtype ReplicaMessage: Sendable
    associatedtype ReplicaPeer: Hashable & Comparable & Sendable

    var ledger: Ledger { get set }
    var mempool: Mempool { get set }
    var replica: Replica.Instance<ReplicaMessage, ReplicaPeer> { get set }
    /// Set at a start on another binary, settled by the next commit (see `Replica.TipAlternative`).
    var tipAlternative: Replica.TipAlternative? { get set }
    var binary: Replica.Binary { get }
    var plans: [UpgradePlan] { get }
    var validators: ValidatorSet { get }
    /// The highest block stored.
    var storeHeight: UInt64 { get }
    var nowMs: UInt64 { get }

    /// Makes the committed block durable, with the rules it is executed under, before anything else happens.
    func storeCommitted(_ committed: CommittedBlock, rules: UInt16)
    /// The rules the stored tip counts as executed under, once the next block settles it (`stored`: the store
    /// already says so).
    func settleTipRules(_ rules: UInt16, stored: Bool)
    /// What only this shell does once a block is executed (its views, metrics, the simulator's monitor).
    func committed(_ committed: CommittedBlock, result: Ledger.BlockResult)
    /// Evidence a committed block carries, and whether it took effect.
    func recordCommittedEvidence(_ block: Block, failedIndexes: [Int])
    /// Votes-only mode checked again (a commit may end it).
    func updateVotesOnly()
    /// Stops deciding for good (until restarted).
    func stop(_ stop: Replica.Stop)
    /// A line of the event log (built only when the shell writes one); `flush`: before anything else happens.
    func record(_ event: @autoclosure () -> Replica.Event, flush: Bool)
}

extension ReplicaHost {
    /// The ledger a block on top of the tip must extend (see `Replica.TipAlternative`).
    public func baseLedger(for block: Block) -> Ledger { tipAlternative?.base(for: block, current: ledger) ?? ledger }

    /// Stores, executes and records a committed block: the one path for consensus and sync. A block whose
    /// state root is not this node's, or that needs rules this binary lacks, is not stored: the node stops
    /// deciding instead (returns false).
    @discardableResult
    public func commit(_ committed: CommittedBlock, source: String) -> Bool {
        let block = committed.block
        precondition(block.header.height == storeHeight + 1, "commit of \(block.header.height) on a store at \(storeHeight)")
        resolveTip(for: block)
        let rules: UInt16
        switch Replica.commitRules(block, ledger: ledger, binary: binary, plans: plans, source: source) {
        case .success(let version):
            rules = version
        case .failure(let refusal):
            stop(refusal.stop)
            return false
        }
        storeCommitted(committed, rules: rules)
        ledger.rulesVersion = rules
        let result = ledger.execute(block)
        recordCommittedEvidence(block, failedIndexes: result.failedIndexes)
        mempool.prune(committed: Set(block.txs.map(\.id)), senders: Set(block.txs.map(\.sender)), ledger: ledger)
        replica.committed(nowMs: nowMs)
        updateVotesOnly()
        self.committed(committed, result: result)
        let proposer = validators.members[validators.index(of: block.header.proposer) ?? 0].name
        record(.commit(committed, result: result, source: source, proposer: proposer, rules: rules), flush: true)
        if case .upgradeNeeded(let plan) = binary.rules(at: block.header.height + 1, plans: plans) {
            stop(.upgrade(plan, height: block.header.height + 1, binary: binary))
        }
        return true
    }

    /// Before a block on top of the tip is stored: which execution of the tip it extends.
    func resolveTip(for block: Block) {
        guard let alternative = tipAlternative else { return }
        tipAlternative = nil
        switch alternative.resolve(for: block, current: ledger) {
        case .keepRecorded(let recorded):
            ledger = recorded
            settleTipRules(alternative.recordedRules, stored: true)
            record(.reexecuted(height: storeHeight, from: alternative.currentRules, to: alternative.recordedRules,
                               stateRoot: ledger.stateRoot, reason: "the next block's header carries this root"), flush: false)
        case .recordCurrent(let rules):
            settleTipRules(rules, stored: false)
        case .neither:
            break
        }
    }
}
