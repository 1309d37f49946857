import FraudProof
import Sodium
import Wire

/// The dispute contract's rules (Topologies/README.md, "Fraud proofs"), executed by every validator as part of L1
/// blocks: batches become machine input when their last chunk lands; the sequencer asserts each batch's end root with a
/// bond; anyone challenges within the window with a bond; each challenge is a bisection game with chess clocks in L1
/// blocks, all games against an assertion running in parallel; the loser's bond goes half to the winner and half is
/// burned; an assertion is confirmed once its window has passed, every game against it is over and its parent is
/// confirmed; a defeated assertion is removed with every assertion built on it.
extension Ledger {
    /// Takes a chunk the inbox recorded: a batch it completes becomes machine input, if well formed.
    mutating func recordDisputeChunk(_ chunk: BatchChunk, l1Height: UInt64) {
        guard disputes != nil else { return }
        let (rejected, batch) = disputes!.assembler.add(chunk)
        for (index, reason) in rejected { disputeEvents.append(.batchVoid(index: index, reason: reason)) }
        guard let batch else { return }
        switch disputes!.record(batch, l1Height: l1Height) {
        case .success(let (record, items)): disputeEvents.append(.batchRecorded(record, items: items))
        case .failure(let refusal): disputeEvents.append(.batchVoid(index: batch.index, reason: refusal.reason))
        }
    }

    /// Applies a dispute transaction in the L1 block at `l1Height`.
    mutating func applyDispute(_ tx: Envelope, l1Height: UInt64) -> TxOutcome {
        guard disputes != nil, let sequencer else { return .disputeRefused("this chain has no dispute contract") }
        guard let dispute = try? DisputeTx(decoding: tx.payload) else { return .malformed }
        do throws(DisputeRefusal) {
            switch dispute {
            case .assert(let assertion):
                guard tx.sender == sequencer else { throw DisputeRefusal("only the sequencer asserts") }
                try takeBond(disputes!.settings.assertionBond, from: tx.sender)
                do {
                    disputeEvents.append(try disputes!.assert(assertion, l1Height: l1Height))
                } catch {
                    pay(disputes!.settings.assertionBond, to: tx.sender)
                    throw error
                }
            case .challenge(let assertion, let commitment, let end):
                guard tx.sender != sequencer else { throw DisputeRefusal("the sequencer cannot challenge its own assertion") }
                try takeBond(disputes!.settings.challengeBond, from: tx.sender)
                do {
                    disputeEvents.append(try disputes!.challenge(assertion, by: tx.sender, commitment: commitment, end: end,
                                                                 l1Height: l1Height))
                } catch {
                    pay(disputes!.settings.challengeBond, to: tx.sender)
                    throw error
                }
            case .move(let assertion, let game, let claim):
                let side = try disputes!.side(of: tx.sender, assertion: assertion, game: Int(game), sequencer: sequencer)
                disputeEvents.append(try disputes!.move(assertion, game: Int(game), side: side, claim: claim,
                                                        l1Height: l1Height))
                settleIfOver(assertion, game: Int(game), l1Height: l1Height)
            case .oneStep(let assertion, let game, let proof):
                let side = try disputes!.side(of: tx.sender, assertion: assertion, game: Int(game), sequencer: sequencer)
                disputeEvents.append(try disputes!.oneStep(assertion, game: Int(game), side: side, proof: proof,
                                                           l1Height: l1Height))
                settleIfOver(assertion, game: Int(game), l1Height: l1Height)
            }
            return .applied
        } catch {
            return .disputeRefused(error.reason)
        }
    }

    /// The end of the L1 block at `l1Height`: clocks that ran out end their games, then assertions whose
    /// time has come are confirmed.
    mutating func endDisputeBlock(l1Height: UInt64) {
        guard disputes != nil else { return }
        for record in disputes!.orderedAssertions where !record.confirmed {
            for index in record.games.indices where disputes!.assertions[record.id] != nil {
                disputes!.assertions[record.id]!.games[index].game.onL1Block(height: l1Height)
                settleIfOver(record.id, game: index, l1Height: l1Height)
            }
        }
        while let next = disputes!.confirmable(at: l1Height) {
            let previous = disputes!.confirmedId
            disputes!.assertions[next.id]!.confirmed = true
            disputes!.confirmedId = next.id
            disputes!.confirmedBatch = next.assertion.batch
            disputes!.confirmedRoot = next.assertion.root
            if previous != .zero, let old = disputes!.assertions.removeValue(forKey: previous) {
                disputes!.byBatch[old.assertion.batch] = nil
            }
            for index in disputes!.batches.keys where index <= next.assertion.batch { disputes!.batches[index] = nil }
            pay(next.bond, to: sequencer!)
            disputeEvents.append(.confirmed(id: next.id, batch: next.assertion.batch, root: next.assertion.root,
                                            lastHeight: next.lastHeight))
        }
    }

