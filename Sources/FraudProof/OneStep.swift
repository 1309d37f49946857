import Sodium
import Wire

/// Everything L1 needs to execute one step of the machine: the full pre-state, the input item the step
/// reads (with its proof against the batch's input root), and the part of the L2 state it touches (one
/// account bucket with its Merkle siblings, or for a seal the accounts root), under the height behind
/// the pre-state's root. Sized to fit one L1 transaction while the touched bucket holds at most
/// `AccountWitness.entriesMax` accounts.
public struct OneStepProof: WireCodable, Equatable {
    public var pre: Machine.State
    public var item: Machine.Item?
    public var itemProof: [Bytes32]
    public var height: UInt64
    public var accountsRoot: Bytes32?
    public var witness: AccountWitness?

    public init(pre: Machine.State, item: Machine.Item?, itemProof: [Bytes32], height: UInt64,
                accountsRoot: Bytes32?, witness: AccountWitness?) {
        self.pre = pre
        self.item = item
        self.itemProof = itemProof
        self.height = height
        self.accountsRoot = accountsRoot
        self.witness = witness
    }

    public enum Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        case wrongItem(UInt64)
        case missing(Machine.Missing)

        public var description: String {
            switch self {
            case .wrongItem(let index): return "the item given is not input item \(index) of the batch"
            case .missing(let missing): return "\(missing)"
            }
        }
    }

    /// L1's execution of the step: the hashes of the pre-state and of the state after it.
    public func execute(inputRoot: Bytes32, itemCount: UInt64, context: Machine.Context)
        -> Result<(pre: Bytes32, post: Bytes32), Refusal> {
        var checkedItem: Machine.Item?
        if pre.phase == 0, pre.item < itemCount, let item {
            guard itemProof.count == MerkleTree.depth(for: Int(clamping: itemCount)),
                  MerkleTree.verify(leaf: item.leaf, index: Int(clamping: pre.item), proof: itemProof, root: inputRoot) else {
                return .failure(.wrongItem(pre.item))
            }
            checkedItem = item
        }
        var store = WitnessStore(root: pre.root, height: height, accountsRoot: accountsRoot, witness: witness,
                                 inboxHash: context.inboxHash)
        do {
            let post = try Machine.step(pre, item: checkedItem, itemCount: itemCount, store: &store, context: context)
            return .success((pre.hash, post.hash))
        } catch {
            return .failure(.missing(error))
        }
    }

    public func encode(to writer: inout WireWriter) {
        pre.encode(to: &writer)
        writer.bool(item != nil)
        if let item { item.encode(to: &writer) }
        writer.hashes(itemProof)
        writer.u64(height)
        writer.bool(accountsRoot != nil)
        if let accountsRoot { writer.bytes32(accountsRoot) }
        writer.bool(witness != nil)
        if let witness { witness.encode(to: &writer) }
    }

    public init(from reader: inout WireReader) throws(DecodeError) {
        pre = try Machine.State(from: &reader)
        item = try reader.bool("proof.hasItem") ? try Machine.Item(from: &reader) : nil
        itemProof = try reader.hashes("proof.itemProof")
        height = try reader.u64("proof.height")
        accountsRoot = try reader.bool("proof.hasAccountsRoot") ? try reader.bytes32("proof.accountsRoot") : nil
        witness = try reader.bool("proof.hasWitness") ? try AccountWitness(from: &reader) : nil
    }
}

/// The machine's store when all L1 has is a state root: the proof's witness, checked against that root
/// before anything is read, written or sealed.
struct WitnessStore: Machine.Store {
    let expectedRoot: Bytes32
    var height: UInt64
    var accountsRoot: Bytes32?
    var witness: AccountWitness?
    let inboxHash: Bytes32?
    var checked = false

    init(root: Bytes32, height: UInt64, accountsRoot: Bytes32?, witness: AccountWitness?, inboxHash: Bytes32?) {
        expectedRoot = root
        self.height = height
        self.accountsRoot = accountsRoot
        self.witness = witness
        self.inboxHash = inboxHash
    }

    private func currentAccountsRoot() throws(Machine.Missing) -> Bytes32 {
        if let witness {
            do { return try witness.accountsRoot() } catch { throw .witness(error) }
        }
        guard let accountsRoot else { throw .rootPreimage }
        return accountsRoot
    }

    private mutating func check() throws(Machine.Missing) {
        guard !checked else { return }
        let root = Machine.stateRoot(height: height, accountsRoot: try currentAccountsRoot(), inboxHash: inboxHash)
        guard root == expectedRoot else { throw .rootPreimage }
        checked = true
    }

    mutating func account(_ key: PublicKey) throws(Machine.Missing) -> Account {
        try check()
        guard let witness else { throw .account(key.hex) }
        do { return try witness.account(key) } catch { throw .account(key.hex) }
    }

    mutating func set(_ key: PublicKey, _ value: Account) throws(Machine.Missing) {
        try check()
        guard let current = witness else { throw .account(key.hex) }
        do { witness = try current.setting(key, value) } catch { throw .account(key.hex) }
    }

    mutating func seal(height: UInt64) throws(Machine.Missing) {
        try check()
        self.height = height
    }

    mutating func root() throws(Machine.Missing) -> Bytes32 {
        try check()
        return Machine.stateRoot(height: height, accountsRoot: try currentAccountsRoot(), inboxHash: inboxHash)
    }
}
