import Basics
import Formats
import Ledger
import Rollup
import Sodium
import Wire

/// The simulated node as the host of its rollup part (`RollupNode`, the same code a real sequencer or
/// replica runs): its key, L1 as it has committed it, its peers, and its event log. An address is a
/// node's slot; a client's is negative (`Simulator.loadClient`).
extension SimNode: RollupHost {
    typealias Address = Int

    var domain: Domain { world.domain.onFork(binary.forkId) }
    var datagramPayloadBytesMax: Int { world.topology.limits.datagramPayloadBytesMax }
    var l1Height: UInt64 { storeHeight }
    var hasHeardPeers: Bool { !replica.peerHeights.isEmpty }
    var bestPeerHeight: UInt64 { replica.bestPeerHeight }
    var chunkTargets: [(name: String, address: Int)] {
        world.nodes.filter { $0.me != nil && $0.keyName != keyName }.map { ($0.name, $0.slot) }
    }
    /// There is no process to measure.
    var residentKiB: UInt64? { nil }

    func sign(_ kind: MessageKind, _ payload: some WireCodable) -> Envelope {
        Envelope(kind: kind, payload: payload.encoded, domain: domain, key: world.signingKey(keyName: keyName))
    }

    func feedAddress(named name: String) -> Int? { world.nodes.first { $0.name == name }?.slot }

    func sendToPeers(_ envelope: Envelope) { world.broadcast(from: self, .made(envelope)) }

    func record(_ name: String, timeMs: UInt64, _ fields: [(String, JSONValue)]) {
        guard world.logs.enabled else { return }
        world.logs.write(slot, JSONValue.eventLine(name, timeMs: timeMs, node: self.name, fields))
    }

    /// The simulator's logs are written at the end of the run.
    func flushRecords() {}

    /// The operator's log has no simulated counterpart: every fact the rollup logs is also an event.
    func log(_ level: RollupLogLevel, _ message: String) {}

    // MARK: driving it

    /// At a (re)start: a fresh rollup part that derives L2 again from every stored L1 block, as the node
    /// does from its block store.
    func startRollup() {
        guard let role = RollupRole(rawValue: self.role), let topology = world.topology.rollup else { return }
        var settings = topology.settings
        settings.dispute = world.topology.nodes[slot].dispute
        let part: RollupNode<SimNode>
        do {
            part = try RollupNode(role: role, settings: settings, genesis: world.genesis, forkId: binary.forkId)
        } catch {
            preconditionFailure("\(name): the rollup's genesis does not fit its topology: \(error)")
        }
        part.startDisputeAgent(ledger: ledger, key: world.signingKey(keyName: keyName))
        for entry in l1Commits { part.onL1Commit(entry, live: false, host: self) }
        rollup = part
        if role == .sequencer { world.scheduleBlockTimer(self, afterMs: settings.blockIntervalMs) }
    }

    /// A committed L1 block, to derivation (and kept: a restarted node derives again from the store).
    func rollupCommitted(_ block: Block, _ result: Ledger.BlockResult) {
        guard RollupRole(rawValue: role) != nil else { return }
        let entry = L1Commit(block, result, ledger: ledger)
        l1Commits.append(entry)
        rollup?.onL1Commit(entry, live: true, host: self)
    }

    /// Rollup traffic from a peer (a sequencer's feed, a rejection); clients' transactions come through
    /// `receive(_:from:)`.
    func receiveRollup(_ envelope: Envelope, _ message: Message) { rollup?.onPeerMessage(envelope, message, host: self) }

    /// After every input, as the node's main loop: refusals answered, and what the uplink lets out now
    /// sent (an answer to a client goes to its airdrop's count; the load's clients do not read them).
    func flushRollup() {
        guard let rollup, state == .running else { return }
        if rollup.hasRefusals { rollup.flushRefusals(host: self) }
        guard !rollup.uplink.queue.isEmpty else { return }
        for item in rollup.uplink.drain(nowMs: nowMs) {
            guard item.address >= 0 else {
                world.heard(item.bytes, by: item.address)
                continue
            }
            guard let envelope = try? Envelope(decoding: item.bytes) else {
                preconditionFailure("\(name): the rollup signed an envelope that does not decode (\(item.kind))")
            }
            world.send(from: self, toSlot: item.address, .made(envelope))
        }
    }
}