    /// Pays out a game that just ended: the loser's bond half to the winner, half burned. A challenger
    /// that wins defeats the assertion: it and every assertion built on it are removed, their other
    /// games closed with the challengers' bonds returned, and the proposer's bonds on the descendants
    /// returned (they fell with their parent, not in a game of their own).
    private mutating func settleIfOver(_ id: Bytes32, game index: Int, l1Height: UInt64) {
        guard let record = disputes!.assertions[id], index < record.games.count else { return }
        let entry = record.games[index]
        guard !entry.settled, let outcome = entry.game.outcome else { return }
        disputes!.assertions[id]!.games[index].settled = true
        let settlement: Settlement
        switch outcome.winner {
        case .proposer:
            let (gets, burned) = Bisection.settle(winnerBond: 0, loserBond: entry.bond)
            pay(gets, to: sequencer!)
            burn(burned)
            settlement = Settlement(toWinner: gets, burned: burned, refunded: 0)
        case .challenger:
            let (gets, burned) = Bisection.settle(winnerBond: entry.bond, loserBond: record.bond)
            pay(gets, to: entry.challenger)
            burn(burned)
            settlement = Settlement(toWinner: gets - entry.bond, burned: burned, refunded: 0)
        }
        disputeEvents.append(.gameEnded(assertion: id, game: index, batch: record.assertion.batch,
                                        challenger: entry.challenger, outcome: outcome, bisections: entry.game.bisections,
                                        clockProposer: entry.game.clockProposer,
                                        clockChallenger: entry.game.clockChallenger, settlement: settlement))
        if outcome.winner == .challenger {
            removeAssertion(id, reason: "defeated in game \(index): \(outcome.reason)", bondPaid: true, l1Height: l1Height)
        }
    }

    /// Removes an assertion and every pending one of a later batch (its descendants).
    private mutating func removeAssertion(_ id: Bytes32, reason: String, bondPaid: Bool, l1Height: UInt64) {
        guard let fallen = disputes!.assertions[id] else { return }
        let descendants = disputes!.orderedAssertions.filter { !$0.confirmed && $0.assertion.batch > fallen.assertion.batch }
        for record in [fallen] + descendants {
            disputes!.assertions[record.id] = nil
            disputes!.byBatch[record.assertion.batch] = nil
            if record.id != id || !bondPaid { pay(record.bond, to: sequencer!) }
            for (index, entry) in record.games.enumerated() where !entry.settled {
                pay(entry.bond, to: entry.challenger)
                let closed = Bisection.Outcome(winner: .challenger, reason: "closed: assertion \(id.short) fell", l1Height: l1Height)
                disputeEvents.append(.gameEnded(assertion: record.id, game: index, batch: record.assertion.batch,
                                                challenger: entry.challenger, outcome: closed,
                                                bisections: entry.game.bisections, clockProposer: entry.game.clockProposer,
                                                clockChallenger: entry.game.clockChallenger,
                                                settlement: Settlement(toWinner: 0, burned: 0, refunded: entry.bond)))
            }
            let why = record.id == id ? reason : "built on assertion \(id.short) of batch \(fallen.assertion.batch), which fell"
            disputeEvents.append(.rejected(id: record.id, batch: record.assertion.batch, root: record.assertion.root,
                                           reason: why))
        }
    }

    private mutating func takeBond(_ bond: UInt64, from key: PublicKey) throws(DisputeRefusal) {
        var account = account(key)
        guard account.balance >= bond else {
            throw DisputeRefusal("a bond of \(bond) needs funds; \(key.bytes32.short) has \(account.balance)")
        }
        account.balance -= bond
        set(key, account)
        disputes!.held += bond
    }

