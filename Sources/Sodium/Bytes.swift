/// Fixed-size byte strings stored inline (no heap allocation), used for keys, hashes and signatures.

/// 32 bytes: public keys, seeds, BLAKE2b-256 digests.
public struct Bytes32: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var storage: (UInt64, UInt64, UInt64, UInt64)

    public static let zero = Bytes32(storage: (0, 0, 0, 0))

    public init(storage: (UInt64, UInt64, UInt64, UInt64)) {
        self.storage = storage
    }

    /// Copies exactly 32 bytes; returns nil for any other length.
    public init?<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        guard bytes.count == 32 else { return nil }
        var value = Bytes32.zero
        withUnsafeMutableBytes(of: &value.storage) { raw in
            var index = 0
            for byte in bytes {
                raw[index] = byte
                index += 1
            }
        }
        self = value
    }

    public init(unsafeRaw raw: UnsafeRawBufferPointer) {
        precondition(raw.count == 32, "Bytes32 needs 32 bytes, got \(raw.count)")
        var value = Bytes32.zero
        withUnsafeMutableBytes(of: &value.storage) { $0.copyMemory(from: raw) }
        self = value
    }

    public var bytes: [UInt8] {
        Swift.withUnsafeBytes(of: storage) { Array($0) }
    }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: storage, body)
    }

    public static func == (lhs: Bytes32, rhs: Bytes32) -> Bool {
        lhs.storage.0 == rhs.storage.0 && lhs.storage.1 == rhs.storage.1
            && lhs.storage.2 == rhs.storage.2 && lhs.storage.3 == rhs.storage.3
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(storage.0)
        hasher.combine(storage.1)
    }

    /// Lexicographic order of the bytes.
    public static func < (lhs: Bytes32, rhs: Bytes32) -> Bool {
        lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
    }

    public var hex: String { Hex.encode(bytes) }

    /// The first 8 bytes in hex: enough to tell values apart in logs.
    public var short: String { Hex.encode(bytes.prefix(8)) }

    public var description: String { short }
}

/// 64 bytes: Ed25519 signatures and secret keys.
public struct Bytes64: Hashable, Sendable {
    public var low: Bytes32
    public var high: Bytes32

    public static let zero = Bytes64(low: .zero, high: .zero)

    public init(low: Bytes32, high: Bytes32) {
        self.low = low
        self.high = high
    }

    public init?<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        guard bytes.count == 64 else { return nil }
        let array = Array(bytes)
        guard let low = Bytes32(array[0..<32]), let high = Bytes32(array[32..<64]) else { return nil }
        self.init(low: low, high: high)
    }

    public var bytes: [UInt8] { low.bytes + high.bytes }

    public var hex: String { Hex.encode(bytes) }
}

public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    public static func encode<C: Sequence>(_ bytes: C) -> String where C.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes lower- or upper-case hex; nil on odd length or a non-hex character.
    public static func decode(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count / 2)
        var index = 0
        while index < utf8.count {
            guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    private static func nibble(_ char: UInt8) -> UInt8? {
        switch char {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return char - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return char - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return char - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
