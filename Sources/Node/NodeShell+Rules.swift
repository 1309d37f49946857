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
        /// The store's height: where the node stands while it waits for the right binary.
        let height: UInt64
    }

    /// This node's binary: its rules range, protocol version and fork.
    var binary: Replica.Binary {
        Replica.Binary(version: config.version, versionMin: config.versionMin, forkId: config.forkId,
                       protocolVersion: config.protocolVersion, consensus: config.consensusProtocol ?? .tendermint)
    }

    /// Stops deciding for good (until restarted): no votes, no proposals; blocks and status are still served.
    func stopped(_ stop: Replica.Stop) {
        if stop.event == "state_mismatch" { metrics.stateMismatches.increment() }
        logger.critical("stopped: \(stop.reason)")
    }

    // MARK: handshake

    var linkPeers: [String] { everyPeer.map(\.name) }
    var handshakeChecksRules: Bool { config.handshakeChecksRules }

    /// A twinned key's peer and its twins: which of them a message came from is unknown.
    func linkPeers(signing key: PublicKey) -> [String] {
        guard let peer = peers[key] else { return [] }
        return [peer.name] + (twins[key] ?? []).map(\.name)
    }

    func handshakeLink(signing key: PublicKey) -> String? { peers[key]?.name }

    func linkName(_ peer: String) -> String { peer }

    func handshakeHeard(_ peer: String, _ outcome: Replica.Handshakes<String, Replica.HeldMessage>.HelloOutcome) {
        switch (outcome.previous, outcome.link) {
        case (let previous, .refused(let reason)):
            metrics.handshakeRefused.increment()
            if previous != outcome.link {
                let address = peerByName[peer].map { "\($0.address)" } ?? "?"
                logger.warning("handshake: refusing \(peer) (\(address)): \(reason); no blocks or votes are exchanged with it")
            }
        case (let previous, .accepted) where previous != .accepted:
            logger.info("handshake: accepted \(peer)")
        case (_, .accepted):
            break
        }
        metrics.peersRefused.set(to: Double(handshakes.refused.count))
    }
}
