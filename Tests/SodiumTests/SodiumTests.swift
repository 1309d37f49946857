import Sodium
import Testing

@Suite struct SodiumTests {
    @Test func signAndVerifyRoundTrip() {
        let key = SigningKey(label: "v1")
        let message = Array("hello faultline".utf8)
        let signature = key.sign(message)
        #expect(key.publicKey.verify(signature: signature, message: message))
    }

    @Test func verifyRejectsTamperedMessageAndWrongKey() {
        let key = SigningKey(label: "v1")
        let other = SigningKey(label: "v2")
        let message = Array("transfer 10".utf8)
        let signature = key.sign(message)
        var tampered = message
        tampered[0] ^= 1
        #expect(!key.publicKey.verify(signature: signature, message: tampered))
        #expect(!other.publicKey.verify(signature: signature, message: message))
        var badSig = signature.bytes
        badSig[10] ^= 0x80
        #expect(!key.publicKey.verify(signature: Bytes64(badSig)!, message: message))
    }

    @Test func keysAreDeterministicFromSeed() {
        let a = SigningKey(label: "same")
        let b = SigningKey(label: "same")
        let c = SigningKey(label: "different")
        #expect(a.publicKey == b.publicKey)
        #expect(a.publicKey != c.publicKey)
    }

    /// RFC 8032 test vector 1 (empty message).
    @Test func ed25519MatchesRfc8032Vector() {
        let seed = Bytes32(Hex.decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")!)!
        let key = SigningKey(seed: seed)
        #expect(key.publicKey.hex == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        let signature = key.sign([UInt8]())
        #expect(signature.hex.hasPrefix("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"))
    }

    /// BLAKE2b-256 of the empty string, as published.
    @Test func blake2b256KnownAnswer() {
        #expect(Blake2b.hash([UInt8]()).hex
            == "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8")
        #expect(Blake2b.hash(Array("a".utf8)) != Blake2b.hash(Array("b".utf8)))
    }

    @Test func hexRoundTripAndRejects() {
        #expect(Hex.decode("00ff10") == [0, 255, 16])
        #expect(Hex.decode("0") == nil)
        #expect(Hex.decode("zz") == nil)
        #expect(Hex.encode([1, 171]) == "01ab")
    }
}
