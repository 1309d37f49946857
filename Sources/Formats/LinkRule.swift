/// What happens to datagrams on one directed link (this node → one peer). Faults compose: the
/// cluster side folds every active fault on a link into one rule and sends it to the sender.
public struct LinkRule: Codable, Sendable, Equatable {
    /// Drop everything (a partition).
    public var blocked: Bool
    public var lossPercent: Double
    public var delayMs: Double
    public var jitterMs: Double
    public var duplicatePercent: Double
    /// Share of datagrams held back by an extra delay so they arrive after later ones.
    public var reorderPercent: Double
    /// Link capacity; datagrams queue behind each other when it is exceeded (nil: unlimited).
    public var bandwidthBytesPerSecond: Int?
    /// Message kinds dropped on this link (e.g. ["precommit"]).
    public var dropKinds: [String]

    public init(blocked: Bool = false, lossPercent: Double = 0, delayMs: Double = 0, jitterMs: Double = 0,
                duplicatePercent: Double = 0, reorderPercent: Double = 0, bandwidthBytesPerSecond: Int? = nil,
                dropKinds: [String] = []) {
        self.blocked = blocked
        self.lossPercent = lossPercent
        self.delayMs = delayMs
        self.jitterMs = jitterMs
        self.duplicatePercent = duplicatePercent
        self.reorderPercent = reorderPercent
        self.bandwidthBytesPerSecond = bandwidthBytesPerSecond
        self.dropKinds = dropKinds
    }

    public static let clear = LinkRule()

    public var isClear: Bool { self == .clear }

    /// Two faults on one link at once: blocked if either blocks, losses compound, delays add.
    public func combined(with other: LinkRule) -> LinkRule {
        LinkRule(
            blocked: blocked || other.blocked,
            lossPercent: 100 - (100 - lossPercent) * (100 - other.lossPercent) / 100,
            delayMs: delayMs + other.delayMs, jitterMs: jitterMs + other.jitterMs,
            duplicatePercent: max(duplicatePercent, other.duplicatePercent),
            reorderPercent: max(reorderPercent, other.reorderPercent),
            bandwidthBytesPerSecond: [bandwidthBytesPerSecond, other.bandwidthBytesPerSecond].compactMap { $0 }.min(),
            dropKinds: Array(Set(dropKinds + other.dropKinds)).sorted())
    }
}

/// The rules of every outgoing link of one node, by peer name.
public struct LinkFaultTable: Codable, Sendable, Equatable {
    public var links: [String: LinkRule]

    public init(links: [String: LinkRule] = [:]) { self.links = links }
}
