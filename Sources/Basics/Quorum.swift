/// The BFT quorum, counted the same way everywhere (consensus, the receiving edge, the signature audit,
/// `up`'s wait): more than 2/3 of the total stake.
public enum Quorum {
    @inlinable
    public static func holds(_ stake: UInt64, of totalStake: UInt64) -> Bool { stake * 3 > totalStake * 2 }
}
