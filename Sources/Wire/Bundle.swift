/// Several signed envelopes in one datagram. A bundle is a transport frame, not a message: it has
/// no signature of its own, and every envelope inside is decoded, de-duplicated and verified exactly
/// as if it had arrived alone. It exists to cut system calls: under load a validator forwards each
/// client transfer to every peer, and one datagram per transfer per peer made the UDP stack a sixth
/// of a node's CPU.
///
/// Layout: magic(1) = 0xFB, count(1), then `count` × (length(2) envelope bytes). A bundle holds at
/// least two envelopes (one goes out alone) and at most `entriesMax`.
public enum Bundle {
    public static let magic: UInt8 = 0xFB
    public static let entriesMax = 64
    static let headerBytes = 2
    static let entryOverheadBytes = 2

    public static func isBundle(_ bytes: [UInt8]) -> Bool { bytes.first == magic }

    /// The envelopes' bytes framed as one bundle (the caller keeps the total under its datagram size).
    public static func encode(_ envelopes: [[UInt8]]) -> [UInt8] {
        precondition((2...entriesMax).contains(envelopes.count), "a bundle holds 2...\(entriesMax) envelopes")
        var writer = WireWriter(capacity: envelopes.reduce(headerBytes) { $0 + entryOverheadBytes + $1.count })
        writer.u8(magic)
        writer.u8(UInt8(envelopes.count))
        for envelope in envelopes { writer.blob16(envelope) }
        return writer.bytes
    }

    /// The envelopes' bytes in a received bundle (not yet decoded). Throws on a bad frame: wrong magic,
    /// a count outside 2...entriesMax, an entry running past the end, or bytes after the last entry.
    public static func split(_ bytes: [UInt8]) throws(DecodeError) -> [[UInt8]] {
        var reader = WireReader(bytes)
        let first = try reader.u8("bundle magic")
        guard first == magic else { throw .badMagic(first) }
        let count = Int(try reader.u8("bundle count"))
        guard (2...entriesMax).contains(count) else {
            throw .invalidValue(field: "bundle count", reason: "\(count), must be 2...\(entriesMax)")
        }
        var entries: [[UInt8]] = []
        entries.reserveCapacity(count)
        for _ in 0..<count {
            let entry = try reader.blob16("bundle entry", max: bytes.count)
            guard !entry.isEmpty else { throw .invalidValue(field: "bundle entry", reason: "empty") }
            entries.append(Array(entry))
        }
        try reader.expectEnd()
        return entries
    }

    /// Packs `envelopes` (in order) into as few datagrams as fit `datagramBytesMax`: consecutive
    /// envelopes share a bundle while it fits; one left alone, or too large to share, goes out as is.
    public static func pack(_ envelopes: [[UInt8]], datagramBytesMax: Int) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var group: [[UInt8]] = []
        var groupBytes = headerBytes
        func close() {
            if group.count == 1 { out.append(group[0]) } else if group.count > 1 { out.append(encode(group)) }
            group.removeAll(keepingCapacity: true)
            groupBytes = headerBytes
        }
        for envelope in envelopes {
            let cost = entryOverheadBytes + envelope.count
            if !group.isEmpty, groupBytes + cost > datagramBytesMax || group.count == entriesMax { close() }
            group.append(envelope)
            groupBytes += cost
        }
        close()
        return out
    }
}
