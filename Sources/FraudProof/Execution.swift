import Sodium
import Wire

/// The machine's store over the whole L2 state: what a proposer or a challenger executes a batch on,
/// and what it reads witnesses from. Never misses anything.
public struct FullStore: Machine.Store, Sendable {
    public private(set) var accounts: AccountTree
    public private(set) var height: UInt64
    public let inboxHash: Bytes32?

    public init(accounts: AccountTree, height: UInt64, inboxHash: Bytes32?) {
        self.accounts = accounts
        self.height = height
        self.inboxHash = inboxHash
    }

    public func account(_ key: PublicKey) -> Account { accounts.account(key) }
    public mutating func set(_ key: PublicKey, _ value: Account) { accounts.set(key, value) }
    public mutating func seal(height: UInt64) { self.height = height }
    public mutating func root() -> Bytes32 {
        Machine.stateRoot(height: height, accountsRoot: accounts.root(), inboxHash: inboxHash)
    }
}

/// A batch's input and its execution, step by step: the trace a party commits to, and the one-step
/// proof of any step. `deviation` lets a dishonest party (or a sequencer that missed an L1 reorg)
/// execute something else from a given step on: it is called with each step's index and may change
/// the store before that step runs. Pure.
public struct Execution: Sendable {
    public let items: [Machine.Item]
    public let inputTree: MerkleTree
    public let context: Machine.Context
    public let start: FullStore
    /// Steps until the machine halts.
    public let steps: Int

    public init(items: [Machine.Item], start: FullStore, context: Machine.Context) {
        precondition(!items.isEmpty, "a batch has at least one item")
        self.items = items
        inputTree = MerkleTree(leaves: items.map(\.leaf))
        self.context = context
        self.start = start
        steps = items.reduce(0) { $0 + $1.steps }
    }

    public var inputRoot: Bytes32 { inputTree.root }
    public var itemCount: UInt64 { UInt64(items.count) }

    public typealias Deviation = @Sendable (_ step: Int, _ store: inout FullStore) -> Void

    /// Every step's state hash, the final state, and the store after it.
    public func run(deviation: Deviation? = nil) -> (trace: Trace, final: Machine.State, store: FullStore) {
        var hashes: [Bytes32] = []
        hashes.reserveCapacity(steps)
        // The agreed start: before any deviation.
        var initial = start
        let startHash = Machine.State(root: initial.root()).hash
        let (final, store) = walk(to: steps, deviation: deviation, before: { _, _, _ in }, after: { hashes.append($0.hash) })
        return (Trace(start: startHash, after: hashes), final, store)
    }

    /// The one-step proof of step `index` (from trace position `index` to `index + 1`), as this party
    /// executes it. Re-executes from the start.
    public func proof(step index: Int, deviation: Deviation? = nil) -> OneStepProof {
        proofs(steps: [index], deviation: deviation)[index]!
    }

    /// The one-step proofs of several steps, by step, from one execution up to the last of them.
    public func proofs(steps wanted: Set<Int>, deviation: Deviation? = nil) -> [Int: OneStepProof] {
        guard let last = wanted.max() else { return [:] }
        var proofs: [Int: OneStepProof] = [:]
        _ = walk(to: last + 1, deviation: deviation,
                 before: { index, state, store in if wanted.contains(index) { proofs[index] = proof(of: state, in: store) } },
                 after: { _ in })
        return proofs
    }

    /// Executes steps `0..<end` from the start (past the halt they change nothing). Before each step,
    /// `before` sees the step's pre-state, then the deviation (if any) changes the store; `after` sees
    /// each post-state.
    private func walk(to end: Int, deviation: Deviation?,
                      before: (_ index: Int, _ state: Machine.State, _ store: FullStore) -> Void,
                      after: (Machine.State) -> Void) -> (Machine.State, FullStore) {
        var store = start
        var state = Machine.State(root: store.root())
        for index in 0..<end {
            // The pre-state of step `index` is trace position `index`, recorded before any deviation at
            // this step: a party proves the step from the state its own trace shows there.
            before(index, state, store)
            if let deviation, index < steps {
                deviation(index, &store)
                state.root = store.root()
            }
            state = advance(state, store: &store)
            after(state)
        }
        return (state, store)
    }

    /// The proof of the step from `state`, with `store` the whole L2 state at that point.
    private func proof(of state: Machine.State, in store: FullStore) -> OneStepProof {
        var item: Machine.Item?
        var itemProof: [Bytes32] = []
        if state.phase == 0, state.item < itemCount {
            item = items[Int(state.item)]
            itemProof = inputTree.proof(Int(state.item))
        }
        var accountsRoot: Bytes32?
        var witness: AccountWitness?
        var accounts = store.accounts
        if let key = Machine.touches(state, context: context) {
            witness = accounts.witness(for: key)
        } else {
            accountsRoot = accounts.root()
        }
        return OneStepProof(pre: state, item: item, itemProof: itemProof, height: store.height,
                            accountsRoot: accountsRoot, witness: witness)
    }

    private func advance(_ state: Machine.State, store: inout FullStore) -> Machine.State {
        let item = state.phase == 0 && state.item < itemCount ? items[Int(state.item)] : nil
        do {
            return try Machine.step(state, item: item, itemCount: itemCount, store: &store, context: context)
        } catch {
            preconditionFailure("the full store misses nothing, yet step \(state.item)/\(state.phase): \(error)")
        }
    }
}
