import Ledger
import Sodium
import Transport
import Wire

/// Execution rules by height (upgrade plans), stopping on a state root mismatch, and the handshake
/// (its rules are `Replica.Handshakes`).
extension NodeShell {
    /// A binary started at a height whose rules it no longer implements refuses to run.
    struct StartRefused: Error, CustomStringConvertible {
        let description: String
    }

    func rules(at height: UInt64) -> RulesSchedule.Decision {
        RulesSchedule.decide(height: height, binaryVersion: config.version, versionMin: config.versionMin, plans: plans)
    }

    /// The last stored block's result is confirmed only by the next block's header. So a node restarted
    /// on another binary executes its last block under the rules that binary applies now, and keeps
    /// the result under the recorded rules as an alternative: the first block committed on top decides
    /// which one the network built on (`resolveTip`). This is CometBFT's `rollback` of one height
    /// before a restart on a fixed binary, done only when the chain has not moved on without it.
    struct TipAlternative {
        var ledger: Ledger
        var recordedRules: UInt16
        var currentRules: UInt16
    }

    static func reexecuteTip(_ tip: (block: Block, rules: UInt16)?, ledger: inout Ledger, config: NodeConfig,
                             plans: [UpgradePlan], result: inout Ledger.BlockResult?) -> TipAlternative? {
        guard let tip else { return nil }
        var rules = tip.rules
        if case .apply(let version) = RulesSchedule.decide(
            height: tip.block.header.height, binaryVersion: config.version, versionMin: config.versionMin, plans: plans) {
            rules = version
        }
        var recorded = ledger
        recorded.rulesVersion = tip.rules
        result = recorded.execute(tip.block)
        guard rules != tip.rules else {
            ledger = recorded
            return nil
        }
        ledger.rulesVersion = rules
        ledger.execute(tip.block)
        guard recorded.stateRoot != ledger.stateRoot else {
            ledger = recorded
            return nil
        }
        return TipAlternative(ledger: recorded, recordedRules: tip.rules, currentRules: rules)
    }

    /// The ledger a block committed on top of the tip must extend: the re-executed tip, or the tip as
    /// first executed when that is what the block's header carries.
    func baseLedger(for block: Block) -> Ledger {
        if let alternative = tipAlternative, block.header.stateRoot != ledger.stateRoot,
           block.header.stateRoot == alternative.ledger.stateRoot {
            return alternative.ledger
        }
        return ledger
    }

    /// Called before a block on top of the tip is stored: settles which execution of the tip it extends.
    func resolveTip(for block: Block) {
        guard let alternative = tipAlternative else { return }
        tipAlternative = nil
        let height = store.height
        if block.header.stateRoot == alternative.ledger.stateRoot, block.header.stateRoot != ledger.stateRoot {
            ledger = alternative.ledger
            logger.notice("the chain built block \(height + 1) on block \(height) as executed under rules v\(alternative.recordedRules); keeping that")
            events.write("reexecuted", timeMs: clock(), [
                ("height", .uint(height)), ("from", .uint(UInt64(alternative.currentRules))),
                ("to", .uint(UInt64(alternative.recordedRules))), ("stateRoot", .string(ledger.stateRoot.hex)),
                ("reason", .string("the next block's header carries this root")),
            ])
        } else if block.header.stateRoot == ledger.stateRoot {
            do {
                try store.rewriteLastRulesVersion(alternative.currentRules)
            } catch {
                logger.error("store: cannot record rules v\(alternative.currentRules) for block \(height): \(error)")
            }
        }
    }

    /// Throws (after writing a `refused_start` event) when the next height runs rules older than this
    /// binary keeps: a new binary started before its upgrade height.
    func refuseIfTooEarly() throws {
        let height = store.height + 1
        guard case .tooEarly(let version, let plan) = rules(at: height) else { return }
        let when = plan.map { "; start it at height \($0.height) (upgrade \($0.name)) or later" } ?? ""
        let message = "refusing to run: this binary implements rules v\(config.versionMin)...v\(config.version), "
            + "but height \(height) runs rules v\(version)\(when)"
        logger.critical("\(message)")
        events.write("refused_start", timeMs: clock(), [("height", .uint(height)), ("reason", .string(message))])
        events.flush()
        throw StartRefused(description: message)
    }

