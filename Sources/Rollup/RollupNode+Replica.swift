import Wire

extension RollupNode {
    /// Rollup traffic from a peer: feed parts (replicas), or L2 transactions relayed by a node.
    public func onPeerMessage(_ envelope: Envelope, _ message: Message, host: Host) {
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
    func applyBufferedFeed(host: Host) {
        while let block = feed.take(height: unsafe.height + 1) {
            if let problem = unsafe.problem(with: block, forcedQueue: derivation.forced) {
                if problem.contains("the inbox has") {
                    feed.buffer(block) // our L1 view is behind the sequencer's: retry after the next L1 block
                    return
                }
                host.log(.warning, "rollup: feed block \(block.header.height) does not fit: \(problem)")
                host.record("feed_rejected", timeMs: host.nowMs, [
                    ("l2Height", .uint(block.header.height)), ("reason", .string(problem)),
                ])
                continue
            }
            let root = unsafe.apply(block, checkSignatures: false)
            let now = host.nowMs
            lastFeedMs = now
            if root != block.header.stateRoot { feedRootMismatches += 1 }
            if feedIds.count < RollupNodeLimits.feedIdsMax, block.header.height > derivation.chain.height {
                feedIds[block.header.height] = block.id
            }
            host.record("feed_block", timeMs: now, [
                ("l2Height", .uint(block.header.height)), ("txs", .uint(UInt64(block.txs.count))),
                ("lagMs", .uint(now > block.header.timeMs ? now - block.header.timeMs : 0)),
                ("rootOk", .bool(root == block.header.stateRoot)),
            ])
        }
        feed.forget(below: unsafe.height + 1)
    }
}
