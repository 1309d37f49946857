import NIOCore
import Formats
import Rollup
import Transport
import Wire

/// A datagram to send, with what the link shaper needs to know about it.
struct Outgoing {
    var bytes: [UInt8]
    var address: SocketAddress
    var peer: String
    var kind: MessageKind
}

extension Outgoing {
    init(_ item: UplinkItem<SocketAddress>) {
        self.init(bytes: item.bytes, address: item.address, peer: item.peer, kind: item.kind)
    }
}

/// What the node sends: the datagrams produced while handling one input, then, when the main loop takes
/// them, through this node's link faults (`LinkShaper`: delayed copies wait here) and into bundles.
struct Outbox {
    var items: [Outgoing] = []
    var shaper: LinkShaper

    init(shaper: LinkShaper) {
        self.shaper = shaper
    }

    var isIdle: Bool { items.isEmpty && shaper.pendingCount == 0 }

    /// Applies link faults to what was queued: returns what goes out now (and what delayed copies are due).
    mutating func take(nowMs: UInt64, datagramBytesMax: Int, address: (String, MessageKind) -> SocketAddress?) -> [Datagram] {
        defer { items.removeAll(keepingCapacity: true) }
        guard shaper.isActive || shaper.pendingCount > 0 else {
            return Outbox.bundled(items.map { ($0.bytes, $0.address, $0.kind) }, datagramBytesMax: datagramBytesMax)
        }
        let now = Double(nowMs)
        var ready: [(bytes: [UInt8], address: SocketAddress, kind: MessageKind)] = []
        for item in items {
            if case .send(let delays) = shaper.route(item.bytes, kind: item.kind, peer: item.peer, nowMs: now) {
                for delay in delays where delay == 0 { ready.append((item.bytes, item.address, item.kind)) }
            }
        }
        for due in shaper.due(nowMs: now) {
            guard let address = address(due.peer, due.kind) else { continue }
            ready.append((due.bytes, address, due.kind))
        }
        return Outbox.bundled(ready, datagramBytesMax: datagramBytesMax)
    }

    /// The datagrams for what goes out now, in order: runs of transfers share bundles per address (see
    /// `Bundle`), anything else goes alone and after the transfers queued before it — a block must not
    /// overtake the transfers it carries, or peers verify them twice (in the block, then the late copy).
    /// Link faults were applied per envelope before.
    static func bundled(_ items: [(bytes: [UInt8], address: SocketAddress, kind: MessageKind)],
                        datagramBytesMax: Int) -> [Datagram] {
        var datagrams: [Datagram] = []
        var transfers: [SocketAddress: [[UInt8]]] = [:]
        var order: [SocketAddress] = []
        func emitTransfers() {
            for address in order {
                for bytes in Bundle.pack(transfers[address]!, datagramBytesMax: datagramBytesMax) {
                    datagrams.append(UDPEndpoint.datagram(bytes, to: address))
                }
            }
            transfers.removeAll(keepingCapacity: true)
            order.removeAll(keepingCapacity: true)
        }
        for item in items {
            guard item.kind == .transfer else {
                emitTransfers()
                datagrams.append(UDPEndpoint.datagram(item.bytes, to: item.address))
                continue
            }
            if transfers[item.address] == nil { order.append(item.address) }
            transfers[item.address, default: []].append(item.bytes)
        }
        emitTransfers()
        return datagrams
    }
}
