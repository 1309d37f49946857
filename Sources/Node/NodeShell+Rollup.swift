import Basics
import NIOCore
import Rollup
import Wire

/// The node as the host of its rollup part (`RollupNode`): its event log, logger, key, L1 and peers.
extension NodeShell: RollupHost {
    typealias Address = SocketAddress

    var nowMs: UInt64 { clock() }
    var datagramPayloadBytesMax: Int { config.limits.datagramPayloadBytesMax }
    var l1Height: UInt64 { store.height }
    var hasHeardPeers: Bool { !replica.peerHeights.isEmpty }
    var chunkTargets: [(name: String, address: SocketAddress)] {
        peers.filter { validators.index(of: $0.key) != nil && !unresolved.contains($0.value.name) }.map { ($0.value.name, $0.value.address(for: .batchChunk)) }
    }
    var residentKiB: UInt64? { ProcessStats.residentKiB() }

    func feedAddress(named name: String) -> SocketAddress? {
        unresolved.contains(name) ? nil : peerByName[name]?.address(for: .l2BlockPart)
    }

    func sendToPeers(_ envelope: Envelope) { broadcast(envelope) }

    func record(_ name: String, timeMs: UInt64, _ fields: [(String, JSONValue)]) {
        events.write(name, timeMs: timeMs, fields)
        if name == "l2_sample" { metrics.l2Sample(fields) }
    }

    func flushRecords() { events.flush() }

    func log(_ level: RollupLogLevel, _ message: String) {
        switch level {
        case .info: logger.info("\(message)")
        case .notice: logger.notice("\(message)")
        case .warning: logger.warning("\(message)")
        case .critical: logger.critical("\(message)")
        }
    }
}