    /// Pays `amount` out of the bonds held.
    private mutating func pay(_ amount: UInt64, to key: PublicKey) {
        guard amount > 0 else { return }
        precondition(disputes!.held >= amount, "paying \(amount) out of \(disputes!.held) held")
        disputes!.held -= amount
        var account = account(key)
        account.balance &+= amount
        set(key, account)
    }

    private mutating func burn(_ amount: UInt64) {
        precondition(disputes!.held >= amount, "burning \(amount) out of \(disputes!.held) held")
        disputes!.held -= amount
        disputes!.burned += amount
    }
}

/// Why the contract refused a dispute transaction (the transaction is skipped, like a bad transfer).
struct DisputeRefusal: Error {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}

extension Disputes {
    /// A completed batch as machine input: well formed if it continues the L2 chain the earlier
    /// well-formed batches reach (blocks at or below that height are skipped, as derivation skips them).
    mutating func record(_ batch: Batch, l1Height: UInt64) -> Result<(BatchRecord, [Machine.Item]), DisputeRefusal> {
        if let lastBatch, batch.index <= lastBatch {
            return .failure(DisputeRefusal("batch \(batch.index) after batch \(lastBatch)"))
        }
        let blocks = batch.blocks.filter { $0.header.height > l2Height }
        guard !blocks.isEmpty else { return .failure(DisputeRefusal("no L2 block above height \(l2Height)")) }
        var height = l2Height
        var parent = l2HeadId
        for block in blocks {
            let header = block.header
            guard header.height == height + 1 else {
                return .failure(DisputeRefusal("L2 block \(header.height) where \(height + 1) is next"))
            }
            guard header.parentId == parent else {
                return .failure(DisputeRefusal("L2 block \(header.height) builds on \(header.parentId.short), not \(parent.short)"))
            }
            guard header.txRoot == Block.txRoot(block.txs) else {
                return .failure(DisputeRefusal("L2 block \(header.height): transaction root does not match"))
            }
            height = header.height
            parent = block.id
        }
        let items = Machine.items(of: blocks)
        let steps = items.reduce(0) { $0 + $1.steps }
        let record = BatchRecord(index: batch.index, previous: lastBatch,
                                 inputRoot: MerkleTree(leaves: items.map(\.leaf)).root, itemCount: UInt64(items.count),
                                 steps: steps, length: 1 << MerkleTree.depth(for: steps),
                                 firstHeight: blocks[0].header.height, lastHeight: height, l1Height: l1Height)
        batches[batch.index] = record
        lastBatch = batch.index
        l2Height = height
        l2HeadId = parent
        return .success((record, items))
    }

    mutating func assert(_ assertion: Assertion, l1Height: UInt64) throws(DisputeRefusal) -> DisputeEvent {
        guard let record = batches[assertion.batch] else {
            throw DisputeRefusal("batch \(assertion.batch) is not a well-formed batch awaiting an assertion")
        }
        guard byBatch[assertion.batch] == nil else { throw DisputeRefusal("batch \(assertion.batch) already has an assertion") }
        guard let parent = expectedParent(of: record) else {
            throw DisputeRefusal("batch \(record.previous ?? 0) before batch \(assertion.batch) has no assertion yet")
        }
        guard assertion.parent == parent else {
            throw DisputeRefusal("assertion of batch \(assertion.batch) names parent \(assertion.parent.short), expected \(parent.short)")
        }
        let start = root(of: parent)!
        let endHash = Machine.State.halted(root: assertion.root, itemCount: record.itemCount).hash
        let end = Bisection.Claim(index: record.length, hash: endHash, proof: assertion.endProof)
        guard Bisection.holds(end, commitment: assertion.commitment, length: record.length) else {
            throw DisputeRefusal("the end proof does not show the halted state on the claimed root as leaf \(record.length) of the commitment")
        }
        let id = assertion.id
        assertions[id] = AssertionRecord(id: id, assertion: assertion, startHash: Machine.State(root: start).hash,
                                         endHash: endHash, length: record.length, lastHeight: record.lastHeight,
                                         createdAt: l1Height, bond: settings.assertionBond)
        byBatch[assertion.batch] = id
        return .asserted(id: id, batch: assertion.batch, root: assertion.root, parent: parent, length: record.length,
                         windowEnd: assertions[id]!.windowEnd(settings))
    }

