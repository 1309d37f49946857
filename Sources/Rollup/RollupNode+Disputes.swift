import Basics
import Ledger
import Sodium
import Wire

extension RollupNode {
    /// The sequencer as proposer, a replica as challenger, behaving as its config says.
    public func startDisputeAgent(ledger: Ledger, key: SigningKey) {
        guard let disputes = ledger.disputes else { return }
        let behaviour = settings.dispute
        var agent = DisputeAgent.Settings(role: role == .sequencer ? .proposer : .challenger)
        let minted = role == .sequencer ? sequencerKey : PublicKey(Blake2b.hash(Array("faultline/minted".utf8)))
        switch behaviour.lie {
        case "wrong-root": agent.lie = .deviate(step: behaviour.step, account: minted, amount: 1_000_000)
        case "missed-reorg":
            // The sequencer's chain really has the deposit (`Sequencer.Settings.phantomDeposit`); the agent
            // asserts what that chain computes: the deposit before the first step of the batch it went
            // into, known once the sequencer has made that batch's first block.
            let deposit = sequencerSettings.phantomDeposit!
            agent.lie = .deviate(step: 0, account: deposit.account, amount: deposit.amount)
        case "lie-every-move": agent.lie = .lieEveryMove(seed: UInt64(behaviour.step))
        default: agent.lie = nil
        }
        agent.lieBatch = behaviour.lie == "missed-reorg" ? .max : behaviour.batch
        agent.silent = behaviour.silent
        agent.identities = max(1, behaviour.identities)
        agent.challengeAtWindowEnd = behaviour.atWindowEnd
        disputeKeys = DisputeIdentity.keys(of: key, count: agent.identities)
        disputeAgent = DisputeAgent.Instance(settings: agent, context: disputes.context, genesis: derivation.chain.machineStore)
    }

    /// One L1 block's dispute events: logged, confirmations made final, and the agent's moves sent.
    func onDisputes(_ events: [DisputeEvent], l1Height: UInt64, live: Bool, host: Host) {
        let now = host.nowMs
        var rejected = false
        for event in events {
            log(event, l1Height: l1Height, now: now, host: host)
            if case .confirmed(_, _, _, let lastHeight) = event {
                for final in derivation.confirmed(l2Height: lastHeight) { record(final, l1Height: l1Height, now: now, host: host) }
            }
            if case .rejected = event { rejected = true }
        }
        // A defeated assertion: the L2 state L1 derives is the sequencer's from now on.
        if rejected, sequencer != nil {
            let before = sequencer!.chain.stateRoot
            let count = sequencer!.rebase(onto: derivation.chain)
            host.log(.notice, "sequencer: rebased onto the L1-derived chain at L2 \(derivation.chain.height): \(count.map { "\($0) block(s) re-executed" } ?? "not possible (derivation behind)")")
            host.record("sequencer_rebased", timeMs: now, [
                ("derivedHeight", .uint(derivation.chain.height)), ("rebased", .bool(count != nil)),
                ("reexecuted", .uint(UInt64(count ?? 0))),
                ("rootBefore", .string(before.hex)), ("rootAfter", .string(sequencer!.chain.stateRoot.hex)),
                ("l1Height", .uint(l1Height)),
            ])
        }
        guard disputeAgent != nil, let disputes = host.ledger.disputes else { return }
        let actions = disputeAgent!.onL1Block(height: l1Height, tipHeight: host.bestPeerHeight, events: events,
                                              disputes: disputes, identities: disputeKeys.map(\.publicKey), live: live)
        for action in actions {
            let envelope = Envelope(kind: .dispute, payload: action.tx.encoded, domain: host.domain, key: disputeKeys[action.identity])
            host.record("dispute_sent", timeMs: now, [
                ("tx", .string(action.tx.label)), ("identity", .uint(UInt64(action.identity))), ("l1Height", .uint(l1Height)),
            ])
            host.sendToPeers(envelope)
        }
    }

    private func log(_ event: DisputeEvent, l1Height: UInt64, now: UInt64, host: Host) {
        let height: (String, JSONValue) = ("l1Height", .uint(l1Height))
        guard let settings = host.ledger.disputes?.settings else { return }
        switch event {
        case .batchRecorded(let record, _):
            host.record("dispute_batch", timeMs: now, [
                ("batch", .uint(record.index)), ("steps", .uint(UInt64(record.steps))), ("length", .uint(UInt64(record.length))),
                ("lastHeight", .uint(record.lastHeight)), height,
            ])
        case .batchVoid(let index, let reason):
            host.record("dispute_batch_void", timeMs: now, [("batch", .uint(index)), ("reason", .string(reason)), height])
        case .asserted(let id, let batch, let root, _, let length, let windowEnd):
            host.record("dispute_asserted", timeMs: now, [
                ("assertion", .string(id.hex)), ("batch", .uint(batch)), ("root", .string(root.hex)),
                ("length", .uint(UInt64(length))), ("windowEnd", .uint(windowEnd)), ("bond", .uint(settings.assertionBond)),
                height,
            ])
        case .challenged(let id, let game, let challenger, _):
            host.record("dispute_challenged", timeMs: now, [
                ("assertion", .string(id.hex)), ("game", .uint(UInt64(game))), ("challenger", .string(challenger.hex)),
                ("bond", .uint(settings.challengeBond)), ("clock", .uint(settings.clockBlocks)), height,
            ])
        case .moved(let id, let game, let side, let index, let low, let high, let clockProposer, let clockChallenger):
            host.record("dispute_move", timeMs: now, [
                ("assertion", .string(id.hex)), ("game", .uint(UInt64(game))), ("side", .string(side.rawValue)),
                ("index", .uint(UInt64(index))), ("low", .uint(UInt64(low))), ("high", .uint(UInt64(high))),
                ("clockProposer", .uint(clockProposer)), ("clockChallenger", .uint(clockChallenger)), height,
            ])
        case .oneStep(let id, let game, let step):
            host.record("dispute_one_step", timeMs: now, [
                ("assertion", .string(id.hex)), ("game", .uint(UInt64(game))), ("step", .uint(UInt64(step))), height,
            ])
        case .gameEnded(let id, let game, let batch, let challenger, let outcome, let bisections, let clockProposer,
                        let clockChallenger, let settlement):
            host.record("dispute_game_ended", timeMs: now, [
                ("assertion", .string(id.hex)), ("game", .uint(UInt64(game))), ("batch", .uint(batch)),
                ("challenger", .string(challenger.hex)), ("winner", .string(outcome.winner.rawValue)),
                ("reason", .string(outcome.reason)), ("bisections", .uint(UInt64(bisections))),
                ("clockProposer", .uint(clockProposer)), ("clockChallenger", .uint(clockChallenger)),
                ("toWinner", .uint(settlement.toWinner)), ("burned", .uint(settlement.burned)),
                ("refunded", .uint(settlement.refunded)), height,
            ])
        case .confirmed(let id, let batch, let root, let lastHeight):
            host.record("dispute_confirmed", timeMs: now, [
                ("assertion", .string(id.hex)), ("batch", .uint(batch)), ("root", .string(root.hex)),
                ("lastHeight", .uint(lastHeight)), height,
            ])
        case .rejected(let id, let batch, let root, let reason):
            host.log(.notice, "rollup: assertion \(id.short) of batch \(batch) rejected: \(reason)")
            host.record("dispute_rejected", timeMs: now, [
                ("assertion", .string(id.hex)), ("batch", .uint(batch)), ("root", .string(root.hex)),
                ("reason", .string(reason)), height,
            ])
        }
    }
}
