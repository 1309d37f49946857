import Sodium
import Wire

/// The accounts of a ledger and their commitment. Accounts hash into 4,096 buckets by 12 bits of their
/// key; a bucket hash covers its accounts sorted by key; the accounts root is a Merkle tree over the
/// bucket hashes. A change rehashes one bucket and its path (12 hashes), and any account can be shown
/// to L1 with a witness of its bucket's entries and 12 siblings (`AccountWitness`). Pure.
///
/// Each bucket also keeps the bytes its hash covers, updated in place as accounts change, so a root
/// hashes them as they lie instead of looking up and encoding every account of every changed bucket
/// again (with 150,000 accounts a 1,800-transaction block touches a third of the buckets: ~55,000
/// accounts re-encoded per block before).
public struct AccountTree: Sendable {
    public static let bucketCount = 4_096
    public static let depth = 12
    /// A bucket's bytes: its index (u32), then per account its key, balance and nonce (u64 each).
    static let entryBytes = 48
    static let bucketHeaderBytes = 4

    public private(set) var accounts: [PublicKey: Account]
    /// Each bucket's keys in ascending order (the order its hash covers them in).
    private var bucketKeys: [[PublicKey]]
    /// Each bucket's hashed bytes (`bucketBytes(bucket:_:)`), entry `i` for `bucketKeys[bucket][i]`.
    private var bucketBytes: [[UInt8]]
    private var dirty: Set<Int> = []
    private var tree: MerkleTree

    public init(_ accounts: [PublicKey: Account]) {
        self.accounts = accounts
        var keys = Array(repeating: [PublicKey](), count: AccountTree.bucketCount)
        for key in accounts.keys { keys[AccountTree.bucket(of: key)].append(key) }
        bucketKeys = keys.map { $0.sorted() }
        bucketBytes = bucketKeys.enumerated().map { bucket, keys in
            AccountTree.bucketBytes(bucket: bucket, keys.lazy.map { ($0, accounts[$0]!) })
        }
        tree = MerkleTree(leaves: bucketBytes.map { Blake2b.hash($0) })
    }

    public func account(_ key: PublicKey) -> Account {
        accounts[key] ?? Account(balance: 0, nonce: 0)
    }

    /// Sets an account (creating it: an account once written stays in the state, even at zero).
    public mutating func set(_ key: PublicKey, _ value: Account) {
        let bucket = AccountTree.bucket(of: key)
        let isNew = accounts.updateValue(value, forKey: key) == nil
        var low = 0
        var high = bucketKeys[bucket].count
        while low < high {
            let middle = (low + high) / 2
            if bucketKeys[bucket][middle] < key { low = middle + 1 } else { high = middle }
        }
        let offset = AccountTree.bucketHeaderBytes + low * AccountTree.entryBytes
        if isNew {
            bucketKeys[bucket].insert(key, at: low)
            var entry = WireWriter(capacity: AccountTree.entryBytes)
            AccountTree.encode(key, value, into: &entry)
            bucketBytes[bucket].insert(contentsOf: entry.bytes, at: offset)
        } else {
            precondition(bucketKeys[bucket][low] == key, "account \(key.hex) is in the state but not in bucket \(bucket)")
            bucketBytes[bucket].withUnsafeMutableBytes { bytes in
                bytes.storeBytes(of: value.balance.bigEndian, toByteOffset: offset + 32, as: UInt64.self)
                bytes.storeBytes(of: value.nonce.bigEndian, toByteOffset: offset + 40, as: UInt64.self)
            }
        }
        dirty.insert(bucket)
    }

    /// The accounts root; rehashes the buckets changed since the last call. Past a quarter of the
    /// buckets the tree is rebuilt in one pass (4,095 hashes) rather than path by path.
    public mutating func root() -> Bytes32 {
        if dirty.count > AccountTree.bucketCount / 4 {
            var leaves = tree.levels[0]
            for bucket in dirty { leaves[bucket] = hash(bucket: bucket) }
            tree = MerkleTree(leaves: leaves)
        } else {
            for bucket in dirty { tree.update(bucket, leaf: hash(bucket: bucket)) }
        }
        dirty.removeAll(keepingCapacity: true)
        return tree.root
    }

    /// What shows `key`'s account (present or not) against `root()`.
    public mutating func witness(for key: PublicKey) -> AccountWitness {
        _ = root()
        let bucket = AccountTree.bucket(of: key)
        return AccountWitness(bucket: UInt16(bucket),
                              entries: bucketKeys[bucket].map { AccountWitness.Entry(key: $0, account: accounts[$0]!) },
                              siblings: tree.proof(bucket))
    }

    public static func bucket(of key: PublicKey) -> Int {
        // The key's first byte and the low half of its second (the words are little-endian in memory).
        Int(key.bytes32.storage.0 & 0xfff)
    }

    private func hash(bucket: Int) -> Bytes32 {
        Blake2b.hash(bucketBytes[bucket])
    }

    /// A bucket's hash: its index, then each account (key, balance, nonce) in ascending key order.
    static func bucketHash<S: Sequence>(bucket: Int, _ entries: S) -> Bytes32 where S.Element == (PublicKey, Account) {
        Blake2b.hash(bucketBytes(bucket: bucket, entries))
    }

