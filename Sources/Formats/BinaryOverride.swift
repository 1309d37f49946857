/// A node's binary as changed in place: what `POST /upgrade` leaves in the node's data folder before the
/// node stops and starts again in the same process (execv), to take over its config's (on Kubernetes the
/// config is the ConfigMap's; on this machine `faultline fault upgrade` rewrites node.json instead).
public struct BinaryOverride: Codable, Sendable, Equatable {
    public var version: UInt16
    public var versionMin: UInt16?
    public var forkId: UInt32?

    public init(version: UInt16, versionMin: UInt16? = nil, forkId: UInt32? = nil) {
        self.version = version
        self.versionMin = versionMin
        self.forkId = forkId
    }

    public static let fileName = "binary.json"

    /// `config` as the new binary runs it.
    public func applied(to config: NodeConfig) -> NodeConfig {
        var config = config
        config.version = version
        config.versionMin = versionMin ?? min(config.versionMin, version)
        if let forkId { config.forkId = forkId }
        return config
    }
}
