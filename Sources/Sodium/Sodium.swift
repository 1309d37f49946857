import CSodium

/// The one place Faultline calls libsodium: Ed25519 keys, signatures and BLAKE2b-256.
public enum Sodium {
    private static let initialized: Bool = {
        sodium_init() >= 0
    }()

    /// Calls `sodium_init()` once; every entry point below goes through it.
    @inline(__always)
    static func ensureInitialized() {
        precondition(initialized, "sodium_init() failed: libsodium could not initialize")
    }
}

/// An Ed25519 public key.
public struct PublicKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let bytes32: Bytes32

    public init(_ bytes32: Bytes32) {
        self.bytes32 = bytes32
    }

    public init?<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        guard let value = Bytes32(bytes) else { return nil }
        self.bytes32 = value
    }

    /// True when `signature` is a valid Ed25519 signature of `message` by this key.
    public func verify(signature: Bytes64, message: UnsafeRawBufferPointer) -> Bool {
        Sodium.ensureInitialized()
        var sig = signature
        var key = bytes32
        return withUnsafeBytes(of: &sig) { sigRaw in
            withUnsafeBytes(of: &key.storage) { keyRaw in
                crypto_sign_verify_detached(
                    sigRaw.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    message.baseAddress?.assumingMemoryBound(to: UInt8.self),
                    UInt64(message.count),
                    keyRaw.baseAddress!.assumingMemoryBound(to: UInt8.self)
                ) == 0
            }
        }
    }

    public func verify(signature: Bytes64, message: [UInt8]) -> Bool {
        message.withUnsafeBytes { verify(signature: signature, message: $0) }
    }

    public static func < (lhs: PublicKey, rhs: PublicKey) -> Bool { lhs.bytes32 < rhs.bytes32 }

    public var hex: String { bytes32.hex }
    public var description: String { bytes32.short }
}

/// An Ed25519 key pair derived deterministically from a 32-byte seed.
public struct SigningKey: Sendable {
    public let seed: Bytes32
    public let publicKey: PublicKey
    private let secret: Bytes64

    public init(seed: Bytes32) {
        Sodium.ensureInitialized()
        var pk = [UInt8](repeating: 0, count: 32)
        var sk = [UInt8](repeating: 0, count: 64)
        let seedBytes = seed.bytes
        let rc = crypto_sign_seed_keypair(&pk, &sk, seedBytes)
        precondition(rc == 0, "crypto_sign_seed_keypair failed with \(rc)")
        self.seed = seed
        self.publicKey = PublicKey(pk)!
        self.secret = Bytes64(sk)!
    }

    /// A key from a label, for reproducible clusters: the seed is BLAKE2b-256 of the label.
    public init(label: String) {
        self.init(seed: Blake2b.hash(Array(label.utf8)))
    }

    public func sign(_ message: UnsafeRawBufferPointer) -> Bytes64 {
        Sodium.ensureInitialized()
        var signature = Bytes64.zero
        var sk = secret
        withUnsafeMutableBytes(of: &signature) { sigRaw in
            withUnsafeBytes(of: &sk) { skRaw in
                _ = crypto_sign_detached(
                    sigRaw.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    nil,
                    message.baseAddress?.assumingMemoryBound(to: UInt8.self),
                    UInt64(message.count),
                    skRaw.baseAddress!.assumingMemoryBound(to: UInt8.self)
                )
            }
        }
        return signature
    }

    public func sign(_ message: [UInt8]) -> Bytes64 {
        message.withUnsafeBytes { sign($0) }
    }
}

/// BLAKE2b with a 32-byte output.
public enum Blake2b {
    public static func hash(_ data: UnsafeRawBufferPointer) -> Bytes32 {
        Sodium.ensureInitialized()
        var out = Bytes32.zero
        withUnsafeMutableBytes(of: &out.storage) { outRaw in
            _ = crypto_generichash(
                outRaw.baseAddress!.assumingMemoryBound(to: UInt8.self), 32,
                data.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(data.count),
                nil, 0
            )
        }
        return out
    }

    public static func hash(_ data: [UInt8]) -> Bytes32 {
        data.withUnsafeBytes { hash($0) }
    }

    /// Hash of two 32-byte values with a one-byte prefix (Merkle inner nodes).
    /// On the stack: a root over 4,096 leaves makes 4,095 of these, and the parts of every block one per level.
    public static func hash(prefix: UInt8, _ left: Bytes32, _ right: Bytes32) -> Bytes32 {
        withUnsafeTemporaryAllocation(byteCount: 65, alignment: 8) { buffer in
            buffer.storeBytes(of: prefix, toByteOffset: 0, as: UInt8.self)
            left.withUnsafeBytes { buffer.baseAddress!.advanced(by: 1).copyMemory(from: $0.baseAddress!, byteCount: 32) }
            right.withUnsafeBytes { buffer.baseAddress!.advanced(by: 33).copyMemory(from: $0.baseAddress!, byteCount: 32) }
            return hash(UnsafeRawBufferPointer(buffer))
        }
    }
}

/// Random bytes from libsodium's CSPRNG, for tokens and seeds at the edges (never in protocol cores).
public enum SecureRandom {
    public static func bytes(_ count: Int) -> [UInt8] {
        Sodium.ensureInitialized()
        var out = [UInt8](repeating: 0, count: count)
        randombytes_buf(&out, count)
        return out
    }
}