    /// Stops deciding for good (until restarted): no votes, no proposals; blocks and status are still served.
    func stop(_ reason: String, event: String, _ fields: [(String, JSONValue)]) {
        guard stopped == nil else { return }
        stopped = reason
        replica.forgetOwnMessages()
        metrics.stopped.record(1)
        logger.critical("stopped: \(reason)")
        events.write(event, timeMs: clock(), fields + [("reason", .string(reason))])
        events.flush()
    }

    func stopOnMismatch(_ block: Block, source: String) {
        metrics.stateMismatches.increment()
        let height = block.header.height
        stop("wrong state root at height \(height): expected \(ledger.stateRoot.hex), got \(block.header.stateRoot.hex)",
             event: "state_mismatch", [
                ("height", .uint(height)), ("expected", .string(ledger.stateRoot.hex)),
                ("got", .string(block.header.stateRoot.hex)), ("rules", .uint(UInt64(ledger.rulesVersion))),
                ("source", .string(source)),
             ])
    }

    func stopForUpgrade(_ plan: UpgradePlan, height: UInt64) {
        stop("upgrade \(plan.name) needed at height \(plan.height)", event: "upgrade_needed", [
            ("height", .uint(height)), ("plan", .string(plan.name)), ("planHeight", .uint(plan.height)),
            ("planVersion", .uint(UInt64(plan.version))), ("binaryVersion", .uint(UInt64(config.version))),
        ])
    }

    // MARK: handshake

    func sendHello(to peer: Peer, now: UInt64) {
        let hello = Hello(protocolVersion: config.protocolVersion, forkId: config.forkId, version: config.version,
                          versionMin: config.versionMin, committedHeight: store.height,
                          replyWanted: handshakes.sendingHello(to: peer.name, nowMs: now), timeMs: now)
        send(sign(.hello, hello), to: peer)
    }

    /// Every tick: peers not accepted get another hello (see `Replica.Handshakes.hellosDue`).
    func resendHellos() {
        let now = clock()
        let due = Set(handshakes.hellosDue(everyPeer.map(\.name), nowMs: now))
        for peer in everyPeer where due.contains(peer.name) { sendHello(to: peer, now: now) }
    }

    /// A hello signed with a twinned key could come from either twin: both get the same answer.
    func onHello(_ hello: Hello, envelope: Envelope) {
        guard let peer = peers[envelope.sender] else { return }
        for each in [peer] + (twins[envelope.sender] ?? []) { onHello(hello, envelope: envelope, peer: each) }
    }

    private func onHello(_ hello: Hello, envelope: Envelope, peer: Peer) {
        let ours = HandshakePolicy.Identity(forkId: config.forkId, protocolVersion: config.protocolVersion,
                                            version: config.version, versionMin: config.versionMin)
        let theirs = HandshakePolicy.Identity(forkId: hello.forkId, protocolVersion: hello.protocolVersion,
                                              version: hello.version, versionMin: hello.versionMin)
        let refusal = hello.forkId != envelope.forkId
            ? "hello names fork id \(hello.forkId) but is signed for fork id \(envelope.forkId)"
            : HandshakePolicy.refusal(ours: ours, theirs: theirs, height: consensus.height, plans: plans,
                                      checkRules: config.handshakeChecksRules)
        let now = clock()
        let outcome = handshakes.heardHello(from: peer.name, refusal: refusal, replyWanted: hello.replyWanted, nowMs: now)
        switch (outcome.previous, outcome.link) {
        case (let previous, .refused(let reason)):
            metrics.handshakeRefused.increment()
            if previous != outcome.link {
                logger.warning("handshake: refusing \(peer.name) (\(peer.address)): \(reason); no blocks or votes are exchanged with it")
                events.write("handshake_refused", timeMs: now, [("peer", .string(peer.name)), ("reason", .string(reason))])
                events.flush()
            }
        case (let previous, .accepted) where previous != .accepted:
            logger.info("handshake: accepted \(peer.name) (fork id \(hello.forkId), protocol \(hello.protocolVersion), rules v\(hello.versionMin)...v\(hello.version))")
            if case .refused = previous {
                events.write("handshake_accepted", timeMs: now, [("peer", .string(peer.name))])
            }
        case (_, .accepted):
            break
        }
        metrics.peersRefused.record(handshakes.refused.count)
        for item in outcome.release { handleMessage(item.envelope, item.message, fromPeer: item.fromPeer) }
        if outcome.answer { sendHello(to: peer, now: now) }
    }
}
