import FraudProof
import Ledger
import Sodium
import Wire

extension L2Chain {
    /// What the step machine needs to execute this chain's blocks as L1 will (fixed per rollup).
    public var machineContext: Machine.Context {
        Machine.Context(domain: domain, sequencer: sequencer, airdrop: ledger.airdrop, rulesVersion: ledger.rulesVersion,
                        inboxHash: ledger.inbox.hash)
    }

    /// The L2 state as it stands, as the machine's full store (a batch's execution starts here).
    public var machineStore: FullStore {
        FullStore(accounts: ledger.accountTree, height: ledger.height, inboxHash: ledger.inbox.hash)
    }
}