    /// The bytes a bucket's hash covers.
    static func bucketBytes<S: Sequence>(bucket: Int, _ entries: S) -> [UInt8] where S.Element == (PublicKey, Account) {
        var writer = WireWriter(capacity: bucketHeaderBytes + entryBytes * entries.underestimatedCount)
        writer.u32(UInt32(bucket))
        for (key, account) in entries { encode(key, account, into: &writer) }
        return writer.bytes
    }

    private static func encode(_ key: PublicKey, _ account: Account, into writer: inout WireWriter) {
        writer.publicKey(key)
        writer.u64(account.balance)
        writer.u64(account.nonce)
    }

    /// Test support: every bucket hash as kept, and as computed from the accounts alone.
    public var bucketHashes: [Bytes32] { tree.levels[0] }

    public func bucketHashesFromScratch() -> [Bytes32] {
        AccountTree(accounts).bucketHashes
    }
}

/// One bucket of the account tree shown to someone who holds only the accounts root: the bucket's
/// entries (sorted by key) and the Merkle siblings of its hash. Enough to read any account of the bucket
/// (absent means zero) and to compute the root after changing one.
public struct AccountWitness: WireCodable, Equatable {
    /// A witness must fit in a one-step proof, which is one L1 transaction: see `OneStepProof`.
    public static let entriesMax = 16

    public struct Entry: Sendable, Equatable {
        public var key: PublicKey
        public var account: Account
    }

    public var bucket: UInt16
    public var entries: [Entry]
    public var siblings: [Bytes32]

    public enum Problem: Error, Sendable, Equatable, CustomStringConvertible {
        case wrongBucket(key: String, bucket: Int)
        case unsorted
        case wrongShape(siblings: Int)

        public var description: String {
            switch self {
            case .wrongBucket(let key, let bucket): return "account \(key) is not in bucket \(bucket)"
            case .unsorted: return "witness entries are not in ascending key order, or not all in its bucket"
            case .wrongShape(let siblings): return "witness has \(siblings) siblings, expected \(AccountTree.depth)"
            }
        }
    }

    public func account(_ key: PublicKey) throws(Problem) -> Account {
        guard AccountTree.bucket(of: key) == Int(bucket) else { throw .wrongBucket(key: key.hex, bucket: Int(bucket)) }
        return entries.first { $0.key == key }?.account ?? Account(balance: 0, nonce: 0)
    }

    /// This witness with `key` set to `value` (inserted in order if new).
    public func setting(_ key: PublicKey, _ value: Account) throws(Problem) -> AccountWitness {
        guard AccountTree.bucket(of: key) == Int(bucket) else { throw .wrongBucket(key: key.hex, bucket: Int(bucket)) }
        var copy = self
        if let index = entries.firstIndex(where: { $0.key == key }) {
            copy.entries[index].account = value
        } else {
            let index = entries.firstIndex { key < $0.key } ?? entries.count
            copy.entries.insert(Entry(key: key, account: value), at: index)
        }
        return copy
    }

    /// The accounts root these entries and siblings make.
    public func accountsRoot() throws(Problem) -> Bytes32 {
        guard siblings.count == AccountTree.depth else { throw .wrongShape(siblings: siblings.count) }
        for (index, entry) in entries.enumerated() {
            guard AccountTree.bucket(of: entry.key) == Int(bucket), index == 0 || entries[index - 1].key < entry.key else {
                throw .unsorted
            }
        }
        var hash = AccountTree.bucketHash(bucket: Int(bucket), entries.lazy.map { ($0.key, $0.account) })
        var position = Int(bucket)
        for sibling in siblings {
            hash = position & 1 == 0 ? Blake2b.hash(prefix: 1, hash, sibling) : Blake2b.hash(prefix: 1, sibling, hash)
            position >>= 1
        }
        return hash
    }

    public func encode(to writer: inout WireWriter) {
        writer.u16(bucket)
        writer.u16(UInt16(entries.count))
        for entry in entries {
            writer.publicKey(entry.key)
            writer.u64(entry.account.balance)
            writer.u64(entry.account.nonce)
        }
        for sibling in siblings { writer.bytes32(sibling) }
    }

    public init(bucket: UInt16, entries: [Entry], siblings: [Bytes32]) {
        self.bucket = bucket
        self.entries = entries
        self.siblings = siblings
    }

    public init(from reader: inout WireReader) throws(DecodeError) {
        bucket = try reader.u16("witness.bucket")
        guard Int(bucket) < AccountTree.bucketCount else {
            throw .invalidValue(field: "witness.bucket", reason: "\(bucket) of \(AccountTree.bucketCount)")
        }
        let count = try reader.count16("witness.entries", max: AccountWitness.entriesMax)
        var entries: [Entry] = []
        for _ in 0..<count {
            let key = try reader.publicKey("witness.key")
            entries.append(Entry(key: key, account: Account(balance: try reader.u64("witness.balance"),
                                                           nonce: try reader.u64("witness.nonce"))))
        }
        self.entries = entries
        var siblings: [Bytes32] = []
        for _ in 0..<AccountTree.depth { siblings.append(try reader.bytes32("witness.sibling")) }
        self.siblings = siblings
    }
}