    mutating func challenge(_ id: Bytes32, by challenger: PublicKey, commitment: Bytes32, end: Bisection.Claim,
                            l1Height: UInt64) throws(DisputeRefusal) -> DisputeEvent {
        guard let record = assertions[id], !record.confirmed else { throw DisputeRefusal("no pending assertion \(id.short)") }
        guard l1Height <= record.windowEnd(settings) else {
            throw DisputeRefusal("the window of assertion \(id.short) closed at L1 height \(record.windowEnd(settings))")
        }
        guard record.games.count < DisputeSettings.gamesMax else {
            throw DisputeRefusal("assertion \(id.short) already has \(DisputeSettings.gamesMax) games")
        }
        guard !record.games.contains(where: { $0.challenger == challenger && $0.game.challengerCommitment == commitment }) else {
            throw DisputeRefusal("this challenger already disputes assertion \(id.short) with this commitment")
        }
        guard end.hash != record.endHash else { throw DisputeRefusal("the challenger's trace ends where the assertion's does") }
        let proposerEnd = Bisection.Claim(index: record.length, hash: record.endHash, proof: record.assertion.endProof)
        let game: Bisection.Game
        do {
            game = try Bisection.Game(length: record.length, start: record.startHash,
                                      proposerCommitment: record.assertion.commitment, proposerEnd: proposerEnd,
                                      challengerCommitment: commitment, challengerEnd: end, clockBlocks: settings.clockBlocks,
                                      l1Height: l1Height)
        } catch {
            throw DisputeRefusal("challenge refused: \(error)")
        }
        assertions[id]!.games.append(DisputeGame(challenger: challenger, bond: settings.challengeBond, openedAt: l1Height,
                                                 game: game))
        return .challenged(assertion: id, game: record.games.count, challenger: challenger, endHash: end.hash)
    }

    func side(of sender: PublicKey, assertion id: Bytes32, game: Int, sequencer: PublicKey) throws(DisputeRefusal)
        -> Bisection.Side {
        guard let record = assertions[id], !record.confirmed else { throw DisputeRefusal("no pending assertion \(id.short)") }
        guard game >= 0, game < record.games.count else { throw DisputeRefusal("assertion \(id.short) has no game \(game)") }
        if sender == sequencer { return .proposer }
        if sender == record.games[game].challenger { return .challenger }
        throw DisputeRefusal("\(sender.bytes32.short) is not a party to game \(game) of assertion \(id.short)")
    }

    mutating func move(_ id: Bytes32, game index: Int, side: Bisection.Side, claim: Bisection.Claim,
                       l1Height: UInt64) throws(DisputeRefusal) -> DisputeEvent {
        do {
            try assertions[id]!.games[index].game.move(side, claim, l1Height: l1Height)
        } catch {
            throw DisputeRefusal("move refused: \(error)")
        }
        let game = assertions[id]!.games[index].game
        return .moved(assertion: id, game: index, side: side, index: claim.index, low: game.low, high: game.high,
                      clockProposer: game.clockProposer, clockChallenger: game.clockChallenger)
    }

    mutating func oneStep(_ id: Bytes32, game index: Int, side: Bisection.Side, proof: OneStepProof,
                          l1Height: UInt64) throws(DisputeRefusal) -> DisputeEvent {
        let record = assertions[id]!
        guard let batch = batches[record.assertion.batch] else {
            throw DisputeRefusal("batch \(record.assertion.batch) is no longer held")
        }
        let context = self.context
        do {
            try assertions[id]!.games[index].game.oneStep(side, l1Height: l1Height) {
                try? proof.execute(inputRoot: batch.inputRoot, itemCount: batch.itemCount, context: context).get()
            }
        } catch {
            throw DisputeRefusal("one-step proof refused: \(error)")
        }
        return .oneStep(assertion: id, game: index, step: assertions[id]!.games[index].game.high)
    }

    /// The pending assertion that can be confirmed at `l1Height`, if any: it builds on the confirmed
    /// tip, its window has passed and no game against it is still being played.
    func confirmable(at l1Height: UInt64) -> AssertionRecord? {
        guard let next = assertions.values.first(where: { !$0.confirmed && $0.assertion.parent == confirmedId }) else {
            return nil
        }
        guard l1Height > next.windowEnd(settings), next.games.allSatisfy(\.settled) else { return nil }
        return next
    }
}
