import Sodium

/// An account's balance and next usable nonce (L1 and L2 use the same shape).
public struct Account: Sendable, Equatable {
    public var balance: UInt64
    public var nonce: UInt64

    public init(balance: UInt64, nonce: UInt64) {
        self.balance = balance
        self.nonce = nonce
    }
}

/// The L2 airdrop: `amount` for each fresh account that claims, from the `pool` account.
public struct Airdrop: Sendable, Equatable {
    public var pool: PublicKey
    public var amount: UInt64

    public init(pool: PublicKey, amount: UInt64) {
        self.pool = pool
        self.amount = amount
    }
}
