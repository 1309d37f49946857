import Ledger
import Rollup
import Sodium
import Transport
import Wire

extension RollupShell {
    /// Rollup traffic from a peer: feed parts (replicas), or L2 transactions relayed by a node.
    func onPeerMessage(_ envelope: Envelope, _ message: Message, host: RollupHost) {
        switch message {
        case .l2BlockPart(let part):
            guard role == .replica, envelope.sender == sequencerKey else { return }
            guard let block = feed.add(part, unsafeHeight: unsafe.height) else { return }
            feed.buffer(block)
            applyBufferedFeed(host: host)
        default:
            return
        }
    }

    /// Applies feed blocks that extend the unsafe head, in order.
    func applyBufferedFeed(host: RollupHost) {
        while let block = feed.take(height: unsafe.height + 1) {
            if let problem = unsafe.problem(with: block, forcedQueue: derivation.forced) {
                if problem.contains("the inbox has") {
                    feed.buffer(block) // our L1 view is behind the sequencer's: retry after the next L1 block
                    return
                }
                host.logger.warning("rollup: feed block \(block.header.height) does not fit: \(problem)")
                host.events.write("feed_rejected", timeMs: host.nowMs, [
                    ("l2Height", .uint(block.header.height)), ("reason", .string(problem)),
                ])
                continue
            }
            let root = unsafe.apply(block, checkSignatures: false)
            let now = host.nowMs
            lastFeedMs = now
            if root != block.header.stateRoot { feedRootMismatches += 1 }
            if feedIds.count < RollupShell.feedIdsMax, block.header.height > derivation.chain.height {
                feedIds[block.header.height] = block.id
            }
            host.events.write("feed_block", timeMs: now, [
                ("l2Height", .uint(block.header.height)), ("txs", .uint(UInt64(block.txs.count))),
                ("lagMs", .uint(now > block.header.timeMs ? now - block.header.timeMs : 0)),
                ("rootOk", .bool(root == block.header.stateRoot)),
            ])
        }
        feed.forget(below: unsafe.height + 1)
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
