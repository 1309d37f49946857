import Basics
import DequeModule
import Ledger
import Sodium
import Wire

/// What the rollup part of a node (`RollupNode`) uses of the node it runs in: ports, not the node. The
/// real node (`NodeShell`: UDP, its event log and logger) is one host; the simulator's node can be another.
public protocol RollupHost: AnyObject {
    /// Where an answer to a client goes (a socket address on a real node).
    associatedtype Address: Hashable & Sendable
    /// The node's clock (ms since the epoch), and when the node started.
    var nowMs: UInt64 { get }
    var startedAtMs: UInt64 { get }
    /// Envelopes signed with the node's key for its chain and fork.
    func sign(_ kind: MessageKind, _ payload: some WireCodable) -> Envelope
    var domain: Domain { get }
    var datagramPayloadBytesMax: Int { get }
    /// L1 as this node has committed it (its height; its ledger: the inbox and the dispute contract).
    var l1Height: UInt64 { get }
    var ledger: Ledger { get }
    /// Peers' committed L1 heights: whether any was heard, and the best.
    var hasHeardPeers: Bool { get }
    var bestPeerHeight: UInt64 { get }
    /// Where batch chunks go (every validator), and the feed (by peer name).
    var chunkTargets: [(name: String, address: Address)] { get }
    func feedAddress(named name: String) -> Address?
    /// To every peer (dispute transactions).
    func sendToPeers(_ envelope: Envelope)
    /// A line of the node's event log, and flushing it.
    func record(_ name: String, timeMs: UInt64, _ fields: [(String, JSONValue)])
    func flushRecords()
    /// A line for the operator (the node's logger).
    func log(_ level: RollupLogLevel, _ message: String)
    /// The process's resident memory, for the samples (nil where there is no process to measure).
    var residentKiB: UInt64? { get }
}

public enum RollupLogLevel: Sendable { case info, notice, warning, critical }

public enum RollupRole: String, Sendable { case sequencer, replica }

/// Bounds of `RollupNode`, and the `missed-reorg` fault's account.
public enum RollupNodeLimits {
    /// Feed block ids kept until derivation reaches them.
    public static let feedIdsMax = 100_000
    /// Client addresses with refusals not yet answered.
    public static let refusalKeysMax = 1_024
    /// Derived root mismatches logged at warning level (each is in the event log; the log stays short).
    public static let rootMismatchLogMax = 20
    /// Where the `missed-reorg` fault's deposit goes: an account no one holds a key for.
    public static let reorgedDepositAccount = PublicKey(Blake2b.hash(Array("faultline/reorged-deposit".utf8)))
}

/// A datagram for the uplink: its bytes, where it goes, the peer's name (or "client") and its kind.
public struct UplinkItem<Address: Sendable>: Sendable {
    public var bytes: [UInt8]
    public var address: Address
    public var peer: String
    public var kind: MessageKind

    public init(bytes: [UInt8], address: Address, peer: String, kind: MessageKind) {
        self.bytes = bytes
        self.address = address
        self.peer = peer
        self.kind = kind
    }
}

/// What a committed L1 block means for the rollup.
public struct L1Commit: Sendable {
public var height: UInt64
public var timeMs: UInt64
public var inbox: [InboxItem]
public var batchSequence: UInt64
public var disputes: [DisputeEvent]

public init(_ block: Block, _ result: Ledger.BlockResult, ledger: Ledger) {
        height = block.header.height
        timeMs = block.header.timeMs
        inbox = result.inbox
        batchSequence = ledger.inbox.batchSequence
        disputes = result.disputes
    }
}

/// The sequencer's uplink: what it can send per second, with a bounded drop-tail queue in front.
/// The batch poster, the feed and the answers to clients share it.
public struct Uplink<Address: Sendable> {
    let queueMax: Int
    public private(set) var queue: Deque<UplinkItem<Address>> = []
    public private(set) var dropped: [String: Int] = [:]
    /// Bytes; nil: unlimited. Up to a tenth of a second builds up while idle (at least one datagram).
    private var budget: TokenBucket?

    public init(bytesPerSecond: Int, queueMax: Int) {
        self.queueMax = max(queueMax, 1)
        if bytesPerSecond > 0 {
            let rate = Double(bytesPerSecond)
            budget = TokenBucket(ratePerSecond: rate, burst: max(rate / 10, Double(Envelope.payloadBytesMax + Envelope.overheadBytes)))
        }
    }

    public mutating func enqueue(_ item: UplinkItem<Address>) {
        guard queue.count < queueMax else {
            dropped[item.kind.description, default: 0] += 1
            return
        }
        queue.append(item)
    }

    /// What may go out now.
    public mutating func drain(nowMs: UInt64) -> [UplinkItem<Address>] {
        guard budget != nil else {
            defer { queue.removeAll(keepingCapacity: true) }
            return Array(queue)
        }
        var out: [UplinkItem<Address>] = []
        while let first = queue.first, budget!.take(Double(first.bytes.count), nowMs: nowMs) {
            out.append(queue.removeFirst())
        }
        return out
    }
}

/// The replica's side of the feed: parts assembled per L2 height (checked against the parts root),
/// and whole blocks waiting for their parent. Both bounded.
struct FeedAssembler {
    static let heightsMax = 256
    static let blocksMax = 1_024
    private var assemblers: [UInt64: (blockId: Bytes32, assembler: PartSet.Assembler)] = [:]
    private var blocks: [UInt64: L2Block] = [:]

    /// Adds a part; returns the block once its last part arrives and it decodes to the announced id.
    mutating func add(_ part: L2BlockPart, unsafeHeight: UInt64) -> L2Block? {
        guard part.height > unsafeHeight, blocks[part.height] == nil else { return nil }
        if assemblers[part.height] == nil || assemblers[part.height]!.assembler.root != part.partsRoot {
            guard assemblers.count < FeedAssembler.heightsMax || assemblers[part.height] != nil else { return nil }
            assemblers[part.height] = (part.blockId, PartSet.Assembler(root: part.partsRoot, total: Int(part.part.total),
                                                                         bytesMax: L2Block.bytesMax))
        }
        guard case .complete(let bytes) = assemblers[part.height]!.assembler.add(part.part) else { return nil }
        let announced = assemblers.removeValue(forKey: part.height)!.blockId
        guard let block = try? L2Block(decoding: bytes), block.id == announced, block.header.height == part.height else {
            return nil
        }
        return block
    }

    mutating func buffer(_ block: L2Block) {
        guard blocks.count < FeedAssembler.blocksMax || blocks[block.header.height] != nil else { return }
        blocks[block.header.height] = block
    }

    mutating func take(height: UInt64) -> L2Block? { blocks.removeValue(forKey: height) }

    mutating func forget(below height: UInt64) {
        // Usually nothing is stale: collect the few keys instead of rebuilding both maps per block.
        for key in blocks.keys.filter({ $0 < height }) { blocks[key] = nil }
        for key in assemblers.keys.filter({ $0 < height }) { assemblers[key] = nil }
    }
}

/// A set of ids that forgets the oldest past `countMax`.
public struct BoundedIdSet: Sendable {
    let countMax: Int
    private var members: Set<Bytes32> = []
    private var order: Deque<Bytes32> = []

    public init(countMax: Int) {
        precondition(countMax > 0, "countMax \(countMax)")
        self.countMax = countMax
    }

    public func contains(_ id: Bytes32) -> Bool { members.contains(id) }

    public mutating func insert(_ id: Bytes32) {
        guard members.insert(id).inserted else { return }
        order.append(id)
        if order.count > countMax, let oldest = order.popFirst() { members.remove(oldest) }
    }
}
