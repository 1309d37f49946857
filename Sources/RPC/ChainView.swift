import Ledger
import Sodium
import Wire

/// A 20-byte account address for Ethereum clients: the last 20 bytes of BLAKE2b-256 of the Ed25519
/// public key (Ethereum takes the last 20 bytes of Keccak-256 of its key the same way).
public struct Address: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(_ key: PublicKey) { bytes = Array(Blake2b.hash(key.bytes32.bytes).bytes.suffix(20)) }

    public init?(hex text: String) {
        guard text.hasPrefix("0x"), let decoded = Hex.decode(String(text.dropFirst(2))), decoded.count == 20 else {
            return nil
        }
        bytes = decoded
    }

    public var description: String { "0x" + Hex.encode(bytes) }
}

/// What an rpc node serves, as of one committed height: recent blocks, every account, and the
/// receipts of recent transactions. A value: the node publishes a new one after each commit, and
/// keeps the last few (for the lagging-head fault mode).
public struct ChainView: Sendable {
    public struct BlockEntry: Sendable, Equatable {
        public var height: UInt64
        public var id: Bytes32
        public var parentId: Bytes32
        public var timeMs: UInt64
        public var proposer: PublicKey
        /// The header's state root: the root after the previous block (CometBFT's app hash).
        public var stateRoot: Bytes32
        public var txRoot: Bytes32
        public var sizeBytes: Int
        public var txs: [TxEntry]
    }

    public struct TxEntry: Sendable, Equatable {
        public var hash: Bytes32
        public var kind: MessageKind
        public var from: PublicKey
        public var transfer: Transfer?
        public var applied: Bool
        public var fee: UInt64
    }

    /// Where a transaction landed: its block and position.
    public struct Located: Sendable, Equatable {
        public var height: UInt64
        public var index: Int
    }

    public static let blocksKept = 512
    public static let receiptsKept = 50_000

    public var chainName: String
    public var chainId: UInt64
    public var domain: Domain
    public var clientVersion: String
    public private(set) var head: UInt64 = 0
    public internal(set) var blocks: [UInt64: BlockEntry] = [:]
    public private(set) var blockHeights: [Bytes32: UInt64] = [:]
    public internal(set) var accounts: [PublicKey: Account] = [:]
    public private(set) var addresses: [Address: PublicKey] = [:]
    public private(set) var located: [Bytes32: Located] = [:]

    public init(chainName: String, domain: Domain, clientVersion: String) {
        self.chainName = chainName
        self.chainId = ChainView.numericChainId(chainName)
        self.domain = domain
        self.clientVersion = clientVersion
    }

    /// Ethereum clients want a number: the first 6 bytes of BLAKE2b-256 of the chain's name (below
    /// 2^48, so every JSON library reads it exactly).
    public static func numericChainId(_ name: String) -> UInt64 {
        let hash = Blake2b.hash(Array(name.utf8)).bytes
        return hash.prefix(6).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }

    /// Adds a committed block and the ledger after it. Old blocks and receipts fall off the window.
    public mutating func record(_ block: Block, _ result: Ledger.BlockResult, ledger: Ledger) {
        let failed = Set(result.failedIndexes)
        let txs = block.txs.enumerated().map { index, tx in
            TxEntry(hash: tx.id, kind: tx.kind, from: tx.sender,
                    transfer: tx.kind == .transfer ? try? Transfer(decoding: tx.payload) : nil,
                    applied: !failed.contains(index), fee: Ledger.fee(of: tx))
        }
        let height = block.header.height
        let entry = BlockEntry(height: height, id: block.id, parentId: block.header.previousBlockId,
                               timeMs: block.header.timeMs, proposer: block.header.proposer,
                               stateRoot: block.header.stateRoot, txRoot: block.header.txRoot,
                               sizeBytes: block.encoded.count, txs: txs)
        blocks[height] = entry
        blockHeights[entry.id] = height
        for (index, tx) in txs.enumerated() { located[tx.hash] = Located(height: height, index: index) }
        if height > UInt64(ChainView.blocksKept), let old = blocks.removeValue(forKey: height - UInt64(ChainView.blocksKept)) {
            blockHeights[old.id] = nil
            for tx in old.txs { located[tx.hash] = nil }
        }
        while located.count > ChainView.receiptsKept, let oldest = blocks.keys.min(), oldest < height {
            if let old = blocks.removeValue(forKey: oldest) {
                blockHeights[old.id] = nil
                for tx in old.txs { located[tx.hash] = nil }
            }
        }
        head = height
        for (key, account) in ledger.accounts where accounts[key] != account {
            if accounts[key] == nil { addresses[Address(key)] = key }
            accounts[key] = account
        }
    }

    public func transaction(_ hash: Bytes32) -> (BlockEntry, Int)? {
        guard let where_ = located[hash], let block = blocks[where_.height] else { return nil }
        return (block, where_.index)
    }

    public func account(at address: Address) -> Account? {
        addresses[address].flatMap { accounts[$0] }
    }
}
