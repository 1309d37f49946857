/// Many SIGKILLs at random moments under load: the crash-safety test. Each kill picks a random
/// running target, keeps it down for a random time up to `downMsMax`, then starts it again; at most
/// `downMax` targets are down at once (1 of 4 validators keeps the chain live; 2 halt it).
public struct KillStormSpec: Sendable, Equatable, CustomStringConvertible {
    public var targets: [String]
    public var count: Int
    public var seconds: Double
    public var downMsMax: Int
    public var downMax: Int
    /// The share of kills after which the victim's block store gets a torn record appended: what a
    /// crash in the middle of an append leaves (a header promising more bytes than follow).
    public var tornPercent: Double

    public static let countMax = 100_000
    /// Shortest time a killed target stays down, as a share of `downMsMax`.
    public static let downShareMin = 0.2
    /// How often the storm looks at its victims (are they back, has one caught up).
    public static let probeIntervalMs = 50
    /// A restarted target this close to the best running validator's or target's height has caught up.
    public static let caughtUpHeights: UInt64 = 2

    public init(targets: [String], count: Int, seconds: Double, downMsMax: Int = 1_000, downMax: Int = 1,
                tornPercent: Double = 0) {
        self.targets = targets
        self.count = count
        self.seconds = seconds
        self.downMsMax = downMsMax
        self.downMax = downMax
        self.tornPercent = tornPercent
    }

    public var description: String {
        "kill storm: \(count) SIGKILLs on \(targets.joined(separator: ",")) over \(Self.format(seconds)) s, "
            + "down up to \(downMsMax) ms, at most \(downMax) down at once"
            + (tornPercent > 0 ? ", \(Self.format(tornPercent))% torn store tails" : "")
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String((value * 10).rounded() / 10)
    }
}
