import Sodium

/// Why a byte string was not accepted. Decoding never traps on peer input; it returns one of these.
public enum DecodeError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated(field: String)
    case oversized(field: String, length: Int, max: Int)
    case unknownKind(UInt8)
    case badMagic(UInt8)
    case unsupportedVersion(UInt8)
    case trailingBytes(count: Int)
    case invalidValue(field: String, reason: String)

    public var description: String {
        switch self {
        case .truncated(let field): return "truncated at \(field)"
        case .oversized(let field, let length, let max): return "\(field) is \(length) bytes, max \(max)"
        case .unknownKind(let kind): return "unknown message kind \(kind)"
        case .badMagic(let byte): return "bad magic byte 0x\(Hex.encode([byte]))"
        case .unsupportedVersion(let version): return "unsupported wire version \(version)"
        case .trailingBytes(let count): return "\(count) trailing bytes after the message"
        case .invalidValue(let field, let reason): return "invalid \(field): \(reason)"
        }
    }

    /// A short stable label for metrics.
    public var label: String {
        switch self {
        case .truncated: return "truncated"
        case .oversized: return "oversized"
        case .unknownKind: return "unknown_kind"
        case .badMagic: return "bad_magic"
        case .unsupportedVersion: return "unsupported_version"
        case .trailingBytes: return "trailing_bytes"
        case .invalidValue: return "invalid_value"
        }
    }
}

/// Appends the canonical big-endian encoding of values.
public struct WireWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func u8(_ value: UInt8) { bytes.append(value) }

    public mutating func u16(_ value: UInt16) {
        bytes.append(UInt8(value >> 8))
        bytes.append(UInt8(value & 0xff))
    }

    public mutating func u32(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8((value >> UInt32(shift)) & 0xff)) }
    }

    public mutating func u64(_ value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8((value >> UInt64(shift)) & 0xff)) }
    }

    public mutating func i32(_ value: Int32) { u32(UInt32(bitPattern: value)) }

    public mutating func bool(_ value: Bool) { u8(value ? 1 : 0) }

    public mutating func bytes32(_ value: Bytes32) {
        value.withUnsafeBytes { bytes.append(contentsOf: $0) }
    }

    public mutating func bytes64(_ value: Bytes64) {
        bytes32(value.low)
        bytes32(value.high)
    }

    public mutating func publicKey(_ key: PublicKey) { bytes32(key.bytes32) }

    public mutating func raw<C: Collection>(_ data: C) where C.Element == UInt8 { bytes.append(contentsOf: data) }

    /// A u16 length then the bytes. The caller keeps `data.count` within the field's bound.
    public mutating func blob16<C: Collection>(_ data: C) where C.Element == UInt8 {
        precondition(data.count <= Int(UInt16.max), "blob16 of \(data.count) bytes")
        u16(UInt16(data.count))
        bytes.append(contentsOf: data)
    }

    /// A u32 length then the bytes.
    public mutating func blob32<C: Collection>(_ data: C) where C.Element == UInt8 {
        u32(UInt32(data.count))
        bytes.append(contentsOf: data)
    }

    public mutating func string(_ value: String) { blob16(Array(value.utf8)) }
}

