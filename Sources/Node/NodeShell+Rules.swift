import Consensus
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

    /// This node's binary: its rules range, protocol version and fork.
    var binary: Replica.Binary {
        Replica.Binary(version: config.version, versionMin: config.versionMin, forkId: config.forkId,
                       protocolVersion: config.protocolVersion)
    }

    func rules(at height: UInt64) -> RulesSchedule.Decision { binary.rules(at: height, plans: plans) }

    /// Throws (after writing a `refused_start` event) when the next height runs rules older than this
    /// binary keeps: a new binary started before its upgrade height.
    func refuseIfTooEarly() throws {
        let height = store.height + 1
        guard let message = binary.refusalToStart(at: height, plans: plans) else { return }
        logger.critical("\(message)")
        write(.refusedStart(height: height, reason: message), flush: true)
        throw StartRefused(description: message)
    }

    /// Stops deciding for good (until restarted): no votes, no proposals; blocks and status are still served.
    func stopped(_ stop: Replica.Stop) {
        if stop.event == "state_mismatch" { metrics.stateMismatches.increment() }
        metrics.stopped.record(1)
        logger.critical("stopped: \(stop.reason)")
    }

    func stopForUpgrade(_ plan: UpgradePlan, height: UInt64) {
        stop(.upgrade(plan, height: height, binary: binary))
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
        let theirs = HandshakePolicy.Identity(forkId: hello.forkId, protocolVersion: hello.protocolVersion,
                                              version: hello.version, versionMin: hello.versionMin)
        let refusal = binary.refusal(of: theirs, signedForFork: envelope.forkId, height: consensus.height, plans: plans,
                                     checkRules: config.handshakeChecksRules)
        let now = clock()
        let outcome = handshakes.heardHello(from: peer.name, refusal: refusal, replyWanted: hello.replyWanted, nowMs: now)
        switch (outcome.previous, outcome.link) {
        case (let previous, .refused(let reason)):
            metrics.handshakeRefused.increment()
            if previous != outcome.link {
                logger.warning("handshake: refusing \(peer.name) (\(peer.address)): \(reason); no blocks or votes are exchanged with it")
                write(.handshakeRefused(peer: peer.name, reason: reason), flush: true)
            }
        case (let previous, .accepted) where previous != .accepted:
            logger.info("handshake: accepted \(peer.name) (fork id \(hello.forkId), protocol \(hello.protocolVersion), rules v\(hello.versionMin)...v\(hello.version))")
            if case .refused = previous {
                write(.handshakeAccepted(peer: peer.name))
            }
        case (_, .accepted):
            break
        }
        metrics.peersRefused.record(handshakes.refused.count)
        for item in outcome.release { handleMessage(item.envelope, item.message, fromPeer: item.fromPeer) }
        if outcome.answer { sendHello(to: peer, now: now) }
    }
}