/// Reads the canonical encoding with bounds checks; every failure names the field.
public struct WireReader: Sendable {
    public let bytes: [UInt8]
    public private(set) var offset: Int
    public let end: Int

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.offset = 0
        self.end = bytes.count
    }

    public init(_ bytes: [UInt8], range: Range<Int>) {
        self.bytes = bytes
        self.offset = range.lowerBound
        self.end = range.upperBound
    }

    public var remaining: Int { end - offset }

    private mutating func take(_ count: Int, _ field: String) throws(DecodeError) -> Int {
        guard count >= 0, remaining >= count else { throw .truncated(field: field) }
        let start = offset
        offset += count
        return start
    }

    public mutating func u8(_ field: String) throws(DecodeError) -> UInt8 {
        bytes[try take(1, field)]
    }

    public mutating func u16(_ field: String) throws(DecodeError) -> UInt16 {
        let at = try take(2, field)
        return UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1])
    }

    public mutating func u32(_ field: String) throws(DecodeError) -> UInt32 {
        let at = try take(4, field)
        var value: UInt32 = 0
        for index in 0..<4 { value = value << 8 | UInt32(bytes[at + index]) }
        return value
    }

    public mutating func u64(_ field: String) throws(DecodeError) -> UInt64 {
        let at = try take(8, field)
        var value: UInt64 = 0
        for index in 0..<8 { value = value << 8 | UInt64(bytes[at + index]) }
        return value
    }

    public mutating func i32(_ field: String) throws(DecodeError) -> Int32 {
        Int32(bitPattern: try u32(field))
    }

    public mutating func bool(_ field: String) throws(DecodeError) -> Bool {
        switch try u8(field) {
        case 0: return false
        case 1: return true
        case let other: throw .invalidValue(field: field, reason: "boolean byte \(other)")
        }
    }

    public mutating func bytes32(_ field: String) throws(DecodeError) -> Bytes32 {
        let at = try take(32, field)
        return bytes.withUnsafeBytes { Bytes32(unsafeRaw: UnsafeRawBufferPointer(rebasing: $0[at..<at + 32])) }
    }

    public mutating func bytes64(_ field: String) throws(DecodeError) -> Bytes64 {
        let low = try bytes32(field)
        let high = try bytes32(field)
        return Bytes64(low: low, high: high)
    }

    public mutating func publicKey(_ field: String) throws(DecodeError) -> PublicKey {
        PublicKey(try bytes32(field))
    }

    public mutating func raw(_ count: Int, _ field: String) throws(DecodeError) -> ArraySlice<UInt8> {
        let at = try take(count, field)
        return bytes[at..<at + count]
    }

    public mutating func blob16(_ field: String, max: Int) throws(DecodeError) -> ArraySlice<UInt8> {
        let length = Int(try u16(field))
        guard length <= max else { throw .oversized(field: field, length: length, max: max) }
        return try raw(length, field)
    }

    public mutating func blob32(_ field: String, max: Int) throws(DecodeError) -> ArraySlice<UInt8> {
        let length = Int(try u32(field))
        guard length <= max else { throw .oversized(field: field, length: length, max: max) }
        return try raw(length, field)
    }

    public mutating func string(_ field: String, max: Int) throws(DecodeError) -> String {
        let slice = try blob16(field, max: max)
        guard let text = String(validating: slice, as: UTF8.self) else {
            throw .invalidValue(field: field, reason: "not UTF-8")
        }
        return text
    }

    /// A count that bounds a following list; rejects counts above `max` before anything is allocated.
    public mutating func count16(_ field: String, max: Int) throws(DecodeError) -> Int {
        let count = Int(try u16(field))
        guard count <= max else { throw .oversized(field: field, length: count, max: max) }
        return count
    }

    public mutating func count32(_ field: String, max: Int) throws(DecodeError) -> Int {
        let count = Int(try u32(field))
        guard count <= max else { throw .oversized(field: field, length: count, max: max) }
        return count
    }

    public func expectEnd() throws(DecodeError) {
        guard remaining == 0 else { throw .trailingBytes(count: remaining) }
    }
}

/// A value with one canonical byte encoding.
public protocol WireCodable: Sendable {
    func encode(to writer: inout WireWriter)
    init(from reader: inout WireReader) throws(DecodeError)
}

extension WireCodable {
    public var encoded: [UInt8] {
        var writer = WireWriter()
        encode(to: &writer)
        return writer.bytes
    }

    /// Decodes a whole byte string: anything left over is an error.
    public init(decoding bytes: [UInt8]) throws(DecodeError) {
        var reader = WireReader(bytes)
        self = try Self(from: &reader)
        try reader.expectEnd()
    }
}
